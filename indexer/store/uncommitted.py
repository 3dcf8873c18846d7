"""The files this process has written that no commit names yet (Lucene's file deleter keeps the
same list): debris removal must spare them, and they are settled once a commit names them or they
are removed.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import faiss
from dalil.indexer.store.layout import fsync_dir, fsync_file, new_file_name

# Files this process has written or is writing that no commit names yet. `remove_debris` must
# spare them: a merge in a background thread of a server writes its segment off the writer lock,
# and a commit in a request thread of the same process clears debris under it. The pid in a file
# name tells another live process's work from debris; inside one process only this set can.
_uncommitted: set[str] = set()
_uncommitted_lock = threading.Lock()


def write_faiss(index: faiss.Index, folder: Path, prefix: str) -> str:
    """Write an index under a fresh name and make it durable; returns the file name.

    The name stays in `_uncommitted` until the caller calls `settled` (committed or removed)."""
    name = new_file_name(prefix, ".faiss")
    with _uncommitted_lock:
        _uncommitted.add(name)
    try:
        faiss.write_index(index, str(folder / name))
        fsync_file(folder / name)
        fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            (folder / name).unlink()
        settled(name)
        raise
    return name


def settled(*names: str | None) -> None:
    """These files are named by a commit now, or removed: ordinary debris rules apply again."""
    with _uncommitted_lock:
        _uncommitted.difference_update(n for n in names if n)


def in_progress(name: str) -> bool:
    with _uncommitted_lock:
        return name in _uncommitted
