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

from indexer.threads import limit_threads_in_environment

limit_threads_in_environment()

REPO = Path(__file__).resolve().parent.parent
LARGE = REPO.parent / "shared" / "corpus" / "arabic-news-large.jsonl.gz"
CACHE = Path.home() / ".cache" / "dalil" / "scale"
CHUNK = 4096  # passages per cache file


def read_articles(path: Path, skip: int):
    from indexer.corpus import CorpusReport, read_corpus

    for n, article in enumerate(read_corpus(path, CorpusReport())):
        if n >= skip:
            yield n, article


def cached_chunks() -> list[Path]:
    return sorted(CACHE.glob("chunk-*.npz"))


def cmd_embed(args: argparse.Namespace) -> None:
    from indexer.build import embedding_input, plan_engine, prepare_articles, split_settings_for
    from indexer.embedding_pool import PassageEmbedder
    from indexer.encoders import EncoderSpec, load_encoder
    from indexer.splitting import SplitSettings

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
    ids = list(range(len(texts)))
    embedder.submit(ids, texts)
    vectors = np.zeros((len(texts), embedder.dimension), np.float32)
    for batch_ids, batch in embedder.finished(wait_all=True):
        vectors[batch_ids] = batch
    state = json.dumps({"articles": articles})
    name = CACHE / f"chunk-{first:08d}.npz"
    tmp = name.with_suffix(".tmp.npz")
    np.savez(tmp, ids=np.arange(first, first + len(texts)), vectors=vectors, meta=np.array(meta), state=state)
    tmp.rename(name)
    return len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("embed", help="embed real passages into the cache (resumable)")
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_embed)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
