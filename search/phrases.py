"""Quoted phrases as a preference (search/syntax.py): passages that hold a phrase move up.

The question is ranked as if its quote marks were punctuation; then, among those candidates, each
passage gains PHRASE_BONUS × (the share of the question's phrases it holds) × the spread of the
ranking's scores, so the bonus means the same in every mode (fused scores lie in [0, 1], cosines
within a few hundredths, BM25 scores over tens), and the scores are mapped back into the ranking's
own range (the order is kept; hybrid scores stay between 0 and 1). A phrase no candidate holds is
reported, and the ranking is the words' own.

PHRASE_BONUS was chosen on half A of the questions that hold quote marks in the pasted-headline
and news-headline sets (bench/phrase_sweep.py, docs/relevance.md): 0.1 was best there by MRR@10
(news A 90.1 -> 90.3, R@1 85.1 -> 85.8; pasted A unchanged); from 0.5 on, passages holding a
common quoted word («فيسبوك») but not answering the question jump over the answer (R@1 -1.4 to
-10 points at 0.5 and 1).
"""

from __future__ import annotations

from dalil.indexer.analysis.terms import QueryTerms

PHRASE_BONUS = 0.1
Ranking = list[tuple[int, float]]


def phrase_terms(phrase: str) -> QueryTerms:
    """A phrase of light stems as one FTS5 phrase over the `stems` column (words adjacent, in order)."""
    return QueryTerms((), (phrase,))


def prefer_phrases(
    ranking: Ranking, phrases: tuple[str, ...], snap, bonus: float | None = None
) -> tuple[Ranking, tuple[str, ...]]:
    """(the ranking with phrase-holding passages moved up, the phrases no candidate holds).
    `bonus`: PHRASE_BONUS unless given (read at each call: bench/phrase_sweep.py varies it)."""
    bonus = PHRASE_BONUS if bonus is None else bonus
    if not phrases or not ranking:
        return ranking, ()
    ids = [pid for pid, _ in ranking]
    held = {phrase: snap.matching_passages(ids, [phrase_terms(phrase)], 1) for phrase in phrases}
    unmatched = tuple(p for p in phrases if not held[p])
    if len(unmatched) == len(phrases) or bonus <= 0:
        return ranking, unmatched
    scores = [s for _, s in ranking]
    lo, hi = min(scores), max(scores)
    spread = (hi - lo) or abs(hi) or 1.0
    unit = bonus * spread / len(phrases)
    boosted = [(pid, s + unit * sum(pid in held[p] for p in phrases)) for pid, s in ranking]
    # back into the mode's own range (hybrid scores stay within 0-1), keeping the new order
    top = max(s for _, s in boosted)
    scale = (hi - lo) / (top - lo) if top > lo else 1.0
    boosted = [(pid, lo + (s - lo) * scale) for pid, s in boosted]
    boosted.sort(key=lambda item: (-item[1], item[0]))
    return boosted, unmatched
