"""Incremental updates, the writer lock, integrity checks, live reload and protected writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO
from dalil.api.app import create_app
from dalil.indexer.build import build_index
from dalil.indexer.corpus import RawArticle
from dalil.indexer.encoders.engines import encoder_problems
from dalil.indexer.store.check import check_index
from dalil.indexer.store.database import open_for_writing, read_meta, write_meta
from dalil.indexer.store.layout import DATABASE, IndexCorruptError, StoreError, read_current
from dalil.indexer.store.locking import LockTimeoutError, writer_lock
from dalil.indexer.store.reader import IndexReader
from dalil.indexer.update import update_index
from dalil.search.searcher import Searcher
from fastapi.testclient import TestClient

TOKEN = "s3cret-token"
P1 = "أعلنت شركة هواوي عن هاتف ذكي جديد يدعم شبكات الجيل الخامس في مصر، وقالت إنه سيطرح في الأسواق قريبا."
P2 = "وأوضحت الشركة أن الهاتف يأتي بكاميرا متطورة وبطارية تدوم يومين كاملين مع الاستخدام المعتاد للهاتف."
P3 = (
    "وأكدت الشركة أنها ستفتتح مركزا جديدا للبحث والتطوير في القاهرة خلال العام المقبل لدعم المبرمجين"
    " الشباب وتدريب المهندسين المصريين على تقنيات الاتصالات الحديثة والحوسبة السحابية."
)


def article(article_id: str, *paragraphs: str, title: str = "هواوي تطلق هاتفا جديدا") -> RawArticle:
    return RawArticle(
        article_id=article_id, text="\n\n".join(paragraphs), title=title, source="test", date="2024-05-01"
    )


@pytest.fixture
def index(tmp_path, seed_index):
    """A private copy of the session's seed index (small: copying is cheap)."""
    out = tmp_path / "index"
    shutil.copytree(seed_index, out)
    return out


def test_upsert_adds_updates_and_skips_unchanged(index, encoder):
    assert all(encoder.count_tokens(p) >= 24 for p in (P1, P2, P3))  # each paragraph is its own passage
    first = update_index(index, [article("n1", P1, P2)], (), encoder)
    assert first.added == ["n1"] and first.version and first.passages_embedded == 2
    assert check_index(index) == []
    assert Searcher.open(index, encoder).search("هاتف هواوي الجديد", 1)[0].article_id == "n1"

    same = update_index(index, [article("n1", P1, P2)], (), encoder)
    assert same.unchanged == ["n1"] and same.version is None  # nothing done, nothing committed

    changed = update_index(index, [article("n1", P1, P2, P3)], (), encoder)
    assert changed.updated == ["n1"]
    assert changed.passages_reused == 2 and changed.passages_embedded == 1  # only the new paragraph
    assert check_index(index) == []
    hit = Searcher.open(index, encoder).search("مركز البحث والتطوير في القاهرة", 1)[0]
    assert hit.article_id == "n1" and "مركزا جديدا" in hit.text


def test_delete_by_id(index, encoder):
    before = IndexReader.open(index).manifest["counts"]
    summary = update_index(index, (), ["000_5e840d295c91c543", "no-such-id"], None)
    assert summary.deleted == ["000_5e840d295c91c543"] and summary.missing == ["no-such-id"]
    after = IndexReader.open(index).manifest["counts"]
    assert after["articles"] == before["articles"] - 1 and after["passages"] < before["passages"]
    assert check_index(index) == []
    hits = Searcher.open(index, encoder).search("التعاون مع روسيا في الجيل الخامس", 10)
    assert all(h.article_id != "000_5e840d295c91c543" for h in hits)


