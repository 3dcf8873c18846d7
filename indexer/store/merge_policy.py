"""Which segments to merge, and when IVF cells are retrained: decisions over segment sizes and
counts, no I/O (store/merging.py carries them out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dalil.indexer.store.vector_settings import VectorIndexSettings, choose_kind

MERGE_FACTOR = 8  # segments of one size tier merged together (Lucene's segmentsPerTier is 10)
# Segments with fewer live vectors are exact even in an IVF index (Milvus searches its growing
# segments by brute force too): an IVF segment pays the coarse quantiser's search (nlist centroids)
# on every query, which for a few thousand vectors costs more than scanning them all.
IVF_SEGMENT_MIN = 2048
TIER_BASE = 64  # vectors: segments up to this size form the lowest tier
MAX_DELETED_SHARE = 0.2  # a segment with more deleted vectors is rewritten (Qdrant vacuums at ~20%)


def tier(vectors: int) -> int:
    """Size tier: 0 up to TIER_BASE vectors, then one tier per MERGE_FACTOR-fold growth."""
    return 0 if vectors <= TIER_BASE else 1 + int(math.log(vectors / TIER_BASE, MERGE_FACTOR))


@dataclass
class SegmentInfo:
    id: int
    file: str
    family: int | None
    vectors: int
    min_id: int
    max_id: int
    deleted: int

    @property
    def live(self) -> int:
        return self.vectors - self.deleted


@dataclass
class MergePlan:
    segments: list[SegmentInfo] = field(default_factory=list)
    reason: str = ""


def plan_merge(segments: list[SegmentInfo], everything: bool = False) -> MergePlan | None:
    """Which neighbouring segments to merge now, or None (Lucene's log merge policy, by live size).

    New segments arrive at the end, small; MERGE_FACTOR neighbours of one size tier become one
    segment of the next tier, like a counter carrying a digit. That bounds the count at about
    (MERGE_FACTOR - 1) per tier, log(N) tiers. Merging neighbours only keeps each segment's ids
    one contiguous range. A segment with many deleted vectors is rewritten alone.
    """
    segments = sorted(segments, key=lambda s: s.min_id)
    if everything:
        if len(segments) > 1 or any(s.deleted for s in segments):
            return MergePlan(segments, "optimize")
        return None
    run: list[SegmentInfo] = []
    for s in segments:
        if run and tier(s.live) != tier(run[-1].live):
            run = []
        run.append(s)
        if len(run) == MERGE_FACTOR:
            return MergePlan(run, f"{MERGE_FACTOR} neighbours in tier {tier(s.live)}")
    for s in segments:
        if s.vectors and s.deleted / s.vectors > MAX_DELETED_SHARE:
            return MergePlan([s], f"{s.deleted} of {s.vectors} deleted")
    return None


RETRAIN_GROWTH = 4.0  # retrain IVF cells when the live passages have grown this much since training


def cells_outgrown(meta: dict, trained_on: int | None, live: int) -> str | None:
    """Why the index needs new IVF cells now (None: the current ones still fit).

    An exact index that has grown past `exact_below` becomes IVF (with `kind` auto); IVF cells
    trained on N passages are retrained at RETRAIN_GROWTH x N (shared/notes: ~4x growth), before
    cells get crowded and the nprobe tuned for N stops reaching the recall target.
    """
    settings = VectorIndexSettings(**(meta.get("vector_settings") or {}))
    if trained_on is None:
        if choose_kind(live, settings) != "flat":
            return f"{live} live passages: past exact search ({settings.exact_below})"
        return None
    if live >= RETRAIN_GROWTH * trained_on:
        return f"{live} live passages; the cells were trained on {trained_on}"
    return None
