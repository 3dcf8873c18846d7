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

- The pasted-headline sets (`load_pasted`): headlines in their own punctuation (quotes, `..`, `؟!`,
  colons) asking for their own article, and the same questions with the quote marks deleted.

**One path**: every question is answered as the API and the page answer it (`evaluate`:
`Searcher.answer` with the query syntax and default options), in two views: *answer*, the API's
default (ten passages), and *page*, what the search page shows (ten articles, re-reports folded).
`rank_only` (`Searcher.rank`, no syntax) is a part, kept for the tuning scripts and labelled so.

Metrics are at the article level: in the answer view a passage counts as a hit when its article is
relevant, and only the first passage of each article counts (later passages of the same article are
neither hits nor misses for nDCG); in the page view each result is an article, with the re-reports
folded under it ("same story", shown with it) at its rank. Recall@k = relevant
articles in the top k / relevant articles; MRR@10 = 1 / rank of the first hit (0 beyond 10);
nDCG@10 with binary gains. Questions answered with no result at all are counted too.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
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


PASTED_ARTICLES = 1200  # the large corpus's first lines (shuffled: a fair sample of its outlets)
# What people paste: quotation marks of every kind, "..", question and exclamation marks, colons.
_PASTED_MARKS = re.compile(r'[«»“”"„″]|\.\.|[؟?!]|:')
_QUOTE_MARKS = re.compile(r'[«»“”"„″]')


def load_pasted(corpus_file: Path, limit: int = PASTED_ARTICLES) -> list[LabelledSet]:
    """Questions as people paste them: the first `limit` articles of a news corpus indexed without
    their headlines, and each headline (of four words or more, not shared by another of them) that
    holds quote marks («», "", “”, clitics glued to them: بـ"…"), `..`, `؟!` or a colon, asking
    for its own article in its own punctuation. A twin set asks the same questions with the quote
    marks deleted, as a user would retype them: the baseline that quoted questions must not fall
    below (search/syntax.py). Re-reports by other outlets count as misses: lower bounds."""
    from dalil.indexer.corpus import CorpusReport, read_corpus
    from dalil.search.syntax import without_quotes

    chosen = list(itertools.islice(read_corpus(corpus_file, CorpusReport()), limit))
    if not chosen:
        raise ValueError(f"{corpus_file}: no readable article")
    shared: dict[str, int] = {}
    for article in chosen:
        title = (article.title or "").strip()
        shared[title] = shared.get(title, 0) + 1
    questions = [
        Question(f"pasted-{a.article_id}", a.title.strip(), frozenset({a.article_id}))
        for a in chosen
        if a.title
        and shared[a.title.strip()] == 1
        and len(a.title.split()) >= _MIN_HEADLINE_WORDS
        and _PASTED_MARKS.search(a.title)
    ]
    articles = tuple(replace(a, title="") for a in chosen)  # headlines held out of the index
    stripped = tuple(replace(q, query=without_quotes(q.query)) for q in questions)
    return [
        LabelledSet("pasted (ar)", tuple(questions), articles),
        LabelledSet("pasted, quotes removed (ar)", stripped, articles),
    ]


def holds_quotes(question: Question) -> bool:
    return bool(_QUOTE_MARKS.search(question.query))


def standard_sets(
    dev: Path,
    news_corpus: Path | None = None,
    news_english: Path | None = None,
    pasted_corpus: Path | None = None,
) -> list:
    """What `dalil eval` measures when no set is named: ARCD, XQuAD-dev Arabic and English->Arabic
    (SQuAD files in `dev`), the news sets when `news_corpus` exists, and the pasted-headline sets
    when `pasted_corpus` does."""
    sets = [
        load_squad(dev / "arcd.json", name="arcd (ar)"),
        load_squad(dev / "xquad-dev.ar.json", name="xquad-dev (ar)"),
        load_squad(dev / "xquad-dev.ar.json", dev / "xquad-dev.en.json", name="xquad-dev (en->ar)"),
    ]
    if news_corpus is not None and news_corpus.is_file():
        sets += load_news(news_corpus, news_english)
    if pasted_corpus is not None and pasted_corpus.is_file():
        sets += load_pasted(pasted_corpus)
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


Ranked = Sequence[str | tuple[str, ...]]  # an article per rank, or several sharing one rank


def first_hits(ranked_articles: Ranked, relevant: frozenset[str]) -> list[int]:
    """1-based ranks at which a not-yet-seen relevant article appears in a ranking (an entry may be
    a tuple of articles shown at one rank: a page's result and the re-reports folded under it)."""
    seen: set[str] = set()
    ranks: list[int] = []
    for rank, entry in enumerate(ranked_articles, start=1):
        for article in (entry,) if isinstance(entry, str) else entry:
            if article in relevant and article not in seen:
                ranks.append(rank)
            seen.add(article)
    return ranks


