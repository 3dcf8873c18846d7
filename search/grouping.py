"""Article-level results: passages grouped by article, and near-duplicate stories collapsed.

Two articles are treated as the same story when both their content words and their meaning agree:
- TF-IDF cosine over light stems (IDF from the index's own passage frequencies) >= 0.20, and
- cosine of their mean passage embeddings >= 0.95.
Calibrated on 200 real tech-news articles (docs/relevance.md): re-reports of one story from two
outlets scored 0.24-0.70 and 0.95-0.97, while the 99.9th percentile over all 19,900 article pairs was
0.187 and 0.944; both thresholds sit just above it. Either signal alone merges different stories of
one template (the seed articles are all "Egypt's minister meets a foreign counterpart" and score
0.18-0.21 / 0.91-0.94 pairwise, so none of them is merged: too little to tell a story by).
A story is also an event in time: two dated articles more than a week apart are never
merged (two BBC/Sky reports of *different* asteroids passing Earth, four months apart, pass both
similarity tests). The later-ranked duplicate is folded into the better-ranked article's `duplicates`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from dalil.indexer.analysis.arabic import tokens
from dalil.indexer.analysis.terms import STOPWORDS
from dalil.search.protocols import IndexView

MIN_TFIDF_COSINE = 0.20
MIN_DENSE_COSINE = 0.95
MAX_DAYS_APART = 7
ARTICLE_EVIDENCE = 0.2  # see article_score; chosen on half A of the news sets (bench/article_order_sweep.py)


@dataclass
class ArticleResult:
    rank: int
    score: float
    article_id: str
    title: str
    source: str | None
    date: str | None
    url: str | None
    best: object  # the best Hit of this article
    # Further passages of the article that match: a question word (or, for an English question, one
    # of its Arabic counterparts) is highlighted in them. Merely being ranked is not matching: on a
    # small index every passage is ranked by the dense channel.
    passages: list = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)  # the same story from other articles
    # (place in the passage ranking, passage id, score) of each of its ranked passages, best first:
    # enough to order and fold articles; Hits are made (and highlighted) only for the ones shown
    ranked: list[tuple[int, int, float]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("best", "passages", "ranked")}
        out["best"] = self.best.to_dict()
        out["passages"] = [p.to_dict() for p in self.passages]
        return out


def article_score(scores: list[float], floor: float = 0.0, evidence: float | None = None) -> float:
    """How well an article answers, from its ranked passages' scores (best first): the best one and
    a decaying share of the next two, each counted above `floor`, the lowest score of the ranking,
    floor + (d1 + e·d2 + e²·d3) / (1 + e + e²) with d = s - floor and e = ARTICLE_EVIDENCE (read at
    each call: bench/article_order_sweep.py varies it). Above the floor, because cosines never come
    near 0: every passage of a long article would otherwise add evidence. An article whose one short
    passage holds a question word no longer outranks one that answers in several.

    e = 0.2 was chosen on half A of the news sets (headlines asking for their articles, English news
    questions, pasted headlines: the page's own kind of articles), page R@1 news 85.7 -> 88.7; on
    Wikipedia paragraphs, where a question asks for one fact in one passage, it costs ~1 MRR@10 point
    of the page's order (the API's passage answer is not touched); docs/relevance.md has both."""
    e = ARTICLE_EVIDENCE if evidence is None else evidence
    weights = (1.0, e, e * e)
    top = [s - floor for s in scores[:3]]
    return floor + sum(w * d for w, d in zip(weights, top, strict=False)) / sum(weights)


def articles_of(
    ranking: list[tuple[int, float]], rows: dict, holds: Callable[[object], bool] | None = None
) -> list[ArticleResult]:
    """(passage id, score), best first -> articles ordered by `article_score`, with their ranked
    passages noted but not yet made into Hits (`best` is None until `fill` is called). `holds`:
    whether a passage row holds a question word; only those add evidence beyond the best passage
    (a long article's other passages are near a question in meaning without answering it)."""
    groups: dict[str, ArticleResult] = {}
    for place, (pid, score) in enumerate(ranking):
        row = rows.get(pid)
        if row is None:  # removed by a commit since ranking
            continue
        group = groups.get(row.article_id)
        if group is None:
            group = groups[row.article_id] = ArticleResult(
                rank=0,
                score=0.0,
                article_id=row.article_id,
                title=row.title,
                source=row.source,
                date=row.date,
                url=row.url,
                best=None,
            )
        group.ranked.append((place, pid, score))
    floor = min((float(s) for _, s in ranking), default=0.0)
    for group in groups.values():
        best, *further = group.ranked
        evidence = [float(s) for _, pid, s in further if holds is None or holds(rows[pid])]
        group.score = round(article_score([float(best[2]), *evidence], floor), 6)
    ordered = sorted(groups.values(), key=lambda g: (-g.score, g.ranked[0][0]))  # ties: best passage first
    for rank, group in enumerate(ordered, start=1):
        group.rank = rank
    return ordered


def fill(groups: list[ArticleResult], hits_of) -> None:
    """Each article's best passage, and its further passages that match (a question word highlighted),
    as Hits; `hits_of(place, [(pid, score), ...])` makes Hits ranked from `place`."""
    for group in groups:
        (place, pid, score), *further = group.ranked
        group.best = hits_of(place, [(pid, score)])[0]
        group.passages = [hit for p, i, s in further for hit in hits_of(p, [(i, s)]) if hit.highlights]


def collapse_duplicates(groups: list[ArticleResult], index: IndexView) -> list[ArticleResult]:
    """Fold each article that repeats a better-ranked one's story into that one's `duplicates`."""
    if len(groups) < 2:
        return groups
    dense = _mean_vectors(index, [g.article_id for g in groups])
    lexical: dict[str, dict[str, float]] = {}

    def same_story(a: str, b: str) -> bool:
        # The dense test first: one dot product, and it turns down nearly every pair; the TF-IDF
        # vectors (tokenising whole articles, measured at ~80% of a grouped search) only for the rest.
        if a not in dense or b not in dense or float(dense[a] @ dense[b]) < MIN_DENSE_COSINE:
            return False
        lexical.update(_tfidf_vectors(index, [x for x in (a, b) if x not in lexical]))
        return sum(w * lexical[b].get(term, 0.0) for term, w in lexical[a].items()) >= MIN_TFIDF_COSINE

    kept: list[ArticleResult] = []
    for group in groups:
        same = next(
            (
                k
                for k in kept
                if _close_in_time(k.date, group.date) and same_story(k.article_id, group.article_id)
            ),
            None,
        )
        if same is None:
            kept.append(group)
        else:
            same.duplicates.append(
                {
                    "article_id": group.article_id,
                    "title": group.title,
                    "source": group.source,
                    "date": group.date,
                    "url": group.url,
                    "score": group.score,
                }
            )
    for rank, group in enumerate(kept, start=1):
        group.rank = rank
    return kept


def _close_in_time(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return True  # undated articles are judged on their content alone
    try:
        return abs((dt.date.fromisoformat(a[:10]) - dt.date.fromisoformat(b[:10])).days) <= MAX_DAYS_APART
    except ValueError:
        return True


def _tfidf_vectors(index: IndexView, article_ids: list[str]) -> dict[str, dict[str, float]]:
    if not article_ids:
        return {}
    texts = index.article_texts(article_ids)
    terms = {
        a: Counter(t.stem for t in tokens(texts[a]) if t.norm not in STOPWORDS and len(t.stem) > 1)
        for a in article_ids
    }
    vocabulary = sorted({s for c in terms.values() for s in c})
    passages = index.live_passages
    df = index.doc_freqs(vocabulary)
    vectors = {}
    for a, counts in terms.items():
        weights = {
            s: (1 + math.log(c)) * math.log((passages + 1) / (df.get(s, 0) + 0.5)) for s, c in counts.items()
        }
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        vectors[a] = {s: w / norm for s, w in weights.items()}
    return vectors


def _mean_vectors(index: IndexView, article_ids: list[str]) -> dict[str, np.ndarray]:
    by_article = index.passage_ids_of(article_ids)
    out = {}
    for article_id, pids in by_article.items():
        mean = index.vectors_of(np.asarray(pids, dtype=np.int64)).mean(axis=0)
        out[article_id] = mean / (np.linalg.norm(mean) or 1.0)
    return out
