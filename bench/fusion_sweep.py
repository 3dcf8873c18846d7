"""Design aid for search/fusion.py: channel rankings once, then fusion variants compared offline.

    python bench/fusion_sweep.py            # the development sets in ../shared/eval

Prints R@1/5/10, MRR@10 and nDCG@10 per set for dense, lexical variants and fusion variants. All
variants are evaluated on the same cached channel rankings, so the comparison is exact and fast.

A part, not the product path: these figures rank through `Searcher.rank` on the question as typed
(no query syntax, no grouping). They choose between variants of one stage on identical inputs;
the product's figures are `dalil eval`'s (search/evaluation.py `evaluate`).
"""

from __future__ import annotations

# ruff: noqa: E402 - the thread limits are set before the imports that load FAISS or a model
import sys

from dalil.indexer.encoders.threads import limit_threads_in_environment

limit_threads_in_environment()  # one thread per process, before FAISS or a model loads
from dalil.api.paths import default_eval_cache, default_eval_dir
from dalil.indexer.analysis.terms import query_terms
from dalil.indexer.build import cached_build
from dalil.indexer.encoders.engines import load_encoder
from dalil.search.evaluation import load_squad, mean_metrics, question_metrics
from dalil.search.fusion import FusionWeights, convex, dense_led, rrf
from dalil.search.lexical import distinctive, lexical_search
from dalil.search.searcher import Searcher

DEPTH = 100
KEYS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
LEXICAL_WEIGHTS = {
    "exact+stem": (1.0, 1.0),
    "exact only": (1.0, 0.0),
    "stem only": (0.0, 1.0),
    "exact+stem/2": (1.0, 0.5),
}


def metrics(searcher, questions, rankings) -> str:
    articles = searcher.index.article_ids({pid for r in rankings for pid, _ in r[:10]})
    rows = [
        question_metrics([articles[p] for p, _ in r[:10]], q.relevant)
        for q, r in zip(questions, rankings, strict=True)
    ]
    m = mean_metrics(rows)
    return "  ".join(f"{k.replace('recall', 'R')} {100 * m[k]:5.1f}" for k in KEYS)


def main() -> None:
    dev = default_eval_dir()
    sets = [
        load_squad(dev / "arcd.json", name="arcd (ar)"),
        load_squad(dev / "xquad-dev.ar.json", name="xquad (ar)"),
        load_squad(dev / "xquad-dev.ar.json", dev / "xquad-dev.en.json", name="xquad (en->ar)"),
    ]
    encoder = load_encoder()
    for lset in sets:
        searcher = Searcher.open(cached_build(lset.articles, default_eval_cache(), encoder), encoder)
        qs = list(lset.questions)
        texts = [q.query for q in qs]
        dense = [
            r for i in range(0, len(texts), 64) for r in searcher.dense_rankings(texts[i : i + 64], DEPTH)
        ]
        with searcher.index.snapshot() as snap:
            lexical = {
                name: [lexical_search(snap, query_terms(t), DEPTH, *w) for t in texts]
                for name, w in LEXICAL_WEIGHTS.items()
            }
            latin = [lexical_search(snap, query_terms(t, latin_only=True), DEPTH) for t in texts]
            rare = [
                lexical_search(snap, distinctive(snap, query_terms(t, latin_only=True)), DEPTH) for t in texts
            ]
        rows = [("dense", dense)] + [(f"lexical {n}", r) for n, r in lexical.items()]
        for name, lex in lexical.items():
            for k, wl in ((10, 1.0), (10, 1.5), (60, 1.0)):
                rows.append(
                    (
                        f"rrf k={k} wl={wl} [{name}]",
                        [rrf([(d, 1), (x, wl)], k) for d, x in zip(dense, lex, strict=True)],
                    )
                )
            for alpha in (0.3, 0.4, 0.5, 0.6):
                rows.append(
                    (
                        f"convex dense={alpha} [{name}]",
                        [convex([(d, alpha), (x, 1 - alpha)]) for d, x in zip(dense, lex, strict=True)],
                    )
                )
        for bonus in (0.05, 0.1, 0.25):
            rows.append(
                (
                    f"dense-led latin bonus {bonus}",
                    [
                        dense_led(d, x, FusionWeights(latin_lexical_bonus=bonus))
                        for d, x in zip(dense, latin, strict=True)
                    ],
                )
            )
        for bonus in (0.1, 0.25, 0.5, 1.0):
            rows.append(
                (
                    f"dense-led distinctive latin bonus {bonus}",
                    [
                        dense_led(d, x, FusionWeights(latin_lexical_bonus=bonus))
                        for d, x in zip(dense, rare, strict=True)
                    ],
                )
            )
        for alpha in (0.8, 0.9, 0.95):
            rows.append(
                (
                    f"convex latin-only dense={alpha}",
                    [convex([(d, alpha), (x, 1 - alpha)]) for d, x in zip(dense, latin, strict=True)],
                )
            )
        print(f"\n## {lset.name}: {len(qs)} questions")
        for name, rankings in rows:
            print(f"{name:42s}", metrics(searcher, qs, rankings))
        searcher.close()


if __name__ == "__main__":
    sys.exit(main())
