"""The index on disk: one directory that holds immutable versions and a pointer to the live one.

    INDEX_DIR/
      CURRENT                      name of the live version (replaced atomically)
      v20261122T040000Z-1234/      one complete, verified build
        manifest.json              format version, encoder, counts, corpus fingerprint, creation time
        vectors.faiss              L2-normalised vectors, inner product, ids = passage ids; exact
                                   (Flat) or IVF by size (indexer/vector_index.py)
        passages.sqlite            articles and passages (offsets into the cleaned article text)

A build writes a new version beside the live one and switches CURRENT only after the new version
is complete, synced and re-read, so a crash mid-build leaves the old version serving. Readers open
a version read-only and never see a half-written one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from indexer.analysis.cleaning import CleanArticle
from indexer.analysis.splitting import Passage
from indexer.analysis.terms import ANALYZER, passage_fields
from indexer.store.vectors import (
    VectorIndexSettings,
    all_vectors,
    build_vector_index,
    flat_index,
    prepare_for_search,
)

FORMAT_NAME = "dalil-index"
FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
DATABASE = "passages.sqlite"
DEFAULT_INDEX_DIR = Path("data/index")
_KEEP_PREVIOUS_VERSIONS = 1  # one older version stays for rollback

SCHEMA = """
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    source TEXT, category TEXT, date TEXT, url TEXT, lang TEXT,
    text TEXT NOT NULL,              -- the cleaned article; passage offsets point into it
    content_hash TEXT NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,          -- the FAISS id
    article INTEGER NOT NULL REFERENCES articles(id),
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,          -- [start, end) in articles.text, in characters
    end INTEGER NOT NULL
);
CREATE INDEX passages_by_article ON passages(article, ordinal);
-- The lexical channel (see indexer/lexical.py): rowid = passage id; contentless, BM25-ranked.
CREATE VIRTUAL TABLE passages_fts
    USING fts5(exact, stems, tokenize='unicode61 remove_diacritics 0', content='');
-- Passage text is derived from the article (substr counts characters), so it is never stored twice.
CREATE VIEW passage_rows AS
    SELECT p.id AS passage_id, p.ordinal, p.start, p.end,
           substr(a.text, p.start + 1, p.end - p.start) AS text,
           a.article_id, a.title, a.source, a.category, a.date, a.url, a.lang
    FROM passages p JOIN articles a ON a.id = p.article;
