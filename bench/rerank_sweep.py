"""A learned second stage over the fused top candidates, fitted on half A, scored on half B.

    dalil eval                       # first: builds the evaluation indexes (cached)
    python bench/rerank_sweep.py [--eval-cache ~/.cache/dalil/eval] [--top 20]

For every question of the sets `dalil eval` measures, the shipped hybrid ranking is computed once
with its two channels; the first `--top` candidates get cheap features of what is already at hand
(channel scores, min-max and relative to the channel's best, the question's words held by the
passage and by its best sentence, IDF-weighted, and how close together they are). A logistic model
per question language (passages of the relevant article = 1) is fitted on half A and reorders the
candidates; R@1 and MRR@10 per set and half are printed beside the shipped ranking, then the model's
weights.

A part, not the product path: these figures rank through `Searcher.rank` on the question as typed
(no query syntax, no grouping). They choose between variants of one stage on identical inputs;
the product's figures are `dalil eval`'s (search/evaluation.py `evaluate`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from common import evaluation_indexes, evaluation_sets

FEATURES = (
    "fused",
    "dense min-max",
    "lexical min-max",
    "dense - best dense",
    "lexical / best lexical",
    "coverage",
    "idf coverage",
    "best sentence idf coverage",
    "proximity",
    "1 / fused rank",
)


def candidate_features(
    question_groups, idf, fused, dense, lexical, rows, top: int
) -> tuple[list[int], np.ndarray]:
    from dalil.indexer.analysis.arabic import is_arabic_term, tokens
    from dalil.indexer.analysis.splitting import sentence_spans
    from dalil.search.fusion import min_max

    dn, ln = min_max(dense), min_max(lexical)
    dense_raw, lexical_raw = dict(dense), dict(lexical)
    best_dense = dense[0][1] if dense else 0.0
    best_lexical = lexical[0][1] if lexical else 1.0
    weights = [idf.get(g.exact[0], 0.0) for g in question_groups]
    total = sum(weights) or 1.0
    ids, feats = [], []
    for rank, (pid, score) in enumerate(fused[:top], start=1):
        row = rows.get(pid)
        if row is None:
            continue
        text = row.text
        toks = tokens(text)
        # which group each token holds (-1: none)
        held_at = []
        for t in toks:
            hit = -1
            for gi, g in enumerate(question_groups):
                if t.norm in g.exact or (is_arabic_term(t.norm) and t.stem in g.stems):
                    hit = gi
                    break
            held_at.append(hit)
        held = {h for h in held_at if h >= 0}
        cover = len(held) / max(1, len(question_groups))
        idf_cover = sum(weights[h] for h in held) / total
        best_sentence = 0.0
        for a, b in sentence_spans(text, 0, len(text)):
            in_sentence = {h for t, h in zip(toks, held_at, strict=True) if h >= 0 and a <= t.start < b}
            best_sentence = max(best_sentence, sum(weights[h] for h in in_sentence) / total)
        proximity = _proximity(held_at, len(held))
        feats.append(
            (
                score,
                dn.get(pid, 0.0),
                ln.get(pid, 0.0),
                dense_raw[pid] - best_dense if pid in dense_raw else -0.2,
                lexical_raw[pid] / best_lexical if pid in lexical_raw and best_lexical else 0.0,
                cover,
                idf_cover,
                best_sentence,
                proximity,
                1.0 / rank,
            )
        )
        ids.append(pid)
    return ids, np.array(feats, dtype=np.float64).reshape(-1, len(FEATURES))


def _proximity(held_at: list[int], distinct: int) -> float:
    """distinct / (length of the shortest token window holding every held group), 0 with under two."""
    if distinct < 2:
        return 0.0
    counts: dict[int, int] = {}
    have, best, left = 0, math.inf, 0
    for right, h in enumerate(held_at):
        if h < 0:
            continue
        counts[h] = counts.get(h, 0) + 1
        if counts[h] == 1:
            have += 1
        while have == distinct:
            while held_at[left] < 0:
                left += 1
            best = min(best, right - left + 1)
            counts[held_at[left]] -= 1
            if counts[held_at[left]] == 0:
                have -= 1
            left += 1
    return distinct / best if best < math.inf else 0.0


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    design = np.hstack([np.ones((len(z), 1)), z])
    w = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(design @ w, -60, 60)))
        grad = design.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = design.T @ (design * (p * (1 - p))[:, None]) + l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
        w -= np.linalg.solve(hess, grad)
    # back to raw features: w0 + sum w_i (x_i - m_i)/s_i
    raw = w[1:] / std
    return np.r_[w[0] - (raw * mean).sum(), raw]


def word_idf(snap, groups) -> dict[str, float]:
    """log(1 + N / (1 + df)) per question word, df of its most frequent form (English words: their
    Arabic counterparts)."""
    freqs = snap.doc_freqs({f for g in groups for f in g.exact})
    n = max(1, snap.live_passages)
    return {g.exact[0]: math.log(1 + n / (1 + max(freqs.get(f, 0) for f in g.exact))) for g in groups}


def main() -> None:
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.search.confidence import model_language
    from dalil.search.evaluation import half_of, mean_metrics, question_metrics
    from dalil.search.highlight import match_groups
    from dalil.search.searcher import CANDIDATES, Searcher

    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-cache", default=str(Path.home() / ".cache" / "dalil" / "eval"))
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    sets = evaluation_sets()
    by_articles = evaluation_indexes(Path(args.eval_cache))
    encoder = load_encoder("e5-fast")
    data = []  # per question: (set, lang, half, relevant, fused ids, features, labels, article_of)
    for lset in sets:
        searcher = Searcher.open(by_articles[len(lset.articles)], encoder)
        qs = list(lset.questions)
        texts = [q.query for q in qs]
        with searcher.index.snapshot() as snap:
            for start in range(0, len(texts), 64):
                chunk = texts[start : start + 64]
                ranked = searcher.rank_channels(chunk, "hybrid", CANDIDATES, snap=snap)
                for q, text, (fused, dense) in zip(qs[start : start + 64], chunk, ranked, strict=True):
                    lexical = searcher._lexical_ranking(snap, text, CANDIDATES, {})
                    translations = searcher._translations(text, snap)
                    groups = [g for g in match_groups(text, translations) if g]
                    idf = word_idf(snap, groups)
                    rows = snap.passages(pid for pid, _ in fused[: args.top])
                    ids, feats = candidate_features(groups, idf, fused, dense, lexical, rows, args.top)
                    labels = np.array([rows[p].article_id in q.relevant for p in ids], dtype=np.float64)
                    lang = model_language(text)
                    article_of = {p: rows[p].article_id for p in ids}
                    data.append(
                        (lset.name, lang, half_of(q), q.relevant, ids, feats, labels, article_of, fused)
                    )
        searcher.close()
        print(f"{lset.name}: {len(qs)} questions", flush=True)
    models = {}
    for lang in ("ar", "en"):
        fit = [d for d in data if d[1] == lang and d[2] == "A"]
        x = np.vstack([d[5] for d in fit if len(d[5])])
        y = np.concatenate([d[6] for d in fit if len(d[5])])
        models[lang] = fit_logistic(x, y)
        named = ", ".join(f"{name} {w:.3f}" for name, w in zip(FEATURES, models[lang][1:], strict=True))
        print(f"\n{lang} weights: bias {models[lang][0]:.3f}; {named}")
    print("\n| set | half | questions | shipped R@1 / MRR@10 | reranked R@1 / MRR@10 |")
    print("|---|---|---|---|---|")
    for name in dict.fromkeys(d[0] for d in data):
        for half in ("A", "B"):
            mine = [d for d in data if d[0] == name and d[2] == half]
            before, after = [], []
            for _, lang, _, relevant, ids, feats, _, article_of, fused in mine:
                order = [p for p, _ in fused[:10]]
                before.append(question_metrics([article_of.get(p, "") for p in order], relevant))
                w = models[lang]
                scores = w[0] + feats @ w[1:] if len(feats) else np.array([])
                reranked = [ids[i] for i in np.argsort(-scores, kind="stable")][:10]
                after.append(question_metrics([article_of[p] for p in reranked], relevant))
            b, a = mean_metrics(before), mean_metrics(after)
            print(f"| {name} | {half} | {len(mine)} | {100 * b['recall@1']:.1f} / {100 * b['mrr@10']:.1f} | "
                  f"{100 * a['recall@1']:.1f} / {100 * a['mrr@10']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
