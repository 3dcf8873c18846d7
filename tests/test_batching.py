"""Questions asked at once share model calls (search/batching.py), and each gets its own vectors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from dalil.search.batching import QueryBatcher


class SlowModel:
    """A model whose calls take a while: questions arriving meanwhile queue up for the next call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        time.sleep(0.02)
        return np.array([[float(len(t)), float(ord(t[0]))] for t in texts], dtype=np.float32)


def test_concurrent_questions_are_batched_and_answered_each_their_own():
    model = SlowModel()
    batcher = QueryBatcher(model)
    texts = [f"{chr(0x627 + i)}question {'x' * i}" for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda t: batcher([t, t + "!"]), texts))
    for text, vectors in zip(texts, results, strict=True):
        assert vectors.tolist() == [[len(text), ord(text[0])], [len(text) + 1, ord(text[0])]]
    assert sum(model.calls) == 48 and len(model.calls) < 24  # fewer calls than questions


def test_a_lone_question_does_not_wait_for_company():
    model = SlowModel()
    batcher = QueryBatcher(model)
    started = time.perf_counter()
    assert batcher(["سؤال"]).shape == (1, 2)
    assert time.perf_counter() - started < 0.5 and model.calls == [1]


def test_a_failing_call_fails_its_callers_and_the_next_call_works():
    calls = []

    def flaky(texts):
        calls.append(texts)
        if len(calls) == 1:
            raise RuntimeError("model down")
        return np.zeros((len(texts), 2), np.float32)

    batcher = QueryBatcher(flaky)
    with pytest.raises(RuntimeError, match="model down"):
        batcher(["a"])
    assert batcher(["b"]).shape == (1, 2)
    assert threading.active_count() >= 1


def test_searchers_over_one_encoder_share_one_batcher(seed_index, encoder):
    from dalil.search.searcher import Searcher

    a, b = Searcher.open(seed_index, encoder), Searcher.open(seed_index, encoder)
    try:
        assert a.embed_queries is b.embed_queries
        assert a.search("الجيل الخامس", 1)[0].article_id == b.search("الجيل الخامس", 1)[0].article_id
    finally:
        a.close()
        b.close()
