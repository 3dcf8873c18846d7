"""Cleaning on the real seed articles and the real tech-news corpus."""

from __future__ import annotations

import itertools

from conftest import CORPUS, TECH_NEWS, shared_file
from dalil.indexer.analysis.cleaning import clean_article, furniture_reason, is_breadcrumb
from dalil.indexer.corpus import read_corpus

# Furniture a reader of the seed pages would remove (listed here as test data, not used by the code).
SEED_FURNITURE = {
    "السياسة والشارع المصريعاجل",
    "أهم الأخباراتصالات وتكنولوجيا",
    "اظهر المزيد",
    "زر الذهاب إلى الأعلى",
    "جانب من اللقاء",
    ".",
    "سجل في قائمتنا البريدية لتصلك آخر الأخبار",
}
SEED_FOOTER_PREFIX = "التكنولوجيا وأخبارها بوابة مصر لأخبار تكنولوجيا المعلومات"


def _seed_articles():
    return {raw.article_id: (raw, clean_article(raw)) for raw in read_corpus(CORPUS)}


def test_no_furniture_line_survives_in_seeds():
    for raw, clean in _seed_articles().values():
        kept = set(clean.text.split("\n\n")) | {clean.title}
        assert not kept & SEED_FURNITURE, raw.article_id
        assert not any(line.startswith(SEED_FOOTER_PREFIX) for line in kept)


def test_every_content_paragraph_of_the_seeds_is_kept():
    for raw, clean in _seed_articles().values():
        content = [
            ln.strip()
            for ln in raw.text.split("\n")
            if ln.strip() and ln.strip() not in SEED_FURNITURE and not ln.startswith(SEED_FOOTER_PREFIX)
        ]
        kept = clean.text.split("\n\n")
        for line in content:
            assert line in kept or line == clean.title, f"{raw.article_id}: lost {line[:40]!r}"


def test_headlines_are_found_after_breadcrumbs():
    articles = _seed_articles()
    assert articles["001_fa24a9f9bb96395c"][1].title.startswith("رئيس الوزراء: مصر تخطو")
    assert articles["002_31814ce167dde68d"][1].title.startswith("طلعت يبحث مع سفير الصين")
    assert articles["000_5e840d295c91c543"][1].title.startswith("مصر تتفق مع روسيا")
    # 003 has no headline line: its opening words stand in, and the paragraph stays in the text
    c003 = articles["003_c98f5de2b5b9bb51"][1]
    assert c003.title.endswith("…") and c003.text.startswith("عقد الدكتور عمرو طلعت")


def test_short_sub_headings_are_content_not_furniture():
    for heading in (
        "حضور قيادي رفيع",
        "بناء شراكات وتحفيز المبادرات المشتركة",
        "2026.. عام التعاون التكنولوجي المكثف",
    ):
        assert furniture_reason(heading) is None
        assert not is_breadcrumb(heading)


def test_rules_on_real_outlets():
    cases = {
        "عين اليوم – متابعات": "byline",
        "رغد عشميل – عين اليوم": "byline",
        "// انتهى //": "site notice",
        "---------------------------------------": "no text",
        "** جميع المقالات المنشورة تمثل رأي كتابها فقط.": "site notice",
        "يمكنكم استلام إشعارات بأهم الموضوعات بعد تحميل أحدث نسخة من تطبيق بي بي سي عربي": "site notice",
        "#غزة #إنستغرام": "hashtags",
        "صورة أرشيفية": "caption",
    }
    for line, reason in cases.items():
        assert furniture_reason(line) == reason, line
    for content in (
        "ألاحماض الدهنية أوميغا -3",
        "أطلقت منصة يوتيوب أداة جديدة تحمل اسم Copyright Match لمساعدة صناع المحتوى",
        "الكاميرا",
    ):
        assert furniture_reason(content) is None, content


def test_tech_corpus_keeps_content():
    """On 500 real articles from five outlets: nearly all lines kept, and no long line dropped."""
    path = shared_file(TECH_NEWS)
    lines = kept = 0
    for raw in itertools.islice(read_corpus(path), 500):
        clean = clean_article(raw)
        lines += sum(1 for ln in raw.text.split("\n") if ln.strip())
        kept += len(clean.paragraphs)
        for dropped in clean.dropped:
            long_line = len(dropped.split()) > 12
            assert not long_line or furniture_reason(dropped) == "site notice", dropped
    assert kept / lines > 0.97


def test_tag_list_tail_is_cut_but_the_word_survives_in_text():
    from dalil.indexer.corpus import RawArticle

    tail = "وتعمل الشركة على دراسة الفكرة من جميع النواحي . سمات البلاستيك طرق مدينة روتردام"
    clean = clean_article(RawArticle(article_id="t", text=f"فقرة أولى عن الطرق.\n\n{tail}", title="ت"))
    assert clean.text.endswith("من جميع النواحي .") and "روتردام" not in clean.text
    assert clean.dropped == ("سمات البلاستيك طرق مدينة روتردام",)
    only_tags = clean_article(
        RawArticle(article_id="t2", text="خبر كامل هنا.\n\nسمات آبل ذكية ساعة", title="ت")
    )
    assert only_tags.text == "خبر كامل هنا."
    for text in ("من أبرز سمات الهاتف الجديد أنه خفيف الوزن.", "تتميز الشركة بسمات عديدة، منها السرعة."):
        assert clean_article(RawArticle(article_id="t3", text=text, title="ت")).text == text


def test_tag_tails_in_the_tech_corpus_come_from_one_outlet_only():
    path = shared_file(TECH_NEWS)
    trimmed = {
        raw.source
        for raw in read_corpus(path)
        if any(d.startswith("سمات") for d in clean_article(raw).dropped)
    }
    assert trimmed == {"saudinewsnet/3alyoum"}
