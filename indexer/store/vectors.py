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
from pathlib import Path

import faiss
import numpy as np
from dalil.indexer.store.vector_settings import VectorIndexSettings, choose_kind

log = logging.getLogger("dalil.indexer")

NPROBE_LADDER = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


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


def search_parameters(index: faiss.Index, allowed: np.ndarray | None, total: int | None = None):
    """Search parameters for a filtered search: inside FAISS, and wider for selective filters.

    An IVF index only looks in `nprobe` cells; when a filter keeps a fraction f of the passages, the
    cells hold ~f as many candidates, so nprobe grows by 1/f (capped at nlist: exact over the cells).
    `total`: live passages of the whole index when this one is a segment of it.
    """
    selector = faiss.IDSelectorBatch(allowed) if allowed is not None else None
    ivf = _as_ivf(index)
    if ivf is None:
        return faiss.SearchParameters(sel=selector) if selector is not None else None
    nprobe = ivf.nprobe
    if allowed is not None and len(allowed):
        nprobe = min(ivf.nlist, math.ceil(nprobe * (total or ivf.ntotal) / len(allowed)))
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


# --- Segments: immutable FAISS files searched together as one index ---------------------------

# A segment with at most this many deleted vectors is searched for k + that many and filtered after:
# any IDSelector turns off FAISS's BLAS path for flat search (a 512-question batch went from 355 ms
# to 6 s, shared/notes), and merges keep deleted counts low.
OVERFETCH_LIMIT = 256


@dataclass
class Segment:
    """One immutable FAISS file: its vectors, its sorted ids, and the IVF family it was cloned from."""

    id: int
    file: str
    family: int | None
    index: faiss.Index
    ids: np.ndarray

    def holds(self, pid: int) -> bool:
        i = int(np.searchsorted(self.ids, pid))
        return i < len(self.ids) and int(self.ids[i]) == pid

    def ids_among(self, candidates: np.ndarray) -> np.ndarray:
        """The candidates this segment stores (a binary search each: the segment may be large)."""
        at = np.searchsorted(self.ids, candidates)
        inside = at < len(self.ids)
        inside[inside] = self.ids[at[inside]] == candidates[inside]
        return candidates[inside]


def read_segment(path: Path, segment_id: int, file: str, family: int | None, nprobe: int | None) -> Segment:
    index = faiss.read_index(str(path))
    section = {"nprobe": nprobe} if nprobe else {}
    index = prepare_for_search(index, section)
    return Segment(segment_id, file, family, index, np.sort(stored_ids(index)))


