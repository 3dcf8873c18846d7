"""English questions over Arabic text: fusion variants compared on the same channel rankings, per half.

    dalil eval                       # first: builds the evaluation indexes (cached)
    python bench/english_sweep.py [--eval-cache ~/.cache/dalil/eval]

For the English sets `dalil eval` measures (XQuAD-dev English->Arabic, news English->Arabic), the
dense top 100 and three lexical channels are computed once: the shipped one (distinctive Latin
names and numbers only), an *Arabic* lexical channel made of the question words' Arabic counterparts
from the index's word table (search/crosslingual.py, the words highlighting marks), and both together.
Each fusion variant is scored on half A (where a choice may be made) and half B (held apart), R@1
and MRR@10, as search/evaluation.py defines them.

A part, not the product path: these figures rank through `Searcher.rank` on the question as typed
(no query syntax, no grouping). They choose between variants of one stage on identical inputs;
the product's figures are `dalil eval`'s (search/evaluation.py `evaluate`).
"""

from __future__ import annotations

# ruff: noqa: E402 - the thread limits are set before the imports that load FAISS or a model
import argparse
from collections.abc import Callable
from pathlib import Path

from dalil.indexer.encoders.threads import limit_threads_in_environment

limit_threads_in_environment()  # one thread per process, before FAISS or a model loads
from common import evaluation_indexes, evaluation_sets
from dalil.indexer.analysis.terms import query_terms
from dalil.indexer.encoders.engines import load_encoder
from dalil.search.evaluation import HALVES, half_of, mean_metrics, question_metrics
from dalil.search.fusion import FusionWeights, convex, dense_led
from dalil.search.lexical import distinctive, lexical_search
from dalil.search.searcher import Searcher

DEPTH = 100


def score(searcher, questions, rankings) -> str:
    articles = searcher.index.article_ids({pid for r in rankings for pid, _ in r[:10]})
    cells = []
    for half in HALVES:
        rows = [
            question_metrics([articles[p] for p, _ in r[:10]], q.relevant)
            for q, r in zip(questions, rankings, strict=True)
            if half_of(q) == half
        ]
        m = mean_metrics(rows)
        cells.append(f"{half}: R@1 {100 * m['recall@1']:5.1f} MRR {100 * m['mrr@10']:5.1f}")
    return "   ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-cache", default=str(Path.home() / ".cache" / "dalil" / "eval"))
    args = parser.parse_args()
    sets = [s for s in evaluation_sets() if s.name.endswith("(en->ar)")]
    by_articles = evaluation_indexes(Path(args.eval_cache))
    encoder = load_encoder("e5-fast")
    for lset in sets:
        searcher = Searcher.open(by_articles[len(lset.articles)], encoder)
        sweep(searcher, list(lset.questions), lset.name)
        searcher.close()


def channels(searcher: Searcher, texts: list[str]) -> tuple[list, list, list, list]:
    """Dense, shipped Latin lexical, Arabic-counterpart lexical, and both lexical rankings."""
    dense = [r for i in range(0, len(texts), 64) for r in searcher.dense_rankings(texts[i : i + 64], DEPTH)]
    with searcher.index.snapshot() as snap:
        latin_terms = [distinctive(snap, query_terms(t, latin_only=True)) for t in texts]
        arabic_terms = [searcher.translations.arabic_query_terms(t) for t in texts]
        latin = [lexical_search(snap, terms, DEPTH) for terms in latin_terms]
        arabic = [lexical_search(snap, terms, DEPTH) for terms in arabic_terms]
        both = [lexical_search(snap, a + b, DEPTH) for a, b in zip(latin_terms, arabic_terms, strict=True)]
    return dense, latin, arabic, both


def sweep(searcher: Searcher, qs: list, name: str) -> None:
    dense, latin, arabic, both = channels(searcher, [q.query for q in qs])
    variants: dict[str, Callable[[int], list]] = {
        "dense only": lambda i: dense[i],
        "before: dense-led + distinctive Latin bonus 0.25": lambda i: dense_led(dense[i], latin[i]),
    }
    for bonus in (0.25, 0.5, 1.0):
        weights = FusionWeights(latin_lexical_bonus=bonus)
        variants[f"dense-led + Arabic counterparts bonus {bonus}"] = lambda i, w=weights: dense_led(
            dense[i], arabic[i], w
        )
        variants[f"dense-led + counterparts and Latin bonus {bonus}"] = lambda i, w=weights: dense_led(
            dense[i], both[i], w
        )
    for lex in (0.1, 0.2, 0.3):
        variants[f"convex dense {1 - lex:.1f} + counterparts {lex}"] = lambda i, x=lex: convex(
            [(dense[i], 1 - x), (arabic[i], x)]
        )
        variants[f"convex dense {1 - lex:.1f} + counterparts and Latin {lex}"] = lambda i, x=lex: convex(
            [(dense[i], 1 - x), (both[i], x)]
        )
    print(f"\n{name}: {len(qs)} questions")
    for label, rank in variants.items():
        print(f"  {label:<55} {score(searcher, qs, [rank(i) for i in range(len(qs))])}", flush=True)


if __name__ == "__main__":
    main()
