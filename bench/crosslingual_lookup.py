"""English questions: the cross-lingual highlight lookup, and whole searches, word index against scan.

    python bench/crosslingual_lookup.py --index DIR [--questions 200]

DIR: an index built by `dalil index` (it has the word index, vocabulary.faiss). In one process:
1. the lookup alone (a part): the nearest Arabic words of each English question's words (vectors
   already embedded), three ways on the same table: the word index (HNSW over 8-bit codes, then
   exact scores of the candidates: what dalil does now), a float32 scan (what an index without a
   word index gets), and the float16 matrix product dalil did before; then the same on a 50,000-word
   table (the index's real word vectors, topped up with perturbed copies: labelled);
2. whole searches through the `Searcher` a server uses (question embedding, both channels,
   highlighting; distinct real questions, ARCD Arabic and XQuAD English), p50/p99 per language,
   with the word index and with the scan, interleaved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import pct
from dalil.indexer.analysis.arabic import script_of
from dalil.indexer.analysis.terms import query_terms
from dalil.indexer.store.vocabulary import Vocabulary, word_index
from dalil.search.crosslingual import CANDIDATES
from dalil.search.searcher import Searcher
from query_latency import distinct_questions


def fp16_before(vocabulary: Vocabulary, vectors: np.ndarray) -> np.ndarray:
    """The lookup as it was: one float16 product with the whole table (numpy has no fp16 BLAS)."""
    return np.asarray(vocabulary.vectors @ vectors.T.astype(np.float16), dtype=np.float32)


def time_ms(fn, runs: list) -> list[float]:
    out = []
    for arg in runs:
        started = time.perf_counter()
        fn(arg)
        out.append((time.perf_counter() - started) * 1000)
    return out


def lookup_table(vocabulary: Vocabulary, word_vectors: list[np.ndarray]) -> dict:
    scanned = Vocabulary(vocabulary.words, vocabulary.vectors, None)
    indexed = (
        vocabulary
        if vocabulary.index is not None
        else Vocabulary(vocabulary.words, vocabulary.vectors, word_index(vocabulary.vectors))
    )
    ways = {
        "word index": lambda v: indexed.nearest(v, CANDIDATES),
        "float32 scan": lambda v: scanned.nearest(v, CANDIDATES),
        "float16 product (before)": lambda v: fp16_before(vocabulary, v),
    }
    out = {"words": len(vocabulary.words)}
    for name, fn in ways.items():
        times = time_ms(fn, word_vectors)
        out[name] = {"p50_ms": round(statistics.median(times), 3), "p99_ms": round(pct(times, 99), 3)}
    return out


def padded(vocabulary: Vocabulary, size: int, seed: int = 0) -> Vocabulary:
    """The table topped up to `size` words with noisy copies of its own vectors (renormalised)."""
    rng = np.random.default_rng(seed)
    real = np.asarray(vocabulary.vectors, dtype=np.float32)
    extra = real[rng.integers(0, len(real), size - len(real))] + rng.normal(
        0, 0.02, (size - len(real), real.shape[1])
    )
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    table = np.vstack([real, extra]).astype(np.float16)
    words = vocabulary.words + [f"copy{i}" for i in range(size - len(real))]
    return Vocabulary(words, table, word_index(table))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=200, help="per language")
    args = parser.parse_args()
    searcher = Searcher.open(args.index)
    vocabulary = searcher.translations.vocabulary
    if vocabulary is None or vocabulary.index is None:
        sys.exit("this index has no word index: build it with this dalil's `dalil index`")
    questions = distinct_questions(2 * args.questions + 40)
    english = [q for q in questions if script_of(q) != "ar"]
    arabic = [q for q in questions if script_of(q) == "ar"]
    word_vectors = []
    for q in english[: args.questions]:
        words = [w for w in query_terms(q, latin_only=True).exact if not w.isdigit()][:12]
        if words:
            word_vectors.append(searcher.encoder.encode_queries(words))
    report = {
        "lookup, index table": lookup_table(vocabulary, word_vectors),
        "lookup, 50k words (padded)": lookup_table(padded(vocabulary, 50_000), word_vectors),
    }
    scanned = Vocabulary(vocabulary.words, vocabulary.vectors, None)
    searches: dict[str, list[float]] = {}
    ways = (("word index", vocabulary), ("float32 scan", scanned))
    for lang, pool in (("ar", arabic), ("en", english)):
        for i, q in enumerate(pool[: args.questions]):
            way, table = ways[i % 2]  # alternate questions: each is embedded once, caches stay cold
            searcher.translations.vocabulary = table
            started = time.perf_counter()
            searcher.search(q, 10)
            searches.setdefault(f"{lang}, {way}", []).append((time.perf_counter() - started) * 1000)
    report["whole search"] = {
        key: {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "p99_ms": round(pct(ms, 99), 1)}
        for key, ms in searches.items()
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
