"""Related stories: the articles whose passages lie closest to one article's, its re-reports apart.

The article's passages are averaged into one vector (as grouping compares stories,
search/grouping.py), and its nearest passages in the index are grouped by article. The article
itself is put first and near-duplicate stories are folded exactly as grouped search results are
(`collapse_duplicates`): what folds into the article is its own coverage by other outlets
(`same_story`), what folds into another related article is that one's re-report. The rest, best
first, are the related stories.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from dalil.search.grouping import ArticleResult, articles_of, collapse_duplicates, fill
from dalil.search.protocols import IndexView

MAX_RELATED = 50
NEIGHBOURS_PER_ARTICLE = 10  # passages looked at per related article wanted (articles have several)


@dataclass
class Related:
    article_id: str
    title: str
    related: list[ArticleResult]
    same_story: list[dict] = field(default_factory=list)  # other outlets' reports of this story

    def to_dict(self) -> dict:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "related": [r.to_dict() for r in self.related],
            "same_story": self.same_story,
        }


def article_vector(snap: IndexView, article_id: str) -> np.ndarray | None:
    """The normalised mean of the article's passage vectors (None: no such article)."""
    pids = snap.passage_ids_of([article_id]).get(article_id)
    if not pids:
        return None
    mean = snap.vectors_of(np.asarray(pids, dtype=np.int64)).mean(axis=0)
    return (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32)


def related_articles(snap: IndexView, article_id: str, k: int, hits_of) -> Related | None:
    """Up to k related articles; `hits_of(ranking, rows, place)` turns (passage id, score) into Hits
    ranked from `place`."""
    vector = article_vector(snap, article_id)
    if vector is None:
        return None
    depth = min(snap.live_passages, max(100, NEIGHBOURS_PER_ARTICLE * (k + 1)))
    scores, ids = snap.dense_search(vector.reshape(1, -1), depth, {})
    ranking = [(int(pid), float(s)) for s, pid in zip(scores[0], ids[0], strict=True) if pid >= 0]
    rows = snap.passages(pid for pid, _ in ranking)
    groups = articles_of(ranking, rows)
    own = next((g for g in groups if g.article_id == article_id), None)
    others = [g for g in groups if g.article_id != article_id]
    if own is None:  # none of its passages came back (an approximate index): it still leads
        meta = snap.article(article_id) or {}
        own = ArticleResult(0, 1.0, article_id, meta.get("title", ""), None, meta.get("date"), None, None)
    kept = collapse_duplicates([own, *others[: 2 * k]], snap)
    related = kept[1 : k + 1]
    for rank, group in enumerate(related, start=1):
        group.rank = rank
    fill(related, lambda place, items: hits_of(items, rows, place))
    return Related(article_id, own.title, related, own.duplicates)
