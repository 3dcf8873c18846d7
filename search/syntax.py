"""What a user may type into the box beside words: quoted phrases, +"required phrases", -exclusions.

People quote all the time: Arabic headlines and questions use «», “” and "" as ordinary
punctuation (`ثقافة «أخاف نحتاجه»`, `طائرة بـ"مزايا فريدة"`, a minister's words quoted whole). So:

- **A quoted phrase is a preference, never a wall.** `"الذكاء الاصطناعي"`, «...», “...”, „...“:
  the question is searched as if the quote marks were not there, then the passages that hold the
  phrase (its words next to each other, in order, compared by light stems, so الاصطناعى and
  والذكاء still match) are moved up (search/searcher.py, `prefer_phrases`). When none of the
  candidates holds a phrase, the answer is the words' answer, and it says so: the phrase is listed
  in `Answer.unmatched` ("no exact match for «…»; results for the words" on the page, in the API's
  `syntax.unmatched` and in the CLI). A letter glued before the quote (بـ"…", و«…», لـ“…”) is the
  clitic it is: split from the phrase's first word, it is a function word of the question.
- **`+"phrase"` is a wall**: only passages holding it are answered (both channels filter on it,
  store/reader.py), as a user who types `+` asks for; none holding it means no results, and the
  answer says which phrase no article holds.
- **`-word` leaves out** every article that holds the word (its light stem) anywhere.

Forgiving by design, as search boxes are: an unbalanced quote is ignored (the words after it are
ordinary words); a `-` or `+` inside or after a word (`e-commerce`, `2018-2019`, `C++`) is an
ordinary character; a query made only of exclusions (or of quote marks only) is searched as typed,
signs taken as plain text, rather than refused: there is nothing else to look for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dalil.indexer.analysis.arabic import tokens

_QUOTES = str.maketrans({"“": '"', "”": '"', "«": '"', "»": '"', "„": '"', "″": '"'})
_PHRASE = re.compile(r'(\+?)"([^"]*)"')
_EXCLUSION = re.compile(r"(?:(?<=\s)|^)[-−](\S+)")
MAX_PHRASES = 8  # each is one FTS5 phrase: a filter inside every channel, or a look-up among candidates
MAX_EXCLUSIONS = 16


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the question without the syntax: what is embedded, matched and highlighted
    phrases: tuple[str, ...] = ()  # preferred phrases: the light stems of each one's words
    excluded: tuple[str, ...] = ()  # light stems of the excluded words
    shown_phrases: tuple[str, ...] = ()  # as typed, for showing (same order as `phrases`)
    shown_excluded: tuple[str, ...] = ()
    required: tuple[str, ...] = ()  # +"phrases": only passages holding them are answered
    shown_required: tuple[str, ...] = ()

    @property
    def narrows(self) -> bool:
        """Whether retrieval itself is filtered (required phrases, exclusions)."""
        return bool(self.required or self.excluded)

    @property
    def has_syntax(self) -> bool:
        return bool(self.phrases or self.required or self.excluded)

    def shown(self, stems: str) -> str:
        """A phrase (preferred or required) as the user typed it."""
        pairs = dict(zip(self.phrases, self.shown_phrases, strict=True))
        pairs.update(zip(self.required, self.shown_required, strict=True))
        return pairs.get(stems, stems)


def _stems(text: str) -> list[str]:
    return [t.stem for t in tokens(text)]


def parse_query(query: str) -> ParsedQuery:
    """Split a typed query into its question, phrases and exclusions (see the module docstring)."""
    typed = query.translate(_QUOTES)
    preferred: dict[str, str] = {}  # stems -> as typed
    required: dict[str, str] = {}
    for match in _PHRASE.finditer(typed):
        words = _stems(match.group(2))
        if not words:
            continue
        # `+` asks for a wall only at a word's start: the `+` of `C++"` is part of the word before
        wall = bool(match.group(1)) and (match.start() == 0 or typed[match.start() - 1].isspace())
        (required if wall else preferred).setdefault(" ".join(words), " ".join(match.group(2).split()))
    for stems in required:  # a phrase both preferred and required is required
        preferred.pop(stems, None)

    def words_of(m: re.Match) -> str:
        plus = m.group(1) if not (m.start() == 0 or typed[m.start() - 1].isspace()) else ""
        return f"{plus} {m.group(2)} "

    rest = _PHRASE.sub(words_of, typed).replace('"', " ")
    excluded: dict[str, str] = {}
    for match in _EXCLUSION.finditer(rest):
        for token in tokens(match.group(1)):
            excluded.setdefault(token.stem, match.group(1)[token.start : token.end])
    text = " ".join(_EXCLUSION.sub(" ", rest).split())
    if not tokens(text):  # only exclusions: search the words as typed (documented above)
        return ParsedQuery(" ".join(query.split()))
    phrase_items = list(preferred.items())[:MAX_PHRASES]
    required_items = list(required.items())[:MAX_PHRASES]
    excluded_items = list(excluded.items())[:MAX_EXCLUSIONS]
    return ParsedQuery(
        text,
        phrases=tuple(k for k, _ in phrase_items),
        excluded=tuple(k for k, _ in excluded_items),
        shown_phrases=tuple(v for _, v in phrase_items),
        shown_excluded=tuple(v for _, v in excluded_items),
        required=tuple(k for k, _ in required_items),
        shown_required=tuple(v for _, v in required_items),
    )


def without_quotes(query: str) -> str:
    """The query with every quote mark deleted, as a user would retype it without them (بـ"مزايا" ->
    بـمزايا): the evaluation's baseline for questions that hold quotes."""
    return " ".join(query.translate(_QUOTES).replace('"', "").split())