def new_segment_index(vectors: np.ndarray, ids: np.ndarray, dimension: int, family: faiss.Index | None):
    """A segment for these vectors: exact, or a clone of a trained IVF family (same cells, same codes)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dimension)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if family is None:
        index = flat_index(dimension)
    else:
        index = faiss.clone_index(family)
        _as_ivf(index).set_direct_map_type(faiss.DirectMap.Hashtable)
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def empty_family(index: faiss.Index) -> faiss.Index:
    """The trained, empty copy of an IVF index that new segments are cloned from."""
    family = faiss.clone_index(index)
    ivf = _as_ivf(family)
    ivf.set_direct_map_type(faiss.DirectMap.NoMap)
    family.reset()
    return family


def segment_vectors(index: faiss.Index, ids: np.ndarray) -> np.ndarray:
    """Vectors of these ids from one segment (exact for flat segments, decoded codes for IVF)."""
    if not len(ids):
        return np.zeros((0, index.d), np.float32)
    if _as_ivf(index) is None:
        vectors, stored = all_vectors(index)
        where = {int(p): i for i, p in enumerate(stored)}
        return np.ascontiguousarray(vectors[[where[int(p)] for p in ids]])
    return np.vstack([index.reconstruct(int(p)) for p in ids]).astype(np.float32)


def merge_indexes(
    sources: list[tuple[faiss.Index, int | None]],
    drop: np.ndarray,
    dimension: int,
    family_id: int | None,
    family: faiss.Index | None,
) -> faiss.Index:
    """One segment from several (each index with its family), without the ids in `drop`.

    IVF segments of the target family are merged code for code (`merge_from`: same cells, nothing
    re-encoded); other segments give their vectors back and are added again.
    """
    drop = np.asarray(drop, dtype=np.int64)
    if family is None:
        parts, id_parts = [], []
        for index, _ in sources:
            ids = stored_ids(index)
            ids = ids[~np.isin(ids, drop)]
            parts.append(segment_vectors(index, ids))
            id_parts.append(ids)
        vectors = np.vstack(parts) if parts else np.zeros((0, dimension), np.float32)
        ids = np.concatenate(id_parts) if id_parts else np.zeros(0, np.int64)
        order = np.argsort(ids)
        return new_segment_index(vectors[order], ids[order], dimension, None)
    target = faiss.clone_index(family)
    _as_ivf(target).set_direct_map_type(faiss.DirectMap.NoMap)
    for index, source_family in sources:
        if source_family == family_id:
            _as_ivf(index).set_direct_map_type(faiss.DirectMap.NoMap)
            target.merge_from(index, 0)
        else:
            ids = stored_ids(index)
            ids = ids[~np.isin(ids, drop)]
            if len(ids):
                target.add_with_ids(segment_vectors(index, ids), ids)
    if len(drop):
        target.remove_ids(faiss.IDSelectorBatch(drop))
    _as_ivf(target).set_direct_map_type(faiss.DirectMap.Hashtable)
    return target


class VectorView:
    """The segments of one commit, searched as one index: deleted ids masked, top-k merged.

    Results equal one index over the live vectors: each segment returns its own top k of live
    vectors (exact scores for flat segments; for IVF, segments of a family share cells, so each probes
    the same cells one index would), and the union's top k is the global top k.
    """

    def __init__(self, segments: list[Segment], deleted: dict[int, np.ndarray], dimension: int) -> None:
        self.segments = segments
        self.deleted = deleted  # segment id -> sorted deleted ids it still stores
        self.d = dimension
        self.ntotal = sum(len(s.ids) for s in segments) - sum(len(v) for v in deleted.values())

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these passage ids (decoded codes for IVF segments)."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(ids), self.d), np.float32)
        found = np.zeros(len(ids), dtype=bool)
        for seg in self.segments:
            at = np.minimum(np.searchsorted(seg.ids, ids), max(len(seg.ids) - 1, 0))
            mine = ~found & (seg.ids[at] == ids) if len(seg.ids) else np.zeros(len(ids), dtype=bool)
            if mine.any():
                wanted = ids[mine]
                if len(wanted) * 8 < len(seg.ids):  # a few: one lookup each beats decoding all
                    out[mine] = np.vstack([seg.index.reconstruct(int(p)) for p in wanted])
                else:
                    out[mine] = segment_vectors(seg.index, wanted)
                found |= mine
        if not found.all():
            raise KeyError(f"no segment holds passages {ids[~found][:5].tolist()}")
        return out

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None):
        """(scores, ids) of the top k live vectors per query, best first, padded with -1 ids."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        found_s, found_i = [], []
        for seg in self.segments:
            scores, ids = self._search_segment(seg, queries, k, allowed)
            found_s.append(scores)
            found_i.append(ids)
        n = len(queries)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        if not found_s:
            return scores, ids
        all_s, all_i = np.hstack(found_s), np.hstack(found_i)
        all_s = np.where(all_i >= 0, all_s, -np.inf)
        for row in range(n):
            order = np.lexsort((all_i[row], -all_s[row]))[:k]
            keep = order[all_i[row, order] >= 0]
            scores[row, : len(keep)] = all_s[row, keep]
            ids[row, : len(keep)] = all_i[row, keep]
        return scores, ids

    def _search_segment(self, seg: Segment, queries: np.ndarray, k: int, allowed: np.ndarray | None):
        size = len(seg.ids)
        dead = self.deleted.get(seg.id)
        if allowed is not None:  # filter ids come from live rows only: no mask needed
            params = search_parameters(seg.index, allowed, self.ntotal)
            return seg.index.search(queries, min(k, size), params=params)
        if dead is None or not len(dead):
            return seg.index.search(queries, min(k, size))
        if len(dead) <= OVERFETCH_LIMIT:
            scores, ids = seg.index.search(queries, min(k + len(dead), size))
            ids = np.where(np.isin(ids, dead), -1, ids)
            return scores, ids
        inner = faiss.IDSelectorBatch(dead)
        outer = faiss.IDSelectorNot(inner)
        ivf = _as_ivf(seg.index)
        params = (
            faiss.SearchParameters(sel=outer)
            if ivf is None
            else faiss.SearchParametersIVF(sel=outer, nprobe=ivf.nprobe)
        )
        return seg.index.search(queries, min(k, size), params=params)

    def segment_of(self, pid: int) -> Segment | None:
        for seg in self.segments:
            if seg.holds(pid):
                return seg
        return None

    def reconstruct(self, pid: int) -> np.ndarray:
        seg = self.segment_of(int(pid))
        if seg is None:
            raise KeyError(pid)
        return seg.index.reconstruct(int(pid))
