"""What news readers expect of a search box, on real tech-news articles: phrases and exclusions,
newest first and recency, facets, related stories, suggestions and Atom feeds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import feedparser
import pytest
from conftest import NEWS_UNDATED, TWITTER_PAIR
from dalil.indexer.analysis.arabic import tokens
from dalil.indexer.analysis.terms import query_terms
from dalil.search.ordering import recency_factor, with_recency
from dalil.search.searcher import Filters, QueryError, Searcher, SearchOptions
from dalil.search.syntax import parse_query
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def news(news_index, encoder):
    s = Searcher.open(news_index, encoder)
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(news_index, news):
    from dalil.api.app import create_app

    return TestClient(create_app(news_index, searcher=news))


def _stems(text: str) -> list[str]:
    return [t.stem for t in tokens(text)]


def _holds_phrase(text: str, phrase: str) -> bool:
    words, wanted = _stems(text), _stems(phrase)
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words)))


def _article_text(searcher: Searcher, article_id: str) -> str:
    article = searcher.index.article(article_id)
    return f"{article['title']}\n{article['text']}"


# --- query syntax --------------------------------------------------------------------------------


def test_query_syntax_is_parsed_forgivingly():
    parsed = parse_query('"الذكاء الاصطناعى" -الصين شركات')
    assert parsed.text == "الذكاء الاصطناعى شركات"  # phrase words stay in the question
    assert parsed.shown_phrases == ("الذكاء الاصطناعى",) and parsed.shown_excluded == ("الصين",)
    assert parsed.phrases == parse_query('"الذكاء الاصطناعي"').phrases  # spelling variants: one phrase
    assert parse_query("“الذكاء الاصطناعي”").phrases == parsed.phrases  # typographic quotes too
    assert parse_query("«الذكاء الاصطناعي»").phrases == parsed.phrases  # and Arabic ones
    assert not parse_query('"الذكاء الاصطناعي"').narrows  # a preference: retrieval is not filtered
    required = parse_query('+"الذكاء الاصطناعي" شركات')
    assert required.required == parsed.phrases and not required.phrases and required.narrows
    assert required.shown_required == ("الذكاء الاصطناعي",) and required.text == "الذكاء الاصطناعي شركات"
    glued = parse_query('أستون مارتن تطور طائرة صغيرة بـ"مزايا فريدة"')
    assert glued.shown_phrases == ("مزايا فريدة",) and "مزايا فريدة" in glued.text and not glued.narrows
    plus_in_a_word = parse_query('C++"templates" guide')
    assert not plus_in_a_word.required and plus_in_a_word.text.startswith("C++")
    unbalanced = parse_query('الذكاء "الاصطناعي')
    assert unbalanced.text == "الذكاء الاصطناعي" and not unbalanced.has_syntax
    only_exclusions = parse_query("-الصين -روسيا")
    assert only_exclusions.text == "-الصين -روسيا" and not only_exclusions.narrows  # searched as typed
    hyphens = parse_query("e-commerce 2018-2019")
    assert hyphens.text == "e-commerce 2018-2019" and not hyphens.narrows
    assert parse_query('«»  ""').text == '«» ""'  # quote marks only: searched as typed


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_a_quoted_phrase_moves_its_passages_up_but_keeps_the_others(news, mode):
    phrase = "التواصل الاجتماعي"
    question = f"تأثير {phrase} على الشباب"
    plain = news.answer(question, SearchOptions(k=30, mode=mode))
    quoted = news.answer(question.replace(phrase, f"«{phrase}»"), SearchOptions(k=30, mode=mode))
    holds = [_holds_phrase(f"{h.title}\n{h.text}", phrase) for h in quoted.results]
    assert len(quoted.results) == len(plain.results) == 30 and quoted.unmatched == ()  # never a wall
    assert not all(holds)  # passages without the phrase still follow
    # every passage holding the phrase is where it was or higher, and the first ones moved up
    was = {h.passage_id: i for i, h in enumerate(plain.results)}
    now = {h.passage_id: i for i, h in enumerate(quoted.results)}
    holders = [h.passage_id for h in plain.results if _holds_phrase(f"{h.title}\n{h.text}", phrase)]
    assert holders and all(now.get(pid, 99) <= was[pid] for pid in holders)
    first_before = min(was[pid] for pid in holders)
    if mode != "dense":  # cosines lie close together: there the bonus may move nothing in the top 30
        assert min(now[pid] for pid in holders) < first_before or first_before == 0
    scores = [h.score for h in quoted.results]
    assert scores == sorted(scores, reverse=True)
    if mode == "hybrid":
        assert min(scores) >= 0 and max(scores) <= 1  # hybrid scores keep their 0-1 range


def test_a_quoted_phrase_no_article_holds_falls_back_to_the_words(news):
    question = "ميزة «القلم الطائر البنفسجي» في الهواتف الذكية"
    answer = news.answer(question, SearchOptions(k=10))
    words = news.answer(question.replace("«", "").replace("»", ""), SearchOptions(k=10))
    assert answer.unmatched == ("القلم الطائر البنفسجي",)
    assert [h.passage_id for h in answer.results] == [h.passage_id for h in words.results]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_a_required_phrase_narrows_every_channel(news, mode):
    phrase = "التواصل الاجتماعي"
    plain = news.answer(phrase, SearchOptions(k=30, mode=mode)).results
    quoted = news.answer(f'+"{phrase}"', SearchOptions(k=30, mode=mode)).results
    assert quoted
    assert all(_holds_phrase(f"{h.title}\n{h.text}", phrase) for h in quoted)
    if mode == "dense":  # without the wall the dense channel brings passages that lack it
        assert not all(_holds_phrase(f"{h.title}\n{h.text}", phrase) for h in plain)
    variant = news.answer('+"التواصل الإجتماعى"', SearchOptions(k=30, mode=mode)).results
    assert len(quoted) < 30  # every passage holding it was returned: the same ones, however spelt
    assert {h.passage_id for h in variant} == {h.passage_id for h in quoted}
    none = news.answer('+"القلم الطائر البنفسجي" الهواتف', SearchOptions(k=10, mode=mode))
    assert none.results == [] and none.unmatched == ("القلم الطائر البنفسجي",)


def test_an_excluded_word_removes_its_articles(news):
    plain = news.answer("الهواتف الذكية", SearchOptions(k=30, group=True)).results
    assert any("صين" in _stems(_article_text(news, g.article_id)) for g in plain)
    answer = news.answer("الهواتف الذكية -الصين", SearchOptions(k=30, group=True))
    assert answer.results and answer.parsed.shown_excluded == ("الصين",)
    for group in answer.results:
        assert "صين" not in _stems(_article_text(news, group.article_id)), group.title


# --- newest first and recency --------------------------------------------------------------------


def test_newest_first_lists_matching_articles_by_date(news):
    question = "فيسبوك وتويتر"
    answer = news.answer(question, SearchOptions(k=100, group=True, sort="newest", collapse=False))
    dates = [g.date for g in answer.results if g.date]
    assert dates and dates == sorted(dates, reverse=True)
    assert all(not g.date for g in answer.results[len(dates) :])  # undated ones (one here) last
    wanted = {t.stem for t in tokens(question)}
    for group in answer.results:  # "matching": at least half the question's words (here one of two)
        held = set(_stems(f"{group.title}\n{group.best.text}")) | {t.norm for t in tokens(group.best.text)}
        assert wanted & held, group.title
    ranked = news.answer(question, SearchOptions(k=100, group=True, mode="dense", collapse=False)).results
    assert len(ranked) > len(answer.results)  # the dense channel alone ranks unrelated articles too


def test_undated_articles_come_last_when_newest_first(news):
    title = news.index.article(NEWS_UNDATED)["title"]
    answer = news.answer(title, SearchOptions(k=100, group=True, sort="newest", collapse=False))
    ids = [g.article_id for g in answer.results]
    undated = [g.article_id for g in answer.results if not g.date]
    assert NEWS_UNDATED in ids and ids[-answer.undated :] == undated
    assert answer.undated >= 1 and answer.results[-1].date is None


def test_recency_blends_relevance_with_age():
    newest = dt.date(2018, 10, 18)
    assert recency_factor("2018-10-18", newest, 30) == 1.0
    assert recency_factor("2018-09-18", newest, 30) == pytest.approx(0.75)
    assert recency_factor(None, newest, 30) == 0.5
    ranking = [(1, 1.0), (2, 0.9)]
    dates = {1: "2015-01-01", 2: "2018-10-18"}
    assert [pid for pid, _ in with_recency(ranking, dates, "2018-10-18", 30)] == [2, 1]
    assert [pid for pid, _ in with_recency(ranking, dates, "2018-10-18", 36_500)] == [1, 2]


def test_recency_moves_recent_stories_up(news):
    question = "وسائل التواصل الاجتماعي"

    def dates(**options) -> list[str]:
        answer = news.answer(question, SearchOptions(k=6, group=True, **options))
        return [g.date or "" for g in answer.results]

    plain, recent = dates(), dates(recency=14)
    assert plain[0] == recent[0]  # the best answer is recent enough to stay first
    assert sorted(recent)[3] > sorted(plain)[3]  # the top six are newer
    assert sorted(dates(recency=36_500)) == sorted(plain)  # a century's half-life changes nothing
    with pytest.raises(QueryError, match="recency"):
        news.answer(question, SearchOptions(recency=0))
    with pytest.raises(QueryError, match="sort"):
        news.answer(question, SearchOptions(sort="oldest"))


# --- facets --------------------------------------------------------------------------------------


def test_facets_count_the_matching_articles(news):
    options = SearchOptions(k=100, group=True, sort="newest", collapse=False, facets=True)
    answer = news.answer("فيسبوك", options)
    for name, value_of in [
        ("source", lambda g: g.source),
        ("category", lambda g: news.index.article(g.article_id)["category"]),
        ("month", lambda g: g.date and g.date[:7]),  # an undated article has no month
    ]:
        expected: dict[str, int] = {}
        for value in filter(None, map(value_of, answer.results)):
            expected[value] = expected.get(value, 0) + 1
        assert answer.facets[name] == expected, name
    assert len(answer.facets["source"]) > 1
    source = max(answer.facets["source"], key=answer.facets["source"].get)
    narrowed = news.answer("فيسبوك", dataclasses.replace(options, filters=Filters(source=source)))
    assert narrowed.facets["source"] == {source: answer.facets["source"][source]}
    assert {g.source for g in narrowed.results} == {source}


def test_facets_in_the_api_filter_when_followed(client):
    body = client.get("/search", params={"q": "فيسبوك", "facets": "true", "group": "true"}).json()
    months = body["facets"]["month"]
    assert [m["value"] for m in months] == sorted((m["value"] for m in months), reverse=True)
    month = months[0]
    assert month["date_from"].startswith(month["value"]) and month["date_to"].startswith(month["value"])
    follow = {"q": "فيسبوك", "group": "true", **{k: month[k] for k in ("date_from", "date_to")}}
    dates = [r["date"] for r in client.get("/search", params=follow).json()["results"]]
    assert dates and all(month["date_from"] <= d <= month["date_to"] for d in dates)
    sources = body["facets"]["source"]
    assert [s["count"] for s in sources] == sorted((s["count"] for s in sources), reverse=True)
    assert "facets" not in client.get("/search", params={"q": "فيسبوك"}).json()


# --- related stories -----------------------------------------------------------------------------


def test_related_stories_fold_the_article_s_own_re_reports(news, client):
    first, second = TWITTER_PAIR
    found = news.related(first, 5)
    assert found is not None and found.article_id == first
    assert [d["article_id"] for d in found.same_story] == [second]  # the other outlet's report
    related = [g.article_id for g in found.related]
    assert len(related) == 5 and first not in related and second not in related
    assert [g.rank for g in found.related] == [1, 2, 3, 4, 5]
    assert news.related("no-such-article") is None
    body = client.get(f"/articles/{first}/related", params={"k": 3}).json()
    assert [r["article_id"] for r in body["related"]] == related[:3]
    assert client.get("/articles/no-such-article/related").status_code == 404
    assert client.get(f"/articles/{first}/related", params={"k": 0}).status_code == 422
    page = client.get(f"/a/{first}").text
    assert 'id="related"' in page and f"/a/{related[0].replace(':', '%3A')}" in page


# --- suggestions ---------------------------------------------------------------------------------


def test_suggestions_complete_normalised_prefixes(news, client):
    found = news.suggest("ف", 8)
    assert len(found) >= 3 and all(s["text"].startswith("ف") for s in found)
    assert found[0]["text"] == "فيسبوك"  # the most frequent headline word with that start
    counts = [s["count"] for s in found]
    assert counts == sorted(counts, reverse=True)
    assert news.suggest("أب") == news.suggest("اب") != []  # hamza folded
    longer = news.suggest("ما هي أخبار غو")  # no headline phrase: the last word is completed
    assert [s["text"] for s in longer][:1] == ["ما هي أخبار غوغل"]
    body = client.get("/suggest", params={"q": "ف", "k": 3}).json()
    assert [s["text"] for s in body["suggestions"]] == [s["text"] for s in found[:3]]
    assert body["took_ms"] >= 0
    assert client.get("/suggest", params={"q": ""}).status_code == 422
    assert client.get("/suggest", params={"q": "س" * 101}).status_code == 422
    assert client.get("/suggest", params={"q": "سام", "k": 21}).status_code == 422


def test_suggestions_follow_new_headlines(news_index, encoder, tmp_path, monkeypatch):
    from dalil.indexer.corpus import RawArticle
    from dalil.indexer.update import update_index
    from dalil.search import searcher as searcher_module

    root = tmp_path / "index"
    shutil.copytree(news_index, root)
    searcher = Searcher.open(root, encoder)
    assert searcher.suggest("قنطر") == []
    title = "قنطرة رقمية جديدة تربط المدن الذكية"
    update_index(root, [RawArticle("new-1", "نص الخبر عن المدن الذكية.", title=title)], (), encoder)
    assert searcher.suggest("قنطر") == []  # the table is looked at again at most every 30 s
    monkeypatch.setattr(searcher_module, "SUGGEST_REFRESH_S", 0.0)
    assert [s["text"] for s in searcher.suggest("قنطر")] == ["قنطرة"]
    searcher.close()


# --- Atom feeds ----------------------------------------------------------------------------------


def test_a_search_as_an_atom_feed(client):
    response = client.get("/search.atom", params={"q": "فيسبوك", "k": 5})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert "فيسبوك" in feed.feed.title
    newest = client.get("/search", params={"q": "فيسبوك", "k": 5, "group": "true", "sort": "newest"}).json()
    assert [e.title for e in feed.entries] == [r["title"] for r in newest["results"]]
    assert [e.id for e in feed.entries] == [
        f"http://testserver/a/{r['article_id'].replace(':', '%3A')}" for r in newest["results"]
    ]
    updated = [e.updated for e in feed.entries]
    assert updated == sorted(updated, reverse=True)
    again = feedparser.parse(client.get("/search.atom", params={"q": "فيسبوك", "k": 5}).content)
    assert [e.id for e in again.entries] == [e.id for e in feed.entries]  # stable ids across polls
    assert client.get("/search.atom", params={"q": " "}).status_code == 422
    assert client.get("/search.atom", params={"q": "x", "sort": "newest"}).status_code == 422
    assert 'type="application/atom+xml"' in client.get("/", params={"q": "فيسبوك"}).text


def test_page_sort_menu_and_syntax_chips(client):
    page = client.get("/", params={"q": '"التواصل الاجتماعي" -فيسبوك', "sort": "newest"}).text
    assert 'id="syntax"' in page and 'id="sort-note"' in page and 'id="facets"' in page
    recent = client.get("/", params={"q": "فيسبوك", "sort": "recent"})
    assert recent.status_code == 200
    assert client.get("/", params={"q": "الهواتف", "sort": "oldest"}).status_code == 422


def test_python_api_sorts_and_parses_the_syntax(news_index):
    import dalil

    with dalil.open_index(news_index) as index:
        hits = index.search("فيسبوك", k=20, sort="newest")
        dates = [h.date for h in hits if h.date]
        assert dates and dates == sorted(dates, reverse=True)
        quoted = index.search('+"التواصل الاجتماعي" -فيسبوك', k=20)
        assert quoted and all(_holds_phrase(f"{h.title}\n{h.text}", "التواصل الاجتماعي") for h in quoted)
        preferred = index.search('"التواصل الاجتماعي" -فيسبوك', k=20)
        assert _holds_phrase(f"{preferred[0].title}\n{preferred[0].text}", "التواصل الاجتماعي")
        with pytest.raises(dalil.InvalidRequest, match="recency"):
            index.search("فيسبوك", recency=-1)


@pytest.mark.parametrize(
    "filters",
    [
        {"date_from": "2018-05-01"},  # broad: found among a wider unfiltered search
        {"source": "ant-multisource/bbcarabic"},  # selective: an id selector over the passing ones
        {"excluded": ("فيسبوك",)},
        {"phrases": ("تواصل اجتماع",), "date_to": "2018-12-31"},
    ],
)
def test_filtered_channels_equal_the_unfiltered_ranking_filtered(news, filters):
    """Both channels' filtered top k are the first k passing passages of the unfiltered ranking."""
    question = "وسائل التواصل الاجتماعي والخصوصية"
    vector = news.encoder.encode_queries([question])
    with news.index.snapshot() as snap:
        allowed = set(snap.passage_ids_where(filters).tolist())
        assert 0 < len(allowed) < snap.live_passages
        for _ in range(2):  # the second time, a selective filter is known to be one
            _, every = snap.dense_search(vector, snap.live_passages, {})
            expected = [int(i) for i in every[0] if i in allowed][:10]
            _, found = snap.dense_search(vector, 10, filters)
            assert [int(i) for i in found[0] if i >= 0] == expected
        lexical_all = snap.bm25(query_terms(question), snap.live_passages, (1.0, 1.0), {})
        expected = [pid for pid, _ in lexical_all if pid in allowed][:10]
        assert [pid for pid, _ in snap.bm25(query_terms(question), 10, (1.0, 1.0), filters)] == expected
