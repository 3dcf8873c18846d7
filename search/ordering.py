"""Ordering results by date: newest first, or relevance with a preference for recent stories.

**What "matching" means for `sort=newest`** (and for facets): a ranked candidate passage (one of the
fused top candidates of both channels, search/searcher.py CANDIDATES each) whose headline or text holds
at least half of the question's content words (rounded up: one of one or two, two of three or four).
A word is held in any of the forms that highlighting marks (search/highlight.py `match_groups`): its
normalised form, its light stem of three letters or more, or, for a word of an English question, one
of the Arabic words the index's word table aligns with it; an English question's words that have
no Arabic counterpart and do not occur in the index as written ("paperless") are not counted, since
no Arabic passage could hold them. Without such a test, newest first would
list whatever the dense channel returned last, related or not (it always returns its k nearest
passages, however far); with any one word, "artificial intelligence in China" listed every story
about China. Undated articles come after every dated one, in relevance order.

**Recency** (`recency=H`, a half-life in days) multiplies each passage's relevance score by
`0.5 + 0.5 · 2^(−age / H)`: a story H days older than the index's newest article keeps 3/4 of its
score, a very old or undated one 1/2. Age is counted from the newest article in the index, not from
today, so an archive ranks as a live feed would; relevance still leads (a factor of 2 at most).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

SORTS = ("relevance", "newest")
MAX_HALF_LIFE_DAYS = 36_500


def matches_needed(words: int) -> int:
    """Of a question's content words, how many a passage must hold to match (see above)."""
    return (words + 1) // 2


def parse_day(date: str | None) -> dt.date | None:
    if not date:
        return None
    try:
        return dt.date.fromisoformat(date[:10])
    except ValueError:
        return None


def recency_factor(date: str | None, newest: dt.date | None, half_life_days: float) -> float:
    day = parse_day(date)
    if day is None or newest is None:
        return 0.5
    age = max(0, (newest - day).days)
    return 0.5 + 0.5 * 2.0 ** (-age / half_life_days)


def with_recency(
    ranking: list[tuple[int, float]],
    dates: Mapping[int, str | None],
    newest: str | None,
    half_life_days: float,
) -> list[tuple[int, float]]:
    """The ranking re-scored by recency (see the module docstring), best first."""
    latest = parse_day(newest)
    rescored = [
        (pid, score * recency_factor(dates.get(pid), latest, half_life_days)) for pid, score in ranking
    ]
    return sorted(rescored, key=lambda item: (-item[1], item[0]))


def newest_first(items: list, date_of) -> list:
    """Items (in relevance order) by date, newest first; undated ones last, in relevance order."""
    dated = [item for item in items if parse_day(date_of(item)) is not None]
    undated = [item for item in items if parse_day(date_of(item)) is None]
    dated.sort(key=lambda item: parse_day(date_of(item)), reverse=True)  # stable: ties keep relevance
    return dated + undated
