"""Searching an index split into shards (indexer/shard_split.py) as if it were one.

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
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from dalil.indexer.analysis.terms import QueryTerms
from dalil.indexer.store import FACETS, IndexReader, LexicalStats, PassageRow, global_id, local_id, shard_of

from dalil.errors import DalilError

ADDITIONS_REFRESH_S = 5.0


class ShardUnavailable(DalilError):
    """A shard (or the query encoder) does not answer in time; the service answers 503."""

    code = "unavailable"


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
                "commit": snap.commit,
                "passages": snap.live_passages,
                "articles": snap.live_articles,
            }

    def details(self) -> dict:
        """`info` with the manifest, segment count and bytes on disk (for /stats)."""
        manifest, size, segments = self.reader.describe()
        return {**self.info(), "manifest": manifest, "segments": segments, "bytes": size}

    def dense(
        self, vectors: np.ndarray, k: int, filters: Mapping[str, object]
    ) -> tuple[np.ndarray, np.ndarray]:
        with self.reader.snapshot() as snap:
            scores, ids = snap.dense_search(vectors, k, filters)
        out = np.where(ids >= 0, global_id(ids, self.shard, self.shards), -1)
        return scores, out

    def lexical_stats(self, terms: QueryTerms) -> LexicalStats:
        with self.reader.snapshot() as snap:
            return snap.lexical_stats(terms)

    def bm25(
        self,
        terms: QueryTerms,
        n: int,
        weights: tuple[float, float],
        filters: Mapping[str, object],
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
            return snap.vectors_of(np.asarray(self._local(ids), dtype=np.int64))

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

    def matching_passages(self, ids: list[int], groups: list[QueryTerms], needed: int) -> list[int]:
        with self.reader.snapshot() as snap:
            return self._global(snap.matching_passages(self._local(ids), groups, needed))

    def facet_counts(self, ids: list[int]) -> dict[str, dict[str, int]]:
        with self.reader.snapshot() as snap:
            return snap.facet_counts(self._local(ids))

    def newest_date(self) -> str | None:
        with self.reader.snapshot() as snap:
            return snap.newest_date()

    def titles(self) -> list[str]:
        with self.reader.snapshot() as snap:
            return list(snap.titles())

    def vocabulary_additions(self) -> tuple[list[str], np.ndarray]:
        with self.reader.snapshot() as snap:
            return snap.vocabulary_additions()

    def close(self) -> None:
        self.reader.close()


# How the facade reaches its shards: `ask([(shard, method, args), ...])` returns the answers in that
# order, the calls made at once where that is possible (Ray Serve: api/ray_serve.py).
Ask = Callable[[list[tuple[int, str, tuple]]], list]


def local_shards(searchers: Sequence[ShardSearcher]) -> Ask:
    """Calls to shards in this process (tests, and a sharded index on one machine without Ray)."""

    def ask(calls: list[tuple[int, str, tuple]]) -> list:
        return [getattr(searchers[shard], method)(*args) for shard, method, args in calls]

    return ask


class _Fanout:
    def __init__(self, shards: int, ask: Ask) -> None:
        self.shards, self.ask = shards, ask
        self.additions: tuple[float, tuple[list[str], np.ndarray]] | None = None  # (asked at, answer)

    def all(self, method: str, *args) -> list:
        return self.ask([(k, method, args) for k in range(self.shards)])

    def one(self, shard: int, method: str, *args):
        return self.ask([(shard, method, args)])[0]

    def each(self, method: str, args_by_shard: dict[int, tuple]) -> list:
        """One call per shard named, with its own arguments, all at once."""
        return self.ask([(k, method, args) for k, args in args_by_shard.items()])

    def by_passage(self, ids: Iterable[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for pid in ids:
            out.setdefault(local_id(int(pid), self.shards)[0], []).append(int(pid))
        return out

    def by_article(self, article_ids: Iterable[str]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for article_id in article_ids:
            out.setdefault(shard_of(article_id, self.shards), []).append(article_id)
        return out


class ShardedSnapshot:
    """The calls `Searcher` and grouping make of a `Snapshot`, answered by the shards together.

    Each call is one round of calls to the shards; counts are asked only when needed (and come
    free with BM25 statistics), so an Arabic hybrid question costs four rounds: BM25 statistics,
    BM25 and the dense top-k (beside each other), then the rows of the hits."""

    def __init__(self, fanout: _Fanout) -> None:
        self._shards = fanout
        self._live: int | None = None

    @property
    def commit(self) -> int:
        """A number that grows with every commit to any shard (the sum of theirs)."""
        return sum(i["commit"] for i in self._shards.all("info"))

    @property
    def live_passages(self) -> int:
        if self._live is None:
            self._live = sum(i["passages"] for i in self._shards.all("info"))
        return self._live

    @property
    def live_articles(self) -> int:
        return sum(i["articles"] for i in self._shards.all("info"))

    def dense_search(
        self, vectors: np.ndarray, k: int, filters: Mapping[str, object]
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = self._shards.all("dense", vectors, k, dict(filters))
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
        filters: Mapping[str, object],
        stats: LexicalStats | None = None,
    ) -> list[tuple[int, float]]:
        """The collection's top n: every shard scores with the summed statistics of all of them."""
        if stats is None:
            per_shard = self._shards.all("lexical_stats", terms)
            stats = per_shard[0]
            for more in per_shard[1:]:
                stats = stats + more
            self._live = stats.rows  # every live passage has one FTS5 row
        parts = self._shards.all("bm25", terms, n, weights, dict(filters), stats)
        return sorted((hit for part in parts for hit in part), key=lambda hit: (-hit[1], hit[0]))[:n]

    def doc_freqs(self, terms: Iterable[str]) -> dict[str, int]:
        terms = list(terms)
        total: dict[str, int] = {}
        for part in self._shards.all("doc_freqs", terms):
            for term, count in part.items():
                total[term] = total.get(term, 0) + count
        return total

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        wanted = self._shards.by_passage(ids)
        return {
            pid: row
            for part in self._shards.each("passages", {k: (v,) for k, v in wanted.items()})
            for pid, row in part.items()
        }

    def article(self, article_id: str) -> dict | None:
        return self._shards.one(shard_of(article_id, self._shards.shards), "article", article_id)

    def matching_passages(self, ids: Iterable[int], groups: list[QueryTerms], needed: int) -> set[int]:
        wanted = self._shards.by_passage(ids)
        parts = self._shards.each("matching_passages", {k: (v, groups, needed) for k, v in wanted.items()})
        return {pid for part in parts for pid in part}

    def facet_counts(self, ids: Iterable[int]) -> dict[str, dict[str, int]]:
        """Each shard counts its own articles (an article lives on one shard): the sums are exact."""
        wanted = self._shards.by_passage(ids)
        total: dict[str, dict[str, int]] = {name: {} for name in FACETS}
        for part in self._shards.each("facet_counts", {k: (v,) for k, v in wanted.items()}):
            for facet, counts in part.items():
                into = total.setdefault(facet, {})
                for value, count in counts.items():
                    into[value] = into.get(value, 0) + count
        return total

    def newest_date(self) -> str | None:
        return max((d for d in self._shards.all("newest_date") if d), default=None)

    def vocabulary_additions(self) -> tuple[list[str], np.ndarray]:
        """The words the shards' commits added to the word table (each shard adds its own articles'
        words), asked of the shards at most once every ADDITIONS_REFRESH_S: not a round of calls
        per English question."""
        held = self._shards.additions
        if held is None or time.monotonic() - held[0] > ADDITIONS_REFRESH_S:
            words: dict[str, np.ndarray] = {}
            for part_words, part_vectors in self._shards.all("vocabulary_additions"):
                for word, vector in zip(part_words, part_vectors, strict=True):
                    words.setdefault(word, vector)
            vectors = np.vstack(list(words.values())) if words else np.zeros((0, 1), np.float16)
            held = self._shards.additions = (time.monotonic(), (list(words), vectors))
        return held[1]

    def titles(self) -> Iterator[str]:
        for part in self._shards.all("titles"):
            yield from part

    def article_texts(self, article_ids: list[str]) -> dict[str, str]:
        wanted = self._shards.by_article(article_ids)
        return {
            a: t
            for part in self._shards.each("article_texts", {k: (v,) for k, v in wanted.items()})
            for a, t in part.items()
        }

    def passage_ids_of(self, article_ids: list[str]) -> dict[str, list[int]]:
        wanted = self._shards.by_article(article_ids)
        return {
            a: p
            for part in self._shards.each("passage_ids_of", {k: (v,) for k, v in wanted.items()})
            for a, p in part.items()
        }

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        ids = [int(i) for i in ids]
        wanted = self._shards.by_passage(ids)
        found: dict[int, np.ndarray] = {}
        for pids, vectors in zip(
            wanted.values(),
            self._shards.each("vectors_of", {k: (v,) for k, v in wanted.items()}),
            strict=True,
        ):
            found.update(zip(pids, vectors, strict=True))
        return np.vstack([found[i] for i in ids])


