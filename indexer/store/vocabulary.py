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
from tqdm import tqdm

from indexer.analysis.arabic import is_arabic_term, tokens

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
        if not (directory / VOCABULARY_WORDS).is_file():
            return None
        words = json.loads((directory / VOCABULARY_WORDS).read_text(encoding="utf-8"))
        vectors = np.load(directory / VOCABULARY_VECTORS, mmap_mode="r")
        if len(words) != len(vectors):
            return None
        return cls(words, vectors)
