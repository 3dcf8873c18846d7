"""HTTP latency of `dalil serve --ray local --shards N` against local `dalil serve`, same index, same run.

    python bench/cluster_serve.py --index DIR [--shards 2] [--requests 100] [--concurrency 1,8]

Each server runs alone (one after the other, so they do not share the 2 cores): local `dalil
serve` first, then the same index split into N shards on a local Ray cluster. Each is driven with
distinct real questions (ARCD Arabic and XQuAD English from ../shared/eval, each asked once, so
every question is embedded), Arabic and English reported apart, client-side p50/p99 in ms and
requests/s, at each concurrency. Checks first that both servers give the same top-10 for the
questions. Also reports the resident memory of each server's process tree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from common import pct, start_server
from dalil.indexer.analysis.arabic import script_of
from query_latency import distinct_questions, drive


def start_ray_server(index: Path, shards: int) -> tuple[subprocess.Popen, str]:
    return start_server(index, extra=("--ray", "local", "--shards", str(shards)), wait_s=300)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (a Ray cluster's raylet, actors, workers)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,rss="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for line in out.splitlines():
        p, pp, r = map(int, line.split())
        children.setdefault(pp, []).append(p)
        rss[p] = r
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total / 1024


def top10(url: str, questions: list[str]) -> list[list[tuple[str, int]]]:
    out = []
    for q in questions:
        hits = httpx.get(url + "/search", params={"q": q, "k": 10}, timeout=60).json()["results"]
        out.append([(h["article_id"], h["start"]) for h in hits])
    return out


def measure(url: str, questions: list[str], levels: list[int], requests: int) -> list[dict]:
    rows = []
    arabic = [q for q in questions if script_of(q) == "ar"]
    english = [q for q in questions if script_of(q) != "ar"]
    asyncio.run(drive(url, [f"/search?q={quote(q)}&k=10" for q in questions[:20]], 1))  # warm-up
    used = 20
    for c in levels:
        for lang, pool in (("ar", arabic), ("en", english)):
            paths = [f"/search?q={quote(q)}&k=10" for q in pool[used : used + requests]]
            lat, server, rps, errors = asyncio.run(drive(url, paths, c))
            rows.append(
                {
                    "concurrency": c,
                    "lang": lang,
                    "requests": len(paths),
                    "p50_ms": round(statistics.median(lat), 1),
                    "p99_ms": round(pct(lat, 99), 1),
                    "req_per_s": round(rps, 1),
                    "server_p50_ms": round(statistics.median(server), 1),  # took_ms, inside the app
                    "errors": errors,
                }
            )
        used += requests
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", default="1,8")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    questions = distinct_questions(2 * (20 + args.requests * len(levels)) + 40)
    check = questions[-40:]
    report: dict = {"index": str(args.index), "shards": args.shards}

    proc, url = start_server(args.index)
    try:
        expected = top10(url, check)
        report["local"] = measure(url, questions, levels, args.requests)
        report["local_rss_mb"] = round(tree_rss_mb(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    started = time.perf_counter()
    proc, url = start_ray_server(args.index, args.shards)
    report["ray_start_s"] = round(time.perf_counter() - started, 1)
    try:
        report["same_top10"] = top10(url, check) == expected
        report["ray"] = measure(url, questions, levels, args.requests)
        report["ray_rss_mb"] = round(tree_rss_mb(proc.pid))
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    for local, ray_row in zip(report["local"], report["ray"], strict=True):
        ray_row["overhead_p50_ms"] = round(ray_row["p50_ms"] - local["p50_ms"], 1)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
