"""The SQLite file of a generation: schema, connections, metadata. Every SQL statement of dalil
is in this package; most of them are here.

SQLite comes from `apsw`, which bundles its own SQLite (3.54), not from Python's `sqlite3`: the
SQLite that this Python links (3.40) has the WAL-reset bug (sqlite.org/wal.html#walresetbug,
versions 3.7.0-3.51.2: a checkpoint racing another connection can corrupt a WAL database), and a
live index is exactly a WAL database with one writer and many reader connections.

Concurrency: WAL journal, one writer (`BEGIN IMMEDIATE`, behind the directory's writer lock), any
number of readers, each query in its own read transaction so that every statement of it sees one
commit. `synchronous=FULL`: a commit that returned survives a power cut, not only a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import apsw
from dalil.indexer.store import bm25
from dalil.indexer.store.layout import IndexCorruptError, IndexNotWritable, OldFormatError

FORMAT_NAME = "dalil-index"
FORMAT_VERSION = 2  # 1: an immutable copy per version; 2: segments + tombstones in one live generation
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);   -- JSON values
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    source TEXT, category TEXT, date TEXT, url TEXT, lang TEXT,
    text TEXT NOT NULL,              -- the cleaned article; passage offsets point into it
    content_hash TEXT NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,          -- the FAISS id; never reused (meta next_passage_id)
    article INTEGER NOT NULL REFERENCES articles(id),
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,          -- [start, end) in articles.text, in characters
    end INTEGER NOT NULL
);
CREATE INDEX passages_by_article ON passages(article, ordinal);
-- The lexical channel (indexer/analysis/terms.py): rowid = passage id; contentless, BM25-ranked,
-- one table over every live passage, so BM25 statistics never depend on segments.
CREATE VIRTUAL TABLE passages_fts
    USING fts5(exact, stems, tokenize='unicode61 remove_diacritics 0', content='');
-- Immutable FAISS files; a row is written in the same transaction that makes its passages live.
CREATE TABLE segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: readers cache loaded segments by id
    file TEXT NOT NULL UNIQUE,       -- under segments/
    family INTEGER REFERENCES families(id),   -- NULL: exact (flat) segment
    vectors INTEGER NOT NULL,        -- ids stored in the file, deleted ones included
    min_id INTEGER NOT NULL,         -- segments hold disjoint, contiguous passage id ranges
    max_id INTEGER NOT NULL,         -- (ids grow; merges join neighbours), so an id names its segment
    generation INTEGER NOT NULL      -- the commit that added it
);
-- Trained, empty IVF indexes; IVF segments are clones of one, so they can be merged code for code.
CREATE TABLE families (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file TEXT NOT NULL UNIQUE,       -- under families/
    trained_on INTEGER NOT NULL,     -- live passages when it was trained
    section TEXT NOT NULL            -- JSON: type, nlist, nprobe, tuning (the manifest's "faiss")
);
-- Passages whose vector still sits in a segment but is no longer live (Lucene's live-docs).
-- A merge drops the vectors and these rows together.
CREATE TABLE tombstones (passage_id INTEGER PRIMARY KEY, generation INTEGER NOT NULL);
-- What `dalil ingest` has taken in, written in the same commit as the articles it gave: an item
-- (feed entry or corpus record) is passed over (counted `unchanged`) while its raw hash is
-- unchanged, a file while its size and modification time are, and a feed is asked with its last
-- ETag / Last-Modified.
CREATE TABLE ingested (key TEXT PRIMARY KEY, raw_hash TEXT NOT NULL, article_id TEXT, at TEXT NOT NULL);
-- Each passage text's tokens as indexing analysed them (indexer/analysis/terms.py encode_tokens:
-- offsets, normalised form, light stem), so highlighting and the confidence read them instead of
-- analysing every result again per question. Indexes built before it lack the table or a row:
-- those passages are analysed at query time, as before.
CREATE TABLE passage_tokens (passage_id INTEGER PRIMARY KEY, tokens TEXT NOT NULL);
-- Passage text is derived from the article (substr counts characters), so it is never stored twice.
CREATE VIEW passage_rows AS
    SELECT p.id AS passage_id, p.ordinal, p.start, p.end,
           substr(a.text, p.start + 1, p.end - p.start) AS text,
           a.article_id, a.title, a.source, a.category, a.date, a.url, a.lang
    FROM passages p JOIN articles a ON a.id = p.article;
"""

PASSAGE_TOKENS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS passage_tokens (passage_id INTEGER PRIMARY KEY, tokens TEXT NOT NULL)"
)

# Document frequency per term, per connection (a temp table works on a read-only connection).
FTS_VOCABULARY = "CREATE VIRTUAL TABLE temp.passages_vocab USING fts5vocab(main, passages_fts, 'row')"
# Occurrences per term and column, for a writer deciding which words the word table gains.
FTS_COLUMN_VOCABULARY = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.passages_col_vocab USING fts5vocab(main, passages_fts, 'col')"
)


def doc_freqs(db: apsw.Connection, terms: Iterable[str]) -> dict[str, int]:
    """Passages holding each term (either FTS5 column), on a connection with `passages_vocab`."""
    return _per_term(db, "SELECT term, doc FROM passages_vocab WHERE term IN ({})", list(terms))


