"""The FAISS index behind dense search, chosen by size.

- Below `exact_below` passages: exact search (`IDMap2,Flat`): a few ms per query, nothing to tune.
- From there on: an inverted-file index (IVF) with nlist ≈ 4·√N cells trained on a sample, storing
  8-bit scalar-quantised vectors by default (384 B + an 8 B id per 384-d passage, a quarter of
  float32), so a query scans only `nprobe` cells.

`nprobe` is chosen at build time on the index's own vectors: a sample of indexed passages is
searched exactly and approximately (each passage's own id left out, or it would find itself), and the
smallest nprobe whose recall@10 reaches the target is kept. Type, nlist, nprobe and the measured
recall go into the manifest; bench/scale.py re-measures recall with real questions.

IVF indexes keep a hash-table id map, so updates can remove and reconstruct vectors by passage id
like the flat one (new vectors go to the cells trained at build time; a rebuild retrains).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import faiss
import numpy as np

log = logging.getLogger("dalil.indexer")

KINDS = ("auto", "flat", "ivf-sq8", "ivf-flat", "ivf-pq")
NPROBE_LADDER = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


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
        if self.kind not in KINDS:
            raise ValueError(f"unknown vector index {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not 0 < self.target_recall <= 1:
            raise ValueError("target recall must be in (0, 1]")


def choose_kind(passages: int, settings: VectorIndexSettings) -> str:
    if settings.kind != "auto":
        return settings.kind
    return "flat" if passages < settings.exact_below else "ivf-sq8"


def flat_index(dimension: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def build_vector_index(
    vectors: np.ndarray,
    ids: np.ndarray,
    settings: VectorIndexSettings,
    queries: np.ndarray | None = None,
) -> tuple[faiss.Index, dict]:
    """The index for these vectors (rows L2-normalised) and its manifest section.

    `queries`: query-side embeddings to tune nprobe on (the indexer passes pseudo-questions cut from
    indexed passages). Without them, indexed passages stand in for queries — measured to overstate
    recall for real questions (0.96 tuned vs 0.77 real at 20k), so the indexer always passes some.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    n, d = vectors.shape
    kind = choose_kind(n, settings)
    if kind == "flat":
        index = flat_index(d)
        index.add_with_ids(vectors, ids)
        return index, describe(index) | {"chosen_by": settings.kind}
    nlist = settings.nlist or max(1, min(n // 39, round(4 * math.sqrt(n))))  # FAISS wants >=39 per cell
    if nlist > n:  # k-means cannot make more cells than it has points
        log.warning("nlist %d is more than the %d passages; using %d", nlist, n, n)
        nlist = n
    index = _empty_ivf(kind, d, nlist)
    rng = np.random.default_rng(settings.seed)
    sample = np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))  # FAISS asks >= 39 per cell
    index.train(vectors[sample])
    index.add_with_ids(vectors, ids)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    nprobe, recall, curve = tune_nprobe(index, vectors, ids, settings, queries)
    index.nprobe = nprobe
    log.info("vector index %s: nlist=%d nprobe=%d recall@10=%.3f", kind, nlist, nprobe, recall)
    section = describe(index) | {
        "chosen_by": settings.kind,
        "tuning": {
            "target_recall_at_10": settings.target_recall,
            "recall_at_10": round(recall, 4),
            "target_reached": recall >= settings.target_recall,
            "queries": min(n, settings.tuning_queries) if queries is None else len(queries),
            "method": (
                "indexed passages as queries, each one's own id left out; exact search as truth"
                if queries is None
                else "pseudo-questions (word spans of random indexed passages, embedded as queries); "
                "exact search as truth"
            ),
            "curve": curve,
        },
        "settings": asdict(settings),
    }
    return index, section


