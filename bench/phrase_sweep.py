"""How much a quoted phrase should move its passages up (search/phrases.py PHRASE_BONUS), on the
product path, per half.

    dalil eval                       # first: builds the evaluation indexes (cached)
    python bench/phrase_sweep.py [--eval-cache ~/.cache/dalil/eval] [--bonus 0,0.1,0.2,0.3,0.5,1]

Only the questions that hold quote marks are asked (the others are answered the same whatever the
bonus): the pasted headlines and the news headlines (search/evaluation.py), each answered by
`Searcher.answer` as the API answers it (hybrid, ten passages) and as the page does (ten
articles). The choice is made on half A; half B is reported, held apart. A bonus of 0 is the same
question with its quote marks as mere punctuation.
"""

from __future__ import annotations

# ruff: noqa: E402 - the thread limits are set before the imports that load FAISS or a model
import argparse
from dataclasses import replace
from pathlib import Path

from dalil.indexer.encoders.threads import limit_threads_in_environment

limit_threads_in_environment()  # one thread per process, before FAISS or a model loads
import dalil.search.phrases as phrases
from common import evaluation_indexes, evaluation_sets
from dalil.indexer.encoders.engines import load_encoder
from dalil.search.evaluation import HALVES, evaluate, half_of, holds_quotes
from dalil.search.searcher import Searcher


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-cache", default=str(Path.home() / ".cache" / "dalil" / "eval"))
    parser.add_argument("--bonus", default="0,0.1,0.2,0.3,0.5,1")
    args = parser.parse_args()
    bonuses = [float(b) for b in args.bonus.split(",")]
    by_articles = evaluation_indexes(Path(args.eval_cache))
    encoder = load_encoder("e5-fast")
    for lset in evaluation_sets():
        if lset.name not in ("pasted (ar)", "news (ar)"):
            continue
        quoted = replace(lset, questions=tuple(q for q in lset.questions if holds_quotes(q)))
        searcher = Searcher.open(by_articles[len(lset.articles)], encoder)
        sizes = {h: sum(1 for q in quoted.questions if half_of(q) == h) for h in HALVES}
        count = len(quoted.questions)
        print(f"\n{lset.name}: {count} questions with quote marks (A {sizes['A']}, B {sizes['B']})")
        print("| bonus | view | A: R@1 | A: MRR@10 | B: R@1 | B: MRR@10 |\n|---|---|---|---|---|---|")
        for bonus in bonuses:
            phrases.PHRASE_BONUS = bonus
            result = evaluate(searcher, quoted, ["hybrid"])
            for view, by_mode in result.metrics.items():
                m = by_mode["hybrid"]
                cells = [f"{100 * m[h][k]:.1f}" for h in HALVES for k in ("recall@1", "mrr@10")]
                print(f"| {bonus} | {view} | " + " | ".join(cells) + " |")
        searcher.close()


if __name__ == "__main__":
    main()
