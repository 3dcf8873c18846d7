"""The searcher of an index directory's live generation, replaced when CURRENT changes.

Commits to the live generation (adds, deletes, merges, from any process) need nothing here: every
query reads the newest commit (store/reader.py). A full rebuild writes a new generation and replaces
CURRENT atomically (its inode changes); each request asks `get()`, which costs one stat() of
CURRENT, so the next request after a rebuild is answered from it, without a restart. The new
generation is opened beside the old one and swapped in under a lock; requests already running keep
the searcher they started with. If the new generation cannot be opened, the old one keeps serving
and the failure is logged.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from dalil.indexer.store import CURRENT, IndexReader
from dalil.search.searcher import Searcher

log = logging.getLogger("dalil.live")


class LiveSearcher:
    def __init__(self, root: Path | str, searcher: Searcher) -> None:
        self.root = Path(root)
        self._searcher = searcher
        self._stamp = self._current_stamp()
        self._lock = threading.Lock()

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.root / CURRENT)
        except OSError:  # a version directory given directly: nothing to follow
            return None
        return (st.st_ino, st.st_mtime_ns)

    def get(self) -> Searcher:
        stamp = self._current_stamp()
        if stamp is not None and stamp != self._stamp:
            self.reload(stamp)
        return self._searcher

    def reload(self, stamp: tuple[int, int] | None = None) -> str | None:
        """Open the live generation if it is not the one being served; returns the served version."""
        with self._lock:
            stamp = stamp or self._current_stamp()
            if stamp is None:
                return self.version
            current = self._searcher
            try:
                reader = IndexReader.open(self.root)
                if reader.path != current.index.path:
                    self._searcher = Searcher(reader, current.encoder)
                    # same encoder, same query vectors: a new generation keeps the warm cache
                    self._searcher.query_vectors = current.query_vectors
                    log.info("now serving %s", reader.path.name)
                else:
                    reader.close()
            except Exception as exc:  # keep serving what works; say why the new one did not
                log.error("cannot switch to the new index generation: %s", exc)
            self._stamp = stamp
            return self.version

    @property
    def version(self) -> str | None:
        """The generation served and its newest commit seen, e.g. `i2026…-123@17`."""
        m = self._searcher.index.manifest
        return f"{m.get('version')}@{m.get('generation')}"
