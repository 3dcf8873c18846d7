"""Questions as people paste them (search/evaluation.py `load_pasted`), a fast subset of the set
`dalil eval` reports: real headlines in their own punctuation, asking for their own article indexed
without its headline. No question may come back empty, and quoted questions must rank at least as
well as the same questions with their quote marks deleted (quotes help and never hurt)."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED, shared_file
from dalil.search.evaluation import evaluate, holds_quotes, load_pasted
from dalil.search.searcher import Searcher

pytestmark = pytest.mark.slow

SUBSET_ARTICLES = 150  # the large corpus's first lines: ~80 headlines, half of them with quotes


@pytest.fixture(scope="module")
def pasted(tmp_path_factory, encoder):
    from dalil.indexer.build import build_index

    source = shared_file(SHARED / "corpus" / "arabic-news-large.jsonl.gz")
    quoted, stripped = load_pasted(source, SUBSET_ARTICLES)
    corpus = tmp_path_factory.mktemp("pasted") / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": a.article_id, "title": "", "text": a.text}, ensure_ascii=False) + "\n"
            for a in quoted.articles
        ),
        encoding="utf-8",
    )
    out = corpus.parent / "index"
    build_index(corpus, out, encoder, progress=False)
    searcher = Searcher.open(out, encoder)
    yield quoted, stripped, searcher
    searcher.close()


def test_the_subset_is_made_of_pasted_headlines(pasted):
    quoted, stripped, _ = pasted
    with_quotes = [q for q in quoted.questions if holds_quotes(q)]
    assert len(quoted.questions) >= 60 and len(with_quotes) >= 30
    assert any("«" in q.query for q in with_quotes) and any('"' in q.query for q in with_quotes)
    assert not any(holds_quotes(q) for q in stripped.questions)
    assert [q.relevant for q in quoted.questions] == [q.relevant for q in stripped.questions]


def test_no_pasted_question_comes_back_empty(pasted):
    quoted, _, searcher = pasted
    result = evaluate(searcher, quoted, ["hybrid", "dense", "lexical"])
    assert result.empty == {view: {"hybrid": 0, "dense": 0, "lexical": 0} for view in ("answer", "page")}


def test_quoted_questions_rank_at_least_as_well_as_without_their_quotes(pasted):
    quoted, stripped, searcher = pasted
    with_marks = evaluate(searcher, quoted, ["hybrid"]).metrics
    without = evaluate(searcher, stripped, ["hybrid"]).metrics
    for view in ("answer", "page"):
        got, baseline = with_marks[view]["hybrid"]["all"], without[view]["hybrid"]["all"]
        assert got["recall@1"] >= baseline["recall@1"], (view, got, baseline)
        assert got["recall@1"] >= 0.8  # the set is answerable: a broken ranking fails here too
