"""Combining the dense and lexical rankings, by the question's script.

Measured on the development sets (bench/fusion_sweep.py, docs/relevance.md):

- Arabic questions: both channels are strong and complementary. A convex combination of
  min-max-normalised scores (0.5 dense + 0.5 BM25) beat reciprocal rank fusion on both Arabic
  sets (ARCD MRR@10 81.3 vs 79.0 for the best RRF; XQuAD-ar 95.5 vs 94.7).
- Other questions (English over Arabic text): BM25 can only match Latin names and numbers, and
  letting those in on an equal footing lost English recall@1. Common numbers were the culprits
  ("Apollo 1", "age of 18" match many passages). So the dense ranking leads, and only
  *distinctive* Latin terms (few passages contain them: "5G", "ITIDA", "1520") add a small bonus to
  passages that dense retrieval already found: they can reorder good dense candidates, never bring
  in an unrelated passage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Ranking = Sequence[tuple[int, float]]  # (passage id, channel score), best first


@dataclass(frozen=True)
class FusionWeights:
    arabic_dense: float = 0.5
    arabic_lexical: float = 0.5
    latin_lexical_bonus: float = 0.25  # share of the dense rank-1 score given to the lexical rank-1 match
    rrf_k: float = 60.0


DEFAULT_WEIGHTS = FusionWeights()


def fuse(dense: Ranking, lexical: Ranking, script: str, weights: FusionWeights = DEFAULT_WEIGHTS):
    """The hybrid ranking for one question whose script is `script` ('ar', 'latin', 'other')."""
    if script == "ar":
        return convex([(dense, weights.arabic_dense), (lexical, weights.arabic_lexical)])
    return dense_led(dense, lexical, weights)


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
    """Dense RRF scores plus a bonus for lexical matches among the dense candidates only."""
    base = {pid: 1.0 / (weights.rrf_k + rank) for rank, (pid, _s) in enumerate(dense, start=1)}
    unit = weights.latin_lexical_bonus / (weights.rrf_k + 1)  # a share of the dense rank-1 score
    for rank, (pid, _s) in enumerate(lexical, start=1):
        if pid in base:
            base[pid] += unit / rank
    return sorted(base.items(), key=lambda item: (-item[1], item[0]))
