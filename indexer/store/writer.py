"""Writing an index: a full build into a new generation, and commits to the live one.

A full build (`IndexBuilder`) writes a new generation directory beside the live one and switches
CURRENT to it once it is complete, synced and re-read.

Every other write (`LiveWriter.commit`: adds, updates, deletes; `merge`) changes the live
generation in two steps, the way Lucene commits a segment:
1. new FAISS files are written under `segments/` with names no commit uses yet, then fsynced
   (file and directory). A crash here leaves files that nothing names; the next writer removes them.
2. one SQLite transaction inserts the rows (articles, passages, FTS5, the segment row), writes
   tombstones for replaced or deleted passages, and bumps the generation. That transaction is the
   commit point: before it nothing is visible, after it everything is, and it survives a crash.
Files that a commit no longer names (segments merged away) are removed after it.
Writers hold the directory's writer lock for their commit (store/locking.py).

Beside it, by concern (as Lucene keeps IndexWriter, MergePolicy and the file deleter apart):
store/uncommitted.py (files written that no commit names yet), store/merge_policy.py (which
segments to merge, when IVF cells are retrained), store/merging.py (a merge, and its commit).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import apsw
import numpy as np
from dalil.indexer.analysis.cleaning import CleanArticle
from dalil.indexer.analysis.splitting import Passage
from dalil.indexer.analysis.terms import ANALYZER, passage_fields
from dalil.indexer.store.database import (
    COMMIT_KEY,
    FORMAT_NAME,
    FORMAT_VERSION,
    PASSAGE_TOKENS_SCHEMA,
    article_hash,
    check_format,
    commit_number,
    fingerprint_add,
    insert_family,
    insert_segment,
    open_for_writing,
    read_meta,
    word_occurrences,
    write_meta,
    write_transaction,
)
from dalil.indexer.store.layout import (
    DATABASE,
    FAMILIES,
    SEGMENTS,
    IndexCorruptError,
    IndexNotWritable,
    StoreError,
    ensure_writable,
    new_generation_name,
    owned_by_live_process,
    publish,
    resolve_generation,
)
from dalil.indexer.store.reader import IndexReader
from dalil.indexer.store.uncommitted import in_progress, settled, write_faiss
from dalil.indexer.store.vectors import VectorIndex, VectorIndexSettings
from dalil.indexer.store.vocabulary import (
    MAX_ADDED_WORDS,
    MIN_COUNT,
    added_words,
    built_words,
    insert_additions,
)

log = logging.getLogger("dalil.store")


def content_hash(article: CleanArticle) -> str:
    h = hashlib.sha256()
    for part in (article.title, article.text, article.source, article.category, article.date, article.url):
        h.update((part or "").encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def now_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _insert_article(db: apsw.Connection, article: CleanArticle, digest: str) -> int:
    db.execute(
        "INSERT INTO articles (article_id, title, source, category, date, url, lang, text, content_hash)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        (
            article.article_id,
            article.title,
            article.source,
            article.category,
            article.date,
            article.url,
            article.lang,
            article.text,
            digest,
        ),
    )
    return int(db.last_insert_rowid())


def _insert_passages(
    db: apsw.Connection, article_rowid: int, ids: Sequence[int], title: str, passages: Sequence[Passage]
) -> None:
    """Passage rows and their lexical (FTS5) rows."""
    db.executemany(
        "INSERT INTO passages (id, article, ordinal, start, end) VALUES (?,?,?,?,?)",
        [(pid, article_rowid, p.ordinal, p.start, p.end) for pid, p in zip(ids, passages, strict=True)],
    )
    fields = [passage_fields(title, p.text) for p in passages]
    db.executemany(
        "INSERT INTO passages_fts (rowid, exact, stems) VALUES (?,?,?)",
        [(pid, f.exact, f.stems) for pid, f in zip(ids, fields, strict=True)],
    )
    db.executemany(
        "INSERT INTO passage_tokens (passage_id, tokens) VALUES (?,?)",
        [(pid, f.analysis) for pid, f in zip(ids, fields, strict=True)],
    )


class IndexBuilder:
    """Writes one new generation; `commit()` verifies it and makes it the live one."""

    def __init__(
        self,
        root: Path,
        encoder_info: dict,
        settings: dict,
        vector_settings: VectorIndexSettings | None = None,
    ) -> None:
        self.root = Path(root)
        self.vector_settings = vector_settings or VectorIndexSettings()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexNotWritable(f"cannot create index directory {self.root}: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK):
            raise IndexNotWritable(f"index directory is not writable: {self.root}")
        self.generation = new_generation_name()
        self.path = self.root / (self.generation + ".partial")  # renamed when complete
        (self.path / SEGMENTS).mkdir(parents=True)
        (self.path / FAMILIES).mkdir()
        self.encoder_info = encoder_info
        self.settings = settings
        self._db = open_for_writing(self.path / DATABASE, create=True)
        self._db.execute("BEGIN")
        self._vectors = VectorIndex.empty(int(encoder_info["dimension"]))  # exact until commit picks the type
        self.tuning_queries: np.ndarray | None = None  # query-side vectors for tuning an IVF index
        self._next_passage_id = 0
        self._fingerprint = f"{0:064x}"
        self.extra_manifest: dict = {}  # sections other components add (e.g. the vocabulary)
        self.articles = 0
        self.passages = 0

    def add_article(self, article: CleanArticle, passages: Sequence[Passage]) -> list[int]:
        """Store an article and its passages; returns the passage ids to attach vectors to."""
        digest = content_hash(article)
        rowid = _insert_article(self._db, article, digest)
        ids = list(range(self._next_passage_id, self._next_passage_id + len(passages)))
        self._next_passage_id += len(passages)
        _insert_passages(self._db, rowid, ids, article.title, passages)
        self._fingerprint = fingerprint_add(self._fingerprint, article_hash(article.article_id, digest), 0)
        self.articles += 1
        self.passages += len(passages)
        return ids

    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        self._vectors.add(vectors, np.asarray(ids, dtype=np.int64))

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> Path:
        """Finish the files, verify them by re-opening, then switch CURRENT to this generation."""
        if self._vectors.size != self.passages:
            raise StoreError(f"internal error: {self._vectors.size} vectors for {self.passages} passages")
        self._db.execute("INSERT INTO passages_fts (passages_fts) VALUES ('optimize')")
        index, section = VectorIndex.build(*self._vectors.all(), self.vector_settings, self.tuning_queries)
        self._vectors = index
        family_id = None
        if "nlist" in section:
            name = write_faiss(index.family(), self.path / FAMILIES, "fam")
            settled(name)
            family_id = insert_family(self._db, name, self.passages, section)
        name = write_faiss(index.native, self.path / SEGMENTS, "seg")
        settled(name)  # inside this build's own directory: no other writer clears debris there
        insert_segment(self._db, name, family_id, self.passages, (0, self._next_passage_id - 1), 1)
        write_meta(self._db, self._meta(section))
        self._db.execute("COMMIT")
        self._db.execute("PRAGMA journal_mode=WAL")  # from now on: commits beside readers
        self._db.close()
        return publish(self.root, self.path, self.generation, verify=lambda p: IndexReader.open(p).close())

    def _meta(self, section: dict) -> dict:
        now = now_stamp()
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "created_at": now,
            "updated_at": now,
            COMMIT_KEY: 1,
            "next_passage_id": self._next_passage_id,
            "encoder": self.encoder_info,
            "counts": {"articles": self.articles, "passages": self.passages},
            "corpus_fingerprint": self._fingerprint,
            "faiss": section,
            "vector_settings": section.get("settings") or asdict(self.vector_settings),
            "lexical": {"engine": "sqlite-fts5", "analyzer": ANALYZER, "columns": ["exact", "stems"]},
            "settings": self.settings,
            **self.extra_manifest,
        }


@dataclass
class ArticleChange:
    """An article to store (new or replacing the one with its id), with a vector per passage."""

    article: CleanArticle
    digest: str
    passages: list[Passage]
    vectors: np.ndarray


@dataclass
class CommitResult:
    commit: int  # the commit's number (store/database.py COMMIT_KEY)
    segment: str | None
    passages_added: int
    tombstones: int
    seconds: float = 0.0
    bytes_written: int = 0  # segment file only; SQLite pages are counted by the benchmarks


class LiveWriter:
    """Changes to the live generation of an index directory. Use under the writer lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        ensure_writable(self.root)
        self.path = resolve_generation(self.root)
        self.db = open_for_writing(self.path / DATABASE)
        try:
            self.meta = read_meta(self.db)
            check_format(self.meta, self.path)
            self.db.execute(PASSAGE_TOKENS_SCHEMA)  # an index built before the table gains it here
        except BaseException:
            self.db.close()
            raise
        self._segments: dict[str, VectorIndex] = {}  # segment files read for vectors_of

    @property
    def encoder_id(self) -> str:
        return self.meta["encoder"]["id"]

    @property
    def dimension(self) -> int:
        return int(self.meta["encoder"]["dimension"])

    def existing(self, article_id: str) -> str | None:
        """The stored content hash of an article, or None when it is not in the index."""
        row = self.db.execute(
            "SELECT content_hash FROM articles WHERE article_id = ?", (article_id,)
        ).fetchone()
        return row[0] if row else None

    def stored_passages(self, article_id: str) -> list[tuple[int, str, str]]:
        """(passage id, title, text) of an article's stored passages."""
        row = self.db.execute(
            "SELECT id, title, text FROM articles WHERE article_id = ?", (article_id,)
        ).fetchone()
        if row is None:
            return []
        rowid, title, text = row
        rows = self.db.execute(
            "SELECT id, start, end FROM passages WHERE article = ? ORDER BY ordinal", (rowid,)
        )
        return [(pid, title, text[a:b]) for pid, a, b in rows]

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of live passages (for passages an update keeps): only the segments that
        hold them are read, found by their id ranges."""
        out = np.zeros((len(ids), self.dimension), np.float32)
        for row, pid in enumerate(ids):
            file = self.db.execute(
                "SELECT file FROM segments WHERE ? BETWEEN min_id AND max_id", (int(pid),)
            ).fetchone()
            if file is None:
                raise IndexCorruptError(f"index at {self.path} is damaged: no segment holds passage {pid}")
            if file[0] not in self._segments:
                try:
                    self._segments[file[0]] = VectorIndex.read(self.path / SEGMENTS / file[0])
                except RuntimeError as exc:
                    damaged = f"index at {self.path} is damaged: cannot read {file[0]}"
                    raise IndexCorruptError(damaged) from exc
            out[row] = self._segments[file[0]].vectors_of(np.array([pid], np.int64))[0]
        return out

    def words_to_add(self, occurrences: Mapping[str, int]) -> list[str]:
        """Of the words of the new articles (word -> occurrences in them), those the word table
        should gain at this commit: in neither part of it yet, and seen at least MIN_COUNT times
        in them and the live passages together (store/vocabulary.py). Counted before the commit:
        what it replaces still counts, and a headline counts once per passage, which errs towards
        adding a word."""
        added = added_words(self.db)
        known = set(built_words(self.path)) | set(added)
        fresh = [w for w in occurrences if w not in known]
        if not fresh:
            return []
        room = MAX_ADDED_WORDS - len(added)
        seen = word_occurrences(self.db, fresh)
        wanted = [w for w in fresh if seen.get(w, 0) + occurrences[w] >= MIN_COUNT]
        if len(wanted) > room:
            log.warning(
                "the word table is full (%d added words): %d new words wait for a full build",
                MAX_ADDED_WORDS,
                len(wanted) - max(room, 0),
            )
        return wanted[: max(room, 0)]

    def ingested(self, keys: Sequence[str]) -> dict[str, str]:
        """Raw hashes recorded by `dalil ingest` for these item keys (absent: never taken in)."""
        out: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(f"SELECT key, raw_hash FROM ingested WHERE key IN ({marks})", chunk))
        return out

    def commit(
        self,
        upserts: Sequence[ArticleChange],
        deletes: Sequence[str],
        marks: dict[str, tuple[str, str | None]] | None = None,
        words: tuple[list[str], np.ndarray] | None = None,
    ) -> CommitResult:
        """Make these changes live in one commit (an article id in both is replaced, not deleted).

        `marks`: ingest bookkeeping (item key -> (raw hash, article id)) committed with them, so a
        killed ingest never records an item it did not index, nor loses one it did. `words`: new
        words of the word table and their query vectors (`words_to_add`), committed with them."""
        started = time.perf_counter()
        next_id = int(self.meta["next_passage_id"])
        ids_per_article = []
        for change in upserts:
            ids_per_article.append(list(range(next_id, next_id + len(change.passages))))
            next_id += len(change.passages)
        segment, family_id = None, None  # a new segment is small: exact (see IVF_SEGMENT_MIN)
        written = 0
        if upserts:
            vectors = np.vstack([c.vectors for c in upserts]).astype(np.float32)
            all_ids = np.array([i for ids in ids_per_article for i in ids], dtype=np.int64)
            index = VectorIndex.new(vectors, all_ids, self.dimension, None)
            segment = write_faiss(index.native, self.path / SEGMENTS, "seg")
            written = (self.path / SEGMENTS / segment).stat().st_size
        try:
            commit, tombstones = self._apply(
                upserts, deletes, ids_per_article, next_id, segment, family_id, marks or {}, words
            )
        except BaseException:
            if segment is not None:
                with contextlib.suppress(OSError):
                    (self.path / SEGMENTS / segment).unlink()
            raise
        finally:
            settled(segment)
        added = sum(len(ids) for ids in ids_per_article)
        return CommitResult(commit, segment, added, tombstones, time.perf_counter() - started, written)

    def _apply(
        self, upserts, deletes, ids_per_article, next_id, segment, family_id, marks, words=None
    ) -> tuple[int, int]:
        db = self.db
        with write_transaction(db):
            meta = read_meta(db)
            # bookkeeping alone (no article changed) is no new state for searches to see
            commit = commit_number(meta) + (1 if upserts or deletes else 0)
            fingerprint = meta["corpus_fingerprint"]
            counts = dict(meta["counts"])
            tombstones = 0
            for article_id in [*deletes, *(c.article.article_id for c in upserts)]:
                removed = self._remove_article(article_id, commit)
                if removed is not None:
                    digest, passages = removed
                    fingerprint = fingerprint_add(fingerprint, 0, article_hash(article_id, digest))
                    counts["articles"] -= 1
                    counts["passages"] -= passages
                    tombstones += passages
            for change, ids in zip(upserts, ids_per_article, strict=True):
                rowid = _insert_article(db, change.article, change.digest)
                _insert_passages(db, rowid, ids, change.article.title, change.passages)
                fingerprint = fingerprint_add(
                    fingerprint, article_hash(change.article.article_id, change.digest), 0
                )
                counts["articles"] += 1
                counts["passages"] += len(ids)
            if segment is not None:
                first = int(meta["next_passage_id"])
                insert_segment(db, segment, family_id, next_id - first, (first, next_id - 1), commit)
            if words is not None and words[0]:
                insert_additions(db, words[0], words[1], commit)
            now = now_stamp()
            db.executemany(
                "INSERT INTO ingested (key, raw_hash, article_id, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET"
                " raw_hash = excluded.raw_hash, article_id = excluded.article_id, at = excluded.at",
                [(key, raw, article_id, now) for key, (raw, article_id) in marks.items()],
            )
            new_meta = {
                COMMIT_KEY: commit,
                "next_passage_id": next_id,
                "counts": counts,
                "corpus_fingerprint": fingerprint,
                "updated_at": now_stamp(),
            }
            write_meta(db, new_meta)
        self.meta.update(new_meta)
        return commit, tombstones

    def _remove_article(self, article_id: str, commit: int) -> tuple[str, int] | None:
        """Delete an article's rows and tombstone its vectors; (content hash, passages) or None.

        The FTS5 table is contentless, so a row is deleted by handing back the values it was built
        from, which are recomputed from the stored article (analysis is deterministic).
        """
        row = self.db.execute(
            "SELECT id, content_hash FROM articles WHERE article_id = ?", (article_id,)
        ).fetchone()
        if row is None:
            return None
        rowid, digest = row
        removed = self.stored_passages(article_id)
        for pid, title, text in removed:
            f = passage_fields(title, text)
            self.db.execute(
                "INSERT INTO passages_fts (passages_fts, rowid, exact, stems) VALUES ('delete', ?, ?, ?)",
                (pid, f.exact, f.stems),
            )
        self.db.executemany(
            "INSERT INTO tombstones (passage_id, generation) VALUES (?, ?)",
            [(pid, commit) for pid, _, _ in removed],
        )
        gone = [(pid,) for pid, _, _ in removed]
        self.db.executemany("DELETE FROM passage_tokens WHERE passage_id = ?", gone)
        self.db.execute("DELETE FROM passages WHERE article = ?", (rowid,))
        self.db.execute("DELETE FROM articles WHERE id = ?", (rowid,))
        return digest, len(removed)

    def remove_debris(self) -> list[str]:
        """Delete segment and family files no commit names, left by writers that died."""
        named = {r[0] for r in self.db.execute("SELECT file FROM segments UNION SELECT file FROM families")}
        removed = []
        for folder in (self.path / SEGMENTS, self.path / FAMILIES):
            for file in folder.glob("*.faiss"):
                if file.name in named or in_progress(file.name) or owned_by_live_process(file.name):
                    continue
                with contextlib.suppress(OSError):
                    file.unlink()
                    removed.append(file.name)
        return removed

    def close(self) -> None:
        self._segments.clear()
        with contextlib.suppress(apsw.Error):
            self.db.close()


__all__ = [
    "ArticleChange",
    "CommitResult",
    "IndexBuilder",
    "LiveWriter",
    "content_hash",
]
