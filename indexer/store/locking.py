"""One writer at a time per index directory (an advisory lock), any number of readers.

Readers never take the lock: they read immutable versions. Writers (a build, an update) hold an
exclusive `flock` on INDEX_DIR/.write.lock; a second writer waits up to `timeout` seconds and then
fails with a clear message. The kernel releases the lock when a writer dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from dalil.errors import DalilError

LOCK_FILE = ".write.lock"


class LockTimeoutError(DalilError):
    """Another writer held the index for longer than this one would wait."""

    code = "busy"


@contextlib.contextmanager
def writer_lock(root: Path, timeout: float = 0.0) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise LockTimeoutError(
                        f"another process (pid {holder}) is writing to {root}; try again when it is done"
                        + (f" (waited {timeout:.0f} s)" if timeout else " or pass --wait SECONDS")
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
