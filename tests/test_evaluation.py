"""Metrics against a hand-computed toy example, and the set loaders."""

from __future__ import annotations

import json
import math

import pytest
from dalil.search.evaluation import first_hits, load_qrels, load_squad, mean_metrics, question_metrics


def test_metrics_hand_computed():
    # ranking of passages by article; relevant = {"b", "d"}; b first appears at rank 2 (and again at 3),
    # d at rank 6.
    ranked = ["a", "b", "b", "c", "a", "d", "e", "f", "g", "h"]
    assert first_hits(ranked, frozenset({"b", "d"})) == [2, 6]
    m = question_metrics(ranked, frozenset({"b", "d"}))
    assert m["recall@1"] == 0.0 and m["recall@5"] == 0.5 and m["recall@10"] == 1.0
    assert m["mrr@10"] == 0.5
    dcg = 1 / math.log2(3) + 1 / math.log2(7)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx(dcg / idcg)


def test_miss_and_perfect():
    assert question_metrics(["x"] * 10, frozenset({"y"})) == {
        "recall@1": 0.0,
        "recall@5": 0.0,
        "recall@10": 0.0,
        "mrr@10": 0.0,
        "ndcg@10": 0.0,
    }
    perfect = question_metrics(["y", "x"], frozenset({"y"}))
    assert perfect["mrr@10"] == perfect["ndcg@10"] == perfect["recall@1"] == 1.0
    assert mean_metrics([perfect, question_metrics(["x", "y"], frozenset({"y"}))])["mrr@10"] == 0.75


def _squad(contexts_questions):
    return {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {"context": c, "qas": [{"id": qid, "question": q, "answers": []} for qid, q in qs]}
                    for c, qs in contexts_questions
                ],
            }
        ]
    }


def test_squad_parallel_questions_and_duplicate_paragraphs(tmp_path):
    ar = tmp_path / "ar.json"
    en = tmp_path / "en.json"
    ar.write_text(
        json.dumps(
            _squad(
                [
                    ("فقرة أولى", [("q1", "سؤال؟")]),
                    ("فقرة ثانية", [("q2", "سؤال آخر؟")]),
                    ("فقرة أولى", [("q3", "سؤال ثالث؟")]),
                ]
            ),
            ensure_ascii=False,
        )
    )
    en.write_text(
        json.dumps(
            _squad(
                [
                    ("first", [("q1", "Question?")]),
                    ("second", [("q2", "Other?")]),
                    ("first", [("q3", "Third?")]),
                ]
            )
        )
    )
    lset = load_squad(ar, en)
    assert len(lset.articles) == 2  # the repeated paragraph is one article
    by_id = {q.qid: q for q in lset.questions}
    assert by_id["q1"].query == "Question?" and by_id["q1"].relevant == by_id["q3"].relevant
    assert by_id["q2"].relevant != by_id["q1"].relevant


def test_qrels_format(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "query": "x", "relevant": ["d1", "d2"]}\n{"id": 2, "query": "y", "relevant": "d3"}\n'
    )
    lset = load_qrels(path)
    assert [q.relevant for q in lset.questions] == [frozenset({"d1", "d2"}), frozenset({"d3"})]
    path.write_text('{"id": "a"}\n')
    with pytest.raises(ValueError, match=":1:"):
        load_qrels(path)


def test_a_page_result_counts_the_reports_folded_under_it_at_its_rank():
    ranked = ["a", ("b", "c"), "d"]  # c was folded under b: shown at rank 2
    assert first_hits(ranked, frozenset({"c"})) == [2]
    assert question_metrics(ranked, frozenset({"c", "d"}))["recall@5"] == 1.0
    assert question_metrics(ranked, frozenset({"c"}))["mrr@10"] == 0.5
