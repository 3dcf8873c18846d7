"""How many aligned Arabic words per English question word the lexical query should OR
(search/crosslingual.py LEXICAL_COUNTERPARTS), on the product path, per half, and what each costs BM25.

    dalil eval                       # first: builds the evaluation indexes (cached)
    python bench/counterpart_sweep.py [--caps all,8,4,2,1] [--index DIR]

Relevance: the English sets `dalil eval` measures (XQuAD en->ar, the English news questions), each
question answered by `Searcher.answer` as the API answers it (hybrid, ten passages) and as the page
does (ten articles). The choice is made on half A; half B is reported, held apart. Highlighting and
matching keep every aligned word whatever the cap. Cost (with --index, e.g. the 100k-passage index
of docs/benchmarks.md): for 100 XQuAD-English questions, the lexical query's terms and its BM25 time
over that index, p50 / p99 (a *part*: the channel alone).
"""

from __future__ import annotations

# ruff: noqa: E402 - the thread limits are set before the imports that load FAISS or a model
import argparse
import json
import statistics
import time
from pathlib import Path

from dalil.indexer.encoders.threads import limit_threads_in_environment

limit_threads_in_environment()  # one thread per process, before FAISS or a model loads
import dalil.search.crosslingual as crosslingual
from common import REPO, evaluation_indexes, evaluation_sets, pct
from dalil.indexer.encoders.engines import load_encoder
from dalil.search.evaluation import HALVES, evaluate
from dalil.search.lexical import lexical_search
from dalil.search.searcher import Searcher

ENGLISH_SETS = ("xquad-dev (en->ar)", "news (en->ar)")


def _caps(text: str) -> list[int | None]:
    return [None if c == "all" else int(c) for c in text.split(",")]


def relevance(cache: Path, caps: list[int | None], encoder) -> None:
    by_articles = evaluation_indexes(cache)
    for lset in evaluation_sets():
        if lset.name not in ENGLISH_SETS:
            continue
        searcher = Searcher.open(by_articles[len(lset.articles)], encoder)
        print(f"\n{lset.name}: {len(lset.questions)} questions")
        print("| per word | view | A: R@1 | A: MRR@10 | B: R@1 | B: MRR@10 |\n|---|---|---|---|---|---|")
        for cap in caps:
            crosslingual.LEXICAL_COUNTERPARTS = cap
            result = evaluate(searcher, lset, ["hybrid"])
            for view, by_mode in result.metrics.items():
                m = by_mode["hybrid"]
                cells = [f"{100 * m[h][k]:.1f}" for h in HALVES for k in ("recall@1", "mrr@10")]
                print(f"| {cap or 'all'} | {view} | " + " | ".join(cells) + " |", flush=True)
        searcher.close()


def cost(index: Path, caps: list[int | None], encoder) -> None:
    data = json.loads((REPO.parent / "shared" / "eval" / "xquad-dev.en.json").read_text(encoding="utf-8"))
    questions = [q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]][:100]
    searcher = Searcher.open(index, encoder)
    print(f"\nBM25 of the lexical query over {index} (100 XQuAD-English questions; a part)")
    print("| per word | terms p50 / p99 | BM25 ms p50 / p99 |\n|---|---|---|")
    with searcher.index.snapshot() as snap:
        for question in questions:  # the words' vectors, embedded once: only BM25 is timed below
            searcher.hybrid_lexical_terms(snap, question)
        for cap in caps:
            crosslingual.LEXICAL_COUNTERPARTS = cap
            counts, times = [], []
            for question in questions:
                terms = searcher.hybrid_lexical_terms(snap, question)
                counts.append(len(terms.exact) + len(terms.stems))
                started = time.perf_counter()
                lexical_search(snap, terms, 100, filters={})
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"| {cap or 'all'} | {statistics.median(counts):.0f} / {pct(counts, 99):.0f} | "
                f"{statistics.median(times):.1f} / {pct(times, 99):.1f} |",
                flush=True,
            )
    searcher.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-cache", default=str(Path.home() / ".cache" / "dalil" / "eval"))
    parser.add_argument("--caps", default="all,8,4,2,1")
    parser.add_argument("--index", help="also time the lexical query over this index")
    args = parser.parse_args()
    caps = _caps(args.caps)
    encoder = load_encoder("e5-fast")
    relevance(Path(args.eval_cache), caps, encoder)
    if args.index:
        cost(Path(args.index), caps, encoder)


if __name__ == "__main__":
    main()
