"""Article-level results and near-duplicate collapse, on real re-reported stories."""

from __future__ import annotations

import itertools
import json

import pytest
from conftest import TECH_NEWS, shared_file
from dalil.indexer.build import build_index

# Real articles of the tech corpus: one story from two outlets, and two different asteroid stories.
TWITTER_ALARABIYA = "ant-multisource:AL-technology-323-20180707"
TWITTER_BBC = "ant-multisource:BB-technology-308-20180710"
ASTEROID_BBC = "ant-multisource:BB-technology-18-20180210"
ASTEROID_SKY = "ant-multisource:SK-technology-986-20180627"
SNAPCHAT = "ant-multisource:AL-technology-139-20180403"


@pytest.fixture(scope="module")
def news_searcher(tmp_path_factory, encoder):
    from dalil.search.searcher import Searcher

    wanted = {TWITTER_ALARABIYA, TWITTER_BBC, ASTEROID_BBC, ASTEROID_SKY, SNAPCHAT}
    corpus = tmp_path_factory.mktemp("news") / "news.jsonl"
    with shared_file(TECH_NEWS).open(encoding="utf-8") as fh:
        lines = [line for line in itertools.islice(fh, 200) if json.loads(line)["id"] in wanted]
    corpus.write_text("".join(lines), encoding="utf-8")
    out = corpus.parent / "index"
    build_index(corpus, out, encoder, progress=False)
    return Searcher.open(out, encoder)


def test_group_by_article_ranks_and_scores_articles(searcher):

    groups = searcher.search_articles("التعاون مع روسيا", 5, collapse=False)
    assert [g.rank for g in groups] == list(range(1, len(groups) + 1))
    assert len({g.article_id for g in groups}) == len(groups)
    scores = [g.score for g in groups]
    assert scores == sorted(scores, reverse=True)
    for g in groups:
        assert g.best.article_id == g.article_id and all(p.score <= g.best.score for p in g.passages)
        assert g.best.score >= g.score  # the best passage's share of evidence: at most its score


def test_an_article_that_answers_in_several_passages_outranks_one_stray_passage():
    """The page's order follows the article, not its one best passage: a short passage holding a
    question word (a list of related headlines) no longer puts its article first."""
    from dalil.indexer.store.reader import PassageRow
    from dalil.search.grouping import article_score, articles_of

    def row(pid: int, article: str) -> PassageRow:
        return PassageRow(pid, 0, 0, 1, "نص", article, "", None, None, None, None, None)

    ranking = [(1, 0.80), (2, 0.78), (3, 0.70), (4, 0.65), (5, 0.30)]
    rows = {pid: row(pid, "answers" if pid in (2, 3, 4) else "stray") for pid, _ in ranking}
    groups = articles_of(ranking, rows)
    assert [g.article_id for g in groups] == ["answers", "stray"] and [g.rank for g in groups] == [1, 2]
    assert groups[0].best is None and groups[0].ranked[0] == (1, 2, 0.78)  # best passage kept first
    assert article_score([0.9], evidence=0.2) == pytest.approx(0.9 / 1.24)  # one passage, no more evidence
    assert article_score([0.9], evidence=0.0) == 0.9  # e = 0: the best passage alone (MaxP)
    # above the ranking's floor: cosines of 0.80 everywhere add nothing over one of 0.85
    long, short = article_score([0.82, 0.80, 0.80], 0.80, 0.2), article_score([0.85], 0.80, 0.2)
    assert short > long


def test_same_story_from_two_outlets_is_collapsed(news_searcher):
    groups = news_searcher.search_articles("Twitter suspends fake accounts", 5)
    ids = [g.article_id for g in groups]
    assert len({TWITTER_ALARABIYA, TWITTER_BBC} & set(ids)) == 1
    top = groups[0]
    assert {top.article_id, top.duplicates[0]["article_id"]} == {TWITTER_ALARABIYA, TWITTER_BBC}
    uncollapsed = [
        g.article_id
        for g in news_searcher.search_articles("Twitter suspends fake accounts", 5, collapse=False)
    ]
    assert {TWITTER_ALARABIYA, TWITTER_BBC} <= set(uncollapsed)


def test_similar_but_different_events_stay_apart(news_searcher):
    groups = news_searcher.search_articles("كويكب يقترب من الأرض", 5)
    ids = [g.article_id for g in groups]
    assert ASTEROID_BBC in ids and ASTEROID_SKY in ids  # four months apart: two stories
