"""How well the dense channel's scores tell answerable questions from ones the corpus cannot answer.

    python bench/no_match.py --tech INDEX [--eval-cache ~/.cache/dalil/eval]

Answerable: the development sets' questions (ARCD Arabic, XQuAD-dev Arabic and English) against
the index of their own paragraphs (the evaluation cache `dalil eval` builds). Unanswerable: the
150 questions of bench/data/unanswerable.jsonl (75 Arabic, 75 English; tech and non-tech, written
for this: future products, recipes, sport results, prices, weather) against the same indexes and
the tech-news index. Features per question, from the dense channel only (lexical scores are not
comparable across questions), per article: the best article's cosine `c1` and its lead over the
next nine articles', `gap`.

Everything is split in two by question id (a stable hash): a logistic model per question language is
fitted on one half and its ROC AUC and operating point reported on the other. Prints the table and
the fitted coefficients as JSON, then what the fitted model says of a few questions on the tech
index (answerable ones included), the check that kept it out of the product (docs/relevance.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from common import REPO

EVAL = REPO.parent / "shared" / "eval"
UNANSWERABLE = REPO / "bench" / "data" / "unanswerable.jsonl"
RECALL_TARGET = 0.95  # of answerable questions kept above the line, on the fitted half


TOP = 10  # articles the features look at
DEPTH = 100  # dense passages read to find them


def article_scores(ranking: list[tuple[int, float]], article_of: dict[int, str]) -> list[float]:
    """The best cosine of each of the first TOP articles of a dense ranking (a story spread over
    several passages is one match)."""
    seen: set[str] = set()
    scores: list[float] = []
    for pid, score in ranking:
        article = article_of.get(pid)
        if article is not None and article not in seen:
            seen.add(article)
            scores.append(score)
        if len(scores) == TOP:
            break
    return scores


def features(searcher, questions: list[str]) -> np.ndarray:
    """(c1, gap) per question: the best article's cosine, and its lead over the next articles'."""
    with searcher.index.snapshot() as snap:
        rankings = searcher.dense_rankings(questions, DEPTH, None, snap)
        rows = snap.passages({pid for ranking in rankings for pid, _ in ranking})
    article_of = {pid: row.article_id for pid, row in rows.items()}
    out = []
    for ranking in rankings:
        scores = article_scores(ranking, article_of) or [0.0]
        rest = scores[1:]
        out.append((scores[0], scores[0] - (sum(rest) / len(rest) if rest else scores[0])))
    return np.array(out, dtype=np.float64)


def half(key: str) -> int:
    return hashlib.blake2b(key.encode(), digest_size=2).digest()[0] % 2


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC as the probability that an answerable question outscores an unanswerable one."""
    scores = np.concatenate([positive, negative])
    ranks = scores.argsort().argsort() + 1.0
    return float((ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2)
                 / (len(positive) * len(negative)))  # fmt: skip


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Weights (bias first) by Newton's method: two features, a few hundred rows."""
    design = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ w))
        grad = design.T @ (p - y) + l2 * w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(w[0] + x @ w[1:])))


