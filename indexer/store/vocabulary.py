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
from pathlib import Path

import numpy as np
from dalil.indexer.analysis.arabic import is_arabic_term, tokens
from dalil.indexer.store.layout import IndexCorruptError
from tqdm import tqdm

VOCABULARY_WORDS = "vocabulary.json"
VOCABULARY_VECTORS = "vocabulary.npy"
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
    bar = tqdm(total=len(words), unit="word", desc="vocabulary", disable=not progress, dynamic_ncols=True)
    with bar:
        for start in range(0, len(words), batch):
            chunk = words[start : start + batch]
            vectors[start : start + len(chunk)] = encoder.encode_queries(chunk).astype(np.float16)
            bar.update(len(chunk))
    np.save(directory / VOCABULARY_VECTORS, vectors)
    (directory / VOCABULARY_WORDS).write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    return len(words)


class Vocabulary:
    """The stored table, opened read-only (memory-mapped)."""

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        self.words = words
        self.vectors = vectors

    @classmethod
    def open(cls, directory: Path) -> Vocabulary | None:
        """The table, None when the index has none, or IndexCorruptError naming the damaged file."""
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
        return cls(words, vectors)


def vocabulary_problems(directory: Path) -> list[str]:
    """What is wrong with a generation's word table (nothing when it is whole or absent)."""
    try:
        Vocabulary.open(directory)
    except IndexCorruptError as exc:
        return [str(exc)]
    return []
