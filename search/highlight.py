"""Marking the question's words in a passage, matched on normalised forms and light stems.

A query word matches a passage word when their normalised forms are equal (الاصطناعي marks
الاصطناعى) or, for Arabic words, their light stems are (الشركات marks والشركة). The snippet is
a window around the sentence with the most distinct matches; its text is HTML-escaped and the
matches are wrapped in <mark>. Offsets are character offsets into the passage text. For an English
question, the Arabic translations of its words (search/crosslingual.py) are matched the same way.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dalil.indexer.analysis.arabic import is_arabic_term, stem
from dalil.indexer.analysis.splitting import sentence_spans
from dalil.indexer.analysis.terms import QueryTerms, StoredTokens, query_terms

SNIPPET_CHARS = 260
_MIN_STEM_MATCH = 3  # shorter stems match too many unrelated words


@dataclass(frozen=True)
class Highlight:
    snippet: str  # HTML: escaped text with <mark>...</mark> around matches
    offsets: list[tuple[int, int]] = field(default_factory=list)  # all matches in the passage text
    snippet_start: int = 0
    snippet_end: int = 0


def match_groups(question: str, translations: Mapping[str, Sequence[str]] | None = None) -> list[QueryTerms]:
    """One group of forms per content word of the question: the word (normalised, and its light stem
    when that has three letters or more) and, for a Latin word, the Arabic words aligned with it
    (search/crosslingual.py). A passage word matches the question when it is in one of the groups."""
    translations = translations or {}
    terms = query_terms(question)
    groups = []
    for word in terms.exact:
        forms = (word, *sorted(translations.get(word, ())))
        groups.append(QueryTerms(forms, match_stems(forms)))
    return groups


def match_stems(forms: Sequence[str]) -> tuple[str, ...]:
    """The light stems a passage word may match these forms by: of Arabic forms, three letters or more."""
    stems = (stem(f) for f in forms if is_arabic_term(f))  # each stemmed once: ~300 forms an English question
    return tuple(dict.fromkeys(s for s in stems if len(s) >= _MIN_STEM_MATCH))


def match_terms(groups: list[QueryTerms]) -> tuple[set[str], set[str]]:
    """All the forms of the groups: (normalised words, light stems)."""
    return {w for g in groups for w in g.exact}, {s for g in groups for s in g.stems}


@dataclass(frozen=True)
class Forms:
    """The normalised words and light stems a text holds (for the confidence's coverage)."""

    norms: frozenset[str]
    stems: frozenset[str]

    @classmethod
    def of(cls, *parts: str | StoredTokens) -> Forms:
        """Of texts analysed now, or of passages' stored tokens (a headline and its passage)."""
        norms: set[str] = set()
        stems: set[str] = set()
        for part in parts:
            stored = StoredTokens.of(part) if isinstance(part, str) else part
            norms.update(stored.norms)
            stems.update(stored.stems)
        return cls(frozenset(norms), frozenset(stems))


def groups_held(text: str | Forms, groups: Sequence[QueryTerms]) -> set[int]:
    """Which of the groups (question words) have a form in `text`, matched as highlighting does.
    (A group's stems are Arabic, so a Latin word, whose stem is itself, never meets one.)"""
    forms = Forms.of(text) if isinstance(text, str) else text
    norms, stems = forms.norms, forms.stems
    return {i for i, g in enumerate(groups) if norms.intersection(g.exact) or stems.intersection(g.stems)}


def match_offsets(
    text: str,
    question: str,
    translations: Mapping[str, Sequence[str]] | None = None,
    stored: StoredTokens | None = None,
    terms: tuple[set[str], set[str]] | None = None,
) -> list[tuple[int, int]]:
    """Offsets of the passage words that match the question's words, or their Arabic translations.
    `stored`: the passage's tokens as indexing stored them (else the text is analysed now);
    `terms`: `match_terms` of the question, when the caller already has them (one per question)."""
    exact, stems = terms if terms is not None else match_terms(match_groups(question, translations))
    toks = stored if stored is not None else StoredTokens.of(text)
    # `stem in stems` needs no test that the word is Arabic: the stems matched are Arabic ones
    return [
        (int(a), int(b))
        for a, b, norm, st in zip(toks.starts, toks.ends, toks.norms, toks.stems, strict=True)
        if norm in exact or st in stems
    ]


def holds_a_word(stored: StoredTokens, terms: tuple[set[str], set[str]]) -> bool:
    """Whether a passage holds one of the question's words, matched as `match_offsets` marks them."""
    exact, stems = terms
    return not exact.isdisjoint(stored.norms) or not stems.isdisjoint(stored.stems)


def highlight(
    text: str,
    question: str,
    max_chars: int = SNIPPET_CHARS,
    translations: Mapping[str, Sequence[str]] | None = None,
    stored: StoredTokens | None = None,
    terms: tuple[set[str], set[str]] | None = None,
) -> Highlight:
    offsets = match_offsets(text, question, translations, stored, terms)
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
