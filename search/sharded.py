"""Searching an index split into shards (indexer/shards.py) as if it were one.

Two halves:
- `ShardSearcher` runs where a shard is (a Ray Serve replica, or this process) and answers the
  questions a search asks of an index, in collection-wide passage ids: its dense top-k, its BM25
  top-k scored with statistics handed in, its BM25 statistics, rows, articles.
- `ShardedIndex` stands where `IndexReader` stands for `Searcher`: its snapshots answer the same
  calls by asking every shard (or the one that holds an article or passage) and merging.

The results equal one index's over the same articles (tests/test_shards.py): the dense top-k of
the union is the top-k of the shards' top-ks (exact segments; IVF cells trained per shard make
each shard approximate on its own); BM25 uses the collection's statistics (the sum of the shards'),
so each shard's scores are the one-index scores and its top-k the global top-k's share; fusion and
grouping then run on the merged lists exactly as for one index.

Each call reads its shard's newest commit; one question may span a commit that lands meanwhile
(a passage whose row is gone by the time rows are fetched is left out, as with one index).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from dalil.indexer.analysis.terms import QueryTerms
from dalil.indexer.store.bm25 import LexicalStats
from dalil.indexer.store.reader import IndexReader, PassageRow
from dalil.indexer.store.sharding import global_id, local_id, shard_of


class ShardUnavailable(Exception):
    """A shard (or the query encoder) does not answer in time; the service answers 503."""


class ShardSearcher:
    """One shard of `shards`, answering in collection-wide passage ids."""

    def __init__(self, root: Path | str, shard: int, shards: int) -> None:
        self.root = Path(root)
        self.shard, self.shards = shard, shards
        self.reader = IndexReader.open(self.root)

    def _global(self, ids: Iterable[int]) -> list[int]:
        return [global_id(int(i), self.shard, self.shards) for i in ids]

    def _local(self, ids: Iterable[int]) -> list[int]:
        return [local_id(int(i), self.shards)[1] for i in ids]

    def info(self) -> dict:
        """The newest commit's number and counts (asked once per sharded question)."""
        with self.reader.snapshot() as snap:
            return {
                "generation": snap.generation,
                "passages": snap.live_passages,
                "articles": int(snap.meta["counts"]["articles"]),
            }

    def details(self) -> dict:
        """`info` with the manifest, segment count and bytes on disk (for /stats)."""
        with self.reader.snapshot() as snap:
            segments = len(snap.vectors.segments)
        return {
            **self.info(),
            "manifest": self.reader.manifest,
            "segments": segments,
            "bytes": self.reader.size_bytes(),
        }

    def dense(
        self, vectors: np.ndarray, k: int, filters: Mapping[str, str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        with self.reader.snapshot() as snap:
            scores, ids = snap.dense_search(vectors, k, filters)
        out = np.where(ids >= 0, ids * self.shards + self.shard, -1)
        return scores, out

    def lexical_stats(self, terms: QueryTerms) -> LexicalStats:
        with self.reader.snapshot() as snap:
            return snap.lexical_stats(terms)

    def bm25(
        self,
        terms: QueryTerms,
        n: int,
        weights: tuple[float, float],
        filters: Mapping[str, str | None],
        stats: LexicalStats | None,
    ) -> list[tuple[int, float]]:
        with self.reader.snapshot() as snap:
            found = snap.bm25(terms, n, weights, filters, stats)
        return [(global_id(pid, self.shard, self.shards), score) for pid, score in found]

    def doc_freqs(self, terms: list[str]) -> dict[str, int]:
        with self.reader.snapshot() as snap:
            return snap.doc_freqs(terms)

    def passages(self, ids: list[int]) -> dict[int, PassageRow]:
        with self.reader.snapshot() as snap:
            rows = snap.passages(self._local(ids))
        for row in rows.values():
            row.passage_id = global_id(row.passage_id, self.shard, self.shards)
        return {row.passage_id: row for row in rows.values()}

    def vectors_of(self, ids: list[int]) -> np.ndarray:
        with self.reader.snapshot() as snap:
            return snap.vectors.vectors_of(np.asarray(self._local(ids), dtype=np.int64))

    def article(self, article_id: str) -> dict | None:
        with self.reader.snapshot() as snap:
            found = snap.article(article_id)
        if found is not None:
            for passage in found["passages"]:
                passage["passage_id"] = global_id(passage["passage_id"], self.shard, self.shards)
        return found

    def article_texts(self, article_ids: list[str]) -> dict[str, str]:
        with self.reader.snapshot() as snap:
            return snap.article_texts(article_ids)

    def passage_ids_of(self, article_ids: list[str]) -> dict[str, list[int]]:
        with self.reader.snapshot() as snap:
            found = snap.passage_ids_of(article_ids)
        return {a: self._global(ids) for a, ids in found.items()}

    def facet_values(self, column: str) -> list[str]:
        return self.reader.facet_values(column)

    def close(self) -> None:
        self.reader.close()


# How the facade reaches its shards: `all_shards(method, *args)` returns every shard's answer, in
# shard order (asked in parallel where that is possible); `one_shard(k, method, *args)` one answer.
AllShards = Callable[..., list]
OneShard = Callable[..., object]


def local_shards(searchers: Sequence[ShardSearcher]) -> tuple[AllShards, OneShard]:
    """Calls to shards in this process (tests, and a sharded index on one machine without Ray)."""

    def all_shards(method: str, *args):
        return [getattr(s, method)(*args) for s in searchers]

    def one_shard(shard: int, method: str, *args):
        return getattr(searchers[shard], method)(*args)

    return all_shards, one_shard


class ShardedSnapshot:
    """The calls `Searcher` and grouping make of a `Snapshot`, answered by the shards together."""

    def __init__(self, shards: int, all_shards: AllShards, one_shard: OneShard, infos: list[dict]) -> None:
        self.shards = shards
        self._all, self._one = all_shards, one_shard
        self.generations = tuple(i["generation"] for i in infos)
        self.live_passages = sum(i["passages"] for i in infos)
        self.vectors = _ShardedVectors(self)

    @property
    def generation(self) -> tuple[int, ...]:
        return self.generations

    def _by_shard(self, ids: Iterable[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for pid in ids:
            out.setdefault(local_id(int(pid), self.shards)[0], []).append(int(pid))
        return out

    def dense_search(
        self, vectors: np.ndarray, k: int, filters: Mapping[str, str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = self._all("dense", vectors, k, dict(filters))
        scores = np.concatenate([s for s, _ in parts], axis=1)
        ids = np.concatenate([i for _, i in parts], axis=1)
        scores = np.where(ids >= 0, scores, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def bm25(
        self,
        terms: QueryTerms,
        n: int,
        weights: tuple[float, float],
        filters: Mapping[str, str | None],
        stats: LexicalStats | None = None,
    ) -> list[tuple[int, float]]:
        """The collection's top n: every shard scores with the summed statistics of all of them."""
        if stats is None:
            per_shard = self._all("lexical_stats", terms)
            stats = per_shard[0]
            for more in per_shard[1:]:
                stats = stats + more
        found = [hit for part in self._all("bm25", terms, n, weights, dict(filters), stats) for hit in part]
        return sorted(found, key=lambda hit: (-hit[1], hit[0]))[:n]

    def doc_freqs(self, terms: Iterable[str]) -> dict[str, int]:
        terms = list(terms)
        total: dict[str, int] = {}
        for part in self._all("doc_freqs", terms):
            for term, count in part.items():
                total[term] = total.get(term, 0) + count
        return total

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        out: dict[int, PassageRow] = {}
        for shard, wanted in self._by_shard(ids).items():
            out.update(self._one(shard, "passages", wanted))
        return out

    def article(self, article_id: str) -> dict | None:
        return self._one(shard_of(article_id, self.shards), "article", article_id)

    def article_texts(self, article_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for shard, wanted in self._articles_by_shard(article_ids).items():
            out.update(self._one(shard, "article_texts", wanted))
        return out

    def passage_ids_of(self, article_ids: list[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for shard, wanted in self._articles_by_shard(article_ids).items():
            out.update(self._one(shard, "passage_ids_of", wanted))
        return out

    def _articles_by_shard(self, article_ids: list[str]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for article_id in article_ids:
            out.setdefault(shard_of(article_id, self.shards), []).append(article_id)
        return out


class _ShardedVectors:
    def __init__(self, snap: ShardedSnapshot) -> None:
        self._snap = snap

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        ids = [int(i) for i in ids]
        found: dict[int, np.ndarray] = {}
        for shard, wanted in self._snap._by_shard(ids).items():
            found.update(zip(wanted, self._snap._one(shard, "vectors_of", wanted), strict=True))
        return np.vstack([found[i] for i in ids])


class ShardedIndex:
    """What `Searcher` needs of an index, over shards reached through `all_shards`/`one_shard`.

    `vocabulary_dir`: a directory holding the vocabulary table (every shard has the whole table)."""

    def __init__(
        self,
        shards: int,
        all_shards: AllShards,
        one_shard: OneShard,
        vocabulary_dir: Path | None,
        manifest: dict | None = None,
    ) -> None:
        """`manifest`: one shard's, when it is known already (then nothing is asked of the shards
        here: Ray Serve builds the ingress app inside an event loop, where no call may wait)."""
        self.shards = shards
        self._all, self._one = all_shards, one_shard
        self.path = vocabulary_dir
        self.manifest: dict = {**manifest, "shards": shards} if manifest else {}
        if not manifest:
            self.details()

    def details(self) -> list[dict]:
        """Every shard's `details()`; refreshes the manifest (counts summed over the shards)."""
        infos = self._all("details")
        self.manifest = {**infos[0]["manifest"], "shards": self.shards}
        self._count(infos)
        return infos

    def _count(self, infos: list[dict]) -> None:
        self.manifest["counts"] = {
            "articles": sum(i["articles"] for i in infos),
            "passages": sum(i["passages"] for i in infos),
        }
        self.manifest["generation"] = sum(i["generation"] for i in infos)  # grows with every commit

    @property
    def encoder_id(self) -> str:
        return self.manifest["encoder"]["id"]

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[ShardedSnapshot]:
        infos = self._all("info")
        self._count(infos)
        yield ShardedSnapshot(self.shards, self._all, self._one, infos)

    def article(self, article_id: str) -> dict | None:
        return self._one(shard_of(article_id, self.shards), "article", article_id)

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        with self.snapshot() as snap:
            return snap.passages(ids)

    def facet_values(self, column: str) -> list[str]:
        return sorted({v for part in self._all("facet_values", column) for v in part})

    def size_bytes(self) -> int:
        return sum(i["bytes"] for i in self.details())

    def close(self) -> None:
        """The shards belong to whoever started them (this process's `ShardSearcher`s, or Ray)."""
