"""The seams between search and what it searches, as Protocols.

Search reads an index through two faces, whatever holds it:
- `IndexView`: the reads one question makes of one commit. `Snapshot` (indexer/store/reader.py)
  answers them from one index on this machine; `ShardedSnapshot` (search/sharded_reader.py) by asking
  every shard and merging.
- `SearchableIndex`: an index open for searching (`IndexReader`, `ShardedIndex`): its manifest, a
  view of its newest commit, and conveniences that take their own view.
A shard answers `ShardReads` (search/sharded_reader.py `ShardSearcher`) in collection-wide passage ids; the
Ray deployment of a shard accepts exactly those calls (`shard_calls()`, api/ray_serve.py).

Type hints above the seam (the Searcher, fusion, grouping, related articles, the app) name these,
never the classes behind them, so a third back-end is a class that satisfies them; tests/
test_protocols.py checks every implementation against each Protocol (names and parameters).

Why Protocols rather than base classes: the store must not import search (the layering, tests/
test_layers.py), and the sharded classes wrap rather than extend the local ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from dalil.indexer.analysis.terms import QueryTerms
from dalil.indexer.store import LexicalStats, PassageRow


@runtime_checkable
class IndexView(Protocol):
    """One commit of an index, for the length of a question (not shared between threads)."""

    @property
    def commit(self) -> int:
        """The number of the commit read: grows with every commit (store/database.py COMMIT_KEY)."""
        ...

    @property
    def live_passages(self) -> int: ...

    @property
    def live_articles(self) -> int: ...

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        """The rows of these passages (a passage deleted meanwhile is left out)."""
        ...

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these passages, in their order."""
        ...

    def dense_search(
        self, vectors: np.ndarray, k: int, filters: Mapping[str, object]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest live passages per query vector that pass the filters."""
        ...

    def bm25(
        self,
        terms: QueryTerms,
        n: int,
        weights: tuple[float, float],
        filters: Mapping[str, object],
        stats: LexicalStats | None = None,
    ) -> list[tuple[int, float]]:
        """Top-n (passage id, BM25) of the passages holding any of the terms."""
        ...

    def doc_freqs(self, terms: Iterable[str]) -> dict[str, int]: ...

    def matching_passages(self, ids: Iterable[int], groups: list[QueryTerms], needed: int) -> set[int]:
        """Those of `ids` holding forms of at least `needed` of the groups."""
        ...

    def facet_counts(self, ids: Iterable[int]) -> dict[str, dict[str, int]]: ...

    def article(self, article_id: str) -> dict | None: ...

    def article_texts(self, article_ids: list[str]) -> dict[str, str]: ...

    def passage_ids_of(self, article_ids: list[str]) -> dict[str, list[int]]: ...

    def newest_date(self) -> str | None: ...

    def titles(self) -> Iterator[str]: ...

    def vocabulary_additions(self) -> tuple[list[str], np.ndarray]:
        """(words, float16 query vectors) that commits added to the build's word table."""
        ...


@runtime_checkable
class SearchableIndex(Protocol):
    """An index open for searching; every view is of its newest commit."""

    manifest: dict
    path: Path | None  # where its word table lies (None: it has none)

    @property
    def encoder_id(self) -> str: ...

    def snapshot(self) -> AbstractContextManager[IndexView]: ...

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]: ...

    def article(self, article_id: str) -> dict | None: ...

    def article_ids(self, passage_ids: Iterable[int]) -> dict[int, str]: ...

    def facet_values(self, column: str) -> list[str]: ...

    def describe(self) -> tuple[dict, int, int]:
        """(manifest, bytes on disk, segments), read fresh (for /stats)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ShardReads(Protocol):
    """What one shard answers, in collection-wide passage ids (each call reads its newest commit)."""

    def info(self) -> dict: ...

    def details(self) -> dict: ...

    def dense(
        self, vectors: np.ndarray, k: int, filters: Mapping[str, object]
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def lexical_stats(self, terms: QueryTerms) -> LexicalStats: ...

    def bm25(
        self,
        terms: QueryTerms,
        n: int,
        weights: tuple[float, float],
        filters: Mapping[str, object],
        stats: LexicalStats | None,
    ) -> list[tuple[int, float]]: ...

    def doc_freqs(self, terms: list[str]) -> dict[str, int]: ...

    def passages(self, ids: list[int]) -> dict[int, PassageRow]: ...

    def vectors_of(self, ids: list[int]) -> np.ndarray: ...

    def article(self, article_id: str) -> dict | None: ...

    def article_texts(self, article_ids: list[str]) -> dict[str, str]: ...

    def passage_ids_of(self, article_ids: list[str]) -> dict[str, list[int]]: ...

    def facet_values(self, column: str) -> list[str]: ...

    def matching_passages(self, ids: list[int], groups: list[QueryTerms], needed: int) -> list[int]: ...

    def facet_counts(self, ids: list[int]) -> dict[str, dict[str, int]]: ...

    def newest_date(self) -> str | None: ...

    def titles(self) -> list[str]: ...

    def vocabulary_additions(self) -> tuple[list[str], np.ndarray]: ...

    def close(self) -> None: ...


def members(protocol: type) -> dict[str, object]:
    """A Protocol's members by name: its methods and properties, and its annotated attributes
    (as the string of their annotation)."""
    out: dict[str, object] = {}
    for name, value in vars(protocol).items():
        if not name.startswith("_") and (callable(value) or isinstance(value, property)):
            out[name] = value
    for name, annotation in vars(protocol).get("__annotations__", {}).items():
        out.setdefault(name, annotation)
    return out


def shard_calls() -> frozenset[str]:
    """The calls a shard's replica accepts from the ingress: `ShardReads` but `close` (a shard's
    life belongs to Ray)."""
    return frozenset(name for name in members(ShardReads) if name != "close")


def conformance_problems(cls: type, protocol: type) -> list[str]:
    """What `cls` lacks of `protocol`: a missing member, a property where a method is wanted (or
    the reverse), or a method whose parameters differ in name, kind or defaultness."""
    problems = []
    for name, wanted in members(protocol).items():
        if not isinstance(wanted, property) and not callable(wanted):
            continue  # an attribute: set on instances, checked by the tests on real objects
        found = inspect.getattr_static(cls, name, None)
        if found is None:
            problems.append(f"{cls.__name__} has no {name}")
        elif isinstance(wanted, property) != isinstance(found, property):
            wants = "a property" if isinstance(wanted, property) else "a method"
            problems.append(f"{cls.__name__}.{name}: {wants} is wanted")
        elif not isinstance(wanted, property):
            mismatch = _parameter_mismatch(inspect.signature(wanted), inspect.signature(getattr(cls, name)))
            if mismatch:
                problems.append(f"{cls.__name__}.{name}: {mismatch}")
    return problems


def _parameter_mismatch(wanted: inspect.Signature, found: inspect.Signature) -> str | None:
    want = [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in wanted.parameters.values()]
    have = [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in found.parameters.values()]
    if want == have:
        return None
    return f"parameters {[w[0] for w in have]} where {[w[0] for w in want]} are wanted"
