"""Arabic words that translate a non-Arabic question's words: the lexical channel of an English
question searches them (search/fusion.py), and highlighting marks them in its snippets.

Each content word of the question is embedded and compared with the index's vocabulary table
(indexer/vocabulary.py). A vocabulary word is taken when it is the question word's nearest Arabic
word with cosine >= MIN_SIMILARITY, or within MARGIN of that nearest one (spelling variants such as
الصين / الصينية). Measured on the seed vocabulary: right translations scored 0.88-0.95, the best
wrong words 0.85-0.87.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from dalil.indexer.analysis.terms import QueryTerms, query_terms
from dalil.indexer.store import Vocabulary
from dalil.search.cache import EmbeddingCache
from dalil.search.highlight import match_stems

MIN_SIMILARITY = 0.875
MARGIN = 0.02
_MAX_WORDS = 12
QUESTIONS_KEPT = 1024  # lookups kept, by question
CANDIDATES = 32  # nearest words looked at per question word (spelling variants of one word: a few)
# Of a question word's aligned Arabic words (best first), how many its lexical query ORs (None: all);
# highlighting and matching mark them all. Each one costs BM25 its posting list: at 100k passages the
# uncapped query was 87 terms at the median (BM25 42 ms) and ~280 at p99 (268 ms); two per word, 20
# terms (7 ms / 26 ms). Chosen on half A of the English sets (bench/counterpart_sweep.py,
# docs/relevance.md): 2 was best or level in both views; 1 lost the page 0.7 MRR@10.
LEXICAL_COUNTERPARTS: int | None = 2


class CrossLingualTerms:
    def __init__(
        self, vocabulary: Vocabulary | None, encoder, word_vectors: EmbeddingCache | None = None
    ) -> None:
        self.vocabulary = vocabulary
        self.encoder = encoder
        # question words' vectors, kept across word tables (a new one is made when commits add words)
        self.word_vectors = EmbeddingCache(encoder.encode_queries) if word_vectors is None else word_vectors
        # An English question's words are looked up twice: by its lexical channel and by highlighting
        # (and matching), in the same answer; the table is fixed for this object's life, so the
        # answer for a question is kept (read-only) rather than searched for again.
        self.arabic_terms_by_word = functools.lru_cache(maxsize=QUESTIONS_KEPT)(self._lookup)

    def arabic_terms(self, question: str) -> frozenset[str]:
        """Normalised Arabic words aligned with the question's words (empty without a vocabulary)."""
        return frozenset(w for words in self.arabic_terms_by_word(question).values() for w in words)

    def arabic_query_terms(self, question: str) -> QueryTerms:
        """The aligned Arabic words as a lexical query: their forms, and their light stems of three
        letters or more (as highlighting matches them)."""
        ranked = self.arabic_terms_by_word(question).values()
        words = tuple(sorted({w for best in ranked for w in best[:LEXICAL_COUNTERPARTS]}))
        return QueryTerms(words, match_stems(words))

    def _lookup(self, question: str) -> Mapping[str, tuple[str, ...]]:
        """For each Latin content word of the question (normalised), its aligned Arabic words, best
        first (`arabic_terms_by_word`, which keeps the answers of recent questions)."""
        if self.vocabulary is None or not len(self.vocabulary.words):
            return MappingProxyType({})
        words = tuple(w for w in query_terms(question, latin_only=True).exact if not w.isdigit())[:_MAX_WORDS]
        if not words:
            return MappingProxyType({})
        vectors = self.word_vectors.get_many(list(words))  # new words embedded in one batch, not one by one
        found: dict[str, tuple[str, ...]] = {}
        for word, (ids, scores) in zip(words, self.vocabulary.nearest(vectors, CANDIDATES), strict=True):
            if len(scores) and scores[0] >= MIN_SIMILARITY:
                keep = ids[scores >= max(MIN_SIMILARITY, float(scores[0]) - MARGIN)]
                found[word] = tuple(self.vocabulary.words[i] for i in keep)
        return MappingProxyType(found)  # shared by the callers of one question
