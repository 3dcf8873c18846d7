"""Embeddings of the corpus's Arabic words, for cross-lingual highlighting.

An English question shares no words with Arabic passages, so nothing could be marked in its
snippets. multilingual-e5 places a word and its translation close together (measured on the seeds:
China->الصين 0.95, Russia->روسيا 0.945, government->الحكومة 0.91, with the best wrong word
0.85-0.87), so the index keeps one vector per frequent Arabic word (normalised form). At query time
only the question's own few words are embedded and compared against this table.
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

from dalil.progress import progress_bar

VOCABULARY_WORDS = "vocabulary.json"
VOCABULARY_VECTORS = "vocabulary.npy"
VOCABULARY_INDEX = "vocabulary.faiss"  # nearest words (HNSW); absent in indexes built before it
HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 80, 128
MAX_WORDS = 50_000
MIN_COUNT = 2  # words seen once are mostly names and typos; they would double the table
MIN_LENGTH = 3


class VocabularyCounter:
    """Counts normalised Arabic words while the indexer streams the corpus."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, text: str) -> None:
        self.counts.update(
            t.norm for t in tokens(text) if len(t.norm) >= MIN_LENGTH and is_arabic_term(t.norm)
        )

    def frequent(self) -> list[str]:
        words = [w for w, c in self.counts.most_common(MAX_WORDS) if c >= MIN_COUNT]
        return words or [w for w, _ in self.counts.most_common(MAX_WORDS)]


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
    """The stored table, opened read-only (memory-mapped), and its word index when it has one."""

    def __init__(self, words: list[str], vectors: np.ndarray, index: faiss.Index | None = None) -> None:
        self.words = words
        self.vectors = vectors
        self.index = index
        if index is not None:
            faiss.downcast_index(index).hnsw.efSearch = HNSW_SEARCH_DEPTH

    def nearest(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query vector, up to k nearest words: (word numbers, exact cosines), best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, len(self.words))
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
            exact = np.asarray(self.vectors[row], dtype=np.float32) @ query
            order = np.argsort(-exact, kind="stable")
            out.append((row[order], exact[order]))
        return out

    def _scan(self, queries: np.ndarray, block: int = 8192) -> np.ndarray:
        scores = np.empty((len(self.words), len(queries)), np.float32)
        for start in range(0, len(self.words), block):
            part = np.asarray(self.vectors[start : start + block], dtype=np.float32)
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
            vectors = np.load(vectors_file, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"index is damaged: {vectors_file} is unreadable ({exc})") from exc
        if vectors.ndim != 2 or len(words) != len(vectors):
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
