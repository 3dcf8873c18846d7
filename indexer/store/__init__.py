"""The index on disk: the only code that names a table, a column or a FAISS class.

Its public face, the one search/ and api/ use (tests/test_layers.py): the names below. Everything
else in store/ (snapshots' connections, segments, the writer's files) is its own business; search
reads a commit through `dalil.search.protocols.IndexView`, which `Snapshot` satisfies.

Loaded on first use (as `import dalil` is), so that importing one light module of store
(layout, locking) does not load FAISS and SQLite.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

_FACE = {
    "IndexReader": "reader",  # open an index for searching
    "index_metadata": "reader",  # the newest commit's metadata, nothing loaded
    "PassageRow": "reader",
    "FACETS": "reader",  # the facets counted for a result page
    "LexicalStats": "bm25",
    "Vocabulary": "vocabulary",  # the word table of cross-lingual terms
    "VectorIndexSettings": "vector_settings",  # how a build lays out its vectors (exact, IVF)
    "VECTOR_KINDS": "vector_settings",
    "CURRENT": "layout",  # the file naming an index directory's live generation
    "resolve_generation": "layout",
    "check_index": "check",
    "shard_of": "shard_routing",
    "global_id": "shard_routing",
    "local_id": "shard_routing",
}

__all__ = [
    "CURRENT",
    "FACETS",
    "VECTOR_KINDS",
    "IndexReader",
    "LexicalStats",
    "PassageRow",
    "VectorIndexSettings",
    "Vocabulary",
    "check_index",
    "global_id",
    "index_metadata",
    "local_id",
    "resolve_generation",
    "shard_of",
]
assert sorted(__all__) == sorted(_FACE)

if TYPE_CHECKING:
    from dalil.indexer.store.bm25 import LexicalStats
    from dalil.indexer.store.check import check_index
    from dalil.indexer.store.layout import CURRENT, resolve_generation
    from dalil.indexer.store.reader import FACETS, IndexReader, PassageRow, index_metadata
    from dalil.indexer.store.shard_routing import global_id, local_id, shard_of
    from dalil.indexer.store.vector_settings import VECTOR_KINDS, VectorIndexSettings
    from dalil.indexer.store.vocabulary import Vocabulary


def __getattr__(name: str) -> object:
    if name in _FACE:
        value = getattr(import_module(f"dalil.indexer.store.{_FACE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dalil.indexer.store' has no attribute {name!r}")
