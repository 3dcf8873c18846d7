"""Passages are exact spans of the article and always fit the model's window."""

from __future__ import annotations

import itertools

from conftest import CORPUS, TECH_NEWS, shared_file
from dalil.indexer.analysis.splitting import SplitSettings, sentence_spans, split_passages
from dalil.indexer.build import prepare_articles
from dalil.indexer.corpus import read_corpus


def _check(article, passages, encoder, settings):
    assert passages, article.article_id
    for p in passages:
        assert article.text[p.start : p.end] == p.text
        assert encoder.count_tokens(p.text) <= settings.max_tokens
    # passages cover every paragraph
    covered = [(p.start, p.end) for p in passages]
    for start, end in article.paragraphs:
        assert any(a <= start and end <= b for a, b in covered) or any(
            a < end and start < b for a, b in covered
        )


def test_seed_passages_map_back_and_fit(encoder):
    settings = SplitSettings()
    for article, passages in prepare_articles(read_corpus(CORPUS), encoder, settings):
        _check(article, passages, encoder, settings)


def test_tech_corpus_passages_map_back_and_fit(encoder):
    settings = SplitSettings(max_tokens=128)  # a small window forces many long-paragraph splits
    articles = itertools.islice(read_corpus(shared_file(TECH_NEWS)), 150)
    for article, passages in prepare_articles(articles, encoder, settings):
        _check(article, passages, encoder, settings)


def test_short_paragraphs_merge_with_the_next(encoder):
    text = (
        "حضور قيادي رفيع\n\n"
        + "شهد الاجتماع حضور وفد رفيع المستوى من وزارة الاتصالات وتكنولوجيا المعلومات. " * 3
    )
    paragraphs = [(0, 15), (17, len(text))]
    passages = split_passages(text, paragraphs, encoder.count_tokens)
    assert len(passages) == 1 and passages[0].text.startswith("حضور قيادي رفيع")


def test_long_paragraph_is_cut_at_sentence_ends_with_overlap(encoder):
    sentences = [
        f"هذه هي الجملة رقم {i} في فقرة طويلة جدا عن تكنولوجيا المعلومات والاتصالات؟" for i in range(40)
    ]
    text = " ".join(sentences)
    settings = SplitSettings(max_tokens=80, overlap_tokens=40)
    passages = split_passages(text, [(0, len(text))], encoder.count_tokens, settings)
    assert len(passages) > 3
    for p in passages:
        assert p.text.endswith("؟") and encoder.count_tokens(p.text) <= 80
    for a, b in itertools.pairwise(passages):
        assert b.start < a.end  # one sentence of overlap


def test_a_sentence_longer_than_the_window_is_cut_at_words(encoder):
    text = " ".join(["كلمة"] * 600)
    passages = split_passages(text, [(0, len(text))], encoder.count_tokens, SplitSettings(max_tokens=100))
    assert all(encoder.count_tokens(p.text) <= 100 for p in passages)
    assert passages[0].start == 0 and passages[-1].end == len(text)


def test_sentence_spans_arabic_and_latin_ends():
    text = "أولا. ثانيا؟ ثالثا! رابعا؛ Fifth? Sixth.\nسابعا"
    parts = [text[a:b] for a, b in sentence_spans(text, 0, len(text))]
    assert parts == ["أولا.", "ثانيا؟", "ثالثا!", "رابعا؛", "Fifth?", "Sixth.", "سابعا"]
