"""Suggestions while typing: completions of the typed prefix from the index's own headlines.

Candidates are the words and the two- and three-word phrases of every headline (a phrase neither
starting nor ending with a function word, nor crossing punctuation), counted by the articles whose
headline holds them; a phrase must occur in two headlines to be offered, a word in one. They are
matched on normalised forms (indexer/analysis/arabic.py: أ/إ/آ → ا, ة → ه, ى → ي, no diacritics,
Latin lower-cased), so "الاصطناعى" completes to "الذكاء الاصطناعي" as typed in the headlines.
Each is shown in its most frequent written form, most frequent first.

When the whole prefix completes to nothing (a question of four words, say), its last two words,
else its last word, are completed and the words before them kept as typed.

Why by hand: SQLite FTS5 can match prefixes but not rank phrases by headline frequency, and the
search libraries that do (Elasticsearch's completion suggester, Lucene's AnalyzingSuggester) are
servers or Java. The table is a sorted list of keys: a prefix is two binary searches, and the top
counts in that range one numpy partition (≤ 10 ms at 100k passages: docs/benchmarks.md).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

import numpy as np
from dalil.indexer.analysis.arabic import normalize, tokens
from dalil.indexer.analysis.terms import STOPWORDS

MAX_PREFIX_CHARS = 100
MAX_WORDS = 3
MIN_PHRASE_COUNT = 2
_END = "\U0010ffff"


class Suggester:
    def __init__(self, titles: Iterable[str]) -> None:
        counts: Counter[str] = Counter()
        shown: dict[str, Counter[str]] = {}
        for title in titles:
            for key, surface in set(_phrases(title)):
                counts[key] += 1
                shown.setdefault(key, Counter())[surface] += 1
        keys = sorted(k for k, c in counts.items() if c >= MIN_PHRASE_COUNT or " " not in k)
        self.keys = keys
        self.counts = np.array([counts[k] for k in keys], dtype=np.int64)
        self.lengths = np.array([len(k) for k in keys], dtype=np.int64)
        self.shown = [shown[k].most_common(1)[0][0] for k in keys]

    def __len__(self) -> int:
        return len(self.keys)

    def complete(self, prefix: str, k: int = 8) -> list[dict]:
        """Up to k completions of `prefix`: {"text", "count"} (headlines holding it), best first."""
        typed = " ".join(prefix.split())[:MAX_PREFIX_CHARS]
        words = typed.split(" ")
        out: list[dict] = []
        seen: set[str] = set()
        for kept in range(len(words)):  # the whole prefix, then its last two words, then its last
            tail = " ".join(words[kept:])
            if kept and (len(words) - kept > 2 or not tail):
                continue
            head = " ".join(words[:kept])
            for index in self._best(normalize(tail), k):
                text = f"{head} {self.shown[index]}" if head else self.shown[index]
                if text not in seen and normalize(text) != normalize(typed):
                    seen.add(text)
                    out.append({"text": text, "count": int(self.counts[index])})
            if out:  # a shorter tail only when the longer one completes to nothing
                break
        return out[:k]

    def _best(self, key: str, k: int) -> list[int]:
        """Indexes of the k best keys starting with `key`: most frequent, then shortest, then first
        in order (ties broken the same way whatever k is)."""
        if not key:
            return []
        lo = bisect.bisect_left(self.keys, key)
        hi = bisect.bisect_left(self.keys, key + _END, lo)
        counts = self.counts[lo:hi]
        if hi - lo > k:  # only those at least as frequent as the k-th can be among the best
            threshold = np.partition(counts, hi - lo - k)[hi - lo - k]
            among = np.flatnonzero(counts >= threshold)
        else:
            among = np.arange(hi - lo)
        order = np.lexsort((among, self.lengths[lo:hi][among], -counts[among]))
        return [int(lo + among[i]) for i in order[:k]]


def _phrases(title: str) -> Iterable[tuple[str, str]]:
    """(normalised key, written form) of each word and two- or three-word phrase of a headline."""
    toks = tokens(title)
    for i, first in enumerate(toks):
        if first.norm in STOPWORDS or len(first.norm) < 2:
            continue
        for j in range(i, min(i + MAX_WORDS, len(toks))):
            if j > i and title[toks[j - 1].end : toks[j].start].strip():  # punctuation between
                break
            last = toks[j]
            if last.norm in STOPWORDS or len(last.norm) < 2:
                continue
            yield " ".join(t.norm for t in toks[i : j + 1]), title[first.start : last.end]
