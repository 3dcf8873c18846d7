"""Embeddings of the corpus's Arabic words, for cross-lingual search and highlighting.

An English question shares no words with Arabic passages, so nothing could be marked in its
snippets. multilingual-e5 places a word and its translation close together (measured on the seeds:
China->الصين 0.95, Russia->روسيا 0.945, government->الحكومة 0.91, with the best wrong word
0.85-0.87), so the index keeps one vector per frequent Arabic word (normalised form). At query time
only the question's own few words are embedded and compared against this table.

The table has two parts:
- the build's table (vocabulary.json/.npy/.faiss beside the database): the words of the corpus
  seen at least MIN_COUNT times, written by a full build;
- the words that later commits brought (`dalil add`, the API, feed ingestion): rows of the
  `vocabulary_additions` table, inserted in the same SQLite transaction as the articles that hold
  them, so a reader sees exactly its commit's words and a crash leaves nothing half-written. A word
  is added when no part holds it yet and at least MIN_COUNT live passages hold it (a headline's
  words stand in every passage of its article). Searched exactly (a scan: a few thousand rows).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import faiss
import numpy as np
from dalil.indexer.analysis.arabic import is_arabic_term, tokens
from dalil.indexer.store.layout import IndexCorruptError

from dalil.arrays import RowFile
from dalil.progress import progress_bar

VOCABULARY_WORDS = "vocabulary.json"
VOCABULARY_VECTORS = "vocabulary.npy"
VOCABULARY_INDEX = "vocabulary.faiss"  # nearest words (HNSW); absent in indexes built before it
HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 80, 128
MAX_WORDS = 50_000
MAX_ADDED_WORDS = 20_000  # words commits may add before the next full build (scanned per question)
MIN_COUNT = 2  # words seen once are mostly names and typos; they would double the table
MIN_LENGTH = 3
ADDITIONS = "vocabulary_additions"
ADDITIONS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {ADDITIONS} (
    word TEXT PRIMARY KEY,           -- normalised form
    vector BLOB NOT NULL,            -- float16, the encoder's dimension, embedded as a query
    generation INTEGER NOT NULL      -- the commit that added it
)"""


