"""Combining the dense and lexical rankings, by the question's script.

Measured on the development sets (bench/fusion_sweep.py, docs/relevance.md):

- Arabic questions: both channels are strong and complementary. A convex combination of
  min-max-normalised scores (0.5 dense + 0.5 BM25) beat reciprocal rank fusion on both Arabic
  sets (ARCD MRR@10 81.3 vs 79.0 for the best RRF; XQuAD-ar 95.5 vs 94.7).
- Other questions (English over Arabic text): the lexical channel searches the Arabic counterparts
  of the question's words (from the index's word table, search/crosslingual.py) and its
  *distinctive* Latin names and numbers (few passages contain them: "5G", "ITIDA"; not "1" or
  "2018"), and a convex combination weighted 0.8 dense + 0.2 lexical ranks the union. Chosen on
  half A of the English sets (bench/english_sweep.py, docs/relevance.md): it replaced a dense-led
  ranking where only the Latin terms could add a bonus (`dense_led`, kept as the baseline), which
  lost 5-6 R@1 points to dense alone on news, where other stories name the same products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Ranking = Sequence[tuple[int, float]]  # (passage id, channel score), best first


@dataclass(frozen=True)
class FusionWeights:
    arabic_dense: float = 0.5
    arabic_lexical: float = 0.5
    other_dense: float = 0.8  # questions in another script than Arabic
    other_lexical: float = 0.2
    latin_lexical_bonus: float = 0.25  # dense_led: share of the dense rank-1 score for the lexical rank-1
    rrf_k: float = 60.0


DEFAULT_WEIGHTS = FusionWeights()


def fuse(dense: Ranking, lexical: Ranking, script: str, weights: FusionWeights = DEFAULT_WEIGHTS):
    """The hybrid ranking for one question whose script is `script` ('ar', 'latin', 'other')."""
    if script == "ar":
        return convex([(dense, weights.arabic_dense), (lexical, weights.arabic_lexical)])
    return convex([(dense, weights.other_dense), (lexical, weights.other_lexical)])


def min_max(ranking: Ranking) -> dict[int, float]:
    """Scores scaled to [0, 1] within one ranking (the best gets 1, the last of the list 0)."""
    if not ranking:
        return {}
    scores = [s for _, s in ranking]
    lo, hi = min(scores), max(scores)
    if hi == lo:  # one result, or all tied: each is the channel's best
        return {pid: 1.0 for pid, _ in ranking}
    return {pid: (s - lo) / (hi - lo) for pid, s in ranking}


def convex(rankings: Sequence[tuple[Ranking, float]]) -> list[tuple[int, float]]:
    """Weighted sum of min-max-normalised channel scores (a passage missing from a channel gets 0)."""
    fused: dict[int, float] = {}
    for ranking, weight in rankings:
        for pid, s in min_max(ranking).items():
            fused[pid] = fused.get(pid, 0.0) + weight * s
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def rrf(rankings: Sequence[tuple[Ranking, float]], rrf_k: float) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion (the baseline the choice above was measured against)."""
    scores: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, (pid, _score) in enumerate(ranking, start=1):
            scores[pid] = scores.get(pid, 0.0) + weight / (rrf_k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def dense_led(dense: Ranking, lexical: Ranking, weights: FusionWeights = DEFAULT_WEIGHTS):
    """Dense RRF scores plus a bonus for lexical matches among the dense candidates only (the English
    fusion before the Arabic-counterpart channel; bench/english_sweep.py compares them)."""
    base = {pid: 1.0 / (weights.rrf_k + rank) for rank, (pid, _s) in enumerate(dense, start=1)}
    unit = weights.latin_lexical_bonus / (weights.rrf_k + 1)  # a share of the dense rank-1 score
    for rank, (pid, _s) in enumerate(lexical, start=1):
        if pid in base:
            base[pid] += unit / rank
    return sorted(base.items(), key=lambda item: (-item[1], item[0]))
