"""The FAISS index behind dense search, chosen by size, behind one type.

- Below `exact_below` passages: exact search (`IDMap2,Flat`): a few ms per query, nothing to tune.
- From there on: an inverted-file index (IVF) with nlist ≈ 4·√N cells trained on a sample, storing
  8-bit scalar-quantised vectors by default (384 B + an 8 B id per 384-d passage, a quarter of
  float32), so a query scans only `nprobe` cells.

`VectorIndex` gives both the same verbs — `ids`, `vectors_of`, `all`, `search` (with a filter or
with ids to exclude), `describe`, `family`, `add` — and `VectorIndex.build`, `.read`, `.new` and
`.merged` make one; `FlatVectors` and `IvfVectors` hold what differs, so no caller branches on the
kind. Lucene's `KnnVectorsFormat` is the same idea: one reader/writer face over several layouts.

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
from dalil.indexer.store.vector_settings import VectorIndexSettings, choose_kind

log = logging.getLogger("dalil.indexer")

NPROBE_LADDER = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)

# A search that excludes at most this many ids asks for k + that many and filters after: any
# IDSelector turns off FAISS's BLAS path for flat search (a 512-question batch went from 355 ms to
# 6 s, shared/notes), and merges keep deleted counts low.
OVERFETCH_LIMIT = 256


class VectorIndex:
    """One FAISS index of passage vectors (unit length, inner product), exact or IVF."""

    def __init__(self, native: faiss.Index) -> None:
        self.native = native  # the FAISS object, for writing it to a file

    # --- making one -----------------------------------------------------------------------------

    @staticmethod
    def of(native: faiss.Index) -> VectorIndex:
        """The right kind for a FAISS index read or built elsewhere."""
        ivf = _as_ivf(native)
        return FlatVectors(native) if ivf is None else IvfVectors(native, ivf)

    @staticmethod
    def read(path: Path, nprobe: int | None = None) -> VectorIndex:
        """A segment file, ready to search: the recorded nprobe, ids mapped for reconstruct by id.
        Raises RuntimeError (FAISS's) when the file is missing or unreadable."""
        index = VectorIndex.of(faiss.read_index(str(path)))
        index.prepare(nprobe)
        return index

    @staticmethod
    def read_family(path: Path) -> faiss.Index:
        """A trained, empty IVF index (a family file) that new segments are cloned from."""
        return faiss.read_index(str(path))

    @staticmethod
    def empty(dimension: int, family: faiss.Index | None = None) -> VectorIndex:
        """Exact, or a clone of a trained IVF family (same cells, same codes)."""
        if family is None:
            return FlatVectors(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))
        native = faiss.clone_index(family)
        index = VectorIndex.of(native)
        index.prepare(None)
        return index

    @staticmethod
    def new(vectors: np.ndarray, ids: np.ndarray, dimension: int, family: faiss.Index | None) -> VectorIndex:
        """A segment for these vectors: exact, or in the cells of a trained IVF family."""
        index = VectorIndex.empty(dimension, family)
        index.add(vectors, ids)
        return index

    @staticmethod
    def build(
        vectors: np.ndarray,
        ids: np.ndarray,
        settings: VectorIndexSettings,
        queries: np.ndarray | None = None,
    ) -> tuple[VectorIndex, dict]:
        """The index a full build chooses for these vectors (rows L2-normalised), and its manifest
        section. `queries`: query-side embeddings to tune nprobe on (the indexer passes
        pseudo-questions cut from indexed passages). Without them, indexed passages stand in for
        queries — measured to overstate recall for real questions (0.96 tuned vs 0.77 real at 20k),
        so the indexer always passes some."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        n, d = vectors.shape
        kind = choose_kind(n, settings)
        if kind == "flat":
            index = VectorIndex.new(vectors, ids, d, None)
            return index, index.describe() | {"chosen_by": settings.kind}
        return IvfVectors.trained(kind, vectors, ids, settings, queries)

    @staticmethod
    def merged(
        sources: Sequence[tuple[VectorIndex, int | None]],
        drop: np.ndarray,
        dimension: int,
        family_id: int | None,
        family: faiss.Index | None,
    ) -> VectorIndex:
        """One segment from several (each with its family id), without the ids in `drop`.

        IVF segments of the target family are merged code for code (`merge_from`: same cells,
        nothing re-encoded); other segments give their vectors back and are added again.
        """
        drop = np.asarray(drop, dtype=np.int64)
        if family is None:
            parts = [source.live(drop) for source, _ in sources]
            vectors = np.vstack([v for v, _ in parts]) if parts else np.zeros((0, dimension), np.float32)
            ids = np.concatenate([i for _, i in parts]) if parts else np.zeros(0, np.int64)
            order = np.argsort(ids)
            return VectorIndex.new(vectors[order], ids[order], dimension, None)
        target = faiss.clone_index(family)
        ivf = _as_ivf(target)
        ivf.set_direct_map_type(faiss.DirectMap.NoMap)
        for source, source_family in sources:
            if source_family == family_id and isinstance(source, IvfVectors):
                source.ivf.set_direct_map_type(faiss.DirectMap.NoMap)
                target.merge_from(source.native, 0)
            else:
                vectors, ids = source.live(drop, in_order=False)
                if len(ids):
                    target.add_with_ids(vectors, ids)
        if len(drop):
            target.remove_ids(faiss.IDSelectorBatch(drop))
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        return IvfVectors(target, ivf)

    # --- the verbs ------------------------------------------------------------------------------

    @property
    def d(self) -> int:
        return int(self.native.d)

    @property
    def size(self) -> int:
        """Vectors stored (deleted ones a segment still holds included)."""
        return int(self.native.ntotal)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.d)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids):
            self.native.add_with_ids(vectors, ids)

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, ids) of everything stored."""
        ids = self.ids()
        return self.vectors_of(ids), ids

    def live(self, drop: np.ndarray, in_order: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, ids) of what is stored without the ids in `drop` (in id order, or as stored)."""
        ids = self.ids()
        ids = ids[~np.isin(ids, drop)]
        if in_order:
            ids = np.sort(ids)
        return self.vectors_of(ids), ids

    def reconstruct(self, pid: int) -> np.ndarray:
        return self.native.reconstruct(int(pid))

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
        total: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k best stored vectors per query, -1 ids where fewer are found.

        `allowed`: only these ids (a filter, applied inside FAISS). `excluded`: never these ids (a
        segment's deleted vectors; asked for k + len(excluded) and masked after when they are few).
        `total`: live passages of the whole index when this is a segment of it (an IVF search
        widens nprobe by how selective the filter is over the whole index).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.size)
        if allowed is not None:  # filter ids come from live rows only: nothing to exclude
            return self.native.search(queries, k, params=self.parameters(allowed, total))
        if excluded is None or not len(excluded):
            return self.native.search(queries, k)
        if len(excluded) <= OVERFETCH_LIMIT:
            scores, ids = self.native.search(queries, min(k + len(excluded), self.size))
            return scores, np.where(np.isin(ids, excluded), -1, ids)
        outer = faiss.IDSelectorNot(faiss.IDSelectorBatch(excluded))
        return self.native.search(queries, k, params=self._with_selector(outer))

    def parameters(
        self, allowed: np.ndarray | None, total: int | None = None
    ) -> faiss.SearchParameters | None:
        """Search parameters for a filtered search (see `search`)."""
        if allowed is None:
            return None
        return self._with_selector(faiss.IDSelectorBatch(allowed))

    # what differs by kind
    def prepare(self, nprobe: int | None) -> None:
        """After reading or cloning: whatever searching and reconstructing by id need."""

    def ids(self) -> np.ndarray:
        """Every passage id stored."""
        raise NotImplementedError

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids, in their order (decoded codes for IVF)."""
        raise NotImplementedError

    def describe(self) -> dict:
        """The manifest's "faiss" section for this index."""
        raise NotImplementedError

    def family(self) -> faiss.Index | None:
        """The trained, empty copy new segments are cloned from (None: exact segments need none)."""
        raise NotImplementedError

    def _with_selector(self, selector) -> faiss.SearchParameters:
        raise NotImplementedError


