"""The index directory: generations, the CURRENT pointer, durable file writes, debris clean-up.

    INDEX_DIR/
      CURRENT                      name of the live generation (replaced atomically)
      .write.lock                  one writer at a time (store/locking.py)
      i20261122T040000123456Z-1234/   one generation: a full build, then every incremental write
        index.sqlite (+ -wal, -shm)   the commit point: articles, passages, FTS5, segment list,
                                      tombstones, metadata (store/database.py)
        segments/seg-….faiss          immutable FAISS segment files, named by the commit that lists them
        families/fam-….faiss          trained, empty IVF indexes that IVF segments are cloned from
        vocabulary.json/.npy          the word table for cross-lingual highlights (written by a build)

A full build (`dalil index`) writes a new generation beside the live one and switches CURRENT;
adds, deletes and merges change the live generation through SQLite transactions
(docs/index-format.md tells the whole design).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from dalil.errors import DalilError

CURRENT = "CURRENT"
DATABASE = "index.sqlite"
SEGMENTS = "segments"
FAMILIES = "families"
_KEEP_PREVIOUS_GENERATIONS = 1  # one older full build stays for rollback
_OLD_FORMAT_MANIFEST = "manifest.json"  # format 1: one immutable copy of everything per version


class StoreError(DalilError):
    """The index cannot be opened or written (the subclasses say which way)."""

    code = "index_error"


class IndexNotFoundError(StoreError):
    code = "index_not_found"


class IndexNotWritable(StoreError):
    """The index is there but this process may not write it (permissions, a read-only mount)."""

    code = "index_not_writable"


class IndexCorruptError(StoreError):
    code = "index_damaged"


class OldFormatError(StoreError):
    """A format this version cannot open (older or newer): the index cannot be read as it is."""

    code = "index_damaged"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def new_generation_name() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"i{stamp}-{os.getpid()}"


_file_numbers = itertools.count()  # two threads of one process may ask in the same microsecond


def new_file_name(prefix: str, suffix: str) -> str:
    """A name no other writer can pick: time and a per-process number, then the pid (which also
    tells debris from work)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{prefix}-{stamp}{next(_file_numbers)}-{os.getpid()}{suffix}"


def read_current(root: Path) -> str | None:
    try:
        return (root / CURRENT).read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnicodeDecodeError:
        raise IndexCorruptError(f"index is damaged: {root / CURRENT} is not a generation name") from None


def switch_current(root: Path, name: str) -> None:
    """Point CURRENT at `name` atomically (write a temp file, fsync, rename over)."""
    tmp = root / f".{CURRENT}.{os.getpid()}.tmp"
    with tmp.open("w") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    fsync_dir(root)


def publish(root: Path, partial: Path, name: str, verify: Callable[[Path], None]) -> Path:
    """Sync a finished generation, give it its final name, verify it, then make it the live one."""
    for file in partial.rglob("*"):
        if file.is_file():
            fsync_file(file)
    for folder in (partial / SEGMENTS, partial / FAMILIES, partial):
        if folder.is_dir():
            fsync_dir(folder)
    final = root / name
    os.rename(partial, final)
    fsync_dir(root)
    verify(final)  # re-read before anyone is pointed at it
    switch_current(root, name)
    prune_generations(root)
    return final


def prune_generations(root: Path) -> None:
    """Remove old generations beyond the rollback one, and debris of builds that died."""
    live = read_current(root)
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name[:1] in ("i", "v"))
    complete = [p for p in dirs if not p.name.endswith(".partial") and p.name != live]
    for old in complete[: max(0, len(complete) - _KEEP_PREVIOUS_GENERATIONS)]:
        shutil.rmtree(old, ignore_errors=True)
    for partial in (p for p in dirs if p.name.endswith(".partial")):
        if not owned_by_live_process(partial.name.removesuffix(".partial")):
            shutil.rmtree(partial, ignore_errors=True)


def owned_by_live_process(name: str) -> bool:
    """Whether the process whose pid ends `name` (before any suffix) is alive and not this one."""
    stem = name.split(".", 1)[0]
    try:
        pid = int(stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_writable(root: Path) -> None:
    """A clear error before any lock or file is touched: no index here, or not ours to write."""
    if read_current(root) is None:
        # 409, not 404: what stands here (a bare generation directory, say) may be served, but takes no writes
        raise IndexNotWritable(
            f"no index at {root} to update (build one first with: dalil index --out {root})"
        )
    if not os.access(root, os.W_OK) or not os.access(resolve_generation(root), os.W_OK):
        raise IndexNotWritable(f"index directory is not writable: {root}; nothing was changed")


def resolve_generation(path: Path) -> Path:
    """An index directory (with CURRENT) or a generation directory -> the generation directory."""
    path = Path(path)
    if not path.exists():
        raise IndexNotFoundError(f"no index at {path} (build one with: dalil index --out {path})")
    if not path.is_dir():
        raise IndexNotFoundError(f"not an index directory: {path}")
    if (path / DATABASE).is_file():
        return path
    if (path / _OLD_FORMAT_MANIFEST).is_file():
        raise _old_format(path.parent)
    current = read_current(path)
    if current is None:
        raise IndexNotFoundError(
            f"no index at {path}: it has no {CURRENT} file (build one with: dalil index)"
        )
    generation = path / current
    if (generation / _OLD_FORMAT_MANIFEST).is_file():
        raise _old_format(path)
    if not generation.is_dir():
        raise IndexCorruptError(f"index at {path} is damaged: {CURRENT} names {current!r}, which is missing")
    if not (generation / DATABASE).is_file():
        raise IndexCorruptError(f"index at {path} is damaged: {generation / DATABASE} is missing")
    return generation


def _old_format(root: Path) -> OldFormatError:
    return OldFormatError(
        f"the index at {root} was written by an older dalil (format 1: one full copy per version); "
        f"this dalil reads the segmented format 2. Rebuild it: dalil index --corpus YOUR_CORPUS --out {root}"
    )
