"""Corpus readers: both input forms, and every kind of bad record reported with file and line."""

from __future__ import annotations

import gzip
import json

import pytest
from conftest import CORPUS
from dalil.indexer.corpus import CorpusError, CorpusReport, read_corpus

RECORD = {
    "id": "a1",
    "title": "عنوان",
    "text": "فقرة أولى.\n\nفقرة ثانية.",
    "source": "s",
    "category": "technology",
    "date": "2018-02-18",
    "url": "https://example.org/1",
    "lang": "ar",
}


def _jsonl(records) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def test_txt_directory_uses_file_stems_as_ids():
    ids = [a.article_id for a in read_corpus(CORPUS)]
    assert ids == sorted(ids) and ids[0] == "000_5e840d295c91c543" and len(ids) == 5


def test_jsonl_and_gz_read_the_schema(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(_jsonl([RECORD]))
    with gzip.open(tmp_path / "b.jsonl.gz", "wb") as fh:
        fh.write(_jsonl([{**RECORD, "id": "b1", "title": None}]))
    articles = {a.article_id: a for a in read_corpus(tmp_path)}
    assert articles["a1"].title == "عنوان" and articles["a1"].date == "2018-02-18"
    assert articles["b1"].title is None and articles["b1"].source == "s"


def test_bad_jsonl_lines_are_reported_and_the_rest_read(tmp_path):
    data = (
        _jsonl([RECORD])
        + b"{not json\n"
        + b'"a string"\n'
        + _jsonl([{"id": "x", "text": ""}])
        + b'{"id": "bad", "text": "\xff\xfe"}\n'
        + _jsonl([{**RECORD, "id": "a2"}, RECORD])
    )
    path = tmp_path / "c.jsonl"
    path.write_bytes(data)
    report = CorpusReport()
    ids = [a.article_id for a in read_corpus(path, report)]
    assert ids == ["a1", "a2"]
    lines = {(p.line, p.reason.split(" (")[0]) for p in report.problems}
    assert (2, "malformed JSON") in lines
    assert (3, "a JSON object was expected") in lines
    assert (4, "'text': missing or empty") in lines
    assert any(p.line == 5 and "UTF-8" in p.reason for p in report.problems)
    assert any("duplicate article id" in p.reason for p in report.problems)


def test_non_utf8_txt_is_skipped_with_its_line(tmp_path):
    (tmp_path / "good.txt").write_text("عنوان\nنص المقال هنا.\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes("سطر سليم\n".encode() + b"\xff\xfe broken\n")
    report = CorpusReport()
    assert [a.article_id for a in read_corpus(tmp_path, report)] == ["good"]
    (problem,) = report.problems
    assert problem.path.endswith("bad.txt") and problem.line == 2 and "UTF-8" in problem.reason


def test_truncated_gzip_keeps_what_was_readable(tmp_path):
    blob = gzip.compress(_jsonl([{**RECORD, "id": f"r{i}"} for i in range(200)]))
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    report = CorpusReport()
    ids = [a.article_id for a in read_corpus(path, report)]
    assert 0 < len(ids) < 200 and "truncated or corrupt" in report.problems[-1].reason


def test_nul_bytes_and_controls_are_removed(tmp_path):
    (tmp_path / "n.jsonl").write_bytes(_jsonl([{**RECORD, "text": "نص\x00 مع\x1a تحكم"}]))
    (article,) = read_corpus(tmp_path)
    assert article.text == "نص مع تحكم"


@pytest.mark.parametrize("make", ["missing", "empty_dir", "wrong_suffix"])
def test_unreadable_corpus_paths_raise_a_clear_error(tmp_path, make):
    path = {"missing": tmp_path / "nope", "empty_dir": tmp_path, "wrong_suffix": tmp_path / "x.csv"}[make]
    if make == "wrong_suffix":
        path.write_text("a,b")
    with pytest.raises(CorpusError):
        list(read_corpus(path))


def test_huge_lines_are_read(tmp_path):
    big = "فقرة طويلة جدا. " * 120_000  # ~3.5 MB in one JSON line (1.9M characters), one paragraph
    (tmp_path / "big.jsonl").write_text(json.dumps({**RECORD, "text": big}, ensure_ascii=False) + "\n")
    (article,) = read_corpus(tmp_path)
    assert len(article.text) == len(big)


def test_files_and_the_api_share_one_article_rule(tmp_path):
    """A line the HTTP API would refuse is skipped from a file, with the field and the reason."""
    from dalil.indexer.corpus import LIMITS, CorpusReport

    lines = [
        {**RECORD, "id": "too-long", "text": "ن" * (LIMITS["text"] + 1)},
        {**RECORD, "id": "bad-date", "date": "03/12/2026"},
        {**RECORD, "id": "timestamp", "date": "2026-12-03T10:00:00Z"},
        {**RECORD, "id": True},
    ]
    (tmp_path / "rules.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    report = CorpusReport()
    (kept,) = read_corpus(tmp_path, report)
    assert kept.article_id == "timestamp" and kept.date == "2026-12-03"
    reasons = sorted(p.reason for p in report.problems)
    assert reasons == [
        "'date': '03/12/2026' is not a YYYY-MM-DD date",
        "'id': missing, blank, or not text",
        "'text': longer than 2,000,000 characters",
    ]
