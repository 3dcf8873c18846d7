"""Helpers shared by the benchmark scripts: percentiles and a `dalil serve` on a free loopback port.

Importing it sets the one-thread-per-process limits (importing dalil sets nothing): the scripts that
import `common` before dalil's engine measure it as `dalil` runs it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from dalil.indexer.encoders.threads import limit_threads_in_environment

limit_threads_in_environment()

REPO = Path(__file__).resolve().parent.parent


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def start_server(
    index: Path,
    env: dict | None = None,
    extra: tuple[str, ...] = (),
    wait_s: float = 60.0,
    log: Path | None = None,
) -> tuple[subprocess.Popen, str]:
    """`dalil serve [extra]` in its own process (and process group); returns it and its URL once
    /ready answers. `log`: where its stderr goes (the server's log), else nowhere."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "dalil.api.cli", "serve", "--index", str(index), "--port", str(port)]
    with open(log if log is not None else os.devnull, "ab") as stderr:  # the child keeps its own copy
        proc = subprocess.Popen(
            [*command, *extra],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # a Ray server's cluster processes can be stopped with its group
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ready", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("dalil serve did not become ready")


def evaluation_sets() -> list:
    """The sets `dalil eval` measures with no set named (search/evaluation.py standard_sets)."""
    from dalil.api.paths import (
        default_eval_dir,
        default_news_corpus,
        default_pasted_corpus,
        written_questions_dir,
    )
    from dalil.search.evaluation import standard_sets

    english = written_questions_dir() / "news-en.jsonl"
    return standard_sets(default_eval_dir(), default_news_corpus(), english, default_pasted_corpus())


def evaluation_indexes(cache: Path) -> dict[int, Path]:
    """The indexes `dalil eval` built in `cache`, by their article count (each set's is distinct)."""
    from dalil.indexer.store.reader import index_metadata

    return {index_metadata(d)["counts"]["articles"]: d for d in Path(cache).glob("corpus-*")}