def word_occurrences(db: apsw.Connection, words: Iterable[str]) -> dict[str, int]:
    """How often each normalised word stands in the live passages (their `exact` column)."""
    db.execute(FTS_COLUMN_VOCABULARY)
    query = "SELECT term, cnt FROM passages_col_vocab WHERE col = 'exact' AND term IN ({})"
    return _per_term(db, query, list(words))


def _per_term(db: apsw.Connection, query: str, terms: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(terms), 500):  # SQLite's limit on bound parameters
        chunk = terms[start : start + 500]
        out.update(db.execute(query.format(",".join("?" * len(chunk))), chunk))
    return out


def open_for_writing(file: Path, create: bool = False) -> apsw.Connection:
    flags = apsw.SQLITE_OPEN_READWRITE | (apsw.SQLITE_OPEN_CREATE if create else 0)
    try:
        db = apsw.Connection(str(file), flags=flags)
        db.setbusytimeout(BUSY_TIMEOUT_MS)
        if create:
            db.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")  # a build is all or nothing
            db.execute(SCHEMA)
        else:
            _check_readable(db, file)
            db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA journal_size_limit=67108864")
    except apsw.ReadOnlyError as exc:
        raise IndexNotWritable(f"index is not writable: {file}; nothing was changed") from exc
    except apsw.Error as exc:
        raise IndexCorruptError(f"index is damaged: {file}: {exc}") from exc
    return db


def open_for_reading(file: Path) -> apsw.Connection:
    if not file.is_file():
        raise IndexCorruptError(f"index is damaged: {file} is missing")
    try:
        db = apsw.Connection(str(file), flags=apsw.SQLITE_OPEN_READONLY)
        db.setbusytimeout(BUSY_TIMEOUT_MS)
        _check_readable(db, file)
        db.execute(FTS_VOCABULARY)
        bm25.register(db)
    except apsw.Error as exc:
        raise IndexCorruptError(f"index is damaged: {file}: {exc}") from exc
    return db


def _check_readable(db: apsw.Connection, file: Path) -> None:
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    missing = {"meta", "articles", "passages", "passages_fts", "segments", "tombstones", "ingested"} - names
    if missing:
        raise IndexCorruptError(f"index is damaged: {file} lacks the tables {', '.join(sorted(missing))}")


@contextlib.contextmanager
def write_transaction(db: apsw.Connection) -> Iterator[apsw.Connection]:
    """One commit: `BEGIN IMMEDIATE` (the write lock at once, so a busy timeout applies; a deferred
    transaction upgrading to write gets SQLITE_BUSY without waiting), COMMIT, or ROLLBACK on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        with contextlib.suppress(apsw.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def insert_segment(
    db: apsw.Connection, file: str, family, vectors: int, id_range: tuple[int, int], commit: int
):
    db.execute(
        "INSERT INTO segments (file, family, vectors, min_id, max_id, generation) VALUES (?, ?, ?, ?, ?, ?)",
        (file, family, vectors, id_range[0], id_range[1], commit),
    )


def insert_family(db: apsw.Connection, file: str, trained_on: int, section: dict) -> int:
    db.execute(
        "INSERT INTO families (file, trained_on, section) VALUES (?, ?, ?)",
        (file, trained_on, json.dumps(section, ensure_ascii=False)),
    )
    return int(db.last_insert_rowid())


def read_meta(db: apsw.Connection) -> dict:
    try:
        return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
    except (ValueError, apsw.Error) as exc:
        raise IndexCorruptError(f"index is damaged: unreadable metadata ({exc})") from exc


def write_meta(db: apsw.Connection, values: dict) -> None:
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()],
    )


# The number of the newest commit (1 after a full build, +1 per commit readers must see). Format 2
# stores it, and the commit that added a segment or a tombstone, under the name `generation`; the
# name is kept so that existing indexes open, but in code it is a commit number: a generation is a
# build's directory (store/layout.py).
COMMIT_KEY = "generation"


def commit_number(meta: dict) -> int:
    return int(meta[COMMIT_KEY])


def check_format(meta: dict, where: Path) -> None:
    if meta.get("format") != FORMAT_NAME:
        raise IndexCorruptError(f"{where} is not a dalil index (no format {FORMAT_NAME!r} in its metadata)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise OldFormatError(
            f"index at {where} has format version {version}; this dalil reads up to {FORMAT_VERSION}. "
            "Upgrade dalil or rebuild the index."
        )
    for key in ("encoder", "counts", COMMIT_KEY, "next_passage_id"):
        if key not in meta:
            raise IndexCorruptError(f"index at {where} is damaged: its metadata lacks {key!r}")


# The corpus fingerprint: a sum (mod 2^256) of one hash per (article id, content hash). A sum, not
# a hash of the sorted list, so that each write can update it for the articles it touches alone.
_MOD = 1 << 256


def article_hash(article_id: str, digest: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{article_id}\x1f{digest}".encode()).digest(), "big")


def fingerprint_of(pairs: Iterable[tuple[str, str]]) -> str:
    return f"{sum(article_hash(a, d) for a, d in pairs) % _MOD:064x}"


def fingerprint_add(fingerprint: str, added: int, removed: int) -> str:
    return f"{(int(fingerprint, 16) + added - removed) % _MOD:064x}"