"""


class StoreError(Exception):
    """The index cannot be opened or written."""


class IndexNotFoundError(StoreError):
    pass


class IndexCorruptError(StoreError):
    pass


def content_hash(article: CleanArticle) -> str:
    h = hashlib.sha256()
    for part in (article.title, article.text, article.source, article.category, article.date, article.url):
        h.update((part or "").encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def insert_article(db: sqlite3.Connection, article: CleanArticle, digest: str) -> int:
    cur = db.execute(
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
    return int(cur.lastrowid)


def insert_passages(
    db: sqlite3.Connection, article_rowid: int, ids: Sequence[int], title: str, passages: Sequence[Passage]
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


def delete_article_passages(db: sqlite3.Connection, article_rowid: int) -> list[tuple[int, str, str]]:
    """Remove an article's passage and FTS rows; returns (id, title, text) of each removed passage.

    The FTS5 table is contentless, so a row is deleted by handing back the values it was built
    from, which are recomputed from the stored article (analysis is deterministic).
    """
    title, text = db.execute("SELECT title, text FROM articles WHERE id = ?", (article_rowid,)).fetchone()
    rows = db.execute(
        "SELECT id, start, end FROM passages WHERE article = ? ORDER BY ordinal", (article_rowid,)
    )
    removed = [(pid, title, text[a:b]) for pid, a, b in rows.fetchall()]
    for pid, _, passage_text in removed:
        f = passage_fields(title, passage_text)
        db.execute(
            "INSERT INTO passages_fts (passages_fts, rowid, exact, stems) VALUES ('delete', ?, ?, ?)",
            (pid, f.exact, f.stems),
        )
    db.execute("DELETE FROM passages WHERE article = ?", (article_rowid,))
    return removed


def corpus_fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """A digest of (article id, content hash) pairs, independent of their order."""
    fingerprint = hashlib.sha256()
    for article_id, digest in sorted(pairs):
        fingerprint.update(f"{article_id}\x1f{digest}\n".encode())
    return fingerprint.hexdigest()


class IndexWriter:
    """Writes one new version; `commit()` verifies it and makes it the live one."""

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
            raise StoreError(f"cannot create index directory {self.root}: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"index directory is not writable: {self.root}")
        self.version = new_version_name()
        self.path = self.root / (self.version + ".partial")  # renamed when complete
        self.path.mkdir()
        self.encoder_info = encoder_info
        self.settings = settings
        self._db = sqlite3.connect(self.path / DATABASE)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        self._vectors = flat_index(int(encoder_info["dimension"]))  # exact until commit picks the type
        self._vector_section: dict = {}
        self.tuning_queries: np.ndarray | None = None  # query-side vectors for tuning an IVF index
        self._next_passage_id = 0
        self._fingerprint: list[tuple[str, str]] = []
        self.extra_manifest: dict = {}  # sections other components add (e.g. the vocabulary)
        self.articles = 0
        self.passages = 0

    def add_article(self, article: CleanArticle, passages: Sequence[Passage]) -> list[int]:
        """Store an article and its passages; returns the passage ids to attach vectors to."""
        digest = content_hash(article)
        rowid = insert_article(self._db, article, digest)
        ids = list(range(self._next_passage_id, self._next_passage_id + len(passages)))
        self._next_passage_id += len(passages)
        insert_passages(self._db, rowid, ids, article.title, passages)
        self._fingerprint.append((article.article_id, digest))
        self.articles += 1
        self.passages += len(passages)
        return ids

    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        self._vectors.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> Path:
        """Finish the files, verify them by re-opening, then switch CURRENT to this version."""
        if self._vectors.ntotal != self.passages:
            raise StoreError(f"internal error: {self._vectors.ntotal} vectors for {self.passages} passages")
        self._db.execute("INSERT INTO passages_fts (passages_fts) VALUES ('optimize')")
        self._db.commit()
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.close()
        vectors, self._vector_section = build_vector_index(
            *all_vectors(self._vectors), self.vector_settings, self.tuning_queries
        )
        self._vectors = vectors
        faiss.write_index(vectors, str(self.path / VECTORS))
        (self.path / MANIFEST).write_text(json.dumps(self._manifest(), ensure_ascii=False, indent=2) + "\n")
        return publish(self.root, self.path, self.version)

    def _manifest(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "encoder": self.encoder_info,
            "counts": {"articles": self.articles, "passages": self.passages},
            "corpus_fingerprint": corpus_fingerprint(self._fingerprint),
            "faiss": self._vector_section,
            "lexical": {"engine": "sqlite-fts5", "analyzer": ANALYZER, "columns": ["exact", "stems"]},
            "settings": self.settings,
            **self.extra_manifest,
        }


def new_version_name() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"v{stamp}-{os.getpid()}"


def publish(root: Path, partial: Path, version: str) -> Path:
    """Sync a finished version, give it its final name, verify it, then make it the live one."""
    for file in partial.iterdir():
        _fsync_file(file)
    final = root / version
    os.rename(partial, final)
    _fsync_dir(root)
    IndexVersion.open(final).close()  # verify before anyone is pointed at it
    switch_current(root, version)
    prune_versions(root)
    return final


def switch_current(root: Path, version: str) -> None:
    """Point CURRENT at `version` atomically (write a temp file, fsync, rename over)."""
    tmp = root / f".{CURRENT}.{os.getpid()}.tmp"
    with tmp.open("w") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    _fsync_dir(root)


def prune_versions(root: Path) -> None:
    """Remove old versions beyond the rollback one, and debris of builds that died."""
    live = read_current(root)
    versions = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("v"))
    complete = [p for p in versions if not p.name.endswith(".partial") and p.name != live]
    for old in complete[: max(0, len(complete) - _KEEP_PREVIOUS_VERSIONS)]:
        shutil.rmtree(old, ignore_errors=True)
    for partial in (p for p in versions if p.name.endswith(".partial")):
        if not _owned_by_live_process(partial.name):
            shutil.rmtree(partial, ignore_errors=True)


def _owned_by_live_process(name: str) -> bool:
    try:
        pid = int(name.removesuffix(".partial").rsplit("-", 1)[1])
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


def read_current(root: Path) -> str | None:
    try:
        return (root / CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def resolve_version_dir(path: Path) -> Path:
    """An index directory (with CURRENT) or a version directory (with a manifest) -> the version."""
    path = Path(path)
    if not path.exists():
        raise IndexNotFoundError(f"no index at {path} (build one with: dalil index --out {path})")
    if not path.is_dir():
        raise IndexNotFoundError(f"not an index directory: {path}")
    if (path / MANIFEST).is_file():
        return path
    current = read_current(path)
    if current is None:
        raise IndexNotFoundError(
            f"no index at {path}: it has no {CURRENT} file (build one with: dalil index)"
        )
    version = path / current
    if not (version / MANIFEST).is_file():
        raise IndexCorruptError(f"index at {path} is damaged: {CURRENT} names {current!r}, which is missing")
    return version


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


class IndexVersion:
    """One version opened read-only: manifest, FAISS vectors and the SQLite rows."""

    def __init__(self, path: Path, manifest: dict, vectors: faiss.Index, db: sqlite3.Connection) -> None:
        self.path = path
        self.manifest = manifest
        self.vectors = vectors
        self.db = db
        self._facets: dict[str, list[str]] = {}

    @classmethod
    def open(cls, path: Path) -> IndexVersion:
        path = resolve_version_dir(Path(path))
        manifest = _read_manifest(path)
        try:
            vectors = prepare_for_search(faiss.read_index(str(path / VECTORS)), manifest.get("faiss", {}))
        except RuntimeError as exc:
            raise IndexCorruptError(f"index at {path} is damaged: cannot read {VECTORS}") from exc
        db = _open_database_readonly(path / DATABASE)
        version = cls(path, manifest, vectors, db)
        version._check_counts()
        return version

    @property
    def encoder_id(self) -> str:
        return self.manifest["encoder"]["id"]

    @property
    def dimension(self) -> int:
        return int(self.manifest["encoder"]["dimension"])

    def _check_counts(self) -> None:
        expected = self.manifest["counts"]["passages"]
        try:
            rows = self.db.execute("SELECT count(*) FROM passages").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"index at {self.path} is damaged: {DATABASE}: {exc}") from exc
        if not (self.vectors.ntotal == rows == expected):
            raise IndexCorruptError(
                f"index at {self.path} is damaged: manifest says {expected} passages, "
                f"{VECTORS} has {self.vectors.ntotal}, {DATABASE} has {rows}"
            )
        if self.vectors.d != self.dimension:
            raise IndexCorruptError(f"index at {self.path} is damaged: vector dimension {self.vectors.d}")

    def passages(self, ids: Iterable[int]) -> dict[int, PassageRow]:
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT {_PASSAGE_COLUMNS} FROM passage_rows WHERE passage_id IN ({marks})",
            ids,
        )
        return {r[0]: PassageRow(*r) for r in rows}

    def article_ids(self, passage_ids: Iterable[int]) -> dict[int, str]:
        return {pid: row.article_id for pid, row in self.passages(passage_ids).items()}

    def passage_ids_where(self, where: str, params: list) -> np.ndarray:
        """Ids of the passages whose article satisfies `where` (a clause over articles `a`)."""
        rows = self.db.execute(
            f"SELECT p.id FROM passages p JOIN articles a ON a.id = p.article WHERE {where}", params
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

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

    def facet_values(self, column: str) -> list[str]:
        """Distinct non-empty values of a metadata column (for the search page's filters).

        Read once per version (a version never changes), not on every page view.
        """
        if column not in ("source", "category", "lang"):
            raise ValueError(column)
        if column not in self._facets:
            rows = self.db.execute(
                f"SELECT DISTINCT {column} FROM articles WHERE {column} IS NOT NULL ORDER BY 1"
            )
            self._facets[column] = [r[0] for r in rows]
        return self._facets[column]

    def close(self) -> None:
        self.db.close()


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"index at {path} is damaged: unreadable {MANIFEST} ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexCorruptError(f"{path} is not a dalil index ({MANIFEST} has no format {FORMAT_NAME!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StoreError(
            f"index at {path} has format version {version}; this dalil reads up to {FORMAT_VERSION}. "
            "Upgrade dalil or rebuild the index."
        )
    for key in ("encoder", "counts"):
        if not isinstance(manifest.get(key), dict):
            raise IndexCorruptError(f"index at {path} is damaged: {MANIFEST} lacks {key!r}")
    return manifest


def _open_database_readonly(file: Path) -> sqlite3.Connection:
    if not file.is_file():
        raise IndexCorruptError(f"index is damaged: {file} is missing")
    try:
        db = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        db.execute("SELECT 1 FROM articles LIMIT 1")
        # Document frequency per term (a temp table works on a read-only database).
        db.execute("CREATE VIRTUAL TABLE temp.passages_vocab USING fts5vocab(main, passages_fts, 'row')")
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(f"index is damaged: {file}: {exc}") from exc
    return db
