"""What the page prints around results: Arabic counts, source names, date fields, the facet panel
only when there is something to count, and sentences each in their own direction."""

from __future__ import annotations

import json
import re

import pytest
from dalil.api.app import create_app
from dalil.api.wording import ARTICLES, MATCHING_PASSAGES, SourceNames, arabic_count, english_count
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("n", "more", "expected"),
    [
        (1, False, "مقال واحد"),
        (2, False, "مقالان"),
        (3, False, "3 مقالات"),
        (10, False, "10 مقالات"),
        (11, False, "11 مقالاً"),
        (99, False, "99 مقالاً"),
        (100, False, "100 مقال"),
        (102, False, "102 مقال"),
        (103, False, "103 مقالات"),
        (111, False, "111 مقالاً"),
        (1000, False, "1000 مقال"),
        (100, True, "100 مقال أو أكثر"),
        (21, True, "21 مقالاً أو أكثر"),
        (2, True, "مقالان أو أكثر"),
    ],
)
def test_arabic_counts_take_the_form_arabic_gives_each_number(n, more, expected):
    assert arabic_count(n, ARTICLES, more) == expected


def test_matching_passages_and_english_counts():
    assert arabic_count(2, MATCHING_PASSAGES) == "فقرتان مطابقتان"
    assert arabic_count(4, MATCHING_PASSAGES) == "4 فقرات مطابقة"
    assert (english_count(1, "article"), english_count(5, "article")) == ("1 article", "5 articles")
    assert english_count(100, "article", more=True) == "100+ articles"


def test_source_names_from_the_id_or_a_map(tmp_path):
    names = SourceNames()
    assert names("ant-multisource/bbcarabic") == "bbcarabic" and names("masrawy") == "masrawy"
    assert names(None) == ""
    mapping = tmp_path / "names.json"
    mapping.write_text(json.dumps({"ant-multisource/bbcarabic": "بي بي سي عربي"}), encoding="utf-8")
    mapped = SourceNames.from_file(mapping)
    assert mapped("ant-multisource/bbcarabic") == "بي بي سي عربي" and mapped("x/alarabiya") == "alarabiya"
    mapping.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="JSON object"):
        SourceNames.from_file(mapping)


@pytest.fixture(scope="module")
def seed_page(seed_index, searcher):
    return TestClient(create_app(seed_index, searcher=searcher))


def test_seed_page_counts_in_arabic_and_shows_no_empty_facet_box(seed_page):
    page = seed_page.get("/", params={"q": "التعاون مع روسيا"}).text
    status = re.search(r'<p class="status" role="status" id="status">(.*?)</p>', page, re.S).group(1)
    arabic = re.search(r'<bdi dir="rtl" lang="ar">(.*?)</bdi>', status).group(1)
    assert arabic in ("مقال واحد", "مقالان") or re.fullmatch(r"\d+ مقالات", arabic), arabic
    assert 'id="facets"' not in page  # the seed articles have no sources or dates: nothing to count


def test_date_fields_say_their_format_in_both_languages(seed_page):
    page = seed_page.get("/").text
    for name in ("date_from", "date_to"):
        field = re.search(rf'<input id="{name}"[^>]*>', page, re.S).group(0)
        assert 'type="text"' in field and 'placeholder="YYYY-MM-DD"' in field and "سنة-شهر-يوم" in field
    assert "التاريخ: سنة-شهر-يوم" in page and "dates: YYYY-MM-DD" in page


def test_no_close_match_notice_sets_each_sentence_direction(seed_page):
    page = seed_page.get("/", params={"q": "best recipe for koshari at home with lentils and rice"}).text
    page_ar = seed_page.get("/", params={"q": "ما أفضل وصفة لتحضير الكشري في المنزل؟"}).text
    assert 'id="no-close-match"' in page_ar
    for html in (page, page_ar):
        if 'id="no-close-match"' in html:
            assert '<p lang="ar" dir="rtl"><strong>لا يوجد تطابق قريب</strong>' in html
            assert '<p lang="en" dir="ltr"><strong>No close match</strong>' in html


def test_news_page_shows_sources_by_name_and_filters_by_id(news_index, tmp_path):
    from dalil.search.searcher import Searcher

    searcher = Searcher.open(news_index)
    try:
        plain = TestClient(create_app(news_index, searcher=searcher)).get("/", params={"q": "فيسبوك"}).text
        assert 'id="facets"' in plain
        facet = re.search(r'<section class="facet" id="facet-source">.*?</section>', plain, re.S).group(0)
        assert "ant-multisource/" not in re.sub(r'href="[^"]*"', "", facet)  # shown by name...
        assert "source=ant-multisource%2F" in facet  # ...and followed by id
        assert '<option value="ant-multisource/bbcarabic"' in plain and ">bbcarabic</option>" in plain
        names = SourceNames({"ant-multisource/bbcarabic": "بي بي سي عربي"})
        mapped = TestClient(create_app(news_index, searcher=searcher, source_names=names))
        assert ">بي بي سي عربي</option>" in mapped.get("/", params={"q": "فيسبوك"}).text
    finally:
        searcher.close()
