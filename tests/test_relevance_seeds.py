"""Questions written from reading the seed articles, half English, half Arabic: rank 1 required.

Every question is checked in hybrid and dense mode. Lexical mode (BM25 over Arabic text) can only
answer Arabic questions, and English ones through a name or number that the Arabic text contains.
"""

from __future__ import annotations

import json

import pytest
from conftest import CORPUS, DATA
from dalil.indexer.analysis.arabic import normalize
from dalil.indexer.analysis.terms import query_terms

QUESTIONS = [json.loads(line) for line in (DATA / "seed_questions.jsonl").read_text().splitlines() if line]


def _lexical_can_answer(question: dict) -> bool:
    """Arabic questions; English ones only if one of their Latin words or numbers is in the article."""
    if question["lang"] == "ar":
        return True
    article = normalize((CORPUS / f"{question['article']}.txt").read_text(encoding="utf-8")).split()
    return any(term in article for term in query_terms(question["query"], latin_only=True).exact)


CASES = [
    (q, mode)
    for q in QUESTIONS
    for mode in ("hybrid", "dense", "lexical")
    if mode != "lexical" or _lexical_can_answer(q)
]


def test_the_set_is_balanced():
    langs = [q["lang"] for q in QUESTIONS]
    assert len(QUESTIONS) >= 12 and langs.count("en") >= 6 and langs.count("ar") >= 6


@pytest.mark.parametrize(("question", "mode"), CASES, ids=[f"{q['id']}-{m}" for q, m in CASES])
def test_answering_article_ranks_first(searcher, question, mode):
    hits = searcher.search(question["query"], k=5, mode=mode)
    assert hits[0].article_id == question["article"], [h.article_id for h in hits]
