"""HTTP latency of /search over loopback, against /health as the in-run baseline.

    python bench/query_latency.py --index DIR [--requests 200] [--concurrency 1,4,16]

Starts `dalil serve` in its own process, then drives it from this process with an async httpx
client. Prints, per concurrency: client-side p50/p99 and requests/s for /health (the HTTP floor),
for /search with distinct real questions (ARCD Arabic and XQuAD English from ../shared/eval, each
asked once: every query is embedded, the query-embedding cache cannot help), and for /search
repeating a few questions (answered from that cache); the server-side `took_ms` p50/p99; and the
ratio of /search to /health p50.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from common import REPO, pct, start_server

EVAL = REPO.parent / "shared" / "eval"

QUESTIONS = [
    "التعاون مع روسيا في الجيل الخامس",
    "5G cooperation with Russia",
    "الذكاء الاصطناعي",
    "artificial intelligence cooperation with China",
    "ربط شبكات الألياف الضوئية بين مصر والأردن",
    "paperless government in Azerbaijan",
    "البريد المصري",
    "Russian technology used to secure World Cup matches",
]


async def drive(url: str, paths: list[str], concurrency: int) -> tuple[list[float], list[float], float, int]:
    latencies: list[float] = []
    server: list[float] = []
    errors = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            path = queue.get_nowait()
            started = time.perf_counter()
            r = await client.get(url + path)
            latencies.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200:
                errors += 1
            elif "took_ms" in r.text:
                server.append(r.json()["took_ms"])

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, server, len(paths) / (time.perf_counter() - started), errors


def distinct_questions(limit: int) -> list[str]:
    """Real questions, alternating Arabic (ARCD) and English (XQuAD); falls back to QUESTIONS."""
    sys.path.insert(0, str(REPO))
    from dalil.search.evaluation import load_squad

    try:
        arabic = [q.query for q in load_squad(EVAL / "arcd.json").questions]
        english = [
            q.query for q in load_squad(EVAL / "xquad-dev.ar.json", EVAL / "xquad-dev.en.json").questions
        ]
    except OSError:
        return QUESTIONS
    return [q for pair in zip(arabic, english, strict=False) for q in pair][:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", default="1,4,16")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    fresh = [f"/search?q={quote(q)}&k=10" for q in distinct_questions(args.requests * (len(levels) + 1))]
    proc, url = start_server(Path(args.index))
    try:
        repeated = [f"/search?q={quote(q)}&k=10" for q in QUESTIONS]
        asyncio.run(drive(url, repeated + fresh[: args.requests], 1))  # warm-up; these are not reused
        fresh = fresh[args.requests :]
        print("| concurrency | endpoint | p50 ms | p99 ms | req/s | server p50 ms | server p99 ms | errors |")
        print("|---|---|---|---|---|---|---|---|")
        for c in levels:
            base, _, base_rps, base_err = asyncio.run(drive(url, ["/health"] * args.requests, c))
            b50 = statistics.median(base)
            print(f"| {c} | /health | {b50:.1f} | {pct(base, 99):.1f} | {base_rps:.0f} | | | {base_err} |")
            runs = (
                ("/search, distinct questions", fresh[: args.requests]),
                (
                    "/search, repeated (cached embedding)",
                    [repeated[i % len(repeated)] for i in range(args.requests)],
                ),
            )
            fresh = fresh[args.requests :]
            for label, paths in runs:
                lat, server, rps, err = asyncio.run(drive(url, paths, c))
                print(
                    f"| {c} | {label} | {statistics.median(lat):.1f} | {pct(lat, 99):.1f} | {rps:.0f} | "
                    f"{statistics.median(server):.1f} | {pct(server, 99):.1f} | {err} |"
                )
                print(f"|   | ratio to /health p50 | {statistics.median(lat) / b50:.1f}× | | | | | |")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
