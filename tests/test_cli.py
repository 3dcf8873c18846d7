"""The `dalil` command as a user runs it: real subprocesses, clear messages, no tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import CORPUS, REPO
from dalil.indexer.store.layout import SEGMENTS, read_current


def dalil(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "dalil.api.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_index_prints_a_summary_and_search_finds_the_answer(tmp_path):
    out = tmp_path / "idx"
    proc = dalil("index", "--corpus", str(CORPUS), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "indexed 5 articles" in proc.stdout and "passages" in proc.stdout
    assert "reading" in proc.stderr and "42/42" in proc.stderr  # the progress bars: articles, passages
    # stderr is a pipe here, not a terminal: whole lines, never redrawn in place
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert any(line.startswith("reading: 5/5 art") for line in lines), lines
    assert any(line.startswith("embedding: 42/42 passage") for line in lines), lines
    for question in ("التعاون مع روسيا في الجيل الخامس", "5G cooperation with Russia"):
        proc = dalil("search", question, "--index", str(out), "-k", "3", "--json")
        assert proc.returncode == 0, proc.stderr
        results = json.loads(proc.stdout)["results"]
        assert results[0]["article_id"] == "000_5e840d295c91c543"
        assert set(results[0]) >= {
            "rank",
            "score",
            "article_id",
            "title",
            "source",
            "date",
            "url",
            "passage_id",
            "text",
            "start",
            "end",
        }
    readable = dalil("search", "الذكاء الاصطناعي", "--index", str(out), "-k", "2")
    assert readable.returncode == 0 and "002_31814ce167dde68d" in readable.stdout
    assert "الذكاء" in readable.stdout  # Arabic written as characters


def test_default_index_directory_comes_from_the_environment(seed_index):
    proc = dalil(
        "search",
        "paperless government in Azerbaijan",
        "-k",
        "1",
        "--json",
        env={"DALIL_INDEX": str(seed_index)},
    )
    assert json.loads(proc.stdout)["results"][0]["article_id"] == "004_19b3c5eaec262736"


def test_batch_mode_answers_each_line_and_reports_bad_ones(seed_index):
    lines = "\n".join(
        [
            json.dumps({"id": "q1", "query": "5G cooperation with Russia"}),
            "{not json",
            json.dumps({"id": 7, "query": "ربط شبكات الألياف الضوئية بين مصر والأردن"}),
            json.dumps({"id": "q3", "query": "   "}),
        ]
    )
    proc = dalil("search", "--queries", "-", "--json", "--index", str(seed_index), "-k", "2", stdin=lines)
    assert proc.returncode == 3
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["q1", None, 7, "q3"]
    assert out[0]["results"][0]["article_id"] == "000_5e840d295c91c543"
    assert out[2]["results"][0]["article_id"] == "003_c98f5de2b5b9bb51"
    assert "line 2" in out[1]["error"] and "empty" in out[3]["error"]
    assert "line 2" in proc.stderr and "line 4" in proc.stderr


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question(seed_index, question):
    proc = dalil("search", question, "--index", str(seed_index))
    assert proc.returncode == 2 and "empty" in proc.stderr  # a usage error


def test_missing_index(tmp_path):
    proc = dalil("search", "سؤال", "--index", str(tmp_path / "none"))
    assert proc.returncode == 1 and "no index at" in proc.stderr


def test_corrupt_index(seed_index, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(seed_index, root)
    for segment in (root / read_current(root) / SEGMENTS).iterdir():
        segment.write_bytes(b"garbage")
    proc = dalil("search", "سؤال", "--index", str(root))
    assert proc.returncode == 1 and "damaged" in proc.stderr


def test_unreadable_corpus_path(tmp_path):
    proc = dalil("index", "--corpus", str(tmp_path / "nowhere"), "--out", str(tmp_path / "idx"))
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    assert not (tmp_path / "idx").exists() or read_current(tmp_path / "idx") is None


def test_non_utf8_file_and_malformed_jsonl_line_are_reported(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / "000_5e840d295c91c543.txt", corpus)
    (corpus / "latin1.txt").write_bytes("Caf\xe9 au lait\n".encode("latin-1"))
    good = {"id": "j1", "title": "عنوان", "text": "بحث الوزير التعاون في مجال الذكاء الاصطناعي مع الصين."}
    (corpus / "news.jsonl").write_text(json.dumps(good, ensure_ascii=False) + "\n{oops\n")
    proc = dalil("index", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), "-q")
    assert proc.returncode == 3, proc.stderr
    assert "latin1.txt:1: not valid UTF-8" in proc.stderr
    assert "news.jsonl:2: malformed JSON" in proc.stderr
    assert "all other articles were indexed" in proc.stderr
    assert "indexed 2 articles" in proc.stdout


def test_eval_command_on_a_tiny_squad_set(tmp_path):
    data = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "اتفقت مصر وروسيا على التعاون في مجال الجيل الخامس من الاتصالات.",
                        "qas": [{"id": "1", "question": "ما مجال التعاون بين مصر وروسيا؟", "answers": []}],
                    },
                    {
                        "context": "أطلقت أذربيجان مبادرة لحكومة لا ورقية في عام 2024.",
                        "qas": [{"id": "2", "question": "ما هي مبادرة أذربيجان؟", "answers": []}],
                    },
                ],
            }
        ]
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    proc = dalil("eval", str(path), "--cache", str(tmp_path / "cache"), "-q", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["tiny"]
    for view in ("answer", "page"):  # the API's default answer and the page's, both measured
        assert report["questions"] == 2 and set(report[view]) == {"hybrid", "dense", "lexical"}
        assert report[view]["hybrid"]["recall@1"] == 1.0 and report["empty"][view]["hybrid"] == 0
        assert set(report[f"{view} halves"]["hybrid"]) == {"A", "B"}
    table = dalil("eval", str(path), "--cache", str(tmp_path / "cache"), "-q", "--modes", "dense")
    assert "| tiny | dense | 100.0 |" in table.stdout and "The page" in table.stdout
    assert "Halves, answer (A:" in table.stdout and "B: R@1" in table.stdout  # the held-apart half too
    unanswerable = tmp_path / "no.jsonl"
    unanswerable.write_text(
        '{"id": "u1", "lang": "ar", "query": "ما أفضل وصفة لتحضير الكشري في المنزل؟"}\n'
        '{"id": "u2", "lang": "ar", "query": "من فاز بكأس العالم لكرة القدم 2026؟"}\n',
        encoding="utf-8",
    )
    judged = dalil(
        "eval", str(path), "--cache", str(tmp_path / "cache"), "-q", "--unanswerable", str(unanswerable)
    )
    assert judged.returncode == 0, judged.stderr
    assert "ROC AUC" in judged.stdout and "| ar | all | 2 / 2 | 1.000 |" in judged.stdout
    none = str(tmp_path / "none.jsonl")
    missing = dalil("eval", str(path), "--cache", str(tmp_path / "cache"), "-q", "--unanswerable", none)
    assert missing.returncode != 0 and "none.jsonl" in missing.stderr and "Traceback" not in missing.stderr


def test_search_modes_and_grouping_from_the_cli(seed_index):
    proc = dalil(
        "search",
        "التعاون مع روسيا",
        "--index",
        str(seed_index),
        "--mode",
        "lexical",
        "--json",
        "--group",
        "-k",
        "2",
    )
    body = json.loads(proc.stdout)
    assert (
        body["mode"] == "lexical"
        and body["results"][0]["best"]["article_id"] == body["results"][0]["article_id"]
    )
    bad = dalil("search", "x", "--index", str(seed_index), "--mode", "fuzzy")
    assert bad.returncode == 2


def test_quoted_phrases_are_preferred_and_say_when_nothing_holds_them(seed_index):
    found = dalil("search", "التعاون في «الجيل الخامس» مع روسيا", "--index", str(seed_index), "-k", "1")
    assert found.returncode == 0 and 'phrase "الجيل الخامس"' in found.stdout
    assert "no exact match" not in found.stdout and "000_5e840d295c91c543" in found.stdout
    fallback = dalil("search", "التعاون مع روسيا في «الفضاء الرقمي»", "--index", str(seed_index), "-k", "1")
    assert fallback.returncode == 0
    assert 'no exact match for "الفضاء الرقمي"; results for the words' in fallback.stdout
    assert "1 result for" in fallback.stdout  # the words' answer, not an empty one
    wall = dalil("search", '+"الفضاء الرقمي" روسيا', "--index", str(seed_index), "--json")
    payload = json.loads(wall.stdout)
    assert payload["results"] == [] and payload["syntax"]["unmatched"] == ["الفضاء الرقمي"]
    assert payload["syntax"]["required"] == ["الفضاء الرقمي"]
