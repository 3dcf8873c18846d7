"""Marking the question's words in a passage, matched on normalised forms and light stems.

A query word matches a passage word when their normalised forms are equal (الاصطناعي marks
الاصطناعى) or, for Arabic words, their light stems are (الشركات marks والشركة). The snippet is
a window around the sentence with the most distinct matches; its text is HTML-escaped and the
matches are wrapped in <mark>. Offsets are character offsets into the passage text. For an English
question, the Arabic translations of its words (search/crosslingual.py) are matched the same way.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from dalil.indexer.analysis.arabic import is_arabic_term, stem, tokens
from dalil.indexer.analysis.splitting import sentence_spans
from dalil.indexer.analysis.terms import query_terms

SNIPPET_CHARS = 260
_MIN_STEM_MATCH = 3  # shorter stems match too many unrelated words


@dataclass(frozen=True)
class Highlight:
    snippet: str  # HTML: escaped text with <mark>...</mark> around matches
    offsets: list[tuple[int, int]] = field(default_factory=list)  # all matches in the passage text
    snippet_start: int = 0
    snippet_end: int = 0


def match_offsets(
    text: str, question: str, translations: frozenset[str] = frozenset()
) -> list[tuple[int, int]]:
    """Offsets of the passage words that match the question's words, or their Arabic translations."""
    terms = query_terms(question)
    exact = set(terms.exact) | translations
    stems = {s for s in (*terms.stems, *(stem(t) for t in translations)) if len(s) >= _MIN_STEM_MATCH}
    return [
        (t.start, t.end)
        for t in tokens(text)
        if t.norm in exact or (is_arabic_term(t.norm) and t.stem in stems)
    ]


def highlight(
    text: str, question: str, max_chars: int = SNIPPET_CHARS, translations: frozenset[str] = frozenset()
) -> Highlight:
    offsets = match_offsets(text, question, translations)
    start, end = _snippet_window(text, offsets, max_chars)
    return Highlight(_render(text, start, end, offsets), offsets, start, end)


def _snippet_window(text: str, offsets: list[tuple[int, int]], max_chars: int) -> tuple[int, int]:
    """The best sentence (most distinct matches, then earliest), widened or cut to about max_chars."""
    sentences = sentence_spans(text, 0, len(text)) or [(0, len(text))]

    def matches(span: tuple[int, int]) -> int:
        return len({text[a:b] for a, b in offsets if span[0] <= a and b <= span[1]})

    best = max(sentences, key=lambda s: (matches(s), -s[0]))
    start, end = best
    if end - start > max_chars:  # a long sentence: centre on its first match
        first = next((a for a, b in offsets if start <= a < end), start)
        start = max(start, first - max_chars // 3)
        end = min(end, start + max_chars)
    else:  # a short one: add the following (then preceding) text up to the budget
        end = min(len(text), start + max_chars)
        if end - start < max_chars:
            start = max(0, end - max_chars)
    return _to_word_boundary(text, start, end)


def _to_word_boundary(text: str, start: int, end: int) -> tuple[int, int]:
    if start > 0 and not text[start - 1].isspace():
        nxt = text.find(" ", start)
        start = nxt + 1 if 0 <= nxt < end else start
    if end < len(text) and not text[end].isspace():
        prev = text.rfind(" ", start, end)
        end = prev if prev > start else end
    return start, end


def _render(text: str, start: int, end: int, offsets: list[tuple[int, int]]) -> str:
    parts: list[str] = ["…" if start > 0 else ""]
    pos = start
    for a, b in offsets:
        if a < start or b > end:
            continue
        parts += [html.escape(text[pos:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
        pos = b
    parts.append(html.escape(text[pos:end]))
    parts.append("…" if end < len(text) else "")
    return "".join(parts)
