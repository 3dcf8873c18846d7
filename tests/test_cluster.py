"""Ray: `dalil index --ray` builds the same index as a local build, and a cluster that cannot be
reached is a clear error. Each test starts a small local cluster (2 CPUs, a 256 MiB object store)
in a `dalil` subprocess, so the test process never holds Ray's state."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import CORPUS, REPO, free_port, start_serve
from dalil.indexer.store.reader import IndexReader
from dalil.search.searcher import Searcher, SearchOptions

pytest.importorskip("ray")
pytestmark = pytest.mark.cluster

QUESTIONS = ["التعاون مع روسيا في الجيل الخامس", "artificial intelligence in Egypt", "هواوي"]


def dalil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dalil.api.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Several files: the seed .txt articles, and a JSON Lines file with a broken record and an
    article id that a .txt file already used (reported once, the first copy kept)."""
    root = tmp_path_factory.mktemp("corpus")
    shutil.copytree(CORPUS, root / "seed")
    first = sorted(CORPUS.glob("*.txt"))[0]
    lines = [
        json.dumps(
            {"id": "extra-1", "title": "خبر إضافي", "text": "أطلقت الحكومة منصة رقمية جديدة للخدمات."}
        ),
        "{not json",
        json.dumps({"id": first.stem, "text": "نسخة ثانية من خبر موجود بالفعل في ملف آخر."}),
    ]
    (root / "more.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _contents(index):
    """Articles, passages (with ids) and vectors by passage id."""
    reader = IndexReader.open(index)
    try:
        with reader.snapshot() as snap:
            rows = snap.db.execute(
                "SELECT article_id, title, source, date, text, content_hash FROM articles ORDER BY article_id"
            ).fetchall()
            passages = snap.db.execute(
                "SELECT p.id, a.article_id, p.ordinal, p.start, p.end FROM passages p"
                " JOIN articles a ON a.id = p.article ORDER BY p.id"
            ).fetchall()
            vectors = {}
            for segment in snap.vectors.segments:
                stored, ids = segment.index.all()
                for pid, vector in zip(ids, stored, strict=True):
                    vectors[int(pid)] = vector
        return rows, passages, vectors, reader.manifest
    finally:
        reader.close()


def test_a_build_on_a_local_ray_cluster_is_the_local_build(tmp_path, corpus, encoder):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    built = dalil("index", "-q", "--corpus", str(corpus), "--out", str(local))
    assert built.returncode == 3, built.stderr  # the broken record: indexed the rest, said so
    started = time.monotonic()
    clustered = dalil("index", "-q", "--ray", "local", "--corpus", str(corpus), "--out", str(on_ray))
    assert clustered.returncode == 3, clustered.stderr
    assert time.monotonic() - started < 240
    # the same records skipped, with the same reasons
    skipped = sorted(line for line in built.stderr.splitlines() if line.startswith("dalil: skipped"))
    assert skipped == sorted(
        line for line in clustered.stderr.splitlines() if line.startswith("dalil: skipped")
    )
    assert len(skipped) == 2 and any("duplicate article id" in line for line in skipped)

    rows_a, passages_a, vectors_a, manifest_a = _contents(local)
    rows_b, passages_b, vectors_b, manifest_b = _contents(on_ray)
    assert rows_a == rows_b and len(rows_a) == 6
    assert passages_a == passages_b  # same passages under the same ids
    assert vectors_a.keys() == vectors_b.keys() == {p[0] for p in passages_a}
    cosines = [float(np.dot(vectors_a[i], vectors_b[i])) for i in vectors_a]
    assert min(cosines) >= 0.9999
    for key in ("counts", "encoder", "corpus_fingerprint", "settings", "vocabulary", "lexical"):
        assert manifest_a[key] == manifest_b[key], key

    a, b = Searcher.open(local, encoder), Searcher.open(on_ray, encoder)
    try:
        for question in QUESTIONS:
            for mode in ("hybrid", "dense", "lexical"):
                hits_a = [(h.article_id, h.passage_id) for h in a.search(question, 10, mode)]
                hits_b = [(h.article_id, h.passage_id) for h in b.search(question, 10, mode)]
                assert hits_a == hits_b, (question, mode)
                assert hits_a or mode == "lexical", (question, mode)  # English words are not in Arabic text
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (f"127.0.0.1:{free_port()}", "is not reachable"),
        (f"ray://127.0.0.1:{free_port()}", "is not reachable"),
        ("no-such-address", "not a Ray address"),
        ("auto", "cannot join the Ray cluster"),
    ],
)
def test_a_cluster_that_cannot_be_reached_is_a_clear_error(tmp_path, seed_index, address, message):
    started = time.monotonic()
    done = dalil("index", "-q", "--ray", address, "--out", str(tmp_path / "index"), timeout=120)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "index" / "CURRENT").exists()
    index = tmp_path / "served"
    shutil.copytree(seed_index, index)
    done = dalil("serve", "--ray", address, "--shards", "2", "--index", str(index), timeout=120)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (index / "shards-2").exists()  # nothing split for a cluster that is not there


# --- serving: `dalil serve --ray local --shards 2` ------------------------------------------------

TOKEN = "cluster-test-token"
SEED_QUESTIONS = [
    json.loads(line)["query"]
    for line in (REPO / "tests" / "data" / "seed_questions.jsonl").read_text().splitlines()
]


