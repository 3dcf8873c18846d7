"""One vector-index type: exact and IVF segments answer the same verbs (store/vectors.py), so the
reader, the writer and the merger never branch on the kind."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from dalil.indexer.store.vector_settings import VectorIndexSettings
from dalil.indexer.store.vectors import OVERFETCH_LIMIT, FlatVectors, IvfVectors, VectorIndex
from test_scale_paths import clustered_unit_vectors

N, D = 2000, 64
KINDS = ["flat", "ivf-flat", "ivf-sq8"]


def _built(kind: str) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    vectors = clustered_unit_vectors(N, D)
    ids = np.arange(5000, 5000 + N, dtype=np.int64)
    settings = VectorIndexSettings(kind=kind, exact_below=0, tuning_queries=100)
    index, _ = VectorIndex.build(vectors, ids, settings)
    return index, vectors, ids


def _search_everything(index: VectorIndex, queries: np.ndarray, k: int, **kw):
    """The same search with every cell probed: IVF then ranks like exact search over its codes."""
    if isinstance(index, IvfVectors):
        index.ivf.nprobe = index.nlist
    return index.search(queries, k, **kw)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_answers_the_same_verbs(kind):
    index, vectors, ids = _built(kind)
    assert isinstance(index, FlatVectors if kind == "flat" else IvfVectors)
    assert index.size == N and index.d == D
    assert sorted(index.ids().tolist()) == ids.tolist()
    wanted = ids[[3, 700, 1999]]
    decoded = index.vectors_of(wanted)
    exact = vectors[[3, 700, 1999]]
    tolerance = 1e-6 if kind in ("flat", "ivf-flat") else 0.02  # SQ8 codes decode approximately
    assert np.abs(decoded - exact).max() <= tolerance
    assert np.abs(index.reconstruct(int(wanted[1])) - exact[1]).max() <= tolerance
    stored, stored_ids = index.all()
    assert len(stored) == N and set(stored_ids.tolist()) == set(ids.tolist())
    section = index.describe()
    assert section["metric"] == "inner_product"
    assert (index.family() is None) == (kind == "flat")
    if kind != "flat":
        family = index.family()
        assert (
            family.ntotal == 0
            and family.is_trained
            and section["nlist"] == faiss.extract_index_ivf(family).nlist
        )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("count", [10, OVERFETCH_LIMIT + 50])  # masked after, or a FAISS selector
def test_excluded_ids_never_come_back_and_the_rest_rank_as_without_them(kind, count):
    index, vectors, ids = _built(kind)
    queries = vectors[:5]
    _, plain = _search_everything(index, queries, 60)
    best = plain[:, :2].ravel()  # each question's two best answers are deleted, and others to the count
    rest = ids[~np.isin(ids, best)]
    others = rest[len(rest) - (count - len(set(best.tolist()))) :]
    excluded = np.unique(np.concatenate([best, others]))
    assert len(excluded) == count
    _, found = _search_everything(index, queries, 10, excluded=excluded)
    for row, wanted in zip(found, plain, strict=True):
        kept = [int(i) for i in row if i >= 0]
        assert not set(kept) & set(excluded.tolist())
        assert kept[:5] == [int(i) for i in wanted if i not in set(excluded.tolist())][:5]


@pytest.mark.parametrize("kind", KINDS)
def test_a_filter_keeps_only_allowed_ids(kind):
    index, vectors, ids = _built(kind)
    allowed = ids[::50]
    _, found = index.search(vectors[:4], 10, allowed)
    assert all(set(r[r >= 0].tolist()) <= set(allowed.tolist()) and (r >= 0).sum() == 10 for r in found)


@pytest.mark.parametrize("kind", KINDS)
def test_merged_segments_equal_one_index_without_the_dropped_ids(kind):
    whole, vectors, ids = _built(kind)
    family = whole.family()
    halves = [
        (VectorIndex.new(vectors[part], ids[part], D, family), 7 if family is not None else None)
        for part in (slice(0, N // 2), slice(N // 2, N))
    ]
    drop = ids[::9]
    merged = VectorIndex.merged(halves, drop, D, 7 if family is not None else None, family)
    assert type(merged) is type(whole)
    assert sorted(merged.ids().tolist()) == sorted(set(ids.tolist()) - set(drop.tolist()))
    keep = ~np.isin(ids, drop)
    reference = VectorIndex.new(vectors[keep], ids[keep], D, family)
    _, a = _search_everything(merged, vectors[:5], 10)
    _, b = _search_everything(reference, vectors[:5], 10)
    assert a.tolist() == b.tolist()
