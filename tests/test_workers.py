"""`dalil serve --workers 2`: two server processes over one index. Writes through either are one
writer at a time (the index's lock); every commit is seen by both processes' readers."""

from __future__ import annotations

import os
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import start_serve

pytestmark = pytest.mark.slow

TOKEN = "workers-token"
NAMES = ["زيمبابوي", "كازاخستان", "أوزبكستان", "قيرغيزستان", "طاجيكستان", "تركمانستان"]


def _article(i: int, name: str) -> dict:
    text = (
        f"أعلنت حكومة {name} إطلاق شبكة الجيل الخامس في العاصمة. "
        f"وقالت وزارة الاتصالات في {name} إن الشبكة تغطي المدن الكبرى."
    )
    return {"id": f"w-{i}", "title": f"{name} تطلق الجيل الخامس", "text": text}


@pytest.fixture
def server(seed_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    args = ["--index", str(index), "--workers", "2"]
    proc, url = start_serve(args, tmp_path / "serve.log", env={"DALIL_WRITE_TOKEN": TOKEN})
    yield url, index
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_writes_through_two_processes_are_all_committed_and_seen_by_both(server):
    from dalil.indexer.store.check import check_index

    url, index = server
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def write(i: int) -> int:
        answer = httpx.post(url + "/articles", json=_article(i, NAMES[i]), headers=headers, timeout=120)
        return answer.status_code

    with ThreadPoolExecutor(6) as pool:  # at once: the two processes take the writer lock in turn
        assert list(pool.map(write, range(len(NAMES)))) == [200] * len(NAMES)
    pids: set[int] = set()
    counts: set[int] = set()
    for _ in range(40):  # connections land on either process; each must see every commit
        with httpx.Client(timeout=60) as client:  # a new connection each time
            stats = client.get(url + "/stats").json()
            counts.add(stats["articles"])
            for i, name in enumerate(NAMES[:2]):
                hit = client.get(url + "/search", params={"q": name, "k": 1, "mode": "lexical"}).json()
                assert hit["results"][0]["article_id"] == f"w-{i}"
            pids.add(client.get(url + "/health").json()["pid"])
    assert len(pids) == 2  # both processes answered, and both saw every commit
    assert counts == {5 + len(NAMES)}
    assert check_index(index) == []
