"""Highlights: offsets point at the matched words; snippets are escaped HTML with <mark>."""

from __future__ import annotations

import pytest
from dalil.search.highlight import highlight, match_groups, match_offsets


def test_normalised_forms_are_marked():
    text = "وأوضح طلعت، جهود الدولة لتوطين صناعة الذكاء الاصطناعى في مصر."
    offsets = match_offsets(text, "الذكاء الاصطناعي")
    assert [text[a:b] for a, b in offsets] == ["الذكاء", "الاصطناعى"]


def test_stems_match_but_function_words_do_not():
    text = "الشركات الروسية والشركة المصرية في القرية الذكية"
    marked = [text[a:b] for a, b in match_offsets(text, "شركة روسية في")]
    assert marked == ["الشركات", "الروسية", "والشركة"]


def test_snippet_is_escaped_and_marked():
    text = 'قال <b>الوزير</b> إن "التعاون" مع روسيا & الصين مهم.'
    h = highlight(text, "التعاون مع روسيا")
    assert "<b>" not in h.snippet and "&lt;b&gt;" in h.snippet and "&amp;" in h.snippet
    assert "<mark>التعاون</mark>" in h.snippet and "<mark>روسيا</mark>" in h.snippet
    for a, b in h.offsets:
        assert text[a:b] in ("التعاون", "روسيا")


def test_snippet_centres_on_the_best_sentence():
    filler = "جملة عامة عن موضوع آخر لا علاقة له بالسؤال. " * 12
    text = filler + "اتفقت مصر وروسيا على التعاون في الجيل الخامس. " + filler
    h = highlight(text, "الجيل الخامس روسيا", max_chars=120)
    assert "<mark>الجيل</mark> <mark>الخامس</mark>" in h.snippet
    assert h.snippet.startswith("…") and h.snippet.endswith("…")
    assert h.snippet_end - h.snippet_start <= 120


def test_search_results_carry_highlights(searcher):
    hit = searcher.search("الذكاء الاصطناعي", 1)[0]
    assert hit.highlights and all(
        hit.text[a:b] in ("الذكاء", "الاصطناعي", "الاصطناعى") for a, b in hit.highlights
    )
    assert "<mark>" in hit.snippet


def test_english_words_find_their_arabic_words_through_the_word_index(tmp_path, seed_index, encoder):
    """The word index (HNSW over 8-bit codes) picks candidates; their exact scores decide. On these
    questions it finds the same Arabic words as scanning the whole table (over 434 XQuAD words the
    kept sets' mean Jaccard is 0.993: docs/benchmarks.md), and an index built before word indexes
    (no vocabulary.faiss) is still searched, by scanning; a damaged one is named."""
    import shutil

    from dalil.indexer.store.layout import IndexCorruptError, read_current
    from dalil.indexer.store.vocabulary import VOCABULARY_INDEX, Vocabulary
    from dalil.search.crosslingual import CrossLingualTerms

    generation = seed_index / read_current(seed_index)
    indexed = Vocabulary.open(generation)
    assert indexed.index is not None and indexed.index.ntotal == len(indexed.words)
    scanned = Vocabulary(indexed.words, indexed.vectors, None)
    questions = [
        "5G cooperation between Egypt and Russia",
        "Chinese ambassador discusses artificial intelligence",
        "paperless government in Azerbaijan",
    ]
    fast, slow = CrossLingualTerms(indexed, encoder), CrossLingualTerms(scanned, encoder)
    found = [fast.arabic_terms(q) for q in questions]
    assert found == [slow.arabic_terms(q) for q in questions]
    assert any("روس" in w for w in found[0]) and any("صين" in w for w in found[1])

    old = tmp_path / "no-word-index"
    shutil.copytree(seed_index, old)
    (old / read_current(old) / VOCABULARY_INDEX).unlink()
    assert Vocabulary.open(old / read_current(old)).index is None
    (old / read_current(old) / VOCABULARY_INDEX).write_bytes(b"not faiss")
    with pytest.raises(IndexCorruptError, match=r"vocabulary\.faiss"):
        Vocabulary.open(old / read_current(old))


# --- tokens stored at indexing time: the same marks as analysing each result per question --------


