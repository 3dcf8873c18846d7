"""How sure the engine is that the index answers a question at all: "no close match".

A search box always returns its k nearest passages, however far they are; a question the corpus
cannot answer ("iPhone 17 battery life" over 2018 news) would get ten confident-looking results.
The confidence is a logistic model per question language over six features of what retrieval
already computed for the question (no extra model; one lookup of the dense candidates' articles):

- `c1`: the best dense cosine. multilingual-e5's cosines sit in a narrow band (0.78-0.88 for
  answerable and unanswerable questions alike), so on its own it separates English questions badly;
- `gap`: how far the best *article* stands out from the next nine (a story told by many outlets
  stands out less than a Wikipedia paragraph, so `gap` is weighed against the other two);
- `coverage`: the share of the question's content words (in any form highlighting marks; for an
  English question its words' Arabic counterparts, search/highlight.py) held by the best of the
  first three results, counted over the words Arabic text could hold and over all of them. A
  question about a thing the corpus never mentions (koshari, a 2026 phone) finds no passage holding
  its distinctive words, however close the cosine;
- `rare coverage`: the same, each word weighted by its inverse document frequency in the index (a
  word no passage holds weighs most), so that common words ("best", "life") held by any passage do
  not make a question look answered;
- `tail`: the best cosine's lead over the 30th dense candidate's. e5 puts some questions close to
  everything; the lead over the tail takes that per-question offset out (English AUC 0.66 for `c1`
  alone, 0.92 for `tail`, on half B).

The weights and the threshold were fitted by bench/no_match.py on half A of the answerable
development and news questions and of 150 written unanswerable ones (bench/data/unanswerable.jsonl),
each asked of every evaluation index; `dalil eval` reports the ROC AUC and the operating point on half
B (docs/relevance.md). The threshold keeps 95% of half A's answerable questions above it: a wrong
"no close match" hides a right answer, so it is the costlier mistake.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dalil.indexer.analysis.arabic import script_of
from dalil.indexer.analysis.terms import QueryTerms
from dalil.search.highlight import groups_held

TOP_ARTICLES = 10  # articles `gap` compares the best one with
DENSE_LOOKED = 30  # dense passages read to find them
RESULTS_LOOKED = 3  # results whose words `coverage` counts


@dataclass(frozen=True)
class Confidence:
    value: float  # 0-1, the model's estimate that the index answers the question
    no_close_match: bool  # value under the operating point: say so above the results

    def to_dict(self) -> dict[str, object]:
        return {"confidence": round(self.value, 3), "no_close_match": self.no_close_match}


@dataclass(frozen=True)
class Model:
    bias: float
    weights: tuple[float, ...]  # one per feature, in the order of `features`
    threshold: float

    def value(self, features: Sequence[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


# Fitted by `python bench/no_match.py` (half A); see docs/relevance.md for the figures on half B.
MODELS = {
    "ar": Model(bias=-46.666, weights=(50.697, 0.867, 1.128, 1.128, 11.692, 5.135), threshold=0.354),
    "en": Model(bias=-13.139, weights=(10.960, 18.100, 1.132, 2.033, 46.922, 1.523), threshold=0.253),
}


def article_gap(dense: Sequence[tuple[int, float]], article_of: Mapping[int, str]) -> float:
    """The best article's cosine minus the mean of the next (up to nine) articles' best cosines."""
    seen: set[str] = set()
    best: list[float] = []
    for pid, score in dense:
        article = article_of.get(pid)
        if article is None or article in seen:
            continue
        seen.add(article)
        best.append(score)
        if len(best) == TOP_ARTICLES:
            break
    if len(best) < 2:
        return 0.0
    rest = best[1:]
    return best[0] - sum(rest) / len(rest)


def coverage(
    groups: Sequence[QueryTerms], texts: Sequence[str], weights: Sequence[float]
) -> tuple[int, float]:
    """Of the question's word groups, the most that one of `texts` holds, and the largest share of
    their `weights` (rarity) one of them holds; (0, 0.0) with no group or no text."""
    if not groups or not texts:
        return 0, 0.0
    held = [groups_held(text, groups) for text in texts]
    total = sum(weights) or 1.0
    return max(len(h) for h in held), max(sum(weights[i] for i in h) for h in held) / total


def features(
    dense: Sequence[tuple[int, float]],
    article_of: Mapping[int, str],
    groups: Sequence[QueryTerms],
    texts: Sequence[str],
    searchable: int,
    rarity: Sequence[float],
) -> tuple[float, ...]:
    """The model's inputs, in the order of its weights. `searchable`: how many of `groups` Arabic text
    could hold (all of an Arabic question's); `rarity`: each group's inverse document frequency."""
    c1 = dense[0][1] if dense else 0.0
    tail = c1 - dense[-1][1] if dense else 0.0
    held, rare_share = coverage(groups, texts, rarity)
    gap = article_gap(dense, article_of)
    return (c1, gap, held / max(1, searchable), held / max(1, len(groups)), tail, rare_share)


def model_language(question: str) -> str:
    """Which model judges a question: "ar" for one written in Arabic, "en" for any other."""
    return "ar" if script_of(question) == "ar" else "en"


def judge(question: str, feats: Sequence[float]) -> Confidence:
    """The confidence of a question, by the model of its language."""
    model = MODELS[model_language(question)]
    value = model.value(feats)
    return Confidence(value, value < model.threshold)


def confidence_fields(confidence: Confidence | None) -> dict[str, object]:
    """The confidence as the API, the CLI's JSON and `dalil.Results` give it: null and false in
    lexical mode, which computes no dense scores to judge by."""
    if confidence is None:
        return {"confidence": None, "no_close_match": False}
    return confidence.to_dict()