def main() -> None:
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.indexer.store.reader import index_metadata
    from dalil.search.engine import Searcher
    from dalil.search.evaluation import load_squad

    parser = argparse.ArgumentParser()
    parser.add_argument("--tech", required=True, help="the tech-news index built by dalil index")
    parser.add_argument("--eval-cache", default=str(Path.home() / ".cache" / "dalil" / "eval"))
    args = parser.parse_args()
    encoder = load_encoder("e5-onnx")  # what a server asks with
    sets = {
        "arcd": load_squad(EVAL / "arcd.json", name="arcd"),
        "xquad-ar": load_squad(EVAL / "xquad-dev.ar.json", name="xquad-ar"),
        "xquad-en": load_squad(EVAL / "xquad-dev.ar.json", EVAL / "xquad-dev.en.json", name="xquad-en"),
    }
    by_articles = {}
    for cached in Path(args.eval_cache).glob("corpus-*"):
        by_articles[index_metadata(cached)["counts"]["articles"]] = cached
    unanswerable = [json.loads(line) for line in UNANSWERABLE.open(encoding="utf-8")]
    asked = [u["query"] for u in unanswerable]
    rows: dict[str, list] = {"ar": [], "en": []}  # (features, answerable, id, where)
    for name, lset in sets.items():
        searcher = Searcher.open(by_articles[len(lset.articles)], encoder)
        lang = "en" if name.endswith("en") else "ar"
        questions = [q.query for q in lset.questions]
        for f, q in zip(features(searcher, questions), lset.questions, strict=True):
            rows[lang].append((f, 1, f"{name}:{q.qid}", name))
        if name != "xquad-en":  # the Arabic-paragraph indexes, once each
            for f, u in zip(features(searcher, asked), unanswerable, strict=True):
                rows[u["lang"]].append((f, 0, f"{name}:{u['id']}", name))
        searcher.close()
    tech = Searcher.open(args.tech, encoder)
    for f, u in zip(features(tech, asked), unanswerable, strict=True):
        rows[u["lang"]].append((f, 0, f"tech:{u['id']}", "tech"))
    report = {}
    print(
        "| questions | fitted on (answerable / not) | held out (answerable / not) | AUC c1 | AUC model "
        "| threshold | recall answerable | unanswerable flagged |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for lang, items in rows.items():
        x = np.array([r[0] for r in items])
        y = np.array([r[1] for r in items], dtype=np.float64)
        # questions (not rows) are split: one unanswerable question's rows stay on one side
        side = np.array([half(r[2].split(":", 1)[1]) for r in items])
        fit, test = side == 0, side == 1
        w = fit_logistic(x[fit], y[fit])
        p_fit, p_test = predict(w, x[fit]), predict(w, x[test])
        # operating point fitted on the first half: flag as few answerable questions as possible
        # (a wrong "no close match" hides a right answer): the highest threshold that keeps
        # RECALL_TARGET of them above it
        threshold = float(np.quantile(p_fit[y[fit] == 1], 1 - RECALL_TARGET))
        yt = y[test]
        recall = float((p_test[yt == 1] >= threshold).mean())
        flagged = float((p_test[yt == 0] < threshold).mean())
        auc_c1 = auc(x[test][yt == 1, 0], x[test][yt == 0, 0])
        auc_model = auc(p_test[yt == 1], p_test[yt == 0])
        print(f"| {lang} | {int(y[fit].sum())} / {int((1 - y[fit]).sum())} | {int(yt.sum())} / "
              f"{int((1 - yt).sum())} | {auc_c1:.3f} | {auc_model:.3f} | {threshold:.2f} | "
              f"{recall:.3f} | {flagged:.3f} |")  # fmt: skip
        report[lang] = {"weights": [round(float(v), 4) for v in w], "threshold": round(threshold, 3)}
    print(json.dumps(report))
    probes = [
        ("ar", "التعاون مع روسيا في الجيل الخامس", True),
        ("en", "5G cooperation with Russia", True),
        ("en", "paperless government in Azerbaijan", True),
        ("en", "artificial intelligence cooperation with China", True),
        ("ar", "ما أفضل وصفة لتحضير الكشري في المنزل؟", False),
        ("en", "iPhone 17 battery life", False),
    ]
    for (lang, question, answerable), f in zip(probes, features(tech, [p[1] for p in probes]), strict=True):
        w, threshold = np.array(report[lang]["weights"]), report[lang]["threshold"]
        p = float(predict(w, f[None, :])[0])
        verdict = "no close match" if p < threshold else "close match"
        print(f"tech index: {question!r} ({'answerable' if answerable else 'not answerable'}): "
              f"c1 {f[0]:.3f} gap {f[1]:.3f} -> {p:.2f}, {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
