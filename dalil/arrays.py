"""Rows of a large `.npy` table read on demand, without mapping the file into the process.

The query engine's word-embedding table (250k rows, 384 MB) and an index's word table (31k rows)
are read a few rows per question. Memory-mapped, every row touched brings its neighbours into the
process too (the kernel maps 64 KB around each fault: measured +39 MB and +22 MB of RSS after 200
questions, for rows of 1.5 KB and 768 B); read with pread, a row costs ~2 µs and only the kernel's
page cache holds the file, shared and reclaimable. numpy has no such reader, hence this one.

This module imports nothing of dalil, so every layer may use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class RowFile:
    """A 2-d C-ordered `.npy` file; `rows(ids)` reads those rows (in the order asked)."""

    def __init__(self, path: Path | str) -> None:
        self._fd = -1
        self.path = Path(path)
        with self.path.open("rb") as fh:
            major, _minor = np.lib.format.read_magic(fh)
            fmt = np.lib.format
            read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            self._offset = fh.tell()
        if len(shape) != 2 or fortran or dtype.hasobject:
            raise ValueError(f"{self.path}: not a 2-d C-ordered numeric array")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = dtype
        self._row_bytes = dtype.itemsize * self.shape[1]
        self._fd = os.open(self.path, os.O_RDONLY)
        if os.fstat(self._fd).st_size < self._offset + self.shape[0] * self._row_bytes:
            self.close()
            raise ValueError(f"{self.path} is shorter than its header says (truncated?)")

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The rows `ids` (each read once, however often it is asked), shape (len(ids), columns)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        unique, inverse = np.unique(ids, return_inverse=True)
        if len(unique) and (unique[0] < 0 or unique[-1] >= self.shape[0]):
            raise IndexError(f"{self.path}: row out of range")
        data = bytearray(len(unique) * self._row_bytes)
        view = memoryview(data)
        for i, row in enumerate(unique.tolist()):
            view[i * self._row_bytes : (i + 1) * self._row_bytes] = self._read(row, 1)
        table = np.frombuffer(data, dtype=self.dtype).reshape(len(unique), self.shape[1])
        return table[inverse]

    def block(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1, read at once (a scan of the whole table goes block by block)."""
        stop = min(stop, self.shape[0])
        if stop <= start:
            return np.zeros((0, self.shape[1]), self.dtype)
        return np.frombuffer(self._read(start, stop - start), dtype=self.dtype).reshape(-1, self.shape[1])

    def _read(self, row: int, count: int) -> bytes:
        size = count * self._row_bytes
        data = os.pread(self._fd, size, self._offset + row * self._row_bytes)
        if len(data) != size:
            raise OSError(f"{self.path} is shorter than its header says")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()
