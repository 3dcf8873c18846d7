"""An index split into shards answers exactly as the one index does: BM25 with the collection's
statistics, dense top-k merged across shards, fusion and grouping on top (no Ray here: the shards
are searched in this process; tests/test_cluster.py serves them on Ray)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import DATA
from dalil.indexer.analysis.terms import query_terms
from dalil.indexer.corpus import RawArticle
from dalil.indexer.shard_split import split_index
from dalil.indexer.store.reader import IndexReader
from dalil.indexer.store.shard_routing import global_id, local_id, shard_of
from dalil.indexer.update import update_index
from dalil.search.searcher import Filters, Searcher, SearchOptions
from dalil.search.sharded_reader import ShardedIndex, ShardSearcher, local_shards

QUESTIONS = [json.loads(line)["query"] for line in (DATA / "seed_questions.jsonl").read_text().splitlines()]


def test_bm25_with_an_index_s_own_statistics_is_fts5_s_bm25(seed_index):
    reader = IndexReader.open(seed_index)
    try:
        with reader.snapshot() as snap:
            for question in QUESTIONS:
                terms = query_terms(question)
                for weights in ((1.0, 1.0), (1.0, 0.5)):
                    own = snap.bm25(terms, 50, weights, {})
                    handed_in = snap.bm25(terms, 50, weights, {}, snap.lexical_stats(terms))
                    assert [p for p, _ in own] == [p for p, _ in handed_in], question
                    assert all(abs(a - b) < 1e-9 for (_, a), (_, b) in zip(own, handed_in, strict=True))
    finally:
        reader.close()


def test_passage_ids_translate_both_ways():
    for shards in (1, 2, 7):
        for shard in range(shards):
            for local in (0, 1, 12345):
                assert local_id(global_id(local, shard, shards), shards) == (shard, local)
    assert shard_of("000_5e840d295c91c543", 4) == shard_of("000_5e840d295c91c543", 4)  # no per-process salt


EXTRA = [
    RawArticle(
        f"extra-{i}",
        f"أعلنت شركة {name} عن خدمة رقمية جديدة للمواطنين في مصر تعتمد على الذكاء الاصطناعي.",
        title=f"{name} تطلق خدمة رقمية",
        source=source,
        date=f"2024-0{i + 1}-15",
    )
    for i, (name, source) in enumerate(
        [("هواوي", "الأهرام"), ("أورنج", "المصري اليوم"), ("فودافون", "الأهرام"), ("سامسونج", "الشروق")]
    )
]


@pytest.fixture(scope="module", params=[2, 3])
def sharded(request, seed_index, tmp_path_factory, encoder):
    """(the one index's searcher, the same articles in shards searched as one, the shard roots)."""
    root = tmp_path_factory.mktemp("sharded") / "index"
    shutil.copytree(seed_index, root)
    update_index(root, EXTRA, (), encoder)  # metadata to filter on, and a second segment
    shards = request.param
    roots = split_index(root, shards)
    searchers = [ShardSearcher(p, k, shards) for k, p in enumerate(roots)]
    index = ShardedIndex(shards, local_shards(searchers), vocabulary_dir=searchers[0].reader.path)
    one = Searcher.open(root, encoder)
    yield one, Searcher(index, encoder), roots
    one.close()
    for s in searchers:
        s.close()


def test_every_article_is_in_exactly_one_shard(sharded):
    one, _, roots = sharded
    whole = IndexReader.open(one.index.path)
    with whole.snapshot() as snap:
        expected = {a["article_id"]: len(a["passages"]) for a in snap.iter_articles()}
    whole.close()
    seen: dict[str, int] = {}
    for k, root in enumerate(roots):
        reader = IndexReader.open(root)
        with reader.snapshot() as snap:
            for article in snap.iter_articles():
                assert article["article_id"] not in seen
                assert shard_of(article["article_id"], len(roots)) == k
                seen[article["article_id"]] = len(article["passages"])
        reader.close()
    assert seen == expected


def _ranked(hits) -> list[frozenset]:
    """Hits as groups of equal score, best first: passages that tie may come in either order (each
    index breaks ties by its own passage numbers). The last group may be cut by k: left out."""
    groups: list[tuple[float, set]] = []
    for h in hits:
        if groups and abs(groups[-1][0] - h.score) < 1e-6:
            groups[-1][1].add((h.article_id, h.start, h.end))
        else:
            groups.append((h.score, {(h.article_id, h.start, h.end)}))
    return [frozenset(g) for _, g in groups[:-1]]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_sharded_answers_equal_the_one_index_answers(sharded, mode):
    searcher, sharded_searcher, _ = sharded
    for question in [*QUESTIONS, "خدمة رقمية جديدة بالذكاء الاصطناعي"]:
        one = searcher.search(question, 10, mode)
        split = sharded_searcher.search(question, 10, mode)
        assert _ranked(one) == _ranked(split), question
        assert [h.score for h in one] == pytest.approx([h.score for h in split], abs=1e-6)
        by_passage = {(h.article_id, h.start): h.snippet for h in split}
        assert all(by_passage.get((h.article_id, h.start), h.snippet) == h.snippet for h in one)


def test_sharded_articles_filters_and_grouping_equal_the_one_index(sharded):
    searcher, sharded_searcher, _ = sharded
    assert sharded_searcher.index.facet_values("source") == searcher.index.facet_values("source")
    source = "الأهرام"
    for question in [*QUESTIONS[:6], "خدمة رقمية جديدة"]:
        one = searcher.search_articles(question, 5)
        split = sharded_searcher.search_articles(question, 5)
        assert [g.article_id for g in one] == [g.article_id for g in split]
        for filtered in (Filters(source=source), Filters(date_from="2024-02-01", date_to="2024-03-31")):
            expected = [h.article_id for h in searcher.search(question, 5, filters=filtered)]
            assert expected == [h.article_id for h in sharded_searcher.search(question, 5, filters=filtered)]
            assert expected and all(a.startswith("extra-") for a in expected)
    article_id = searcher.search(QUESTIONS[0], 1)[0].article_id
    one, split = searcher.index.article(article_id), sharded_searcher.index.article(article_id)
    assert {k: v for k, v in one.items() if k != "passages"} == {
        k: v for k, v in split.items() if k != "passages"
    }
    assert [p["text"] for p in one["passages"]] == [p["text"] for p in split["passages"]]


def test_sharded_news_reader_answers_equal_the_one_index(sharded):
    """Newest first, facets, phrases, exclusions and related stories ask the shards (each counts
    its own articles) and add up to the one index's answers."""
    searcher, sharded_searcher, _ = sharded
    options = SearchOptions(k=10, group=True, sort="newest", facets=True, collapse=False)
    for question in [*QUESTIONS[:4], '"وزير الاتصالات" -روسيا', "خدمة رقمية -الأهرام"]:
        one, split = searcher.answer(question, options), sharded_searcher.answer(question, options)
        assert [g.article_id for g in one.results] == [g.article_id for g in split.results], question
        assert one.facets == split.facets and one.undated == split.undated
        assert sum(one.facets["source"].values()) <= one.total
        assert one.results or question.isascii(), question  # every Arabic question here has matches
    recent = SearchOptions(k=10, recency=30)  # passage ids differ between layouts: articles and scores
    one = searcher.answer(QUESTIONS[0], recent).results
    split = sharded_searcher.answer(QUESTIONS[0], recent).results
    assert [(h.article_id, h.score) for h in one] == [(h.article_id, h.score) for h in split]
    assert searcher.suggest("وز") == sharded_searcher.suggest("وز") != []
    article_id = one[0].article_id
    assert [g.article_id for g in searcher.related(article_id, 3).related] == [
        g.article_id for g in sharded_searcher.related(article_id, 3).related
    ]
