"""`dalil serve --ray ADDRESS --shards N`: the same HTTP API and page, served by Ray Serve over an
index split into N shards (indexer/shard_split.py).

Deployments of one Serve application:
- `shard-<k>` (k < N): holds shard k (its FAISS segments and SQLite) and answers a search's
  questions of it in collection-wide passage ids (search/sharded_reader.py `ShardSearcher`); it also
  commits the writes routed to it (by article id hash), embedding them itself;
- `query-encoder`: the question encoder (ONNX Runtime e5 where installed), loaded once per replica;
- `ingress`: the existing FastAPI app, with a `Searcher` whose index is the shards together
  (`ShardedIndex`: fan-out, top-k merge, collection-wide BM25) and whose encoder is the encoder
  deployment.
Each has `--replicas` replicas, or autoscales between that and `--max-replicas`. Ray replaces a
replica that dies (health checks, or the process gone); meanwhile a call to it is retried on
another replica or a new one for up to `RETRY_SECONDS`, then answered with a 503, never left hanging.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dalil.api.app import create_app
from dalil.api.served import WRITE_WAIT
from dalil.indexer.corpus import RawArticle
from dalil.indexer.encoders.engines import load_encoder, quick_engine, spec_from_description
from dalil.indexer.encoders.threads import limit_threads_in_environment
from dalil.indexer.store import index_metadata, resolve_generation, shard_of
from dalil.indexer.update import UpdateSummary, update_index
from dalil.search.protocols import shard_calls
from dalil.search.searcher import Searcher
from dalil.search.sharded_reader import ShardedIndex, ShardSearcher, ShardUnavailable
from ray import serve
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
    RequestCancelledError,
)

log = logging.getLogger("dalil.cluster")

APP = "dalil"
CALL_TIMEOUT = 30.0  # seconds one shard or encoder call may take before it counts as failed
RETRY_SECONDS = 20.0  # how long a failed call is retried while Ray replaces a replica
WRITE_TIMEOUT = WRITE_WAIT + 90.0  # a write may wait for the shard's writer lock, then embed
# CPU shares per replica: the shards and the ingress mostly wait on I/O and each other; the encoder
# computes. Fractions let a 2-core local cluster hold the whole application.
SHARD_CPUS, ENCODER_CPUS, INGRESS_CPUS = 0.25, 0.5, 0.25
LOST = (
    RayActorError,
    ActorUnavailableError,
    ReplicaUnavailableError,
    DeploymentUnavailableError,
    BackPressureError,
    RequestCancelledError,
    GetTimeoutError,
    TimeoutError,
)


@dataclass(frozen=True)
class ClusterSettings:
    shard_roots: tuple[str, ...]  # on storage that every node sees (the ingress reads shard 0's table)
    replicas: int = 1
    max_replicas: int | None = None  # autoscale between `replicas` and this
    cors_origins: tuple[str, ...] = ()
    write_token: str | None = None

    def scaling(self, cpus: float) -> dict:
        options: dict = {"ray_actor_options": {"num_cpus": cpus}, "health_check_period_s": 5}
        if self.max_replicas and self.max_replicas > self.replicas:
            options["autoscaling_config"] = {
                "min_replicas": self.replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": 4,
            }
        else:
            options["num_replicas"] = self.replicas
        return options


SHARD_CALLS = shard_calls()  # what the ingress may ask a shard replica: search/protocols.py ShardReads


class Shard:
    """A replica of one shard: searches it, and commits the writes routed to it."""

    def __init__(self, root: str, shard: int, shards: int) -> None:
        limit_threads_in_environment(1, force=True)
        self.root = Path(root)
        self.searcher = ShardSearcher(self.root, shard, shards)
        self._encoder = None  # loaded at the first write: most replicas only search

    def call(self, method: str, *args):
        if method not in SHARD_CALLS:
            raise ValueError(f"a shard does not answer {method!r}")
        return getattr(self.searcher, method)(*args)

    def write(self, upserts: list[RawArticle], deletes: list[str]) -> UpdateSummary:
        if upserts and self._encoder is None:
            self._encoder = load_encoder(spec_from_description(self.searcher.reader.manifest["encoder"]))
        return update_index(self.root, upserts, deletes, self._encoder if upserts else None, wait=WRITE_WAIT)

    def check_health(self) -> None:
        self.searcher.info()  # raises when the shard cannot be read: Ray replaces the replica


class QueryEncoder:
    def __init__(self, description: dict) -> None:
        limit_threads_in_environment(1, force=True)
        self.encoder = load_encoder(spec_from_description(description))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode_queries(texts)

    def encode_quick(self, texts: list[str]) -> np.ndarray:
        """Arabic questions: the int8 twin where there is one (search/searcher.py)."""
        return quick_engine(self.encoder).encode_queries(texts)


def _result(response, resend, what: str, timeout: float = CALL_TIMEOUT):
    """The answer to a deployment call. While Ray replaces a lost replica the call is sent again
    (`resend()`: every call here is a read, or an upsert/delete by id, so asking twice is safe) for
    up to RETRY_SECONDS; then the service answers 503 instead of waiting on."""
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            return response.result(timeout_s=timeout)
        except LOST as exc:
            if time.monotonic() >= deadline:
                raise ShardUnavailable(f"{what} is not answering: {exc}") from exc
        except RayTaskError as exc:  # the replica raised: a real error, not a lost replica
            raise exc.as_instanceof_cause() from None
        time.sleep(0.5)
        response = resend()


class RemoteEncoder:
    """The query encoder deployment, where `Searcher` expects an encoder."""

    def __init__(self, handle, description: dict, method: str = "encode_queries") -> None:
        self._handle = handle
        self._method = method
        self.model_id = description["id"]
        self.dimension = int(description["dimension"])
        # the deployment's quick engine (engines.quick_engine), called as an encoder of its own
        quick = method == "encode_queries"
        self.quick = RemoteEncoder(handle, description, "encode_quick") if quick else None

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        def send():
            return getattr(self._handle, self._method).remote(list(texts))

        return _result(send(), send, "the query encoder")


class ServedShards:
    """What the app serves (api/app.py `LocalIndex`'s face), over the shard deployments."""

    def __init__(self, handles: list, encoder_handle, vocabulary_dir: Path, manifest: dict) -> None:
        self.handles = handles
        self.shards = len(handles)
        index = ShardedIndex(self.shards, self._ask, vocabulary_dir, manifest)
        self.searcher = Searcher(index, RemoteEncoder(encoder_handle, index.manifest["encoder"]))

    def _ask(self, calls: list[tuple[int, str, tuple]]) -> list:
        """Send every call at once, then collect the answers (each retried if its replica is lost)."""

        def sender(shard: int, method: str, args: tuple):
            return lambda: self.handles[shard].call.remote(method, *args)

        sends = [sender(*call) for call in calls]
        sent = [send() for send in sends]
        return [
            _result(response, send, f"shard {call[0]}")
            for response, send, call in zip(sent, sends, calls, strict=True)
        ]

    def get(self) -> Searcher:
        return self.searcher

    @property
    def version(self) -> str:
        m = self.searcher.index.manifest
        return f"{self.shards} shards@{m.get('generation')}"

    def reload(self) -> str:
        """Every shard reads its newest commit by itself: this only refreshes the counts."""
        self.searcher.index.details()
        return self.version

    def describe(self) -> tuple[dict, int, int]:
        return self.searcher.index.describe()

    def write(self, upserts: Sequence[RawArticle], deletes: Sequence[str]) -> UpdateSummary:
        """Each article to its shard; the shards commit in parallel, one commit each."""
        work: dict[int, tuple[list, list]] = {}
        for article in upserts:
            work.setdefault(shard_of(article.article_id, self.shards), ([], []))[0].append(article)
        for article_id in deletes:
            work.setdefault(shard_of(article_id, self.shards), ([], []))[1].append(article_id)
        sends = {k: (lambda k=k, u=u, d=d: self.handles[k].write.remote(u, d)) for k, (u, d) in work.items()}
        sent = {k: send() for k, send in sends.items()}
        total = UpdateSummary()
        for k, response in sent.items():
            part = _result(response, sends[k], f"shard {k}", WRITE_TIMEOUT)
            for name in ("added", "updated", "unchanged", "deleted", "missing", "problems"):
                getattr(total, name).extend(getattr(part, name))
            total.passages_embedded += part.passages_embedded
            total.passages_reused += part.passages_reused
            total.seconds = max(total.seconds, part.seconds)
        total.version = self.reload() if total.changed else None
        return total


def _ingress_builder(settings: ClusterSettings):
    """Builds the FastAPI app inside each ingress replica, with handles to the other deployments."""

    def build():
        handles = [
            serve.get_deployment_handle(f"shard-{k}", app_name=APP) for k in range(len(settings.shard_roots))
        ]
        encoder = serve.get_deployment_handle("query-encoder", app_name=APP)
        vocabulary = _vocabulary_dir(settings.shard_roots[0])
        served = ServedShards(handles, encoder, vocabulary, index_metadata(settings.shard_roots[0]))
        return create_app(
            None,
            cors_origins=list(settings.cors_origins) or None,
            write_token=settings.write_token,
            served=served,
        )

    return build


def _vocabulary_dir(shard_root: str) -> Path:
    return resolve_generation(Path(shard_root))  # every shard holds the whole vocabulary table


def application(settings: ClusterSettings, encoder_description: dict):
    """The Serve application: N shard deployments, the query encoder, the ingress."""
    shards = len(settings.shard_roots)
    shard_apps = [
        serve.deployment(Shard, name=f"shard-{k}", **settings.scaling(SHARD_CPUS)).bind(root, k, shards)
        for k, root in enumerate(settings.shard_roots)
    ]
    encoder = serve.deployment(QueryEncoder, name="query-encoder", **settings.scaling(ENCODER_CPUS)).bind(
        encoder_description
    )
    ingress = serve.deployment(
        serve.ingress(_ingress_builder(settings))(_Ingress), name="ingress", **settings.scaling(INGRESS_CPUS)
    )
    return ingress.bind(*shard_apps, encoder)


class _Ingress:
    def __init__(self, *deployments) -> None:
        """The app reaches the other deployments through handles by name (the builder); binding
        them here makes Serve deploy them with this application."""


def run(settings: ClusterSettings, encoder_description: dict, host: str, port: int) -> None:
    """Deploy the application and serve until interrupted."""
    serve.start(http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"})
    serve.run(application(settings, encoder_description), name=APP, route_prefix="/", blocking=False)
    try:
        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()


__all__ = ["ClusterSettings", "ServedShards", "application", "run"]
