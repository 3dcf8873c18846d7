"""`dalil index` on a local Ray cluster against the local worker pool, whole commands, same corpus.

Takes the first N articles of a JSON Lines corpus, then times, each as its own `dalil index`
process (start-up, model loading, cluster start, vocabulary table, commit: what a user waits for):
  local          the default plan (torch e5, one worker process per core)
  ray-1 / ray-2  `--ray local` with 1 and 2 embedding actors
and checks that every build is the same index as the local one (passages and ids, vectors within
cosine 0.9999, the same top-10 for Arabic and English questions).

    python bench/cluster_index.py --corpus ../shared/corpus/arabic-tech-news.jsonl --articles 500
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "ما هي خطط الحكومة للتحول الرقمي؟",
    "شبكات الجيل الخامس في مصر",
    "What did the ministry say about digital transformation?",
    "Which companies launched new smartphones?",
]


def first_articles(corpus: Path, n: int, out: Path) -> None:
    with corpus.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in itertools.islice((line for line in src if line.strip()), n):
            dst.write(line)


def timed_index(corpus: Path, out: Path, *extra: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dalil.api.cli",
            "index",
            "-q",
            "--corpus",
            str(corpus),
            "--out",
            str(out),
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dalil index {' '.join(extra)} failed:\n{done.stderr}")
    print(f"  {done.stdout.strip()}", file=sys.stderr)
    return seconds


def contents(index: Path):
    from dalil.indexer.store.reader import IndexReader

    reader = IndexReader.open(index)
    with reader.snapshot() as snap:
        passages = snap.db.execute(
            "SELECT id, article, ordinal, start, end FROM passages ORDER BY id"
        ).fetchall()
        vectors = {}
        for segment in snap.vectors.segments:
            stored, ids = segment.index.all()
            vectors.update(zip(ids.tolist(), stored, strict=True))
    reader.close()
    return passages, vectors


def same_index(a: Path, b: Path, searcher_a) -> dict:
    from dalil.search.searcher import Searcher

    passages_a, vectors_a = contents(a)
    passages_b, vectors_b = contents(b)
    cosines = [float(np.dot(vectors_a[i], vectors_b[i])) for i in vectors_a]
    searcher_b = Searcher.open(b, searcher_a.encoder)
    same_top = all(
        [h.passage_id for h in searcher_a.search(q, 10)] == [h.passage_id for h in searcher_b.search(q, 10)]
        for q in QUESTIONS
    )
    searcher_b.close()
    return {"same_passages": passages_a == passages_b, "min_cosine": min(cosines), "same_top10": same_top}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--articles", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command (the fastest is kept)")
    args = parser.parse_args()
    from dalil.search.searcher import Searcher

    with tempfile.TemporaryDirectory(prefix="dalil-cluster-bench-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus.jsonl"
        first_articles(args.corpus, args.articles, corpus)
        runs = {
            "local": (),
            "ray-1": ("--ray", "local", "--workers", "1"),
            "ray-2": ("--ray", "local", "--workers", "2"),
        }
        seconds = {}
        for name, extra in runs.items():
            print(f"{name}:", file=sys.stderr)
            seconds[name] = min(timed_index(corpus, work / f"{name}-{i}", *extra) for i in range(args.repeat))
        passages = len(contents(work / "local-0")[0])
        local = Searcher.open(work / "local-0")
        report = {
            "articles": args.articles,
            "passages": passages,
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "passages_per_s": {k: round(passages / v, 1) for k, v in seconds.items()},
            "ray_2_vs_local": round(seconds["local"] / seconds["ray-2"], 2),
            "ray_2_vs_ray_1": round(seconds["ray-1"] / seconds["ray-2"], 2),
            "same_as_local": {
                k: same_index(work / "local-0", work / f"{k}-0", local) for k in ("ray-1", "ray-2")
            },
        }
        local.close()
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
