"""Normalisation and light stemming on real words from the seed articles."""

from __future__ import annotations

import pytest
from dalil.indexer.analysis.arabic import normalize, script_of, stem, tokens
from dalil.indexer.analysis.terms import fts_match_expression, passage_fields, query_terms


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("عُقِدَ", "عقد"),  # tashkeel (seed 000)
        ("فى", "في"),  # Egyptian spelling (seeds 001-003)
        ("الاصطناعى", "الاصطناعي"),
        ("الروسى", "الروسي"),
        ("١٢ شركة", "12 شركه"),  # Arabic-Indic digits (seed 001), taa marbuta
        ("۲۰۲۴", "2024"),  # Persian digits
        ("أكد إنشاء آفاق ٱلله", "اكد انشاء افاق الله"),
        ("مـــصر", "مصر"),  # tatweel
        ("ITIDA  5G\n", "itida 5g"),
        ("ﻻ", "لا"),  # presentation form
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_egyptian_and_standard_forms_match():
    for a, b in [
        ("فى", "في"),
        ("الاصطناعى", "الاصطناعي"),
        ("الروسى", "الروسي"),
        ("الالكترونية", "الإلكترونية"),
    ]:
        assert normalize(a) == normalize(b)
        assert stem(normalize(a)) == stem(normalize(b))


@pytest.mark.parametrize(
    "word,expected",
    [
        ("والشركات", "شرك"),  # و + ال + ات
        ("بالقرية", "قري"),  # بال + ة(ه)
        ("للاتصالات", "اتصال"),  # لل + ات
        ("فالشركات", "شرك"),
        ("كالمعتاد", "معتاد"),
        ("المصرية", "مصر"),
        ("الروسية", "روس"),
        ("وربطها", "ربط"),
        ("الذكاء", "ذكاء"),
        ("مصر", "مصر"),  # too short to strip
        ("5G", "5g"),  # Latin and numbers are not stemmed
        ("2024", "2024"),
    ],
)
def test_light_stem(word, expected):
    assert stem(normalize(word)) == expected


def test_tokens_keep_display_offsets():
    text = "عُقِدَ اللقاء في «القرية الذكية» عام ٢٠١٩"
    toks = tokens(text)
    assert [text[t.start : t.end] for t in toks] == ["عُقِدَ", "اللقاء", "في", "القرية", "الذكية", "عام", "٢٠١٩"]
    assert toks[0].norm == "عقد" and toks[-1].norm == "2019"


def test_script_detection():
    assert script_of("التعاون مع روسيا في الجيل الخامس") == "ar"
    assert script_of("5G cooperation with Russia") == "latin"
    assert script_of("تقنية 5G في مصر") == "ar"
    assert script_of("2024") == "other"


def test_query_terms_drop_function_words_and_keep_latin():
    terms = query_terms("من هو وزير الاتصالات في مصر؟ ITIDA 5G")
    assert "من" not in terms.exact and "في" not in terms.exact
    assert {"وزير", "الاتصالات", "مصر", "itida", "5g"} <= set(terms.exact)
    assert "اتصال" in terms.stems and "itida" not in terms.stems
    latin = query_terms("Egypt ITIDA 2024 مصر", latin_only=True)
    assert latin.exact == ("egypt", "itida", "2024") and not latin.stems


def test_fts_expression_quotes_terms():
    expr = fts_match_expression(query_terms('NEAR "hi" say'))  # FTS5 syntax words are only terms
    assert expr == 'exact : ("near" OR "hi" OR "say")'


def test_passage_fields():
    f = passage_fields("عنوان", "وقال الوزير الروسى")
    assert f.exact == "عنوان وقال الوزير الروسي" and f.stems.split()[-1] == "روس"