def test_check_reports_damage_precisely(index, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(index, damaged)
    db = open_for_writing(damaged / read_current(damaged) / DATABASE)
    db.execute("DELETE FROM passages WHERE id = (SELECT max(id) FROM passages)")
    db.close()
    problems = check_index(damaged)
    assert problems and "passages" in problems[0]


def test_a_second_writer_waits_or_fails_clearly(index, encoder):
    with writer_lock(index), pytest.raises(LockTimeoutError, match="another process"):
        update_index(index, [article("n2", P1)], (), encoder, wait=0)

    holder_done = threading.Event()

    def hold_briefly():
        with writer_lock(index):
            time.sleep(0.5)
        holder_done.set()

    thread = threading.Thread(target=hold_briefly)
    thread.start()
    time.sleep(0.1)
    summary = update_index(index, [article("n2", P1)], (), encoder, wait=10)  # waits, then writes
    thread.join()
    assert holder_done.is_set() and summary.added == ["n2"]


def test_update_of_a_missing_index_is_a_clear_error(tmp_path, encoder):
    with pytest.raises(StoreError, match="no index"):
        update_index(tmp_path / "nothing", [article("x", P1)], (), encoder)


@pytest.fixture
def writable(index, encoder):
    return TestClient(create_app(index, Searcher.open(index, encoder), write_token=TOKEN))


def test_writes_need_the_token(index, encoder, writable):
    read_only = TestClient(create_app(index, Searcher.open(index, encoder)))
    body = {"id": "w1", "text": P1}
    assert read_only.post("/articles", json=body).status_code == 403
    assert writable.post("/articles", json=body).status_code == 401
    assert writable.post("/articles", json=body).headers["www-authenticate"] == "Bearer"
    assert writable.post("/articles", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert writable.post("/admin/reload").status_code == 401
    assert writable.delete("/articles/w1").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"id": 5}',
        b"\xff\xfe\x00garbage",
        b'{"articles": "' + b"x" * 3_000_000 + b'"}',
    ],
    ids=["malformed", "wrong-shape", "not-utf8", "oversized"],
)
def test_writes_are_refused_before_the_body_is_read(index, encoder, writable, body):
    """Without the right token, a write gets 401/403 whatever its body: never a 422 about its shape."""
    read_only = TestClient(create_app(index, Searcher.open(index, encoder)))
    headers = {"content-type": "application/json"}
    for client, auth, status in (
        (writable, {}, 401),
        (writable, {"Authorization": "Bearer wrong"}, 403),
        (read_only, {"Authorization": f"Bearer {TOKEN}"}, 403),
    ):
        r = client.post("/articles", content=body, headers={**headers, **auth})
        assert r.status_code == status, (r.status_code, r.text[:200])
        assert r.json()["error"]["code"] in ("unauthorized", "forbidden")
        r = client.request("DELETE", "/articles/x", content=body, headers={**headers, **auth})
        assert r.status_code == status
    r = writable.post("/articles", content=body, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422  # with the token, the body is read and judged


def test_http_upsert_delete_and_immediate_search(writable):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = writable.post(
        "/articles",
        json={
            "articles": [
                {"id": "w1", "text": P1, "title": "هواوي"},
                {"id": "w2", "text": P3, "date": "2024-06-01"},
            ]
        },
        headers=auth,
    )
    assert r.status_code == 200 and r.json()["added"] == ["w1", "w2"]
    hits = writable.get("/search", params={"q": "هاتف هواوي", "k": 1}).json()["results"]
    assert hits[0]["article_id"] == "w1"
    assert writable.get("/articles/w2").json()["date"] == "2024-06-01"
    assert writable.delete("/articles/w1", headers=auth).json()["deleted"] == ["w1"]
    assert writable.get("/articles/w1").status_code == 404
    assert writable.delete("/articles/w1", headers=auth).status_code == 404
    bad = writable.post("/articles", json={"id": "", "text": "x"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert writable.post("/admin/reload", headers=auth).json()["index_version"]


def test_server_follows_versions_written_by_another_process(index, encoder):
    client = TestClient(create_app(index, Searcher.open(index, encoder)))
    assert client.get("/articles/x1").status_code == 404
    old = client.get("/ready").json()["index_version"]
    update_index(index, [article("x1", P2)], (), encoder)  # as `dalil add` in another process would
    assert client.get("/articles/x1").status_code == 200
    assert client.get("/ready").json()["index_version"] != old
    tiny = index.parent / "tiny"
    tiny.mkdir()
    (tiny / "t1.txt").write_text("عنوان\nخبر قصير عن الاتصالات في مصر والتعاون مع الصين.\n")
    build_index(tiny, index, encoder, progress=False)  # a full rebuild: x1 is gone again
    assert client.get("/articles/x1").status_code == 404


def test_queries_hammered_during_updates_never_fail(index, encoder, writable):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    failures: list[str] = []
    served = 0
    stop = threading.Event()

    def query():
        nonlocal served
        questions = ["التعاون مع روسيا", "5G cooperation with Russia", "هاتف هواوي"]
        while not stop.is_set():
            for q in questions:
                r = writable.get("/search", params={"q": q, "k": 5})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                served += 1

    threads = [threading.Thread(target=query) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(6):  # upserts and deletes, each a version switch
        writable.post("/articles", json={"id": f"h{i}", "text": P1 + f" رقم {i}"}, headers=auth)
        if i % 2:
            writable.delete(f"/articles/h{i - 1}", headers=auth)
    stop.set()
    for t in threads:
        t.join()
    assert failures == [] and served > 20
    assert check_index(index) == []


def test_writes_to_a_bare_version_directory_are_refused_clearly(index, encoder):
    version_dir = index / read_current(index)
    client = TestClient(create_app(version_dir, Searcher.open(version_dir, encoder), write_token=TOKEN))
    r = client.post("/articles", json={"id": "v1", "text": P1}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 409 and "no index" in r.json()["error"]["message"]
    assert client.get("/search", params={"q": "روسيا"}).status_code == 200  # still serving


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_read_only_index_directory(seed_index, tmp_path):
    """As a user who may read but not write the index: searches work, writes fail clearly, nothing changes."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        index = base / "index"
        shutil.copytree(seed_index, index)
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
        (base / "new.jsonl").write_text(json.dumps({"id": "ro1", "text": P1}, ensure_ascii=False) + "\n")
        before = sorted(p.name for p in index.iterdir())

        def as_nobody(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    sys.executable,
                    "-m",
                    "dalil.api.cli",
                    *args,
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                env={**os.environ, "HOME": str(base)},
                timeout=120,
            )

        search = as_nobody("search", "التعاون مع روسيا", "--index", str(index), "--json")
        assert search.returncode == 0, search.stderr
        assert json.loads(search.stdout)["results"][0]["article_id"] == "000_5e840d295c91c543"
        for args in (
            ["add", str(base / "new.jsonl"), "--index", str(index)],
            ["delete", "x", "--index", str(index)],
            ["index", "--out", str(index), "-q"],
        ):
            proc = as_nobody(*args)
            assert proc.returncode == 1 and "not writable" in proc.stderr, (args, proc.stderr)
            assert "Traceback" not in proc.stderr
        assert sorted(p.name for p in index.iterdir()) == before
        assert check_index(index) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_missing_database_file_is_a_clear_error(index):
    (index / read_current(index) / DATABASE).unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        IndexReader.open(index)
    assert "missing" in check_index(index)[0]


def test_check_loads_the_recorded_encoder(index):
    assert check_index(index, encoder_check=encoder_problems) == []
    db = open_for_writing(index / read_current(index) / DATABASE)
    recorded = read_meta(db)["encoder"]
    write_meta(
        db,
        {
            "encoder": {
                **recorded,
                "backend": "sentence-transformers",
                "model": "/no/such/model",
                "id": "sentence-transformers:/no/such/model",
            }
        },
    )
    db.close()
    assert "cannot be loaded" in check_index(index, encoder_check=encoder_problems)[0]


def test_the_same_id_twice_in_one_update(index, encoder):
    """Found by Schemathesis: a later copy replaces passages that were not embedded yet."""
    summary = update_index(index, [article("d1", P1), article("d1", P2, P3)], (), encoder)
    assert summary.added == ["d1"] and summary.updated == []
    assert check_index(index) == []
    stored = IndexReader.open(index).article("d1")
    assert stored["text"] == P2 + "\n\n" + P3  # the last copy wins


def test_duplicate_ids_in_one_http_batch_are_refused(writable):
    body = {"articles": [{"id": "d2", "text": P1}, {"id": "d2", "text": P2}]}
    r = writable.post("/articles", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422 and "more than once" in r.json()["error"]["message"]