def _empty_ivf(kind: str, d: int, nlist: int) -> faiss.Index:
    quantizer = faiss.IndexFlatIP(d)
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "ivf-sq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, ip)
    elif kind == "ivf-flat":
        index = faiss.IndexIVFFlat(quantizer, d, nlist, ip)
    elif kind == "ivf-pq":
        index = faiss.IndexIVFPQ(quantizer, d, nlist, d // 8, 8, ip)  # 48 B per 384-d vector
    else:
        raise ValueError(f"unknown IVF kind {kind!r}")
    # Spherical k-means (unit centroids) suits inner-product search over unit vectors, and made
    # recall on pseudo-questions predict recall on real ones (plain k-means overstated it by 0.04).
    index.cp.spherical = True
    index.own_fields = True
    quantizer.this.disown()  # the IVF index frees its quantizer
    return index


def tune_nprobe(
    index: faiss.Index,
    vectors: np.ndarray,
    ids: np.ndarray,
    settings: VectorIndexSettings,
    queries: np.ndarray | None = None,
) -> tuple[int, float, dict[str, float]]:
    """Smallest nprobe on the ladder whose recall@10 reaches the target (a passage's own id excluded)."""
    if queries is None:
        rng = np.random.default_rng(settings.seed + 1)
        rows = rng.choice(len(vectors), size=min(len(vectors), settings.tuning_queries), replace=False)
        queries, own = vectors[rows], ids[rows]
    else:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        own = np.full(len(queries), -1, dtype=np.int64)  # a question is not itself in the index
    _, exact = faiss.knn(queries, vectors, 11, metric=faiss.METRIC_INNER_PRODUCT)
    truth = [_top10_without(ids[row], o) for row, o in zip(exact, own, strict=True)]
    curve: dict[str, float] = {}
    ladder = [p for p in NPROBE_LADDER if p < index.nlist] + [index.nlist]  # ends with "every cell"
    for nprobe in ladder:
        index.nprobe = nprobe
        _, found = index.search(queries, 11)
        recall = float(
            np.mean(
                [
                    len(_top10_without(f, o) & t) / max(1, len(t))
                    for f, o, t in zip(found, own, truth, strict=True)
                ]
            )
        )
        curve[str(nprobe)] = round(recall, 4)
        best = (nprobe, recall)
        if recall >= min(1.0, settings.target_recall + settings.margin):
            break
    else:  # compressed codes (PQ) can stay below the target even when every cell is searched
        log.warning(
            "recall@10 %.3f is below the target %.2f even with nprobe=nlist", best[1], settings.target_recall
        )
    return best[0], best[1], curve


def _top10_without(ranked: np.ndarray, own: int) -> set[int]:
    return set([i for i in ranked.tolist() if i != own and i >= 0][:10])


def describe(index: faiss.Index) -> dict:
    """The manifest's "faiss" section for an index."""
    ivf = _as_ivf(index)
    if ivf is None:
        return {"type": "IDMap2,Flat", "metric": "inner_product", "normalised": True}
    return {
        "type": f"IVF{ivf.nlist},{_code_name(ivf)}",
        "metric": "inner_product",
        "normalised": True,
        "nlist": int(ivf.nlist),
        "nprobe": int(ivf.nprobe),
        "bytes_per_code": int(ivf.code_size),
    }


def _code_name(ivf: faiss.Index) -> str:
    ivf = faiss.downcast_index(ivf)
    if isinstance(ivf, faiss.IndexIVFScalarQuantizer):
        return "SQ8"
    if isinstance(ivf, faiss.IndexIVFPQ):
        return f"PQ{ivf.pq.M}"
    return "Flat"


def _as_ivf(index: faiss.Index):
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def prepare_for_search(index: faiss.Index, section: dict) -> faiss.Index:
    """After reading an index: the recorded nprobe, and an id map for remove/reconstruct by id."""
    ivf = _as_ivf(index)
    if ivf is not None:
        ivf.nprobe = int(section.get("nprobe", ivf.nprobe))
        if ivf.direct_map.type != faiss.DirectMap.Hashtable:
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def search_parameters(index: faiss.Index, allowed: np.ndarray | None):
    """Search parameters for a filtered search: inside FAISS, and wider for selective filters.

    An IVF index only looks in `nprobe` cells; when a filter keeps a fraction f of the passages, the
    cells hold ~f as many candidates, so nprobe grows by 1/f (capped at nlist: exact over the cells).
    """
    selector = faiss.IDSelectorBatch(allowed) if allowed is not None else None
    ivf = _as_ivf(index)
    if ivf is None:
        return faiss.SearchParameters(sel=selector) if selector is not None else None
    nprobe = ivf.nprobe
    if allowed is not None and len(allowed):
        nprobe = min(ivf.nlist, math.ceil(nprobe * ivf.ntotal / len(allowed)))
    return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)


def stored_ids(index: faiss.Index) -> np.ndarray:
    """Every passage id the index holds."""
    ivf = _as_ivf(index)
    if ivf is None:
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    invlists = ivf.invlists
    parts = [
        faiss.rev_swig_ptr(invlists.get_ids(c), invlists.list_size(c)).copy()
        for c in range(ivf.nlist)
        if invlists.list_size(c)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, ids) of a flat IDMap2 index; the vectors are a view of FAISS's memory, not a copy."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    flat = faiss.downcast_index(index.index)
    if not len(ids):
        return np.zeros((0, index.d), np.float32), ids
    vectors = faiss.rev_swig_ptr(flat.get_xb(), len(ids) * index.d).reshape(len(ids), index.d)
    return vectors, ids
