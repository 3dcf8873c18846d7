"""What a user may type into the box beside words: "exact phrases" and -excluded words.

- `"الذكاء الاصطناعي"`: only passages holding these words next to each other, in this order (one
  quoted word: passages holding that word). Words
  are compared by their light stems (indexer/analysis/arabic.py), so spelling and clitic variants of
  the same words still match (الاصطناعى, والذكاء الاصطناعي); nothing else may stand between them.
- `-روسيا`: leave out every article that holds the word (its light stem) anywhere in its text.
- Everything else is the question, as before; a phrase's words are part of the question too.

Forgiving by design, as search boxes are: an unbalanced quote is ignored (the words after it are
ordinary words), a `-` inside or after a word (`e-commerce`, `2018-2019`) is an ordinary character,
and a query made only of exclusions (or of phrases' punctuation only) is searched as typed, with the
signs taken as plain text, rather than refused: there is nothing else to look for.

Phrases and exclusions narrow retrieval itself (store/reader.py turns them into FTS5 expressions
inside both channels' filters), so a dense hit that lacks the phrase is never shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dalil.indexer.analysis.arabic import tokens

_QUOTES = str.maketrans({"“": '"', "”": '"', "«": '"', "»": '"', "„": '"', "″": '"'})
_PHRASE = re.compile(r'"([^"]*)"')
_EXCLUSION = re.compile(r"(?:(?<=\s)|^)[-−](\S+)")
MAX_PHRASES = 8  # each is one FTS5 phrase inside every channel's filter
MAX_EXCLUSIONS = 16


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the question without the syntax: what is embedded, matched and highlighted
    phrases: tuple[str, ...] = ()  # each: the light stems of its words, space-separated
    excluded: tuple[str, ...] = ()  # light stems of the excluded words
    shown_phrases: tuple[str, ...] = ()  # the phrases and excluded words as typed, for showing
    shown_excluded: tuple[str, ...] = ()

    @property
    def narrows(self) -> bool:
        return bool(self.phrases or self.excluded)


def _stems(text: str) -> list[str]:
    return [t.stem for t in tokens(text)]


def parse_query(query: str) -> ParsedQuery:
    """Split a typed query into its question, phrases and exclusions (see the module docstring)."""
    typed = query.translate(_QUOTES)
    phrases: dict[str, str] = {}  # stems -> as typed
    for match in _PHRASE.finditer(typed):
        words = _stems(match.group(1))
        if words:  # one quoted word: that word is required
            phrases.setdefault(" ".join(words), " ".join(match.group(1).split()))
    rest = _PHRASE.sub(lambda m: f" {m.group(1)} ", typed).replace('"', " ")
    excluded: dict[str, str] = {}
    for match in _EXCLUSION.finditer(rest):
        for token in tokens(match.group(1)):
            excluded.setdefault(token.stem, match.group(1)[token.start : token.end])
    text = " ".join(_EXCLUSION.sub(" ", rest).split())
    if not tokens(text):  # only exclusions: search the words as typed (documented above)
        return ParsedQuery(" ".join(query.split()))
    phrase_items = list(phrases.items())[:MAX_PHRASES]
    excluded_items = list(excluded.items())[:MAX_EXCLUSIONS]
    return ParsedQuery(
        text,
        tuple(k for k, _ in phrase_items),
        tuple(k for k, _ in excluded_items),
        tuple(v for _, v in phrase_items),
        tuple(v for _, v in excluded_items),
    )