class VocabularyCounter:
    """Counts normalised Arabic words while the indexer streams the corpus."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, text: str) -> None:
        self.counts.update(table_words(text))

    def frequent(self) -> list[str]:
        words = [w for w, c in self.counts.most_common(MAX_WORDS) if c >= MIN_COUNT]
        return words or [w for w, _ in self.counts.most_common(MAX_WORDS)]


def table_words(text: str) -> list[str]:
    """The words of a text the table would hold: normalised Arabic words of MIN_LENGTH or more."""
    return [t.norm for t in tokens(text) if len(t.norm) >= MIN_LENGTH and is_arabic_term(t.norm)]


def built_words(directory: Path) -> list[str]:
    """The words of the build's table in a generation directory (none when it has no table)."""
    try:
        words = json.loads((directory / VOCABULARY_WORDS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        file = directory / VOCABULARY_WORDS
        raise IndexCorruptError(f"index is damaged: {file} is unreadable ({exc})") from exc
    return words if isinstance(words, list) else []


def added_words(db) -> list[str]:
    """The words commits added (none in an index written before the additions table)."""
    if not _has_additions(db):
        return []
    return [w for (w,) in db.execute(f"SELECT word FROM {ADDITIONS} ORDER BY rowid")]


def read_additions(db, dimension: int) -> tuple[list[str], np.ndarray]:
    """(words, float16 vectors) that commits added, in the order they were added."""
    if not _has_additions(db):
        return [], np.zeros((0, dimension), np.float16)
    rows = list(db.execute(f"SELECT word, vector FROM {ADDITIONS} ORDER BY rowid"))
    vectors = np.frombuffer(b"".join(v for _, v in rows), dtype=np.float16).reshape(len(rows), dimension)
    return [w for w, _ in rows], vectors


def insert_additions(db, words: list[str], vectors: np.ndarray, generation: int) -> None:
    """Add words to the table, inside the caller's write transaction (the commit that holds them)."""
    db.execute(ADDITIONS_SCHEMA)
    db.executemany(
        f"INSERT OR IGNORE INTO {ADDITIONS} (word, vector, generation) VALUES (?, ?, ?)",
        [(w, np.asarray(v, np.float16).tobytes(), generation) for w, v in zip(words, vectors, strict=True)],
    )


def addition_problems(db, dimension: int) -> list[str]:
    """What is wrong with the words commits added: vectors that are not `dimension` float16 values."""
    if not _has_additions(db):
        return []
    size = (2 * dimension,)
    bad = db.execute(f"SELECT count(*) FROM {ADDITIONS} WHERE length(vector) != ?", size).fetchone()[0]
    return [f"{ADDITIONS}: {bad} words have vectors of the wrong size"] if bad else []


def _has_additions(db) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (ADDITIONS,))
    return found.fetchone() is not None


def write_vocabulary(directory: Path, words: list[str], encoder, progress: bool, batch: int = 256) -> int:
    """Embed `words` (as queries: single words are query-like) and store them beside the index."""
    vectors = np.zeros((len(words), encoder.dimension), dtype=np.float16)
    bar = progress_bar(len(words), "word", "vocabulary", progress)
    with bar:
        for start in range(0, len(words), batch):
            chunk = words[start : start + batch]
            vectors[start : start + len(chunk)] = encoder.encode_queries(chunk).astype(np.float16)
            bar.update(len(chunk))
    np.save(directory / VOCABULARY_VECTORS, vectors)
    if len(words):
        faiss.write_index(word_index(vectors), str(directory / VOCABULARY_INDEX))
    (directory / VOCABULARY_WORDS).write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    return len(words)


def vocabulary_entry(words: int) -> dict:
    """The manifest's record of the table just written (what `open` then requires)."""
    return {"words": words, "file": VOCABULARY_WORDS, "index": VOCABULARY_INDEX if words else None}


def word_index(vectors: np.ndarray) -> faiss.Index:
    """A graph (HNSW) over 8-bit codes of the word vectors, for the nearest words of a question word.

    Scanning the table costs a read of all of it per question (31k words: 24 MB in float16, which
    numpy multiplies without BLAS: ~100 ms; 48 MB as float32: ~8 ms, bound by memory); the graph
    visits a few hundred words (~0.1 ms), and the candidates it finds are scored exactly from the
    table (`Vocabulary.nearest`), so the 8-bit codes only choose candidates, never the answer."""
    table = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexHNSWSQ(
        table.shape[1], faiss.ScalarQuantizer.QT_8bit, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT
    )
    index.hnsw.efConstruction = HNSW_BUILD_DEPTH
    index.train(table)
    index.add(table)
    return index


class Vocabulary:
    """The stored table, opened read-only (memory-mapped), and its word index when it has one; with
    `with_additions`, the words later commits added too (word numbers go on after the build's)."""

    def __init__(
        self,
        words: list[str],
        vectors: np.ndarray,
        index: faiss.Index | None = None,
        added: np.ndarray | None = None,
    ) -> None:
        self.words = words  # the build's words, then the added ones
        self.vectors = vectors  # the build's table
        self.index = index
        self.added = added if added is not None else np.zeros((0, vectors.shape[1]), np.float16)
        if index is not None:
            faiss.downcast_index(index).hnsw.efSearch = HNSW_SEARCH_DEPTH

    def with_additions(self, words: list[str], vectors: np.ndarray) -> Vocabulary:
        """This build's table and the words commits added (a new object: readers of this one keep it)."""
        built = len(self.vectors)
        return Vocabulary(self.words[:built] + list(words), self.vectors, self.index, vectors)

    @classmethod
    def empty(cls, dimension: int) -> Vocabulary:
        """No build's table (a tiny corpus, or an index built before tables): additions only."""
        return cls([], np.zeros((0, dimension), np.float16))

    def nearest(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query vector, up to k nearest words: (word numbers, exact cosines), best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        built = self._nearest_built(queries, min(k, len(self.vectors)))
        if not len(self.added):
            return built
        scores = np.asarray(self.added, dtype=np.float32) @ queries.T  # few words: scanned exactly
        out = []
        for (ids, exact), column in zip(built, scores.T, strict=True):
            best = np.argsort(-column, kind="stable")[:k]
            ids = np.concatenate([ids, best + len(self.vectors)])
            exact = np.concatenate([exact, column[best]])
            order = np.argsort(-exact, kind="stable")[:k]
            out.append((ids[order], exact[order]))
        return out

    def _nearest_built(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if k == 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in queries]
        if self.index is not None:
            _, found = self.index.search(queries, k)
            rows = [row[row >= 0] for row in found]
        else:  # a table written before word indexes: one scan, in float32 blocks
            rows = [np.argpartition(-column, k - 1)[:k] for column in self._scan(queries).T]
        out = []
        for query, row in zip(queries, rows, strict=True):
            row = np.sort(row)  # ascending rows: the memory-mapped table is read in order
            exact = self._rows(row) @ query
            order = np.argsort(-exact, kind="stable")
            out.append((row[order], exact[order]))
        return out

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        table = self.vectors
        found = table.rows(ids) if isinstance(table, RowFile) else table[ids]
        return np.asarray(found, dtype=np.float32)

    def _block(self, start: int, stop: int) -> np.ndarray:
        table = self.vectors
        found = table.block(start, stop) if isinstance(table, RowFile) else table[start:stop]
        return np.asarray(found, dtype=np.float32)

    def _scan(self, queries: np.ndarray, block: int = 8192) -> np.ndarray:
        scores = np.empty((len(self.vectors), len(queries)), np.float32)
        for start in range(0, len(self.vectors), block):
            part = self._block(start, start + block)
            scores[start : start + len(part)] = part @ queries.T
        return scores

    @classmethod
    def open(cls, directory: Path, recorded: Mapping | None = None) -> Vocabulary | None:
        """The table, None when the index has none, or IndexCorruptError naming the damaged file.

        `recorded`: the manifest's "vocabulary" entry; when it names a word index, that file must be
        there (indexes built before word indexes have none, and scan the table instead)."""
        words_file, vectors_file = directory / VOCABULARY_WORDS, directory / VOCABULARY_VECTORS
        if not words_file.is_file() and not vectors_file.is_file():
            return None
        try:
            words = json.loads(words_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise IndexCorruptError(f"index is damaged: {words_file} is unreadable ({exc})") from exc
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise IndexCorruptError(f"index is damaged: {words_file} is not a list of words")
        try:
            vectors = RowFile(vectors_file)  # rows read as candidates need them, not mapped
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"index is damaged: {vectors_file} is unreadable ({exc})") from exc
        if len(words) != len(vectors):
            raise IndexCorruptError(
                f"index is damaged: {vectors_file} holds {vectors.shape}, for {len(words)} words"
            )
        expected = bool(recorded and recorded.get("index"))
        return cls(words, vectors, _read_word_index(directory / VOCABULARY_INDEX, len(words), expected))


def _read_word_index(file: Path, words: int, expected: bool) -> faiss.Index | None:
    if not file.is_file():
        if expected:
            raise IndexCorruptError(f"index is damaged: {file} is missing")
        return None  # an index built before word indexes: `nearest` scans the table instead
    try:
        index = faiss.read_index(str(file))
    except RuntimeError as exc:
        raise IndexCorruptError(f"index is damaged: {file} is unreadable") from exc
    if index.ntotal != words:
        raise IndexCorruptError(f"index is damaged: {file} holds {index.ntotal} words, for {words}")
    return index


def vocabulary_problems(directory: Path, recorded: Mapping | None = None) -> list[str]:
    """What is wrong with a generation's word table (nothing when it is whole or absent)."""
    try:
        Vocabulary.open(directory, recorded)
    except IndexCorruptError as exc:
        return [str(exc)]
    return []