def _reference_offsets(text: str, question: str, translations) -> list[tuple[int, int]]:
    """How highlighting analysed a passage before its tokens were stored: the oracle."""
    from dalil.indexer.analysis.arabic import is_arabic_term, tokens
    from dalil.search.highlight import match_groups, match_terms

    exact, stems = match_terms(match_groups(question, translations))
    return [
        (t.start, t.end)
        for t in tokens(text)
        if t.norm in exact or (is_arabic_term(t.norm) and t.stem in stems)
    ]


def _questions(news_index) -> list[str]:
    import json

    from conftest import DATA, REPO
    from dalil.indexer.store.reader import IndexReader

    seeds = [json.loads(line)["query"] for line in (DATA / "seed_questions.jsonl").read_text().splitlines()]
    reader = IndexReader.open(news_index)
    try:
        with reader.snapshot() as snap:
            headlines = list(snap.titles())[:25]
    finally:
        reader.close()
    lines = (REPO / "bench" / "data" / "news-en.jsonl").read_text().splitlines()
    english = [json.loads(line)["query"] for line in lines]
    return seeds + headlines + english[:25]


@pytest.mark.parametrize("which", ["seed", "news"])
def test_stored_tokens_mark_exactly_what_analysing_the_text_marked(which, searcher, news_index, encoder):
    from dalil.search.searcher import Searcher, SearchOptions

    own = searcher if which == "seed" else Searcher.open(news_index, encoder)
    try:
        checked = 0
        for question in _questions(news_index):
            answer = own.answer(question, SearchOptions(k=10))
            with own.index.snapshot() as snap:
                translations = own._translations(answer.parsed.text, snap)
                rows = snap.passages(h.passage_id for h in answer.results)
            for hit in answer.results:
                assert rows[hit.passage_id].tokens is not None  # this index stores them
                assert hit.highlights == _reference_offsets(hit.text, answer.parsed.text, translations)
                analysed = highlight(hit.text, answer.parsed.text, translations=translations)
                assert hit.snippet == analysed.snippet
                checked += 1
        assert checked > 200
    finally:
        if own is not searcher:
            own.close()


def test_an_index_without_stored_tokens_answers_the_same(seed_index, tmp_path, searcher, encoder):
    import shutil

    import apsw
    from dalil.indexer.store.layout import DATABASE, resolve_generation
    from dalil.search.searcher import Searcher

    old = tmp_path / "old"
    shutil.copytree(seed_index, old)
    db = apsw.Connection(str(resolve_generation(old) / DATABASE))
    db.execute("DROP TABLE passage_tokens")  # as an index built before tokens were stored
    db.close()
    legacy = Searcher.open(old, encoder)
    try:
        for question in ("الذكاء الاصطناعي", "5G cooperation with Russia", "التعاون مع روسيا"):
            now, before = searcher.search(question, 5), legacy.search(question, 5)
            assert [(h.passage_id, h.highlights, h.snippet) for h in now] == [
                (h.passage_id, h.highlights, h.snippet) for h in before
            ]
    finally:
        legacy.close()


def test_the_lexical_query_keeps_the_best_counterparts_and_highlighting_all(encoder):
    """An English word's lexical query ORs its LEXICAL_COUNTERPARTS best-aligned Arabic words (each
    one costs BM25 a posting list); highlighting and matching still mark every aligned word."""
    from dalil.indexer.store.vocabulary import Vocabulary
    from dalil.search import crosslingual

    words = ["الصين", "الصينية", "للصين", "بالصين", "الصيني", "روسيا", "الروسية", "لروسيا", "مصر"]
    table = Vocabulary.empty(encoder.dimension).with_additions(words, encoder.encode_queries(words))
    terms = crosslingual.CrossLingualTerms(table, encoder)
    question = "Chinese and Russian cooperation"
    ranked = terms.arabic_terms_by_word(question)  # best first
    cap = crosslingual.LEXICAL_COUNTERPARTS
    assert cap is not None and any(len(best) > cap for best in ranked.values())  # the cap binds here
    expected = {w for best in ranked.values() for w in best[:cap]}
    assert set(terms.arabic_query_terms(question).exact) == expected
    assert terms.arabic_terms(question) == {w for best in ranked.values() for w in best}
    highlighted = {w for group in match_groups(question, ranked) for w in group.exact}
    assert set(ranked["chinese"]) <= highlighted
