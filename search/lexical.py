"""BM25 retrieval over the FTS5 table that the indexer writes beside the passages."""

from __future__ import annotations

from collections.abc import Mapping

from dalil.indexer.analysis.terms import QueryTerms
from dalil.search.protocols import IndexView

# Weights of the `exact` and `stems` columns in FTS5's bm25(). Measured (docs/relevance.md): stems
# carry most of the gain over exact forms alone, and 1:1 was best or level on both Arabic sets.
EXACT_WEIGHT = 1.0
STEM_WEIGHT = 1.0

# A term is distinctive when few passages contain it: at most this share of them (or 2 passages).
DISTINCTIVE_MAX_SHARE = 0.01


def lexical_search(
    snap: IndexView,
    terms: QueryTerms,
    n: int,
    exact_weight: float = EXACT_WEIGHT,
    stem_weight: float = STEM_WEIGHT,
    filters: Mapping[str, object] | None = None,
) -> list[tuple[int, float]]:
    """Top-n (passage id, BM25 score) for the terms; higher is better. Filters apply before the cut.

    One FTS5 table holds every live passage, so BM25's statistics (N, average length, document
    frequencies) are those of the whole index however its vectors are split into segments.
    """
    if not stem_weight:
        terms = QueryTerms(terms.exact, ())
    if not exact_weight:
        terms = QueryTerms((), terms.stems)
    if not terms:
        return []
    return snap.bm25(terms, n, (exact_weight, stem_weight), filters or {})


def distinctive(snap: IndexView, terms: QueryTerms) -> QueryTerms:
    """Only the terms that few passages contain (names, years, model numbers; not "1" or "2018")."""
    if not terms.exact:
        return terms
    limit = max(2, int(DISTINCTIVE_MAX_SHARE * snap.live_passages))
    counts = snap.doc_freqs(terms.exact)
    keep = tuple(t for t in terms.exact if 0 < counts.get(t, 0) <= limit)
    return QueryTerms(keep, tuple(s for s in terms.stems if s in keep))
