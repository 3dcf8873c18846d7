"""Rows of a .npy table read on demand (dalil/arrays.py): the same values as numpy's own reader."""

from __future__ import annotations

import numpy as np
import pytest

from dalil.arrays import RowFile


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rows_and_blocks_equal_the_loaded_array(tmp_path, dtype):
    table = np.random.default_rng(7).standard_normal((1000, 24)).astype(dtype)
    np.save(tmp_path / "t.npy", table)
    rows = RowFile(tmp_path / "t.npy")
    assert rows.shape == (1000, 24) and len(rows) == 1000 and rows.dtype == dtype
    ids = np.array([[5, 999, 5], [0, 42, 7]])
    assert np.array_equal(rows.rows(ids.ravel()).reshape(2, 3, 24), table[ids])
    assert np.array_equal(rows.block(990, 2000), table[990:])
    assert rows.rows([]).shape == (0, 24)
    with pytest.raises(IndexError):
        rows.rows([1000])
    rows.close()


def test_a_truncated_or_foreign_file_is_refused(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((100, 8), np.float32))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="shorter"):
        RowFile(tmp_path / "t.npy")
    np.save(tmp_path / "v.npy", np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="2-d"):
        RowFile(tmp_path / "v.npy")
