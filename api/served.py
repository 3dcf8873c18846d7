"""What the app serves, whatever holds the index: the `ServedIndex` face, and `LocalIndex`, its
implementation for an index on this machine. A sharded index served on Ray Serve has the same face
(api/ray_serve.py `ServedShards`); tests/test_protocols.py checks both against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from dalil.indexer.corpus import RawArticle
from dalil.indexer.update import BackgroundMerger, UpdateSummary, update_index
from dalil.search.live import LiveSearcher
from dalil.search.searcher import Searcher

WRITE_WAIT = 30.0  # seconds a write request waits for another writer


@runtime_checkable
class ServedIndex(Protocol):
    """The app's one view of its index: every request asks `get()` for the searcher to answer with."""

    def get(self) -> Searcher:
        """The searcher of the version served now (a request keeps the one it got)."""
        ...

    @property
    def version(self) -> str | None:
        """The version served, e.g. `i2026…-123@17` (its directory and newest commit)."""
        ...

    def reload(self) -> str | None:
        """Serve the newest version now; returns the version served."""
        ...

    def describe(self) -> tuple[dict, int, int]:
        """(manifest, bytes on disk, segments), read fresh (for /stats)."""
        ...

    def write(self, upserts: Sequence[RawArticle], deletes: Sequence[str]) -> UpdateSummary:
        """Upserts and deletes, committed before this returns."""
        ...


class LocalIndex:
    """The index the app serves, on this machine: its live searcher, and writes committed here.

    Small segments from this server's writes are merged (and outgrown IVF cells retrained) by a
    background merger. A sharded index served on Ray has the same face (api/ray_serve.py)."""

    def __init__(self, index_dir: Path | str, searcher: Searcher | None = None) -> None:
        self.live = LiveSearcher(index_dir, searcher or Searcher.open(index_dir))
        self.merger = BackgroundMerger(Path(index_dir), self.live.get().encoder)

    def get(self) -> Searcher:
        return self.live.get()

    @property
    def version(self) -> str | None:
        return self.live.version

    def reload(self) -> str | None:
        return self.live.reload()

    def describe(self) -> tuple[dict, int, int]:
        """The newest commit's manifest, bytes on disk and segment count (for /stats)."""
        return self.get().index.describe()

    def write(self, upserts: Sequence[RawArticle], deletes: Sequence[str]) -> UpdateSummary:
        """Upserts and deletes as one commit (upserts embedded with the served encoder)."""
        encoder = self.get().encoder if upserts else None
        summary = update_index(self.live.root, upserts, deletes, encoder, wait=WRITE_WAIT, merge_after=False)
        if summary.changed:
            self.merger.poke()
        self.live.reload()
        return summary
