"""Highlights: offsets point at the matched words; snippets are escaped HTML with <mark>."""

from __future__ import annotations

from dalil.search.highlight import highlight, match_offsets


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
