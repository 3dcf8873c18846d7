"""Measuring relevance: labelled question sets, Recall@k / MRR@10 / nDCG@10 per retrieval mode.

Two set formats:
- SQuAD JSON (`{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question"}]}]}]}`):
  every paragraph becomes an article of the evaluation corpus, and each question's relevant article
  is the paragraph it was written on (a hit is any passage of that paragraph). Questions may come
  from a parallel file (same question ids), e.g. English questions over Arabic paragraphs.
- JSONL qrels, one question a line: `{"id": "q1", "query": "...", "relevant": ["article-id", ...]}`,
  evaluated against an index of any corpus (`--index`) whose article ids the qrels name.

Metrics are computed on the ranked passage list, at the article level: a passage counts as a hit
when its article is relevant, and only the first passage of each article counts (later passages of
the same article are neither hits nor misses for nDCG). Recall@k = relevant articles in the top k /
relevant articles; MRR@10 = 1 / rank of the first hit (0 beyond 10); nDCG@10 with binary gains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dalil.indexer.corpus import RawArticle

CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class Question:
    qid: str
    query: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class LabelledSet:
    name: str
    questions: tuple[Question, ...]
    articles: tuple[RawArticle, ...] = ()  # the corpus to index; empty for qrels over an existing index


def _squad(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data["data"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable SQuAD-format file ({exc})") from exc


def load_squad(corpus_file: Path, questions_file: Path | None = None, name: str | None = None) -> LabelledSet:
    """Paragraphs of `corpus_file` as articles; questions from `questions_file` (parallel) or the same."""
    articles: list[RawArticle] = []
    by_text: dict[str, str] = {}  # identical paragraphs (ARCD has a few) are one article
    paragraph_of_question: dict[str, str] = {}
    for a_index, article in enumerate(_squad(corpus_file)):
        for p_index, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"].strip()
            article_id = by_text.get(context)
            if article_id is None:
                article_id = by_text[context] = f"p{a_index:03d}-{p_index:02d}"
                # No title: XQuAD's titles are English, which would leak into the Arabic documents.
                articles.append(RawArticle(article_id=article_id, text=context, title=""))
            for qa in paragraph["qas"]:
                paragraph_of_question[str(qa["id"])] = article_id
    questions: list[Question] = []
    source = questions_file or corpus_file
    for article in _squad(source):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qid = str(qa["id"])
                if qid in paragraph_of_question and qa["question"].strip():
                    questions.append(
                        Question(qid, qa["question"].strip(), frozenset({paragraph_of_question[qid]}))
                    )
    if not questions:
        raise ValueError(f"{source}: no question matches a paragraph of {corpus_file}")
    return LabelledSet(name or Path(source).stem, tuple(questions), tuple(articles))


def load_qrels(path: Path, name: str | None = None) -> LabelledSet:
    questions: list[Question] = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            relevant = rec["relevant"]
            if isinstance(relevant, str):
                relevant = [relevant]
            questions.append(Question(str(rec["id"]), str(rec["query"]), frozenset(map(str, relevant))))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: expected {{'id', 'query', 'relevant'}} ({exc})") from exc
    return LabelledSet(name or Path(path).stem, tuple(questions))


def first_hits(ranked_articles: Sequence[str], relevant: frozenset[str]) -> list[int]:
    """1-based ranks at which a not-yet-seen relevant article appears in a passage ranking."""
    seen: set[str] = set()
    ranks: list[int] = []
    for rank, article in enumerate(ranked_articles, start=1):
        if article in relevant and article not in seen:
            ranks.append(rank)
        seen.add(article)
    return ranks


def question_metrics(ranked_articles: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    ranks = first_hits(ranked_articles, relevant)
    out = {f"recall@{k}": sum(r <= k for r in ranks) / len(relevant) for k in CUTOFFS}
    out["mrr@10"] = 1.0 / ranks[0] if ranks and ranks[0] <= 10 else 0.0
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= 10)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    out["ndcg@10"] = dcg / ideal if ideal else 0.0
    return out


def mean_metrics(per_question: Iterable[dict[str, float]]) -> dict[str, float]:
    rows = list(per_question)
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}


def evaluate(
    searcher, lset: LabelledSet, modes: Sequence[str], batch: int = 64
) -> dict[str, dict[str, float]]:
    """Mean metrics per mode for one set over an open searcher."""
    from dalil.search.engine import validate_query

    questions = [q for q in lset.questions if q.query.strip()]
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        per_question = []
        for start in range(0, len(questions), batch):
            chunk = questions[start : start + batch]
            texts = [validate_query(q.query, 10)[0] for q in chunk]
            rankings = searcher.rank(texts, mode, k=10)
            articles = searcher.index.article_ids({pid for r in rankings for pid, _ in r})
            for q, ranking in zip(chunk, rankings, strict=True):
                per_question.append(question_metrics([articles[pid] for pid, _ in ranking], q.relevant))
        results[mode] = mean_metrics(per_question)
    return results


def format_table(rows: Sequence[tuple[str, str, dict[str, float]]]) -> str:
    """A Markdown table: set, mode, then the metrics as percentages."""
    keys = [f"recall@{k}" for k in CUTOFFS] + ["mrr@10", "ndcg@10"]
    head = "| set | mode | " + " | ".join(k.replace("recall", "R") for k in keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 2)]
    for name, mode, metrics in rows:
        lines.append(f"| {name} | {mode} | " + " | ".join(f"{100 * metrics[k]:.1f}" for k in keys) + " |")
    return "\n".join(lines)
