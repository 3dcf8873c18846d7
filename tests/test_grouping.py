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
    from dalil.search.engine import Searcher

    wanted = {TWITTER_ALARABIYA, TWITTER_BBC, ASTEROID_BBC, ASTEROID_SKY, SNAPCHAT}
    corpus = tmp_path_factory.mktemp("news") / "news.jsonl"
    with shared_file(TECH_NEWS).open(encoding="utf-8") as fh:
        lines = [line for line in itertools.islice(fh, 200) if json.loads(line)["id"] in wanted]
    corpus.write_text("".join(lines), encoding="utf-8")
    out = corpus.parent / "index"
    build_index(corpus, out, encoder, progress=False)
    return Searcher.open(out, encoder)


def test_group_by_article_orders_by_best_passage(searcher):
    groups = searcher.search_articles("التعاون مع روسيا", 5, collapse=False)
    assert [g.rank for g in groups] == list(range(1, len(groups) + 1))
    assert len({g.article_id for g in groups}) == len(groups)
    for g in groups:
        assert g.best.article_id == g.article_id and all(p.score <= g.best.score for p in g.passages)


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
