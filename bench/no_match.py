"""Fitting the "no close match" confidence (search/confidence.py) on half A, checking it on half B.

    dalil eval                       # first: builds the evaluation indexes (cached)
    python bench/no_match.py [--eval-cache ~/.cache/dalil/eval] [--seed-index DIR]

Answerable: every question of the sets `dalil eval` measures (ARCD, XQuAD-dev Arabic and
English->Arabic, the news sets) against the index of its own corpus. Unanswerable: the 150 questions
of bench/data/unanswerable.jsonl (75 Arabic, 75 English; tech and non-tech, written for this:
future products, recipes, sport results, prices, weather), asked of every one of those indexes.
Features (search/confidence.py): the best dense cosine `c1`, the best article's lead over the next
nine `gap`, and the share of the question's words the first results hold, `coverage`.

Questions are split by search/evaluation.py `half_of` (an answerable question by its article, an
unanswerable one by its id, so each one's rows stay on one side): a logistic model per question
language is fitted on half A; its threshold keeps 95% of half A's answerable questions above it.
Prints each feature's and the model's ROC AUC on half B, the operating point there, the `MODELS`
literal to paste into search/confidence.py, and what the model says of the README's questions on
the bundled articles (answerable ones included: the check that kept the first attempt out).

A part, not the product path: the features are computed from `Searcher.rank_channels` on the
question as typed (no query syntax); `dalil eval` reports the confidence of every full answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import evaluation_indexes, evaluation_sets

RECALL_TARGET = 0.95  # of half A's answerable questions kept above the line
FEATURES = ("c1", "gap", "coverage", "coverage of all words", "tail", "rare coverage")


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 100) -> np.ndarray:
    """Weights (bias first) by Newton's method, classes weighted to count equally: three features,
    a few thousand rows (a library fit would add scikit-learn for twenty lines)."""
    design = np.hstack([np.ones((len(x), 1)), x])
    balance = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, (1 - y).sum())) * len(y)
    w = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(design @ w, -60, 60)))
        grad = design.T @ (balance * (p - y)) + l2 * w
        hess = design.T @ (design * (balance * p * (1 - p))[:, None]) + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(w[0] + x @ w[1:], -60, 60)))


def collect(cache: Path) -> list[tuple[str, str, int, tuple[float, float, float]]]:
    """(lang, half, answerable, features) for every question over every evaluation index."""
    from dalil.api.paths import written_questions_dir
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.search.confidence import model_language
    from dalil.search.evaluation import confidence_inputs, half_of, load_unanswerable
    from dalil.search.searcher import Searcher

    negatives = load_unanswerable(written_questions_dir() / "unanswerable.jsonl")
    by_articles = evaluation_indexes(cache)
    encoder = load_encoder("e5-fast")  # what `dalil eval` and a server ask with
    rows, asked = [], set()
    for lset in evaluation_sets():
        index_dir = by_articles[len(lset.articles)]
        searcher = Searcher.open(index_dir, encoder)
        groups = [(lset.questions, 1)] + ([] if index_dir in asked else [(negatives, 0)])
        asked.add(index_dir)
        for questions, answerable in groups:
            for q, text, f in confidence_inputs(searcher, questions):
                rows.append((model_language(text), half_of(q), answerable, f))
        searcher.close()
        print(f"{lset.name}: {len(lset.questions)} questions", flush=True)
    return rows


def main() -> None:
    from dalil.search.evaluation import roc_auc

    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-cache", default=str(Path.home() / ".cache" / "dalil" / "eval"))
    parser.add_argument("--seed-index", help="an index of the bundled articles (dalil index)")
    args = parser.parse_args()
    rows = collect(Path(args.eval_cache))
    models = {}
    print("\n| questions | half A: answerable / not | half B: answerable / not | "
          + " | ".join(f"AUC {f} (B)" for f in FEATURES)
          + " | AUC model (B) | threshold | answerable kept (B) | unanswerable flagged (B) |")  # fmt: skip
    print("|---|---|---|" + "---|" * len(FEATURES) + "---|---|---|---|")
    for lang in ("ar", "en"):
        mine = [r for r in rows if r[0] == lang]
        x = np.array([r[3] for r in mine], dtype=np.float64)
        y = np.array([r[2] for r in mine], dtype=np.float64)
        a = np.array([r[1] == "A" for r in mine])
        b = ~a
        w = fit_logistic(x[a], y[a])
        p_a, p_b = predict(w, x[a]), predict(w, x[b])
        threshold = float(np.quantile(p_a[y[a] == 1], 1 - RECALL_TARGET))
        yb = y[b]
        kept = float((p_b[yb == 1] >= threshold).mean())
        flagged = float((p_b[yb == 0] < threshold).mean())
        single = [roc_auc(list(x[b][yb == 1, i]), list(x[b][yb == 0, i])) for i in range(len(FEATURES))]
        model_auc = roc_auc(list(p_b[yb == 1]), list(p_b[yb == 0]))
        counts = f"{int(y[a].sum())} / {int((1 - y[a]).sum())} | {int(yb.sum())} / {int((1 - yb).sum())}"
        aucs = " | ".join(f"{v:.3f}" for v in [*single, model_auc])
        print(f"| {lang} | {counts} | {aucs} | {threshold:.3f} | {100 * kept:.1f}% | {100 * flagged:.1f}% |")
        models[lang] = (w, threshold)
    print("\nMODELS = {")
    for lang, (w, threshold) in models.items():
        weights = ", ".join(f"{v:.3f}" for v in w[1:])
        print(f'    "{lang}": Model(bias={w[0]:.3f}, weights=({weights}), threshold={threshold:.3f}),')
    print("}")
    if args.seed_index:
        probe(args.seed_index, models)


def probe(index_dir: str, models: dict) -> None:
    """The fitted models on the README's questions over the bundled articles."""
    from dalil.search.searcher import Searcher

    questions = [
        ("ar", "التعاون مع روسيا في الجيل الخامس", True),
        ("en", "5G cooperation with Russia", True),
        ("en", "paperless government in Azerbaijan", True),
        ("en", "artificial intelligence cooperation with China", True),
        ("ar", "ما أفضل وصفة لتحضير الكشري في المنزل؟", False),
        ("en", "iPhone 17 battery life", False),
        ("en", "who won the 2026 world cup", False),
        ("en", "best recipe for chocolate cake", False),
    ]
    searcher = Searcher.open(index_dir, "e5-fast")
    for (lang, question, answerable), f in zip(
        questions, searcher.confidence_features([q for _, q, _ in questions]), strict=True
    ):
        w, threshold = models[lang]
        p = float(predict(w, np.array(f)[None, :])[0])
        verdict = "no close match" if p < threshold else "close match"
        print(f"seed index: {question!r} ({'answerable' if answerable else 'not answerable'}): "
              f"c1 {f[0]:.3f} gap {f[1]:.3f} coverage {f[2]:.2f} -> {p:.2f}, {verdict}")  # fmt: skip
    searcher.close()


if __name__ == "__main__":
    main()