class ShardedIndex:
    """What `Searcher` needs of an index, over shards reached through `ask`.

    `vocabulary_dir`: a directory holding the vocabulary table (every shard has the whole table).
    `manifest`: one shard's, when it is known already (then nothing is asked of the shards here:
    Ray Serve builds the ingress app inside an event loop, where no call may wait)."""

    def __init__(
        self, shards: int, ask: Ask, vocabulary_dir: Path | None, manifest: dict | None = None
    ) -> None:
        self.shards = shards
        self._shards = _Fanout(shards, ask)
        self.path = vocabulary_dir
        self.manifest: dict = {**manifest, "shards": shards} if manifest else {}
        if not manifest:
            self.details()

    def details(self) -> list[dict]:
        """Every shard's `details()`; refreshes the manifest (counts summed over the shards)."""
        infos = self._shards.all("details")
        self.manifest = {**infos[0]["manifest"], "shards": self.shards}
        self.manifest["counts"] = {
            "articles": sum(i["articles"] for i in infos),
            "passages": sum(i["passages"] for i in infos),
        }
        self.manifest["generation"] = sum(i["commit"] for i in infos)  # grows with every commit
        return infos

    @property
    def encoder_id(self) -> str:
        return self.manifest["encoder"]["id"]

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[ShardedSnapshot]:
        yield ShardedSnapshot(self._shards)

    def article(self, article_id: str) -> dict | None:
        return self._shards.one(shard_of(article_id, self.shards), "article", article_id)

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        return ShardedSnapshot(self._shards).passages(ids)

    def article_ids(self, passage_ids: Iterable[int]) -> dict[int, str]:
        return {pid: row.article_id for pid, row in self.passages(passage_ids).items()}

    def facet_values(self, column: str) -> list[str]:
        return sorted({v for part in self._shards.all("facet_values", column) for v in part})

    def describe(self) -> tuple[dict, int, int]:
        """Fresh manifest (counts summed), bytes on disk and segments of all shards (for /stats)."""
        infos = self.details()
        return self.manifest, sum(i["bytes"] for i in infos), sum(i["segments"] for i in infos)

    def close(self) -> None:
        """The shards belong to whoever started them (this process's `ShardSearcher`s, or Ray)."""
