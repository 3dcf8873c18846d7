"""BM25 with statistics handed in: the collection-wide ranking of an index split into shards.

FTS5's bm25() scores with the statistics of its own table: how many rows it holds, their average
length, and how many rows hold each phrase. A shard's table holds part of the collection, so its
bm25() would rank by the part's statistics, and merging the shards' top lists would not give the
ranking of one index over everything (a rare word in one shard may be common in another). So a
shard reports its statistics (`lexical_stats`), the caller sums them over the shards, and each shard
scores with the sums through `bm25_with`: FTS5's own bm25 formula (k1 = 1.2, b = 0.75, a weight per
column; sqlite/ext/fts5/fts5_aux.c), computed from each row's hits per phrase and token count.
Given one index's own statistics it returns FTS5's bm25 exactly (tests/test_shards.py).

Written by hand because FTS5 has no way to feed bm25() outside statistics, and apsw exposes the
extension API an auxiliary function needs. It costs a Python call per matching row, so it is used
only where statistics come from outside (sharded search); one index keeps the built-in bm25().
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import apsw

K1, B = 1.2, 0.75  # FTS5's constants
FUNCTION = "bm25_with"


@dataclass(frozen=True)
class LexicalStats:
    """A table's BM25 statistics for one question's phrases; `+` adds two disjoint tables'."""

    rows: int
    tokens: int
    phrase_rows: tuple[int, ...]  # rows holding each phrase, in MATCH-expression order

    def __add__(self, other: LexicalStats) -> LexicalStats:
        return LexicalStats(
            self.rows + other.rows,
            self.tokens + other.tokens,
            tuple(a + b for a, b in zip(self.phrase_rows, other.phrase_rows, strict=True)),
        )

    def idf(self) -> list[float]:
        """FTS5's idf per phrase: never zero or below, so a very common word still counts a little."""
        out = []
        for hits in self.phrase_rows:
            value = math.log((self.rows - hits + 0.5) / (hits + 0.5))
            out.append(value if value > 0 else 1e-6)
        return out


def _bm25_with(api: apsw.FTS5ExtensionApi, weights_json: str, stats_json: str) -> float:
    weights = json.loads(weights_json)
    rows, tokens, idf = json.loads(stats_json)
    length_norm = K1 * (1 - B + B * api.column_size(-1) / (tokens / rows))
    score = 0.0
    for phrase, phrase_idf in enumerate(idf):
        freq = 0.0
        for column, hits in enumerate(api.phrase_locations(phrase)):
            if hits:
                freq += (weights[column] if column < len(weights) else 1.0) * len(hits)
        score += phrase_idf * (freq * (K1 + 1.0)) / (freq + length_norm)
    return score


def register(db: apsw.Connection) -> None:
    db.register_fts5_function(FUNCTION, _bm25_with)


def encode(stats: LexicalStats) -> str:
    """The statistics as `bm25_with` takes them (SQL passes text, not objects)."""
    return json.dumps([stats.rows, max(stats.tokens, 1), stats.idf()])
