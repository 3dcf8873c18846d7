"""Measuring relevance: labelled question sets, Recall@k / MRR@10 / nDCG@10 per retrieval mode.

Two set formats:
- SQuAD JSON (`{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question"}]}]}]}`):
  every paragraph becomes an article of the evaluation corpus, and each question's relevant article
  is the paragraph it was written on (a hit is any passage of that paragraph). Questions may come
  from a parallel file (same question ids), e.g. English questions over Arabic paragraphs.
- JSONL qrels, one question a line: `{"id": "q1", "query": "...", "relevant": ["article-id", ...]}`,
  evaluated against an index of any corpus (`--index`) whose article ids the qrels name.
- The news set (`load_news`): news articles whose headlines are held out of the index; each
  headline is an Arabic question whose answer is its own article, and English questions written for
  some of the same articles (bench/data/news-en.jsonl) are a second set over the same index.

**Halves**: every set is split in two by a stable hash of the *article* a question was written on
(for SQuAD sets the Wikipedia article, so that no paragraph of one article is on both sides; the
English and Arabic XQuAD questions of one paragraph fall on the same side). Half A is where anything
is tuned or fitted (bench/fusion_sweep.py, bench/no_match.py); half B is held apart and only
reported.

Metrics are computed on the ranked passage list, at the article level: a passage counts as a hit
when its article is relevant, and only the first passage of each article counts (later passages of
the same article are neither hits nor misses for nDCG). Recall@k = relevant articles in the top k /
relevant articles; MRR@10 = 1 / rank of the first hit (0 beyond 10); nDCG@10 with binary gains.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
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


HALVES = ("A", "B")


def half_of(question: Question) -> str:
    """ "A" (tuned on) or "B" (held apart): a stable hash of the article the question was written on."""
    article = min(question.relevant) if question.relevant else question.qid
    squad = re.fullmatch(r"(p\d{3})-\d{2}", article)  # load_squad's paragraph ids: p<article>-<paragraph>
    group = squad.group(1) if squad else article
    return HALVES[hashlib.blake2b(group.encode(), digest_size=2).digest()[0] % 2]


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


NEWS_ARTICLES = 600  # the corpus file's first lines: a fair sample (its lines are shuffled)
_MIN_HEADLINE_WORDS = 4  # shorter headlines ("شاهد.. صورة") do not say what the story is


def load_news(
    corpus_file: Path, english_file: Path | None = None, limit: int = NEWS_ARTICLES
) -> list[LabelledSet]:
    """The news-domain sets: the first `limit` articles of a news corpus, indexed *without their
    headlines*; each headline (of at least four words, not shared by another article of the corpus)
    asks for its own article, as a reader who remembers a story would; `english_file` (qrels) adds
    English questions written for some of the same articles. A re-report of the same story by another
    outlet counts as a miss, so the figures are a lower bound."""
    from dalil.indexer.corpus import CorpusReport, read_corpus

    report = CorpusReport()
    everything = list(read_corpus(corpus_file, report))
    if not everything:
        raise ValueError(f"{corpus_file}: no readable article")
    shared = {}
    for article in everything:
        title = (article.title or "").strip()
        shared[title] = shared.get(title, 0) + 1
    chosen = everything[:limit]
    questions = [
        Question(f"headline-{a.article_id}", a.title.strip(), frozenset({a.article_id}))
        for a in chosen
        if a.title and shared[a.title.strip()] == 1 and len(a.title.split()) >= _MIN_HEADLINE_WORDS
    ]
    articles = tuple(replace(a, title="") for a in chosen)  # headlines held out of the index
    sets = [LabelledSet("news (ar)", tuple(questions), articles)]
    if english_file is not None:
        ids = {a.article_id for a in chosen}
        english = [q for q in load_qrels(english_file).questions if q.relevant <= ids]
        if english:
            sets.append(LabelledSet("news (en->ar)", tuple(english), articles))
    return sets


def standard_sets(dev: Path, news_corpus: Path | None = None, news_english: Path | None = None) -> list:
    """What `dalil eval` measures when no set is named: ARCD, XQuAD-dev Arabic and English->Arabic
    (SQuAD files in `dev`), and the news sets when `news_corpus` exists."""
    sets = [
        load_squad(dev / "arcd.json", name="arcd (ar)"),
        load_squad(dev / "xquad-dev.ar.json", name="xquad-dev (ar)"),
        load_squad(dev / "xquad-dev.ar.json", dev / "xquad-dev.en.json", name="xquad-dev (en->ar)"),
    ]
    if news_corpus is not None and news_corpus.is_file():
        sets += load_news(news_corpus, news_english)
    return sets


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
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean metrics per mode for one set over an open searcher: {mode: {"all"|"A"|"B": metrics}}."""
    from dalil.search.engine import validate_query

    questions = [q for q in lset.questions if q.query.strip()]
    results: dict[str, dict[str, dict[str, float]]] = {}
    for mode in modes:
        per_question: list[tuple[str, dict[str, float]]] = []
        for start in range(0, len(questions), batch):
            chunk = questions[start : start + batch]
            texts = [validate_query(q.query, 10)[0] for q in chunk]
            rankings = searcher.rank(texts, mode, k=10)
            articles = searcher.index.article_ids({pid for r in rankings for pid, _ in r})
            for q, ranking in zip(chunk, rankings, strict=True):
                metrics = question_metrics([articles[pid] for pid, _ in ranking], q.relevant)
                per_question.append((half_of(q), metrics))
        results[mode] = {"all": mean_metrics(m for _, m in per_question)}
        for half in HALVES:
            results[mode][half] = mean_metrics(m for h, m in per_question if h == half)
    return results


