"""How the page orders articles (search/grouping.py `article_score`): by the best passage alone, or
with a decaying share of the article's next passages, on the product path, per half.

    dalil eval                       # first: builds the evaluation indexes (cached)
    python bench/article_order_sweep.py [--eval-cache ~/.cache/dalil/eval] [--evidence 0,0.1,0.2,0.3,0.5]

Each question of every set `dalil eval` measures is answered by `Searcher.answer` as the page
answers it (ten articles, re-reports folded) in each mode, and R@1 / MRR@10 of the article order are
reported per half. The choice is made on half A (hybrid, the page's default mode, over all the sets'
questions; the other modes must not fall); half B is held apart.
"""

from __future__ import annotations

# ruff: noqa: E402 - the thread limits are set before the imports that load FAISS or a model
import argparse
from pathlib import Path

from dalil.indexer.encoders.threads import limit_threads_in_environment

limit_threads_in_environment()  # one thread per process, before FAISS or a model loads
import dalil.search.grouping as grouping
from common import evaluation_indexes, evaluation_sets
from dalil.indexer.encoders.engines import load_encoder
from dalil.search.evaluation import HALVES, evaluate, half_sizes
from dalil.search.searcher import Searcher

MODES = ("hybrid", "dense", "lexical")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-cache", default=str(Path.home() / ".cache" / "dalil" / "eval"))
    parser.add_argument("--evidence", default="0,0.1,0.2,0.3")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    values = [float(v) for v in args.evidence.split(",")]
    modes = args.modes.split(",")
    by_articles = evaluation_indexes(Path(args.eval_cache))
    encoder = load_encoder("e5-fast")
    for lset in evaluation_sets():
        if lset.name.startswith("pasted, quotes removed"):
            continue
        searcher = Searcher.open(by_articles[len(lset.articles)], encoder)
        sizes = half_sizes(lset)
        print(f"\n{lset.name} (A {sizes['A']}, B {sizes['B']} questions), the page")
        print("| evidence | mode | A: R@1 | A: MRR@10 | B: R@1 | B: MRR@10 |\n|---|---|---|---|---|---|")
        for value in values:
            grouping.ARTICLE_EVIDENCE = value
            by_mode = evaluate(searcher, lset, modes, views=("page",)).metrics["page"]
            for mode in modes:
                m = by_mode[mode]
                cells = [f"{100 * m[h][k]:.1f}" for h in HALVES for k in ("recall@1", "mrr@10")]
                print(f"| {value} | {mode} | " + " | ".join(cells) + " |", flush=True)
        searcher.close()


if __name__ == "__main__":
    main()
