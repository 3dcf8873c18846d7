"""The lexical channel's analysis: what goes into the FTS5 table, and how a question becomes a query.

Each passage is indexed twice over in one FTS5 row: `exact` holds the normalised words and `stems`
their light stems, so an exact form scores above a mere shared stem (as a multi-field
Elasticsearch query would). The FTS5 table is contentless: these strings can always be recomputed
from the stored article text, which is how a row is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from dalil.indexer.analysis.arabic import Token, is_arabic_term, tokens

ANALYZER = "arabic-norm-light10-v1"  # recorded in the manifest; change it when analysis changes

# Function words that carry no topic (normalised forms). Used on the question side only, so that a
# question like "من هو ...؟" does not match every passage containing "من".
STOPWORDS = frozenset(
    """
    في فيه فيها من منه منها الي علي عن مع ب ل ك و ف ثم او ام بل لا ما ماذا لماذا متي اين كيف كم هل اي
    من هو هي هم هن انا نحن انت انتم هذا هذه ذلك تلك هؤلاء الذي التي الذين اللذان اللتان اللواتي
    كان كانت يكون تكون كانوا قد لقد لم لن ان انه انها اذا اذ حتي عند عندما بعد قبل بين حول خلال
    كل بعض غير سوي ايضا الا لكن او اما قال قالت وقال وقالت ذات به بها لها له لهم عليه عليها
    the a an of in on at to for from by with and or is are was were be been what which who whom whose
    when where why how does did do it its this that these those as into about than
    """.split()
)


@dataclass(frozen=True)
class LexicalFields:
    exact: str
    stems: str
    analysis: str = ""  # the passage text's tokens (`encode_tokens`), stored for highlighting


def passage_fields(title: str, text: str) -> LexicalFields:
    """The FTS5 columns of a passage (its headline and text, normalised and stemmed), and its text's
    tokens as the index stores them, from one analysis of the text."""
    text_tokens = tokens(text)
    toks = [*tokens(title), *text_tokens] if title else text_tokens
    return LexicalFields(
        " ".join(t.norm for t in toks), " ".join(t.stem for t in toks), encode_tokens(text_tokens)
    )


def encode_tokens(toks: list[Token]) -> str:
    """Tokens as one string, `start end norm stem` each, space-separated: a token's forms never hold
    a space (store/database.py keeps it per passage, so a query reads what indexing computed)."""
    return " ".join(f"{t.start} {t.end} {t.norm} {t.stem}" for t in toks)


@dataclass(frozen=True)
class StoredTokens:
    """A passage's tokens as stored: parallel lists, read without re-analysing the text."""

    starts: list[str]
    ends: list[str]
    norms: list[str]
    stems: list[str]

    @classmethod
    def decode(cls, data: str) -> StoredTokens:
        parts = data.split(" ") if data else []
        return cls(parts[0::4], parts[1::4], parts[2::4], parts[3::4])

    @classmethod
    def of(cls, text: str) -> StoredTokens:
        """The same, analysed now (a passage of an index built before tokens were stored)."""
        return cls.decode(encode_tokens(tokens(text)))


@dataclass(frozen=True)
class QueryTerms:
    exact: tuple[str, ...]
    stems: tuple[str, ...]  # stems of Arabic words only: Latin words and numbers match exactly

    def __bool__(self) -> bool:
        return bool(self.exact or self.stems)

    def __add__(self, other: QueryTerms) -> QueryTerms:
        """Both sets of terms, each once, in order."""
        return QueryTerms(
            tuple(dict.fromkeys(self.exact + other.exact)), tuple(dict.fromkeys(self.stems + other.stems))
        )


def query_terms(question: str, latin_only: bool = False) -> QueryTerms:
    """Content words of a question. `latin_only` keeps only Latin words and numbers."""
    exact: list[str] = []
    stems: list[str] = []
    for tok in tokens(question):
        if tok.norm in STOPWORDS or (len(tok.norm) < 2 and not tok.norm.isdigit()):
            continue
        arabic = is_arabic_term(tok.norm)
        if latin_only and arabic:
            continue
        if tok.norm not in exact:
            exact.append(tok.norm)
        if arabic and tok.stem not in stems:
            stems.append(tok.stem)
    return QueryTerms(tuple(exact), tuple(stems))


def fts_phrase(word: str) -> str:
    """A word as one FTS5 phrase (quoted: FTS5 syntax words such as NEAR are only words here)."""
    return '"' + word.replace('"', '""') + '"'


def fts_match_expression(terms: QueryTerms) -> str:
    """An FTS5 MATCH string: any exact form in `exact`, or any stem in `stems`.

    Its phrases, in FTS5's numbering, are `match_phrases(terms)`."""
    parts = []
    if terms.exact:
        parts.append(f"exact : ({' OR '.join(map(fts_phrase, terms.exact))})")
    if terms.stems:
        parts.append(f"stems : ({' OR '.join(map(fts_phrase, terms.stems))})")
    return " OR ".join(parts)


def match_phrases(terms: QueryTerms) -> list[tuple[str, str]]:
    """(column, word) of each phrase of `fts_match_expression(terms)`, in FTS5's phrase order."""
    return [("exact", w) for w in terms.exact] + [("stems", w) for w in terms.stems]
