"""BM25 retrieval over the FTS5 table that the indexer writes beside the passages."""

from __future__ import annotations

import sqlite3

from indexer.analysis.terms import QueryTerms, fts_match_expression

# Weights of the `exact` and `stems` columns in FTS5's bm25(). Measured (docs/relevance.md): stems
# carry most of the gain over exact forms alone, and 1:1 was best or level on both Arabic sets.
EXACT_WEIGHT = 1.0
STEM_WEIGHT = 1.0

# A term is distinctive when few passages contain it: at most this share of them (or 2 passages).
DISTINCTIVE_MAX_SHARE = 0.01


def lexical_search(
    db: sqlite3.Connection,
    terms: QueryTerms,
    n: int,
    exact_weight: float = EXACT_WEIGHT,
    stem_weight: float = STEM_WEIGHT,
    where: tuple[str, list] = ("", []),
) -> list[tuple[int, float]]:
    """Top-n (passage id, BM25 score) for the terms; higher is better (FTS5's bm25 is negated)."""
    if not stem_weight:
        terms = QueryTerms(terms.exact, ())
    if not exact_weight:
        terms = QueryTerms((), terms.stems)
    if not terms:
        return []
    restrict, params = "", []
    if where[0]:  # article filters, applied before the top-n is cut
        restrict = (
            " AND rowid IN (SELECT p.id FROM passages p JOIN articles a ON a.id = p.article"
            f" WHERE {where[0]})"
        )
        params = list(where[1])
    rows = db.execute(
        "SELECT rowid, -bm25(passages_fts, ?, ?) AS score FROM passages_fts"
        f" WHERE passages_fts MATCH ?{restrict} ORDER BY score DESC LIMIT ?",
        (exact_weight, stem_weight, fts_match_expression(terms), *params, n),
    )
    return [(int(pid), float(score)) for pid, score in rows]


def distinctive(db: sqlite3.Connection, terms: QueryTerms, passages: int) -> QueryTerms:
    """Only the terms that few passages contain (names, years, model numbers; not "1" or "2018")."""
    if not terms.exact:
        return terms
    limit = max(2, int(DISTINCTIVE_MAX_SHARE * passages))
    marks = ",".join("?" * len(terms.exact))
    counts = dict(db.execute(f"SELECT term, doc FROM passages_vocab WHERE term IN ({marks})", terms.exact))
    keep = tuple(t for t in terms.exact if 0 < counts.get(t, 0) <= limit)
    return QueryTerms(keep, tuple(s for s in terms.stems if s in keep))