def question_metrics(ranked_articles: Ranked, relevant: frozenset[str]) -> dict[str, float]:
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


VIEWS = ("answer", "page")  # the API's default answer (passages), and the page's (one per article)


@dataclass
class Evaluation:
    """One set's figures: {view: {mode: {"all"|"A"|"B": metrics}}}, the questions answered with no
    result at all {view: {mode: count}}, and the hybrid answers' confidence values {qid: value}."""

    metrics: dict[str, dict[str, dict[str, dict[str, float]]]]
    empty: dict[str, dict[str, int]]
    confidence: dict[str, float]


def answer_options(view: str, mode: str):
    """The options a question is answered with in each view: the API's defaults (10 passages), or
    the page's (10 articles, re-reports folded), in `mode`."""
    from dalil.search.searcher import SearchOptions

    return SearchOptions(k=10, mode=mode, group=view == "page")


def answered_articles(answer, view: str) -> list:
    """The article of each result, in order. A page's result is an article and the other outlets'
    reports of its story, listed under it ("same story"): found at that rank, as a reader sees them."""
    if view == "page":
        return [(group.article_id, *(d["article_id"] for d in group.duplicates)) for group in answer.results]
    return [hit.article_id for hit in answer.results]


def evaluate(
    searcher, lset: LabelledSet, modes: Sequence[str], views: Sequence[str] = VIEWS, batch: int = 64
) -> Evaluation:
    """Each question answered as the API and the page answer it (`Searcher.answer`: the query syntax,
    the default options), per mode and view. Article-level metrics: in the answer view a passage
    counts for its article the first time the article appears; in the page view each result is one
    article. The questions of a batch are embedded together first, into the searcher's own query
    cache, which each answer then reads: the same vectors, many times faster than one by one."""
    from dalil.search.searcher import validate_query
    from dalil.search.syntax import parse_query

    questions = [q for q in lset.questions if q.query.strip()]
    per_question: dict[tuple[str, str], list[tuple[str, dict[str, float]]]] = {}
    empty = {view: dict.fromkeys(modes, 0) for view in views}
    confidence: dict[str, float] = {}
    for start in range(0, len(questions), batch):
        chunk = questions[start : start + batch]
        if any(mode != "lexical" for mode in modes):
            searcher.query_vectors.get_many([parse_query(validate_query(q.query, 10)[0]).text for q in chunk])
        for q in chunk:
            for mode in modes:
                for view in views:
                    answer = searcher.answer(q.query, answer_options(view, mode))
                    articles = answered_articles(answer, view)
                    empty[view][mode] += not articles
                    per_question.setdefault((view, mode), []).append(
                        (half_of(q), question_metrics(articles, q.relevant))
                    )
                    if mode == "hybrid" and view == "answer" and answer.confidence is not None:
                        confidence[q.qid] = answer.confidence.value
    metrics: dict = {}
    for (view, mode), rows in per_question.items():
        halves = {"all": mean_metrics(m for _, m in rows)}
        for half in HALVES:
            halves[half] = mean_metrics(m for h, m in rows if h == half)
        metrics.setdefault(view, {})[mode] = halves
    return Evaluation(metrics, empty, confidence)


def rank_only(searcher, lset: LabelledSet, modes: Sequence[str], batch: int = 64) -> dict:
    """A part of the product, for tuning scripts only: `Searcher.rank` on the question as typed,
    without the query syntax, highlighting, grouping or confidence. {mode: {"all"|"A"|"B": metrics}}."""
    from dalil.search.searcher import validate_query

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


def format_table(rows: Sequence[tuple[str, str, dict[str, float]]], empty: dict | None = None) -> str:
    """A Markdown table: set, mode, then the metrics as percentages, and (with `empty`, keyed by
    (set, mode)) the questions that got no result at all."""
    keys = [f"recall@{k}" for k in CUTOFFS] + ["mrr@10", "ndcg@10"]
    head = "| set | mode | " + " | ".join(k.replace("recall", "R") for k in keys) + " |"
    head += " empty |" if empty is not None else ""
    lines = [head, "|" + "---|" * (len(keys) + 2 + (empty is not None))]
    for name, mode, metrics in rows:
        line = f"| {name} | {mode} | " + " | ".join(f"{100 * metrics[k]:.1f}" for k in keys) + " |"
        if empty is not None:
            line += f" {empty.get((name, mode), 0)} |"
        lines.append(line)
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
    """(question, its validated text, its confidence features) for each question, ranked in hybrid
    mode in batches: what bench/no_match.py fits the confidence on (a part: no query syntax; `dalil
    eval` reads the confidence of each full answer instead)."""
    from dalil.search.searcher import validate_query

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
