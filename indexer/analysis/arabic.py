"""Arabic text analysis for matching: normalisation, light stemming, tokens with offsets.

Display text is never changed; these forms exist only to match a question against passages.

Normalisation (as Elasticsearch's `arabic_normalization`, plus digits and Latin case):
  أ إ آ ٱ -> ا,  ى -> ي,  ة -> ه,  tashkeel and tatweel removed (عُقِدَ -> عقد),
  Arabic-Indic and Persian digits -> 0-9 (١٢ -> 12), Latin lower-cased, presentation forms unfolded.
So the Egyptian spellings in the seeds match the standard ones: فى/في, الاصطناعى/الاصطناعي.

Light stemming (after Larkey et al.'s "light10"): one conjunction/preposition + article prefix
(و ف ب ك ل ال وال بال كال فال لل) and one common suffix (ها ان ات ون ين يه ه ي ...) are removed
when enough of the word is left. Latin words and numbers are never stemmed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Marks inside Arabic words: Quranic annotation signs, harakat/tanween/shadda/sukun, superscript alef.
_MARKS = "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed"
_TATWEEL = "\u0640"
# A token: letters and digits, with marks and tatweel allowed inside (they are dropped later).
TOKEN = re.compile(rf"(?:[^\W_]|[{_MARKS}{_TATWEEL}])+")
_STRIP = re.compile(rf"[{_MARKS}{_TATWEEL}\u200c-\u200f\u202a-\u202e\u2066-\u2069]")

_FOLD = str.maketrans(
    {
        "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا",
        "ى": "ي", "ة": "ه",
        "ک": "ك", "ی": "ي", "ۀ": "ه", "ھ": "ه",  # Persian/Urdu letter forms seen in Arabic web text
        **{chr(0x0660 + i): str(i) for i in range(10)},
        **{chr(0x06F0 + i): str(i) for i in range(10)},
    }
)  # fmt: skip

_ARABIC_LETTER = re.compile(r"[\u0621-\u064a\u066e-\u06d3\u06fa-\u06ff]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")

_PREFIXES = ("وال", "فال", "بال", "كال", "لل", "ال")  # longest first
_SUFFIXES = ("هما", "كما", "تين", "ها", "ان", "ات", "ون", "ين", "يه", "يا", "كم", "هم", "نا", "ه", "ي")
_MIN_STEM = 2


def normalize(text: str) -> str:
    """The matching form of a text: folded letters and digits, no marks, lower-case, single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _STRIP.sub("", text).translate(_FOLD).casefold()
    return " ".join(text.split())


def _normalize_token(token: str) -> str:
    return _STRIP.sub("", unicodedata.normalize("NFKC", token)).translate(_FOLD).casefold()


def stem(word: str) -> str:
    """Light stem of a normalised word; words that are not Arabic are returned unchanged."""
    if not _ARABIC_LETTER.match(word):
        return word
    if len(word) > 3 and word[0] == "و" and word[1:3] != "ال":
        word = word[1:] if len(word) - 1 >= 3 else word  # conjunction و ("and")
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= _MIN_STEM + 1:
            word = word[len(prefix) :]
            break
    else:
        if len(word) > 4 and word[0] in "فبكل" and word[1:3] == "ال":
            word = word[3:]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM + 1:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True)
class Token:
    start: int  # offsets in the original (display) text
    end: int
    norm: str  # normalised form
    stem: str  # light stem of the normalised form


def tokens(text: str) -> list[Token]:
    """Word tokens of the display text with their offsets and matching forms."""
    out: list[Token] = []
    for m in TOKEN.finditer(text):
        norm = _normalize_token(m.group())
        if norm:
            out.append(Token(m.start(), m.end(), norm, stem(norm)))
    return out


def script_of(text: str) -> str:
    """'ar' when at least half the letters are Arabic, 'latin' when most are Latin, else 'other'."""
    arabic = len(_ARABIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    letters = arabic + latin
    if letters == 0:
        return "other"
    return "ar" if arabic >= latin else "latin"


def is_arabic_term(term: str) -> bool:
    return bool(_ARABIC_LETTER.search(term))
