"""A small thread-safe LRU map for query-side embeddings.

Query embedding is most of a query's cost (~15-25 ms on one core); people repeat questions and
words, and the service answers from many threads, so the cache sits in front of the encoder.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import numpy as np


class EmbeddingCache:
    def __init__(self, encode: Callable[[list[str]], np.ndarray], maxsize: int = 4096) -> None:
        self._encode = encode
        self._maxsize = maxsize
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_many(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts` in order; the ones not cached are encoded together in one call."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                vector = self._items.get(text)
                if vector is not None:
                    self._items.move_to_end(text)
                    found[text] = vector
            self.hits += len(found)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = np.asarray(self._encode(missing), dtype=np.float32)
            with self._lock:
                self.misses += len(missing)
                for text, vector in zip(missing, vectors, strict=True):
                    vector.flags.writeable = False  # shared between callers
                    found[text] = vector
                    self._items[text] = vector
                    self._items.move_to_end(text)
                while len(self._items) > self._maxsize:
                    self._items.popitem(last=False)
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)

    def __len__(self) -> int:
        return len(self._items)
