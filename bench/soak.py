"""Soak: many queries over loopback while articles are upserted and deleted (version switches).

    python bench/soak.py --index DIR [--queries 10000] [--concurrency 8] [--max-seconds 900]

Copies the index (the copy is written to), starts `dalil serve` with a write token, then runs the
query load and a writer side by side: the writer upserts an article every ~0.3 s and deletes every
other one. Bounded by --queries and --max-seconds; stops by itself. Prints requests served,
errors (must be 0), query p50/p99, writes applied and versions served. Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import pct

QUESTIONS = [
    "التعاون مع روسيا في الجيل الخامس",
    "5G cooperation with Russia",
    "الذكاء الاصطناعي",
    "paperless government in Azerbaijan",
    "البريد المصري",
    "هاتف ذكي جديد",
]


async def soak(url: str, token: str, total: int, concurrency: int, max_seconds: float) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    versions: set[str] = set()
    writes = 0
    deadline = time.monotonic() + max_seconds
    counter = iter(range(total))
    done = asyncio.Event()

    async def reader(client: httpx.AsyncClient) -> None:
        for i in counter:
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            try:
                r = await client.get(f"{url}/search", params={"q": QUESTIONS[i % len(QUESTIONS)], "k": 10})
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:120]}")
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
            latencies.append((time.perf_counter() - started) * 1000)

    async def writer(client: httpx.AsyncClient) -> None:
        nonlocal writes
        auth = {"Authorization": f"Bearer {token}"}
        n = 0
        while not done.is_set():
            body = {
                "id": f"soak-{n}",
                "title": "هاتف ذكي جديد",
                "text": f"أعلنت الشركة رقم {n} عن هاتف ذكي جديد يدعم شبكات الجيل الخامس في مصر.",
            }
            r = await client.post(f"{url}/articles", json=body, headers=auth)
            writes += r.status_code == 200
            if n % 2:
                r = await client.delete(f"{url}/articles/soak-{n - 1}", headers=auth)
                writes += r.status_code == 200
            versions.add((await client.get(f"{url}/ready")).json().get("index_version"))
            n += 1
            await asyncio.sleep(0.3)

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency + 2)) as client:
        write_task = asyncio.create_task(writer(client))
        await asyncio.gather(*(reader(client) for _ in range(concurrency)))
        done.set()
        await write_task
    seconds = time.perf_counter() - started
    rate = len(latencies) / seconds
    print(
        f"served {len(latencies)} queries in {seconds:.0f} s ({rate:.0f}/s) at concurrency {concurrency}; "
        f"errors {len(errors)}; p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {pct(latencies, 99):.1f} ms; {writes} writes applied; {len(versions)} index versions served"
    )
    for e in errors[:5]:
        print("  error:", e)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", required=True)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dalil-soak-"))
    shutil.copytree(args.index, work / "index")
    token = secrets.token_urlsafe(16)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "dalil.api.cli", "serve", "--index", str(work / "index"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DALIL_WRITE_TOKEN": token},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(soak(url, token, args.queries, args.concurrency, args.max_seconds))
        check = subprocess.run(
            [sys.executable, "-m", "dalil.api.cli", "check", "--index", str(work / "index")],
            capture_output=True,
            text=True,
        )
        print(check.stdout.strip() or check.stderr.strip())
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
