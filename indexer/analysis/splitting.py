"""Splitting a cleaned article into passages that fit the embedding model's window.

A passage is normally one paragraph. Very short paragraphs (sub-headings, one-line leads) are
merged with the paragraph that follows them (or, at the end, the one before); long paragraphs are
cut at Arabic/Latin sentence ends (. ؟ ? ! ؛ and line ends) with about one sentence of overlap.
Every passage is an exact span of the article text: text[start:end] == passage.text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TokenCounter = Callable[[str], int]

# A sentence ends at . ! ? ؟ ؛ (optionally followed by closing quotes/brackets) before white space.
_SENTENCE_END = re.compile(r"[.!?؟؛…]+[\"'”’»)\]]*(?=\s)|\n")


@dataclass(frozen=True)
class SplitSettings:
    max_tokens: int = 256  # content tokens per passage; the model's window is larger (title + prefix)
    min_tokens: int = 24  # shorter blocks are merged with a neighbour
    overlap_tokens: int = 48  # at most this much trailing context is repeated in the next piece


@dataclass(frozen=True)
class Passage:
    ordinal: int
    start: int
    end: int
    text: str


def split_passages(
    text: str,
    paragraphs: Sequence[tuple[int, int]],
    count_tokens: TokenCounter,
    settings: SplitSettings | None = None,
) -> list[Passage]:
    """Passages for one article, in order, each an exact span of `text`."""
    settings = settings or SplitSettings()
    blocks: list[tuple[int, int]] = []
    for start, end in paragraphs:
        if count_tokens(text[start:end]) <= settings.max_tokens:
            blocks.append((start, end))
        else:
            blocks.extend(_split_long(text, start, end, count_tokens, settings))
    merged = _merge_short(text, blocks, count_tokens, settings)
    return [Passage(i, s, e, text[s:e]) for i, (s, e) in enumerate(merged)]


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of text[start:end] as spans with surrounding white space trimmed."""
    spans: list[tuple[int, int]] = []
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        spans.append((pos, match.end()))
        pos = match.end()
    spans.append((pos, end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[0] < s[1]]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split_long(
    text: str, start: int, end: int, count: TokenCounter, settings: SplitSettings
) -> list[tuple[int, int]]:
    """Greedy packing of sentences into pieces; the next piece re-starts at the last short sentence."""
    units = _fit_units(text, sentence_spans(text, start, end), count, settings.max_tokens)
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        j = i + 1
        while j < len(units) and count(text[units[i][0] : units[j][1]]) <= settings.max_tokens:
            j += 1
        pieces.append((units[i][0], units[j - 1][1]))
        if j >= len(units):
            break
        # Overlap: begin the next piece with the last unit of this one when it is short enough.
        last = units[j - 1]
        overlaps = j - 1 > i and count(text[last[0] : last[1]]) <= settings.overlap_tokens
        i = j - 1 if overlaps else j
    return pieces


def _fit_units(
    text: str, spans: list[tuple[int, int]], count: TokenCounter, max_tokens: int
) -> list[tuple[int, int]]:
    """Sentences longer than the window are cut at word boundaries."""
    units: list[tuple[int, int]] = []
    for a, b in spans:
        if count(text[a:b]) <= max_tokens:
            units.append((a, b))
        else:
            units.extend(_cut_words(text, a, b, count, max_tokens))
    return units


def _cut_words(
    text: str, start: int, end: int, count: TokenCounter, max_tokens: int
) -> list[tuple[int, int]]:
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[start:end])]
    words = [(start + a, start + b) for a, b in words]
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        lo, hi = i + 1, len(words)  # binary search: the most words from i that still fit
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(text[words[i][0] : words[mid - 1][1]]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        pieces.append((words[i][0], words[lo - 1][1]))
        i = lo
    return pieces


def _merge_short(
    text: str, blocks: list[tuple[int, int]], count: TokenCounter, settings: SplitSettings
) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None  # a short block waiting to join the next one
    for block in blocks:
        if pending is not None:
            joined = (pending[0], block[1])
            if count(text[joined[0] : joined[1]]) <= settings.max_tokens:
                block = joined
            else:
                merged.append(pending)
            pending = None
        if count(text[block[0] : block[1]]) < settings.min_tokens:
            pending = block
        else:
            merged.append(block)
    if pending is not None:
        if merged and count(text[merged[-1][0] : pending[1]]) <= settings.max_tokens:
            merged[-1] = (merged[-1][0], pending[1])
        else:
            merged.append(pending)
    return merged