class _Pinned:
    """Numpy's view of memory another object owns: the array made from it (`np.asarray`) has this
    as its base, so the owner lives as long as the array or any view of it."""

    def __init__(self, view: np.ndarray, owner: object) -> None:
        self.__array_interface__ = view.__array_interface__
        self._view = view
        self._owner = owner


class FlatVectors(VectorIndex):
    """Exact search over every stored vector (`IDMap2,Flat`)."""

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.native.id_map).astype(np.int64)

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, ids); the vectors are a view of FAISS's memory, not a copy, and keep the index
        that owns it alive (a bare view outlived its index once the reader was dropped, and read
        freed memory: tests/test_cluster.py compared garbage)."""
        ids = self.ids()
        if not len(ids):
            return np.zeros((0, self.d), np.float32), ids
        flat = faiss.downcast_index(self.native.index)
        view = faiss.rev_swig_ptr(flat.get_xb(), len(ids) * self.d).reshape(len(ids), self.d)
        return np.asarray(_Pinned(view, self.native)), ids

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.d), np.float32)
        vectors, stored = self.all()
        where = {int(p): i for i, p in enumerate(stored)}
        return np.ascontiguousarray(vectors[[where[int(p)] for p in ids]])

    def describe(self) -> dict:
        return {"type": "IDMap2,Flat", "metric": "inner_product", "normalised": True}

    def family(self) -> None:
        return None

    def _with_selector(self, selector) -> faiss.SearchParameters:
        return faiss.SearchParameters(sel=selector)


class IvfVectors(VectorIndex):
    """An inverted file: `nprobe` of `nlist` cells searched per query."""

    def __init__(self, native: faiss.Index, ivf=None) -> None:
        super().__init__(native)
        self.ivf = ivf if ivf is not None else faiss.extract_index_ivf(native)

    @staticmethod
    def trained(
        kind: str,
        vectors: np.ndarray,
        ids: np.ndarray,
        settings: VectorIndexSettings,
        queries: np.ndarray | None,
    ) -> tuple[IvfVectors, dict]:
        n, d = vectors.shape
        nlist = settings.nlist or max(1, min(n // 39, round(4 * math.sqrt(n))))  # FAISS wants >=39 per cell
        if nlist > n:  # k-means cannot make more cells than it has points
            log.warning("nlist %d is more than the %d passages; using %d", nlist, n, n)
            nlist = n
        native = _empty_ivf(kind, d, nlist)
        rng = np.random.default_rng(settings.seed)
        sample = np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))  # FAISS asks >= 39 per cell
        native.train(vectors[sample])
        native.add_with_ids(vectors, ids)
        native.set_direct_map_type(faiss.DirectMap.Hashtable)
        nprobe, recall, curve = tune_nprobe(native, vectors, ids, settings, queries)
        native.nprobe = nprobe
        log.info("vector index %s: nlist=%d nprobe=%d recall@10=%.3f", kind, nlist, nprobe, recall)
        index = IvfVectors(native)
        section = index.describe() | {
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

    @property
    def nlist(self) -> int:
        return int(self.ivf.nlist)

    @property
    def nprobe(self) -> int:
        return int(self.ivf.nprobe)

    def prepare(self, nprobe: int | None) -> None:
        if nprobe:
            self.ivf.nprobe = int(nprobe)
        if self.ivf.direct_map.type != faiss.DirectMap.Hashtable:
            self.ivf.set_direct_map_type(faiss.DirectMap.Hashtable)

    def ids(self) -> np.ndarray:
        lists = self.ivf.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(c), lists.list_size(c)).copy()
            for c in range(self.ivf.nlist)
            if lists.list_size(c)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.d), np.float32)
        return np.vstack([self.native.reconstruct(int(p)) for p in ids]).astype(np.float32)

    def describe(self) -> dict:
        return {
            "type": f"IVF{self.ivf.nlist},{_code_name(self.ivf)}",
            "metric": "inner_product",
            "normalised": True,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "bytes_per_code": int(self.ivf.code_size),
        }

    def family(self) -> faiss.Index:
        family = faiss.clone_index(self.native)
        faiss.extract_index_ivf(family).set_direct_map_type(faiss.DirectMap.NoMap)
        family.reset()
        return family

    def parameters(
        self, allowed: np.ndarray | None, total: int | None = None
    ) -> faiss.SearchParameters | None:
        """An IVF index only looks in `nprobe` cells; when a filter keeps a fraction f of the
        passages, the cells hold ~f as many candidates, so nprobe grows by 1/f (capped at nlist:
        exact over the cells)."""
        if allowed is None:
            return None
        nprobe = self.nprobe
        if len(allowed):
            nprobe = min(self.nlist, math.ceil(nprobe * (total or self.size) / len(allowed)))
        return faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(allowed), nprobe=nprobe)

    def _with_selector(self, selector) -> faiss.SearchParameters:
        return faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe)


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


# --- Segments: immutable FAISS files searched together as one index ---------------------------


@dataclass
class Segment:
    """One immutable FAISS file: its vectors, its sorted ids, and the IVF family it was cloned from."""

    id: int
    file: str
    family: int | None
    index: VectorIndex
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
    index = VectorIndex.read(path, nprobe)
    return Segment(segment_id, file, family, index, np.sort(index.ids()))


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
                    out[mine] = seg.index.vectors_of(wanted)
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
        return seg.index.search(queries, k, allowed, excluded=self.deleted.get(seg.id), total=self.ntotal)

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