@pytest.fixture(scope="module")
def served(tmp_path_factory, seed_index):
    """Two shards of the seed index on Ray Serve, writable with TOKEN; stopped at the end."""

    work = tmp_path_factory.mktemp("served")
    index = work / "index"
    shutil.copytree(seed_index, index)
    (work / "token").write_text(TOKEN)
    token = str(work / "token")
    args = ["--ray", "local", "--shards", "2", "--index", str(index), "--write-token-file", token]
    proc, url = start_serve(args, work / "serve.log", wait_s=240)
    yield url, index, proc
    import os
    import signal

    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _hits(url: str, question: str, mode: str = "hybrid", k: int = 10) -> list[tuple[str, int, int]]:
    import httpx

    response = httpx.get(url + "/search", params={"q": question, "k": k, "mode": mode}, timeout=60)
    assert response.status_code == 200, response.text
    return [(h["article_id"], h["start"], h["end"]) for h in response.json()["results"]]


@pytest.fixture(scope="module")
def reference(seed_index):
    """The one index, searched with the encoder `dalil serve` picks for it (as the shards' is)."""
    searcher = Searcher.open(seed_index)
    yield searcher
    searcher.close()


def test_two_shards_on_ray_serve_answer_as_the_one_index(served, reference):
    url, searcher = served[0], reference
    for question in SEED_QUESTIONS:
        for mode in ("hybrid", "dense", "lexical"):
            expected = [(h.article_id, h.start, h.end) for h in searcher.search(question, 10, mode)]
            assert _hits(url, question, mode) == expected, (question, mode)
    import httpx

    stats = httpx.get(url + "/stats", timeout=30).json()
    assert stats["articles"] == searcher.index.manifest["counts"]["articles"]
    assert httpx.get(url + "/", params={"q": SEED_QUESTIONS[0]}, timeout=60).status_code == 200  # the page
    # the news-reader features ask the shards too
    params = {"q": SEED_QUESTIONS[0], "group": "true", "sort": "newest", "facets": "true"}
    body = httpx.get(url + "/search", params=params, timeout=60).json()
    expected = searcher.answer(SEED_QUESTIONS[0], SearchOptions(group=True, sort="newest", facets=True))
    assert [r["article_id"] for r in body["results"]] == [g.article_id for g in expected.results]
    suggested = httpx.get(url + "/suggest", params={"q": "وز"}, timeout=60).json()["suggestions"]
    assert suggested == searcher.suggest("وز") != []
    article_id = expected.results[0].article_id
    related = httpx.get(url + f"/articles/{article_id}/related", params={"k": 2}, timeout=60).json()
    assert [r["article_id"] for r in related["related"]] == [
        g.article_id for g in searcher.related(article_id, 2).related
    ]
    assert httpx.get(url + "/search.atom", params={"q": SEED_QUESTIONS[0]}, timeout=60).status_code == 200


def test_writes_go_to_the_article_s_shard(served):
    import httpx
    from dalil.indexer.store.shard_routing import shard_of, shard_roots

    url, index, _ = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    article = {
        "id": "ray-news-1",
        "title": "مرصد فلكي رقمي",
        "text": "افتتحت الجامعة مرصدا فلكيا رقميا يتيح للطلاب رصد الكواكب عن بعد.",
    }
    added = httpx.post(url + "/articles", json=article, headers=auth, timeout=120)
    assert added.status_code == 200 and added.json()["added"] == ["ray-news-1"], added.text
    assert _hits(url, "مرصد فلكي رقمي للطلاب", "lexical", 3)[0][0] == "ray-news-1"
    home = shard_roots(index, 2)[shard_of("ray-news-1", 2)]
    reader = IndexReader.open(home)
    assert reader.article("ray-news-1") is not None
    reader.close()
    assert httpx.delete(url + "/articles/ray-news-1", headers=auth, timeout=120).status_code == 200
    assert all(hit[0] != "ray-news-1" for hit in _hits(url, "مرصد فلكي رقمي للطلاب", "lexical", 3))
    assert httpx.delete(url + "/articles/ray-news-1", headers=auth, timeout=120).status_code == 404
    assert httpx.post(url + "/articles", json=article, timeout=30).status_code == 401


def test_a_killed_shard_replica_is_replaced_and_no_request_hangs(served, reference):
    import httpx

    url, searcher = served[0], reference
    question = SEED_QUESTIONS[0]
    expected = [(h.article_id, h.start, h.end) for h in searcher.search(question, 10)]
    found = subprocess.run(["pgrep", "-f", "ServeReplica:dalil:shard-0"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    assert pids, "no replica process of shard-0"
    for pid in pids:
        subprocess.run(["kill", "-9", str(pid)], check=False)
    outcomes = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            response = httpx.get(url + "/search", params={"q": question, "k": 10}, timeout=45)
        except httpx.TimeoutException:
            pytest.fail("a request hung while the shard replica was replaced")
        assert time.monotonic() - started < 45
        outcomes.append(response.status_code)
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200:
            got = [(h["article_id"], h["start"], h["end"]) for h in response.json()["results"]]
            assert got == expected  # answered: by a retry that reached the replacement replica
            break
        time.sleep(0.5)
    assert outcomes and outcomes[-1] == 200, outcomes
    after = subprocess.run(["pgrep", "-f", "ServeReplica:dalil:shard-0"], capture_output=True, text=True)
    assert after.stdout.split() and not set(map(int, after.stdout.split())) & set(pids)
