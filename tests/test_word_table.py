"""The word table follows the live index: words that commits bring (add, the API, ingestion) are
added in the same commit, and a running searcher uses them for English questions at once."""

from __future__ import annotations

import json
import shutil

import pytest
from dalil.indexer.corpus import RawArticle
from dalil.indexer.store.check import check_index
from dalil.indexer.update import update_index
from dalil.search.searcher import Searcher
from fastapi.testclient import TestClient

NAME_AR, NAME_EN = "هواوي", "huawei"
QUESTION = "Huawei launches a foldable phone"
ARTICLE = RawArticle(
    "huawei-1",
    "هواوي تطلق هاتفا قابلا للطي",
    "أعلنت شركة هواوي الصينية اليوم عن هاتفها الجديد القابل للطي، وقالت هواوي إن الهاتف يصل إلى "
    "الأسواق الشهر المقبل.\n\nويأتي هاتف هواوي بشاشة كبيرة تنطوي إلى نصفين، وبسعر يقارب ألفي دولار.",
)


@pytest.fixture
def index(seed_index, tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(seed_index, copy)
    return copy


def _lexical_articles(searcher: Searcher, question: str) -> list[str]:
    with searcher.index.snapshot() as snap:
        ranking = searcher._lexical_ranking(snap, question, 10, {})
        return [row.article_id for row in snap.passages(p for p, _ in ranking).values()]


def test_a_name_first_seen_in_a_commit_is_found_by_english_questions(index, encoder):
    searcher = Searcher.open(index, encoder)  # opened before the commit, as a server would be
    try:
        with searcher.index.snapshot() as snap:
            assert NAME_EN not in searcher._translations(QUESTION, snap)
        assert _lexical_articles(searcher, QUESTION) == []  # nothing lexical for the English words
        update_index(index, [ARTICLE], (), encoder, merge_after=False)
        with searcher.index.snapshot() as snap:
            words, vectors = snap.vocabulary_additions()
            assert NAME_AR in words and vectors.shape == (len(words), encoder.dimension)
            assert NAME_AR in searcher._translations(QUESTION, snap)[NAME_EN]
        assert _lexical_articles(searcher, QUESTION)[0] == "huawei-1"  # the lexical channel finds it
        first = searcher.search(QUESTION, 3)[0]
        assert first.article_id == "huawei-1" and f"<mark>{NAME_AR}</mark>" in first.snippet
        assert check_index(index) == []
    finally:
        searcher.close()


def test_words_already_in_the_table_or_seen_once_are_not_added(index, encoder):
    once = RawArticle("once", "خبر", "ذكر التقرير شركة زيمبرا مرة واحدة فقط في حديثه عن السوق.")
    update_index(index, [once], (), encoder, merge_after=False)
    searcher = Searcher.open(index, encoder)
    try:
        with searcher.index.snapshot() as snap:
            words, _ = snap.vocabulary_additions()
        assert "زيمبرا" not in words  # one occurrence: like a build, names seen once wait
        built = set(searcher.built_vocabulary.words)
        assert not built & set(words)  # nothing the build's table holds is added again
    finally:
        searcher.close()


def test_ingested_news_reaches_a_running_server(index, encoder, tmp_path, monkeypatch):
    from dalil.api.app import create_app
    from dalil.api.cli import main

    app = create_app(index, searcher=Searcher.open(index, encoder), write_token="t")
    client = TestClient(app)
    assert _lexical_articles(app.state.live.get(), QUESTION) == []
    feed_dir = tmp_path / "incoming"
    feed_dir.mkdir()
    record = {"id": ARTICLE.article_id, "title": ARTICLE.title, "text": ARTICLE.text}
    (feed_dir / "news.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["ingest", str(feed_dir), "--index", str(index), "--once"]) == 0
    # no reload: the served searcher reads the new commit, and its word table follows it
    assert _lexical_articles(app.state.live.get(), QUESTION)[0] == "huawei-1"
    after = client.get("/search", params={"q": QUESTION, "k": 3}).json()
    assert after["results"][0]["article_id"] == "huawei-1"
    assert f"<mark>{NAME_AR}</mark>" in after["results"][0]["snippet"]