def format_halves(
    rows: Sequence[tuple[str, str, dict[str, dict[str, float]]]], sizes: dict[str, dict]
) -> str:
    """R@1 and MRR@10 on half A (tuned on) and half B (held apart), with each half's question count."""
    lines = [
        "| set | mode | A: questions | A: R@1 | A: MRR@10 | B: questions | B: R@1 | B: MRR@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, mode, halves in rows:
        cells = []
        for half in HALVES:
            m = halves.get(half) or {}
            cells += [str(sizes[name][half])] + [
                f"{100 * m[key]:.1f}" if m else "-" for key in ("recall@1", "mrr@10")
            ]
        lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def half_sizes(lset: LabelledSet) -> dict[str, int]:
    return {half: sum(1 for q in lset.questions if half_of(q) == half) for half in HALVES}


def format_table(rows: Sequence[tuple[str, str, dict[str, float]]]) -> str:
    """A Markdown table: set, mode, then the metrics as percentages."""
    keys = [f"recall@{k}" for k in CUTOFFS] + ["mrr@10", "ndcg@10"]
    head = "| set | mode | " + " | ".join(k.replace("recall", "R") for k in keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 2)]
    for name, mode, metrics in rows:
        lines.append(f"| {name} | {mode} | " + " | ".join(f"{100 * metrics[k]:.1f}" for k in keys) + " |")
    return "\n".join(lines)


def load_unanswerable(path: Path) -> list[Question]:
    """Questions no evaluation corpus answers (`{"id", "lang", "query"}` a line): the negatives the
    confidence is calibrated and measured on."""
    out = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rec = json.loads(line)
                out.append(Question(str(rec["id"]), str(rec["query"]), frozenset()))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: expected {{'id', 'lang', 'query'}} ({exc})") from exc
    return out


def confidence_inputs(searcher, questions: Sequence[Question], batch: int = 64) -> Iterator[tuple]:
    """(question, its validated text, its confidence features) for each question, answered in hybrid
    mode in batches: what `dalil eval` judges and bench/no_match.py fits on."""
    from dalil.search.engine import validate_query

    for start in range(0, len(questions), batch):
        chunk = questions[start : start + batch]
        texts = [validate_query(q.query, 10)[0] for q in chunk]
        yield from zip(chunk, texts, searcher.confidence_features(texts), strict=True)


def roc_auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """The probability that an answerable question scores above an unanswerable one (ties: half)."""
    if not positive or not negative:
        return float("nan")
    wins = 0.0
    ordered = sorted(negative)
    for p in positive:
        below = bisect.bisect_left(ordered, p)
        ties = bisect.bisect_right(ordered, p) - below
        wins += below + ties / 2
    return wins / (len(positive) * len(negative))


@dataclass
class ConfidenceRows:
    """Confidence values of answerable and unanswerable questions, per question language and half."""

    values: dict[tuple[str, str, bool], list[float]]  # (lang, half, answerable) -> values

    def add(self, lang: str, half: str, answerable: bool, value: float) -> None:
        self.values.setdefault((lang, half, answerable), []).append(value)

    def summary(self, thresholds: dict[str, float]) -> dict[str, dict[str, dict[str, float]]]:
        """{lang: {"A"|"B"|"all": {auc, kept, flagged, answerable, unanswerable}}}; a half is left out
        when it lacks answerable or unanswerable questions."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for lang in ("ar", "en"):
            for half in (*HALVES, "all"):
                which = HALVES if half == "all" else (half,)
                yes = [v for h in which for v in self.values.get((lang, h, True), [])]
                no = [v for h in which for v in self.values.get((lang, h, False), [])]
                if yes and no:
                    out.setdefault(lang, {})[half] = {
                        "auc": roc_auc(yes, no),
                        "kept": sum(v >= thresholds[lang] for v in yes) / len(yes),
                        "flagged": sum(v < thresholds[lang] for v in no) / len(no),
                        "answerable": len(yes),
                        "unanswerable": len(no),
                    }
        return out

    def table(self, thresholds: dict[str, float]) -> str:
        lines = [
            "| questions | half | answerable / not | ROC AUC | answerable kept | unanswerable flagged |",
            "|---|---|---|---|---|---|",
        ]
        for lang, halves in self.summary(thresholds).items():
            for half, m in halves.items():
                lines.append(
                    f"| {lang} | {half} | {m['answerable']} / {m['unanswerable']} | {m['auc']:.3f} | "
                    f"{100 * m['kept']:.1f}% | {100 * m['flagged']:.1f}% |"
                )
        return "\n".join(lines)
