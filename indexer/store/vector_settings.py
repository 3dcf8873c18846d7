"""How a build lays out its vectors: the vector index kinds and the settings that choose and tune
one. Light (no FAISS): the CLI's options and the Python API's defaults read these values.
"""

from __future__ import annotations

from dataclasses import dataclass

VECTOR_KINDS = ("auto", "flat", "ivf-sq8", "ivf-flat", "ivf-pq")


@dataclass(frozen=True)
class VectorIndexSettings:
    kind: str = "auto"
    exact_below: int = 20_000  # passages; flat search here costs ~4 ms per query on one core
    target_recall: float = 0.95  # recall@10 against exact search
    # Tuned to target + margin on pseudo-questions; with spherical k-means cells their recall tracked
    # real questions' within 0.006 (25k real passages, 200 ARCD/XQuAD questions).
    margin: float = 0.01
    nlist: int | None = None  # default: 4·√N
    tuning_queries: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in VECTOR_KINDS:
            raise ValueError(f"unknown vector index {self.kind!r}; choose one of {', '.join(VECTOR_KINDS)}")
        if not 0 < self.target_recall <= 1:
            raise ValueError("target recall must be in (0, 1]")


def choose_kind(passages: int, settings: VectorIndexSettings) -> str:
    if settings.kind != "auto":
        return settings.kind
    return "flat" if passages < settings.exact_below else "ivf-sq8"
