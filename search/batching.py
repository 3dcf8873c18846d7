"""Questions asked at the same time are embedded in one model call.

A server answers many requests at once; each one's question (and an English question's words, looked
up beside it in the lexical thread) would otherwise be its own ONNX Runtime call on one thread. Here
one thread runs the model: whatever texts are waiting when it is free go into one batch. Nothing
waits for company: an idle server embeds a lone question at once, and a busy one gathers the
questions that arrived while the previous batch ran (opportunistic batching, as inference servers
do). A batch of 8 short questions costs ~2-3 times one (docs/benchmarks.md), so under load the
model's cost per question falls to a third or less.

Written here rather than taken from a library: the serving libraries that batch (Ray Serve's
`@serve.batch`, Triton) are asyncio- or server-bound; this is the few lines a thread pool needs.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

MAX_BATCH = 32  # texts per model call (short questions and words: padding stays small)


_BATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def query_batcher(encoder, purpose: str = "questions") -> QueryBatcher:
    """The batcher of an encoder's `encode_queries` for one purpose (every searcher over it shares
    its thread: a server that reloads its index keeps one). An English question's words have their
    own ("words"), so that they are embedded on the second core while its question is on the first,
    rather than after it (ONNX Runtime sessions take concurrent runs)."""
    with _BATCHERS_LOCK:
        mine = _BATCHERS.setdefault(encoder, {})
        found = mine.get(purpose)
        if found is None:
            found = mine[purpose] = QueryBatcher(encoder.encode_queries)
        return found


class QueryBatcher:
    """`encode(texts)` from many threads; one thread makes the model calls, batched."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int = MAX_BATCH) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._waiting: queue.SimpleQueue[tuple[list[str], Future]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.calls = 0  # model calls made, for benchmarks
        self.texts = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self._encode([])
        done: Future = Future()
        self._waiting.put((list(texts), done))
        self._ensure_thread()
        return done.result()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="dalil-embed", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._waiting.get()]
            size = len(batch[0][0])
            while size < self._max_batch:
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                size += len(item[0])
            self._embed(batch)

    def _embed(self, batch: list[tuple[list[str], Future]]) -> None:
        texts = [t for part, _ in batch for t in part]
        try:
            vectors = np.asarray(self._encode(texts), dtype=np.float32)
        except BaseException as exc:  # each caller gets the failure, not a hung request
            for _, done in batch:
                done.set_exception(exc)
            return
        self.calls += 1
        self.texts += len(texts)
        start = 0
        for part, done in batch:
            done.set_result(vectors[start : start + len(part)])
            start += len(part)
