"""The public Python API (`import dalil`): local indexes, the HTTP client, one error family."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, free_port

import dalil

NEW_ARTICLE = {
    "id": "launch-1",
    "title": "إطلاق شبكة الجيل الخامس في الأقصر",
    "source": "example",
    "date": "2024-06-01",
    "text": "أعلنت وزارة الاتصالات عن إطلاق شبكة الجيل الخامس في مدينة الأقصر.\n\n"
    "وتغطي المرحلة الأولى من الشبكة المعابد والفنادق على ضفتي النيل.",
}


@pytest.fixture
def index_copy(seed_index, tmp_path) -> Path:
    out = tmp_path / "index"
    shutil.copytree(seed_index, out)
    return out


@pytest.fixture
def index(index_copy, encoder) -> Iterator[dalil.Index]:
    with dalil.open_index(index_copy, model=encoder) as opened:
        yield opened


def test_import_is_light_and_exports_one_surface():
    code = (
        "import sys, dalil; "
        "heavy = [m for m in ('numpy', 'faiss', 'apsw', 'httpx', 'fastapi') if m in sys.modules]; "
        "print(dalil.__version__, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    version, heavy = out.split(" ", 1)
    assert version[0].isdigit() and heavy.strip() == "[]"
    for name in dalil.__all__:
        assert getattr(dalil, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Searcher'"):
        dalil.Searcher  # noqa: B018 - private names are not exported


def test_build_from_dicts_then_search_in_arabic_and_english(tmp_path):
    articles = [
        {"id": p.stem, "text": p.read_text(encoding="utf-8"), "source": "seed"}
        for p in sorted(CORPUS.glob("*.txt"))
    ]
    result = dalil.build_index(articles, tmp_path / "idx")
    assert (result.articles, result.skipped) == (5, [])
    assert result.passages > 30 and result.path == tmp_path / "idx"
    with dalil.open_index(tmp_path / "idx") as index:
        assert len(index) == result.passages
        assert index.version.startswith(result.version)
        arabic = index.search("التعاون مع روسيا في الجيل الخامس", k=3)
        english = index.search("5G cooperation with Russia", k=3)
    for hits in (arabic, english):
        assert [h.rank for h in hits] == [1, 2, 3]
        assert isinstance(hits[0], dalil.Hit) and hits[0].article_id == "000_5e840d295c91c543"
        assert hits[0].source == "seed"
        assert isinstance(hits, dalil.Results) and hits.no_close_match is False and hits.confidence > 0.5


def test_build_from_a_path_reports_skipped_records(tmp_path):
    corpus = tmp_path / "news.jsonl"
    corpus.write_text('{"id": "a", "text": "خبر عن الجيل الخامس في مصر."}\n{"id": \n', encoding="utf-8")
    result = dalil.build_index(corpus, tmp_path / "idx")
    assert result.articles == 1
    assert len(result.skipped) == 1 and "news.jsonl:2" in result.skipped[0]


def test_search_filters_and_paging(index):
    first = index.search("الجيل الخامس", k=4)
    assert index.search("الجيل الخامس", k=2, offset=2) == first[2:4]
    assert index.search("الجيل الخامس", source="no such outlet") == []
    with pytest.raises(dalil.InvalidRequest, match="date_from must be a date"):
        index.search("الجيل الخامس", date_from="last week")


def test_add_update_delete_round_trip(index):
    added = index.add([NEW_ARTICLE])
    assert (added.added, added.version is not None) == (["launch-1"], True)
    assert index.search("الجيل الخامس في الأقصر", k=1)[0].article_id == "launch-1"
    assert index.add([NEW_ARTICLE]).unchanged == ["launch-1"]
    assert index.add([{**NEW_ARTICLE, "title": "عنوان جديد"}]).updated == ["launch-1"]
    gone = index.delete(["launch-1", "never-there"])
    assert (gone.deleted, gone.missing) == (["launch-1"], ["never-there"])
    assert all(h.article_id != "launch-1" for h in index.search("الجيل الخامس في الأقصر", k=10))


def test_errors_are_one_family_with_codes(index, tmp_path):
    with pytest.raises(dalil.NotFound) as missing:
        dalil.open_index(tmp_path / "nowhere")
    assert missing.value.code == "index_not_found" and "nowhere" in missing.value.message
    with pytest.raises(dalil.InvalidRequest) as empty:
        index.search("   ")
    assert empty.value.code == "invalid_query"
    with pytest.raises(dalil.InvalidRequest, match="mode must be one of"):
        index.search("الجيل الخامس", mode="fuzzy")
    with pytest.raises(dalil.InvalidRequest) as bad_article:
        index.add([{"id": "x", "title": "بلا نص"}])
    assert bad_article.value.details == [{"field": "text", "message": "Field required"}]
    with pytest.raises(dalil.InvalidRequest, match="more than once"):
        index.add([NEW_ARTICLE, NEW_ARTICLE])
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "CURRENT").write_text("\x00garbage")
    with pytest.raises(dalil.Error) as unreadable:
        dalil.open_index(damaged)
    assert unreadable.value.code in ("index_damaged", "index_not_found")
    index.close()
    with pytest.raises(dalil.InvalidRequest, match="was closed"):
        index.search("الجيل الخامس")


# --- the HTTP client, against a real server on loopback ---

TOKEN = "s3cret-token"


class _Server:
    """`dalil serve`'s app under uvicorn in a thread of this process (the session's encoder)."""

    def __init__(self, index_dir: Path, encoder, token: str | None) -> None:
        import uvicorn
        from dalil.api.app import create_app
        from dalil.search.searcher import Searcher

        app = create_app(index_dir, Searcher.open(index_dir, encoder), write_token=token)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def server_url(index_copy, encoder) -> Iterator[str]:
    with _Server(index_copy, encoder, TOKEN) as url:
        yield url


def test_client_answers_as_the_local_index_does(server_url, index_copy, encoder):
    with dalil.open_index(index_copy, model=encoder) as local:
        expected = local.search("5G cooperation with Russia", k=5)
    with dalil.Client(server_url) as client:
        got = client.search("5G cooperation with Russia", k=5)
        assert client.stats()["passages"] == 42
    assert [(h.article_id, h.passage_id) for h in got] == [(h.article_id, h.passage_id) for h in expected]
    assert got[0].text == expected[0].text and got[0].highlights == expected[0].highlights
    assert (got.confidence, got.no_close_match) == (expected.confidence, expected.no_close_match)


def test_client_search_takes_every_option_index_search_takes():
    import inspect

    assert inspect.signature(dalil.Client.search) == inspect.signature(dalil.Index.search)


def test_client_sorts_and_prefers_recent_as_the_local_index_does(server_url, index_copy, encoder):
    asks = [{"sort": "newest"}, {"recency": 30.0}, {"sort": "newest", "source": "none-such"}]
    with dalil.open_index(index_copy, model=encoder) as local:
        expected = [local.search("التعاون في الجيل الخامس", k=4, **options) for options in asks]
    with dalil.Client(server_url) as client:
        got = [client.search("التعاون في الجيل الخامس", k=4, **options) for options in asks]
        with pytest.raises(dalil.InvalidRequest):
            client.search("الجيل الخامس", sort="oldest")
    for mine, theirs in zip(expected, got, strict=True):
        assert [(h.article_id, h.passage_id, h.score) for h in theirs] == [
            (h.article_id, h.passage_id, h.score) for h in mine
        ]
    assert got[0] and not got[2]


def test_client_writes_with_the_token(server_url):
    with dalil.Client(server_url, token=TOKEN) as client:
        assert client.add([NEW_ARTICLE]).added == ["launch-1"]
        assert client.search("الجيل الخامس في الأقصر", k=1)[0].article_id == "launch-1"
        gone = client.delete(["launch-1", "never-there"])
        assert (gone.deleted, gone.missing) == (["launch-1"], ["never-there"])


def test_client_surfaces_server_errors(server_url):
    with dalil.Client(server_url, token="wrong") as client:
        with pytest.raises(dalil.Unauthorized) as wrong:
            client.add([NEW_ARTICLE])
        assert (wrong.value.status, wrong.value.code) == (403, "forbidden")
        with pytest.raises(dalil.InvalidRequest) as invalid:
            client.search("الجيل الخامس", k=0)
        assert invalid.value.status == 422 and invalid.value.details[0]["field"] == "k"
    with dalil.Client(server_url) as anonymous, pytest.raises(dalil.Unauthorized) as no_token:
        anonymous.delete("launch-1")
    assert no_token.value.status == 401


def test_client_read_only_server(index_copy, encoder):
    with (
        _Server(index_copy, encoder, token=None) as url,
        dalil.Client(url, token="anything") as client,
        pytest.raises(dalil.Unauthorized, match="read-only"),
    ):
        client.add([NEW_ARTICLE])


def test_client_server_down_and_silent_server():
    with dalil.Client(f"http://127.0.0.1:{free_port()}") as client, pytest.raises(dalil.Unavailable) as down:
        client.search("الجيل الخامس")
    assert down.value.code == "unreachable"
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with dalil.Client(url, timeout=0.5) as client, pytest.raises(dalil.Unavailable) as slow:
            client.search("الجيل الخامس")
    assert slow.value.code == "timeout"


def _readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_readme_python_examples_run_as_shown(tmp_path, monkeypatch, server_url):
    local, remote = _readme_python_blocks()
    (tmp_path / "corpus").symlink_to(CORPUS)
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(local, "README.md (python)", "exec"), names)
    assert (names["built"].articles, names["built"].passages) == (5, 42)  # as the README's comment says
    monkeypatch.setenv("DALIL_WRITE_TOKEN", TOKEN)
    exec(compile(remote.replace("http://127.0.0.1:8000", server_url), "README.md (client)", "exec"), names)
    assert names["hits"][0].article_id == "004_19b3c5eaec262736"


def test_building_an_index_prepares_the_servers_query_engine(tmp_path, monkeypatch):
    """The one-time ONNX export (and its int8 twin) happen at `dalil index`, so the first `dalil
    serve` does not wait."""
    from dalil.indexer.encoders import materialize

    asked: dict[str, list[Path]] = {"fp32": [], "int8": []}

    def recording(kind, real):
        def record(*args, **kwargs):
            asked[kind].append(real(*args, **kwargs))
            return asked[kind][-1]

        return record

    monkeypatch.setattr(
        materialize, "materialized_onnx_model", recording("fp32", materialize.materialized_onnx_model)
    )
    monkeypatch.setattr(
        materialize,
        "materialized_int8_onnx_model",
        recording("int8", materialize.materialized_int8_onnx_model),
    )
    dalil.build_index([{"id": "a", "text": "خبر عن إطلاق الجيل الخامس في مصر."}], tmp_path / "idx")
    assert asked["fp32"] and asked["fp32"][0].is_file()
    assert len(asked["int8"]) == 1 and asked["int8"][0].is_file()
    assert asked["int8"][0].parent == asked["fp32"][0].parent
