"""A search's choices and their defaults, defined once: the engine validates against them, and the
CLI, the Python API and the HTTP schema read them (their defaults and choices are these).

Light on purpose (dataclasses only): `dalil --help` and the HTTP schema read it without loading
the engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

from dalil.search.ordering import SORTS

if TYPE_CHECKING:
    from dalil.search.syntax import ParsedQuery

MODES = ("hybrid", "dense", "lexical")  # the first is the default
MAX_QUERY_CHARS = 1000
MAX_K = 1000  # results one search may rank (k + offset)

__all__ = [
    "DEFAULT_OPTIONS",
    "MAX_K",
    "MAX_QUERY_CHARS",
    "MODES",
    "NO_FILTERS",
    "SORTS",
    "Filters",
    "SearchOptions",
]


@dataclass(frozen=True)
class Filters:
    """Restrictions on articles, applied inside retrieval (before the top-k is cut)."""

    source: str | None = None
    category: str | None = None
    date_from: str | None = None  # YYYY-MM-DD, inclusive
    date_to: str | None = None
    lang: str | None = None
    phrases: tuple[str, ...] = ()  # required +"phrases" (search/syntax.py): light stems per phrase
    excluded: tuple[str, ...] = ()  # light stems whose articles are left out

    def as_dict(self) -> dict[str, object]:
        """The filters as data, for the store to turn into its own query."""
        return asdict(self)

    def narrowed(self, parsed: ParsedQuery) -> Filters:
        """These filters and a typed query's walls: its required phrases and exclusions (a quoted
        phrase without `+` is a preference, applied to the ranking: search/phrases.py)."""
        if not parsed.narrows:
            return self
        return replace(self, phrases=self.phrases + parsed.required, excluded=self.excluded + parsed.excluded)


NO_FILTERS = Filters()


@dataclass(frozen=True)
class SearchOptions:
    """How to answer a question beyond ranking passages: paging, grouping, date order, facets."""

    k: int = 10
    mode: str = MODES[0]  # hybrid
    filters: Filters = field(default_factory=Filters)
    offset: int = 0
    group: bool = False  # one result per article
    collapse: bool = True  # with group: re-reports of one story folded together
    sort: str = SORTS[0]  # relevance, or "newest": matching results by date (search/ordering.py)
    recency: float | None = None  # half-life in days of a preference for recent stories
    facets: bool = False  # article counts by source, category and month over the matches


DEFAULT_OPTIONS = SearchOptions()
