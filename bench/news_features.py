"""Cost of the news-reader features, through the `Searcher` a server uses.

    python bench/news_features.py --index DIR [--questions 200]

DIR: an index built by `dalil index`. Distinct real questions (ARCD Arabic, XQuAD English), the
same ones for every way, each way starting with empty embedding caches (every question embedded),
reported per language as p50/p99 ms, each feature against its baseline in the same run:
- grouped search (what the page asks) without and with facets, and sorted newest first;
- the facet counts alone (a part: the SQLite counts over the matching candidates);
- relevance with a recency half-life, and a question with a phrase and an exclusion;
- suggestions: building the headline table once (at the first suggestion), then prefixes of the
  questions' words as typed, 1 to 6 letters;
- related stories for the top article of each question.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import pct
from dalil.indexer.analysis.arabic import script_of, tokens
from dalil.search.cache import EmbeddingCache
from dalil.search.highlight import match_groups
from dalil.search.ordering import matches_needed
from dalil.search.searcher import QUERY_CACHE_SIZE, Searcher, SearchOptions
from query_latency import distinct_questions


def summary(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(pct(times, 99), 2), "n": len(times)}


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def by_language(questions: list[str], fn) -> dict:
    times: dict[str, list[float]] = {"ar": [], "en": []}
    for q in questions:
        times["ar" if script_of(q) == "ar" else "en"].append(timed(lambda q=q: fn(q)))
    return {lang: summary(t) for lang, t in times.items() if t}


def cold(searcher: Searcher) -> None:
    """Empty the question and word embedding caches (as for questions never asked before)."""
    searcher.query_vectors = EmbeddingCache(searcher.encoder.encode_queries, QUERY_CACHE_SIZE)
    searcher.translations.word_vectors = EmbeddingCache(searcher.encoder.encode_queries)


def facet_part(searcher: Searcher, question: str) -> float:
    """The facet counts alone, over the same candidates and matching test as a search makes."""
    with searcher.index.snapshot() as snap:
        ranking = searcher.rank([question], "hybrid", 100, cut=False, snap=snap)[0]
        groups = match_groups(question, searcher._translations(question, snap))
        words = searcher._matchable(groups, question, snap)
        matching = snap.matching_passages((pid for pid, _ in ranking), words, matches_needed(len(words)))
        return timed(lambda: snap.facet_counts(matching))


def prefixes(questions: list[str]) -> list[str]:
    out = []
    for q in questions:
        words = [t for t in tokens(q) if len(t.norm) > 2][:2]
        for word in words:
            text = q[word.start : word.end]
            out += [text[:n] for n in range(1, min(6, len(text)) + 1)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", required=True)
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    questions = distinct_questions(args.questions * 2)
    warm, asked = questions[: args.questions // 10], questions[args.questions // 10 : args.questions]
    searcher = Searcher.open(Path(args.index))
    for q in warm:  # model, caches and pages warm; these questions are not measured
        searcher.answer(q, SearchOptions(group=True, facets=True, sort="newest"))
    with searcher.index.snapshot() as snap:
        passages = snap.live_passages
    report: dict = {"index": args.index, "passages": passages, "questions": len(asked)}

    grouped = SearchOptions(k=10, group=True)
    ways = {
        "grouped (baseline)": grouped,
        "grouped + facets": SearchOptions(k=10, group=True, facets=True),
        "grouped, newest first": SearchOptions(k=10, group=True, sort="newest"),
        "grouped, recency 30 days": SearchOptions(k=10, group=True, recency=30.0),
        "passages (baseline)": SearchOptions(k=10),
    }
    # every way asks the same questions, each time with empty embedding caches: nothing is reused
    for name, options in ways.items():
        cold(searcher)
        report[name] = by_language(asked, lambda q, o=options: searcher.answer(q, o))
    # the same questions for the part and for phrase/exclusion syntax (its baseline: the same words
    # without the syntax, asked second: embedded already, so the baseline is favoured if anything)
    report["facet counts alone (a part)"] = {
        lang: summary([facet_part(searcher, q) for q in asked if (script_of(q) == "ar") == (lang == "ar")])
        for lang in ("ar", "en")
    }
    arabic = [q for q in asked if script_of(q) == "ar"][:60]
    syntax = []
    for q in arabic:
        words = [t for t in tokens(q) if len(t.norm) > 2]
        if len(words) >= 3:
            phrase = q[words[0].start : words[1].end]
            syntax.append((q, f'"{phrase}" {q[words[1].end :]} -كرة'))  # sports left out
    report["passages, phrase + exclusion"] = summary(
        [timed(lambda s=s: searcher.answer(s, SearchOptions(k=10))) for _, s in syntax]
    )
    report["passages, same words plain (baseline)"] = summary(
        [timed(lambda q=q: searcher.answer(q, SearchOptions(k=10))) for q, _ in syntax]
    )

    started = time.perf_counter()
    table = searcher._suggester()
    report["suggestions: table build (first suggestion)"] = {
        "ms": round((time.perf_counter() - started) * 1000, 1),
        "entries": len(table),
    }
    typed = prefixes(asked)
    report["suggestions per prefix"] = by_language(typed, lambda p: searcher.suggest(p, 8))
    tops = [searcher.answer(q, grouped).results for q in arabic[:40]]
    ids = [r[0].article_id for r in tops if r]
    report["related stories (k=5)"] = summary([timed(lambda a=a: searcher.related(a, 5)) for a in ids])
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
