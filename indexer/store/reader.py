"""Reading a live index: one consistent view of SQLite and FAISS per query (near-real-time).

Each query runs in a `Snapshot`: a read transaction on one SQLite connection, so every statement
of the query sees the same commit, and the FAISS segments that commit lists, with its tombstones
masked. Segment files are loaded once and shared by the views of later commits (they never
change); a new commit costs a reader the files it added and the tombstones written since.

Readers never wait for the writer (SQLite WAL) and never see half a write: a commit is one SQLite
transaction, and the segment files it names were synced before it. If a merge has removed a segment
file that an older snapshot still names, the snapshot is simply taken again, newer.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np
from dalil.indexer.analysis.terms import QueryTerms, fts_match_expression, fts_phrase, match_phrases
from dalil.indexer.store import bm25
from dalil.indexer.store.bm25 import LexicalStats
from dalil.indexer.store.database import check_format, commit_number, doc_freqs, open_for_reading, read_meta
from dalil.indexer.store.layout import DATABASE, FAMILIES, SEGMENTS, IndexCorruptError, resolve_generation
from dalil.indexer.store.vectors import Segment, VectorView, read_segment
from dalil.indexer.store.vocabulary import read_additions

WIDEN = 4  # a filtered dense search first looks among this many times k unfiltered neighbours
MAX_SELECTIVE_KEPT = 1024
_VIEWS_KEPT = 3  # views of recent commits, for queries whose snapshot began before the newest one
_SNAPSHOT_TRIES = 3
FILTER_COLUMNS = ("source", "category", "lang")
# What a facet counts: articles by these expressions over the articles table `a`.
FACETS = {"source": "a.source", "category": "a.category", "month": "substr(a.date, 1, 7)"}

_PASSAGE_COLUMNS = (
    "passage_id, ordinal, start, end, text, article_id, title, source, category, date, url, lang"
)


@dataclass
class PassageRow:
    passage_id: int
    ordinal: int
    start: int
    end: int
    text: str
    article_id: str
    title: str
    source: str | None
    category: str | None
    date: str | None
    url: str | None
    lang: str | None
    tokens: str | None = None  # the text's stored tokens (terms.py encode_tokens); None: not stored


class _SegmentGone(Exception):
    """A segment file named by an old snapshot was removed by a merge committed since."""


def filter_clause(filters: Mapping[str, object]) -> tuple[str, list[str]]:
    """A WHERE clause over articles `a` for metadata filters given as data (column -> value)."""
    clauses, params = [], []
    for column in FILTER_COLUMNS:
        value = filters.get(column)
        if value is not None:
            clauses.append(f"a.{column} = ?")
            params.append(value)
    if filters.get("date_from"):
        clauses.append("a.date >= ?")
        params.append(filters["date_from"])
    if filters.get("date_to"):
        clauses.append("a.date <= ?")
        params.append(filters["date_to"])
    # Query syntax (search/syntax.py): phrases of light stems, adjacent in the `stems` column, and
    # words whose articles are left out wherever in the article they stand.
    if filters.get("phrases"):
        clauses.append("p.id IN (SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?)")
        params.append(" AND ".join(f"stems : {fts_phrase(phrase)}" for phrase in filters["phrases"]))
    if filters.get("excluded"):
        clauses.append(
            "a.id NOT IN (SELECT x.article FROM passages x WHERE x.id IN"
            " (SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?))"
        )
        params.append(f"stems : ({' OR '.join(map(fts_phrase, filters['excluded']))})")
    return " AND ".join(clauses), params


class Snapshot:
    """One commit of the index, for the length of a query. Not for use by two threads at once."""

    def __init__(
        self,
        db: apsw.Connection,
        meta: dict,
        vectors: VectorView,
        per_commit: dict | None = None,
        selective: set | None = None,
    ) -> None:
        self.db = db
        self.meta = meta
        self.vectors = vectors
        self._per_commit = per_commit if per_commit is not None else {}  # shared by a reader's snapshots
        # filters known to keep too few passages for the wide first try (shared, across commits: a
        # filter's share moves slowly)
        self._selective = selective if selective is not None else set()

    @property
    def commit(self) -> int:
        return commit_number(self.meta)

    @property
    def live_passages(self) -> int:
        return int(self.meta["counts"]["passages"])

    @property
    def live_articles(self) -> int:
        return int(self.meta["counts"]["articles"])

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these passages (decoded codes for IVF segments)."""
        return self.vectors.vectors_of(np.asarray(ids, dtype=np.int64))

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        if self._has_stored_tokens():
            query = (
                f"SELECT {_PASSAGE_COLUMNS}, t.tokens FROM passage_rows"
                f" LEFT JOIN passage_tokens t USING (passage_id) WHERE passage_id IN ({marks})"
            )
        else:  # an index built before tokens were stored
            query = f"SELECT {_PASSAGE_COLUMNS} FROM passage_rows WHERE passage_id IN ({marks})"
        return {r[0]: PassageRow(*r) for r in self.db.execute(query, ids)}

    def _has_stored_tokens(self) -> bool:
        return self._once_per_commit(
            "passage_tokens",
            lambda: (
                self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'passage_tokens'").fetchone()
                is not None
            ),
        )

    def passage_ids_where(self, filters: Mapping[str, object]) -> np.ndarray | None:
        """Ids of the live passages whose article passes the filters (None: no filter given)."""
        where, params = filter_clause(filters)
        if not where:
            return None
        rows = self.db.execute(
            f"SELECT p.id FROM passages p JOIN articles a ON a.id = p.article WHERE {where}", params
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def dense_search(
        self, vectors: np.ndarray, k: int, filters: Mapping[str, object]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest live passages per query vector, padded with -1 ids.

        Filters apply before the top k is cut, so a selective filter still yields k: first among a
        wider unfiltered search (a broad filter, such as a date range or an excluded word, keeps most
        passages, and the first k that pass it are then exactly the answer), else inside FAISS with an
        id selector over every passage that passes (listing them costs ~60-80 ms at 100k passages)."""
        where, params = filter_clause(filters)
        if not where:
            return self.vectors.search(vectors, k, None)
        key = (where, *map(str, params))
        if key not in self._selective:
            found = self._first_passing(vectors, k, where, params)
            if found is not None:
                return found
            if len(self._selective) < MAX_SELECTIVE_KEPT:
                self._selective.add(key)
        allowed = self.passage_ids_where(filters)
        if allowed is not None and len(allowed) == 0:
            return np.zeros((len(vectors), 0), np.float32), np.zeros((len(vectors), 0), np.int64)
        return self.vectors.search(vectors, k, allowed)

    def _first_passing(
        self, vectors: np.ndarray, k: int, where: str, params: list
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The k nearest passing passages per query from a search WIDEN times wider, or None when
        some query has fewer than k passing among them (a selective filter)."""
        wide = min(self.live_passages, WIDEN * k)
        scores, ids = self.vectors.search(vectors, wide, None)
        candidates = np.unique(ids[ids >= 0])
        passing = np.fromiter(
            (
                r[0]
                for r in self.db.execute(
                    f"SELECT p.id FROM passages p JOIN articles a ON a.id = p.article"
                    f" WHERE p.id IN (SELECT value FROM json_each(?)) AND {where}",
                    (json.dumps(candidates.tolist()), *params),
                )
            ),
            dtype=np.int64,
        )
        out_s = np.full((len(vectors), k), -np.inf, np.float32)
        out_i = np.full((len(vectors), k), -1, np.int64)
        for row, (row_s, row_i) in enumerate(zip(scores, ids, strict=True)):
            keep = (row_i >= 0) & np.isin(row_i, passing)
            if keep.sum() < k and wide < self.live_passages:
                return None
            taken = np.flatnonzero(keep)[:k]
            out_s[row, : len(taken)], out_i[row, : len(taken)] = row_s[taken], row_i[taken]
        return out_s, out_i

    def bm25(
        self,
        terms: QueryTerms,
        n: int,
        weights: tuple[float, float],
        filters: Mapping[str, object],
        stats: LexicalStats | None = None,
    ) -> list[tuple[int, float]]:
        """Top-n (passage id, BM25) of the passages holding any of the terms; higher is better.

        `stats`: score with these statistics (a whole sharded collection's, store/bm25.py) instead
        of this index's own."""
        where, params = filter_clause(filters)
        if stats is None:
            score, args = "-bm25(passages_fts, ?, ?)", list(weights)
        else:
            score, args = f"{bm25.FUNCTION}(passages_fts, ?, ?)", [json.dumps(weights), bm25.encode(stats)]
        ranked = f"SELECT rowid, {score} AS score FROM passages_fts WHERE passages_fts MATCH ?"
        if where:
            # The matching rows first (materialised), then their articles by primary key. Written as
            # `... AND rowid IN (SELECT <filtered ids>)`, SQLite ran the MATCH once per listed id:
            # 4 to 44 s at 100k passages with a source, date or exclusion filter (docs/benchmarks.md).
            sql = (
                f"WITH f AS MATERIALIZED ({ranked}) SELECT f.rowid, f.score FROM f"
                f" JOIN passages p ON p.id = f.rowid JOIN articles a ON a.id = p.article"
                f" WHERE {where} ORDER BY f.score DESC, f.rowid LIMIT ?"
            )
        else:
            sql = f"{ranked} ORDER BY score DESC, rowid LIMIT ?"  # ties in passage order, every time
        rows = self.db.execute(sql, (*args, fts_match_expression(terms), *params, n))
        return [(int(pid), float(score)) for pid, score in rows]

    def lexical_stats(self, terms: QueryTerms) -> LexicalStats:
        """This index's BM25 statistics for the terms' phrases (see store/bm25.py)."""
        hits = tuple(
            self.db.execute(
                "SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?",
                (f"{column} : {fts_phrase(word)}",),
            ).fetchone()[0]
            for column, word in match_phrases(terms)
        )
        return LexicalStats(self.live_passages, self._tokens(), hits)

    def _tokens(self) -> int:
        """Tokens in all rows (FTS5's total column size), counted once per commit."""
        return self._once_per_commit(
            "tokens",
            lambda: int(self.db.execute("SELECT coalesce(sum(cnt), 0) FROM passages_vocab").fetchone()[0]),
        )

    def _once_per_commit(self, name: str, compute):
        """`compute()`, kept for later snapshots of the same commit (only the newest commit's values
        are kept: older ones are asked for no more)."""
        key = (name, self.commit)
        if key not in self._per_commit:
            value = compute()
            for old in list(self._per_commit):  # list(): other threads may change the dict
                if old[1] != self.commit:
                    self._per_commit.pop(old, None)
            self._per_commit[key] = value
        return self._per_commit[key]

    def vocabulary_additions(self) -> tuple[list[str], np.ndarray]:
        """(words, float16 query vectors) the word table gained by commits up to this one
        (store/vocabulary.py); read once per commit."""
        dimension = int(self.meta["encoder"]["dimension"])
        return self._once_per_commit("vocabulary_additions", lambda: read_additions(self.db, dimension))

    def doc_freqs(self, terms: Iterable[str]) -> dict[str, int]:
        """Passages containing each term (either FTS5 column)."""
        return doc_freqs(self.db, terms)

    def article_texts(self, article_ids: list[str]) -> dict[str, str]:
        """Headline and text of each article, for comparing stories."""
        marks = ",".join("?" * len(article_ids))
        return dict(
            self.db.execute(
                f"SELECT article_id, title || char(10) || text FROM articles WHERE article_id IN ({marks})",
                article_ids,
            )
        )

    def passage_ids_of(self, article_ids: list[str]) -> dict[str, list[int]]:
        marks = ",".join("?" * len(article_ids))
        out: dict[str, list[int]] = {}
        rows = self.db.execute(
            f"SELECT a.article_id, p.id FROM passages p JOIN articles a ON a.id = p.article"
            f" WHERE a.article_id IN ({marks}) ORDER BY p.ordinal",
            article_ids,
        )
        for article_id, pid in rows:
            out.setdefault(article_id, []).append(pid)
        return out

    def article(self, article_id: str) -> dict | None:
        """An article's metadata, cleaned text and passages, or None."""
        row = self.db.execute(
            "SELECT id, article_id, title, source, category, date, url, lang, text FROM articles"
            " WHERE article_id = ?",
            (article_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("article_id", "title", "source", "category", "date", "url", "lang", "text")
        out = dict(zip(keys, row[1:], strict=True))
        passages = self.db.execute(
            "SELECT id, ordinal, start, end FROM passages WHERE article = ? ORDER BY ordinal", (row[0],)
        )
        out["passages"] = [
            {"passage_id": pid, "ordinal": o, "start": a, "end": b, "text": out["text"][a:b]}
            for pid, o, a, b in passages
        ]
        return out

    def iter_articles(self) -> Iterator[dict]:
        """Every article as `article()` gives it, in the order they were stored."""
        ids = [r[0] for r in self.db.execute("SELECT article_id FROM articles ORDER BY id")]
        for article_id in ids:
            found = self.article(article_id)
            if found is not None:
                yield found

    def matching_passages(self, ids: Iterable[int], groups: list[QueryTerms], needed: int) -> set[int]:
        """Those of `ids` whose headline or text holds forms of at least `needed` of the groups (one
        group per question word: any of its forms, FTS5, either column)."""
        wanted = {int(i) for i in ids}
        groups = [g for g in groups if g]
        if not wanted or not groups or needed < 1:
            return set()
        held: dict[int, int] = {}
        for group in groups:  # one query per word: FTS5 has no "at least m of n" operator
            # All the word's passages, kept here if among `wanted`: `AND rowid IN (...)` would make
            # SQLite run the MATCH once per listed rowid (measured: 37 ms against 5 at 100k passages).
            rows = self.db.execute(
                "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?", (fts_match_expression(group),)
            )
            for (pid,) in rows:
                if pid in wanted:
                    held[pid] = held.get(pid, 0) + 1
        return {pid for pid, count in held.items() if count >= needed}

    def facet_counts(self, ids: Iterable[int]) -> dict[str, dict[str, int]]:
        """Articles per source, category and month (YYYY-MM) among the articles of these passages."""
        ids = [int(i) for i in ids]
        out: dict[str, dict[str, int]] = {name: {} for name in FACETS}
        if not ids:
            return out
        marks = ",".join("?" * len(ids))
        for name, expression in FACETS.items():
            rows = self.db.execute(
                f"SELECT {expression} AS value, count(DISTINCT a.id) FROM passages p"
                f" JOIN articles a ON a.id = p.article WHERE p.id IN ({marks}) AND value IS NOT NULL"
                " GROUP BY value",
                ids,
            )
            out[name] = {str(value): int(count) for value, count in rows if value != ""}
        return out

    def newest_date(self) -> str | None:
        """The latest article date (YYYY-MM-DD) in this commit, None if no article is dated."""
        return self._once_per_commit(
            "newest",
            lambda: self.db.execute(
                "SELECT max(substr(date, 1, 10)) FROM articles WHERE date != ''"
            ).fetchone()[0],
        )

    def titles(self) -> Iterator[str]:
        """Every article's headline (for suggestions)."""
        for (title,) in self.db.execute("SELECT title FROM articles"):
            yield title

    def facet_values(self, column: str) -> list[str]:
        """Distinct non-empty values of a metadata column (for the search page's filters)."""
        if column not in FILTER_COLUMNS:
            raise ValueError(column)
        rows = self.db.execute(
            f"SELECT DISTINCT {column} FROM articles WHERE {column} IS NOT NULL ORDER BY 1"
        )
        return [r[0] for r in rows]


class IndexReader:
    """An index opened for searching; follows every commit of its generation."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the generation directory
        self._lock = threading.Lock()
        self._free: list[apsw.Connection] = []
        self._all: list[apsw.Connection] = []
        self._views: dict[int, VectorView] = {}
        self._segments: dict[int, Segment] = {}  # loaded segment files, by segment id
        self._facets: dict[tuple[int, str], list[str]] = {}
        self._per_commit: dict[tuple[str, int], object] = {}  # (what, commit) -> value
        self._selective: set[tuple[str, ...]] = set()  # filters the dense channel lists ids for
        self.manifest: dict = {}

    @classmethod
    def open(cls, path: Path | str) -> IndexReader:
        reader = cls(resolve_generation(Path(path)))
        try:
            with reader.snapshot() as snap:
                reader._check_counts(snap)
        except BaseException:
            reader.close()
            raise
        return reader

    @property
    def encoder_id(self) -> str:
        return self.manifest["encoder"]["id"]

    @property
    def dimension(self) -> int:
        return int(self.manifest["encoder"]["dimension"])

    @property
    def vectors(self) -> VectorView:
        """The newest view loaded (for sizes; searches take theirs from a snapshot)."""
        return self._views[max(self._views)]

    def _check_counts(self, snap: Snapshot) -> None:
        expected = snap.live_passages
        rows = snap.db.execute("SELECT count(*) FROM passages").fetchone()[0]
        if not (snap.vectors.ntotal == rows == expected):
            raise IndexCorruptError(
                f"index at {self.path} is damaged: its metadata says {expected} passages, "
                f"the segments hold {snap.vectors.ntotal} live vectors, {DATABASE} has {rows} rows"
            )

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """The index as of one commit, for the length of the `with` block."""
        db, snap = self._begin()
        try:
            yield snap
        finally:
            with contextlib.suppress(apsw.Error):
                db.execute("COMMIT")
            self._release(db)

    def _begin(self) -> tuple[apsw.Connection, Snapshot]:
        for attempt in range(_SNAPSHOT_TRIES):
            db = self._acquire()
            try:
                db.execute("BEGIN")
                meta = read_meta(db)  # the first read fixes the snapshot
                check_format(meta, self.path)
                view = self._view_for(db, meta)
            except _SegmentGone as gone:
                self._end(db)
                if attempt == _SNAPSHOT_TRIES - 1:
                    raise IndexCorruptError(
                        f"index at {self.path} is damaged: {SEGMENTS}/{gone} is missing"
                    ) from None
                continue
            except apsw.Error as exc:
                self._end(db)
                raise IndexCorruptError(f"index at {self.path} is damaged: {DATABASE}: {exc}") from exc
            except BaseException:
                self._end(db)
                raise
            self.manifest = manifest_from_meta(meta, self.path.name)
            return db, Snapshot(db, meta, view, self._per_commit, self._selective)
        raise AssertionError("unreachable")

    def _end(self, db: apsw.Connection) -> None:
        with contextlib.suppress(apsw.Error):
            db.execute("ROLLBACK")
        self._release(db)

    def _acquire(self) -> apsw.Connection:
        with self._lock:
            if self._free:
                return self._free.pop()
        db = open_for_reading(self.path / DATABASE)
        with self._lock:
            self._all.append(db)
        return db

    def _release(self, db: apsw.Connection) -> None:
        with self._lock:
            self._free.append(db)

    def _view_for(self, db: apsw.Connection, meta: dict) -> VectorView:
        commit = commit_number(meta)
        with self._lock:
            view = self._views.get(commit)
            if view is not None:
                return view
            view = self._load_view(db, meta)
            self._views[commit] = view
            for old in sorted(self._views)[:-_VIEWS_KEPT]:
                del self._views[old]
            live = {s.id for v in self._views.values() for s in v.segments}
            self._segments = {i: s for i, s in self._segments.items() if i in live}
            return view

    def _load_view(self, db: apsw.Connection, meta: dict) -> VectorView:
        nprobe = {
            fid: json.loads(section).get("nprobe")
            for fid, section in db.execute("SELECT id, section FROM families")
        }
        segments = []
        for sid, file, family in db.execute("SELECT id, file, family FROM segments ORDER BY id"):
            seg = self._segments.get(sid)
            if seg is None:
                path = self.path / SEGMENTS / file
                if family is not None and not (self.path / FAMILIES).is_dir():
                    raise IndexCorruptError(f"index at {self.path} is damaged: {FAMILIES}/ is missing")
                if not path.is_file():
                    raise _SegmentGone(file)
                try:
                    seg = read_segment(path, sid, file, family, nprobe.get(family))
                except RuntimeError as exc:
                    raise IndexCorruptError(
                        f"index at {self.path} is damaged: cannot read {SEGMENTS}/{file}"
                    ) from exc
                self._segments[sid] = seg
            segments.append(seg)
        tombstones = np.fromiter((r[0] for r in db.execute("SELECT passage_id FROM tombstones")), np.int64)
        deleted = {s.id: s.ids_among(tombstones) for s in segments} if len(tombstones) else {}
        return VectorView(
            segments, {k: np.sort(v) for k, v in deleted.items() if len(v)}, self.dimension_of(meta)
        )

    @staticmethod
    def dimension_of(meta: dict) -> int:
        return int(meta["encoder"]["dimension"])

    # Conveniences for callers outside a query (pages, the CLI): each takes its own snapshot.
    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        with self.snapshot() as snap:
            return snap.passages(ids)

    def article(self, article_id: str) -> dict | None:
        with self.snapshot() as snap:
            return snap.article(article_id)

    def article_ids(self, passage_ids: Iterable[int]) -> dict[int, str]:
        return {pid: row.article_id for pid, row in self.passages(passage_ids).items()}

    def describe(self) -> tuple[dict, int, int]:
        """The newest commit's manifest, bytes on disk and segment count (for /stats)."""
        with self.snapshot() as snap:
            manifest, segments = self.manifest, len(snap.vectors.segments)
        return manifest, self.size_bytes(), segments

    def size_bytes(self) -> int:
        """Bytes on disk of this generation (database, its WAL, segments, families, vocabulary)."""
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def facet_values(self, column: str) -> list[str]:
        with self.snapshot() as snap:
            key = (snap.commit, column)
            if key not in self._facets:
                self._facets = {k: v for k, v in self._facets.items() if k[0] == snap.commit}
                self._facets[key] = snap.facet_values(column)
            return self._facets[key]

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                with contextlib.suppress(apsw.Error):
                    db.close()
            self._all.clear()
            self._free.clear()


def manifest_from_meta(meta: dict, name: str) -> dict:
    """What `dalil check`, /stats and the CLI show: the metadata, with the generation's name."""
    out = dict(meta)
    out["version"] = name
    return out


def index_metadata(path: Path | str) -> dict:
    """The newest commit's metadata alone (encoder, counts, settings): no segment is loaded."""
    generation = resolve_generation(Path(path))
    db = open_for_reading(generation / DATABASE)
    try:
        meta = read_meta(db)
        check_format(meta, generation)
    finally:
        db.close()
    return manifest_from_meta(meta, generation.name)
