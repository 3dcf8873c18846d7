"""What relevance II costs per question: the English Arabic-counterpart channel and the confidence.

    dalil index --corpus SUBSET.jsonl --out DIR     # an index built as users build one
    python bench/second_stage.py --index DIR [--questions 200]

Two searchers over the same index in this process, each with its own caches, answer the same
distinct real questions (ARCD Arabic, XQuAD-dev English; each asked once per searcher, so every
question is embedded by each): the product as shipped (`Searcher.answer`: English lexical channel
of Arabic counterparts and distinctive Latin terms, and the confidence), and a baseline with the
lexical channel of before (distinctive Latin terms only) and no confidence. The order alternates per
question. Prints p50/p99 ms per language for both and the difference of the medians.
"""

from __future__ import annotations

import argparse
import json
import time

from common import REPO, pct

EVAL = REPO.parent / "shared" / "eval"


def questions(limit: int) -> dict[str, list[str]]:
    def squad(name: str) -> list[str]:
        data = json.loads((EVAL / name).read_text(encoding="utf-8"))["data"]
        found = [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]]
        return list(dict.fromkeys(found))[:limit]

    return {"ar": squad("arcd.json"), "en": squad("xquad-dev.en.json")}


def main() -> None:
    from dalil.indexer.analysis.arabic import script_of
    from dalil.indexer.analysis.terms import query_terms
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.indexer.store.reader import IndexReader
    from dalil.search.lexical import distinctive
    from dalil.search.searcher import Searcher

    class Before(Searcher):
        """The engine without this issue's additions, for the baseline."""

        def hybrid_lexical_terms(self, snap, query):
            if script_of(query) == "ar":
                return query_terms(query)
            return distinctive(snap, query_terms(query, latin_only=True))

        def _confidence(self, *args, **kwargs):
            return None

    parser = argparse.ArgumentParser()
    parser.add_argument("--index", required=True)
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    encoder = load_encoder("e5-fast")
    now = Searcher(IndexReader.open(args.index), encoder)
    before = Before(IndexReader.open(args.index), encoder)
    for s in (now, before):  # first-call costs (thread pool, word table) out of the figures
        s.answer("تجربة")
        s.answer("warm up")
    print("| questions | shipped p50 / p99 ms | before p50 / p99 ms | p50 difference |")
    print("|---|---|---|---|")
    for lang, qs in questions(args.questions).items():
        times: dict[str, list[float]] = {"now": [], "before": []}
        for i, q in enumerate(qs):
            order = [("now", now), ("before", before)]
            for name, s in order if i % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                s.answer(q)
                times[name].append(1000 * (time.perf_counter() - started))
        a, b = times["now"], times["before"]
        shipped, base = f"{pct(a, 50):.1f} / {pct(a, 99):.1f}", f"{pct(b, 50):.1f} / {pct(b, 99):.1f}"
        print(f"| {lang} ({len(qs)}) | {shipped} | {base} | {pct(a, 50) - pct(b, 50):+.1f} |")
    now.close()
    before.close()


if __name__ == "__main__":
    main()
