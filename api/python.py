"""dalil's Python API over an index on disk: `build_index`, `open_index` and `Index`.

The CLI's index, search, add and delete commands go through these too, so a program gets exactly
what `dalil index` / `dalil search` give. Exported from `dalil` (dalil/__init__.py); everything
else in the package is private.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dalil.api.errors import InvalidRequest, one_line, translated
from dalil.indexer.analysis.splitting import SplitSettings
from dalil.indexer.encoders.threads import configure_threads
from dalil.indexer.store import VectorIndexSettings
from dalil.search.options import DEFAULT_OPTIONS

# Defaults are the settings' own, as `dalil index` and `dalil search` show them (one definition).
SPLIT, VECTORS = SplitSettings(), VectorIndexSettings()

if TYPE_CHECKING:
    from dalil.indexer.corpus import Problem, RawArticle
    from dalil.indexer.encoders.engines import Encoder
    from dalil.search.live import LiveSearcher
    from dalil.search.searcher import Searcher

ArticleLike = Mapping[str, Any]


class Results(list):
    """The hits of one search (a list of `Hit`, best first) and how sure the engine is that the
    index answers the question at all: `confidence` (0-1; None in lexical mode) and
    `no_close_match` (the nearest passages are given, but they may not answer it)."""

    def __init__(self, hits: Iterable = (), confidence: float | None = None, no_close_match: bool = False):
        super().__init__(hits)
        self.confidence = confidence
        self.no_close_match = no_close_match

    def __repr__(self) -> str:
        judged = f"confidence={self.confidence!r}, no_close_match={self.no_close_match}"
        return f"Results({list.__repr__(self)}, {judged})"


@dataclass(frozen=True)
class BuildResult:
    """What `build_index` did: counts, time, the index's path and version, records it skipped."""

    path: Path
    version: str
    articles: int
    passages: int
    seconds: float
    skipped: list[str] = field(default_factory=list)  # "file:line: reason" for each bad record
    empty_after_cleaning: int = 0

    @property
    def passages_per_second(self) -> float:
        return self.passages / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def from_summary(cls, summary: Any) -> BuildResult:
        """From the build pipeline's own summary (local or on a Ray cluster)."""
        return cls(
            path=summary.index_dir,
            version=summary.version,
            articles=summary.articles,
            passages=summary.passages,
            seconds=summary.seconds,
            skipped=[str(p) for p in summary.problems],
            empty_after_cleaning=summary.empty_after_cleaning,
        )


@dataclass(frozen=True)
class WriteResult:
    """One commit of adds and deletes: which ids it changed, and the index version now live."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ids asked to delete that were not there
    skipped: list[str] = field(default_factory=list)  # bad records of a corpus path
    version: str | None = None  # None when nothing changed
    passages_embedded: int = 0
    passages_reused: int = 0  # unchanged passages of updated articles keep their vectors
    seconds: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WriteResult:
        """From the engine's summary or the HTTP API's answer (the same fields)."""
        lists = ("added", "updated", "unchanged", "deleted", "missing")
        return cls(
            **{k: list(data.get(k) or []) for k in lists},
            skipped=[str(p) for p in data.get("problems") or []],
            version=data.get("version"),
            passages_embedded=int(data.get("passages_embedded") or 0),
            passages_reused=int(data.get("passages_reused") or 0),
            seconds=float(data.get("seconds") or 0.0),
        )


def build_index(
    corpus: str | Path | Iterable[ArticleLike],
    out: str | Path,
    *,
    model: str = "auto",
    workers: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    max_tokens: int = SPLIT.max_tokens,
    vector_index: str = VECTORS.kind,
    exact_below: int = VECTORS.exact_below,
    target_recall: float = VECTORS.target_recall,
    nlist: int | None = None,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    progress: bool = False,
    wait: float = 0.0,
) -> BuildResult:
    """Index a corpus into `out` (a new version; searches of an older one keep running).

    `corpus` is a directory of .txt files, a .jsonl / .jsonl.gz file, or articles as dicts with the
    JSONL fields (`id`, `text`, and optionally `title, source, category, date, url, lang`). The
    options are `dalil index`'s: `model="auto"` picks the fastest engine for multilingual-e5-small
    here; `vector_index` is auto, flat, ivf-flat, ivf-sq8 or ivf-pq; `progress` draws a bar on stderr.
    Compute runs on one thread per process unless DALIL_THREADS or OMP_NUM_THREADS says otherwise.
    """
    configure_threads()  # before FAISS or a model loads (importing dalil sets nothing)
    from dalil.indexer.build import build_from_articles, count_articles, plan_engine
    from dalil.indexer.build import build_index as build_corpus
    from dalil.indexer.encoders.engines import EncoderSpec, load_encoder, prepare_query_engine

    with translated():
        try:
            vectors = VectorIndexSettings(
                kind=vector_index, exact_below=exact_below, target_recall=target_recall, nlist=nlist
            )
        except ValueError as exc:
            raise InvalidRequest("invalid_option", str(exc)) from exc
        from_path = isinstance(corpus, (str, Path))
        articles = None if from_path else [_raw_article(a, i) for i, a in enumerate(corpus)]
        count = (
            (count_articles(Path(corpus)) if Path(corpus).exists() else None) if from_path else len(articles)
        )
        plan = plan_engine(model, count, workers)
        logging.getLogger("dalil.indexer").info("embedding with %s", plan.describe())
        spec = EncoderSpec(
            model=plan.model,
            device=device or plan.device,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
            batch_size=batch_size or plan.batch_size,
        )
        encoder = load_encoder(spec)
        options = dict(
            batch_size=spec.batch_size,
            progress=progress,
            wait=wait,
            spec=spec,
            workers=plan.workers,
            vector_settings=vectors,
        )
        settings = SplitSettings(max_tokens=max_tokens)
        if from_path:
            summary = build_corpus(Path(corpus), Path(out), encoder, settings, **options)
        else:
            summary = build_from_articles(articles, Path(out), encoder, settings, total=count, **options)
        prepare_query_engine(encoder.describe())  # once per installed model: not at the first serve
    return BuildResult.from_summary(summary)


def open_index(path: str | Path, model: str | Encoder | None = None) -> Index:
    """Open the index at `path` for searching and writing. `model`: a model name or a loaded encoder
    to use instead of the one the index was built with (refused unless it makes the same vectors).
    Compute runs on one thread per process unless DALIL_THREADS or OMP_NUM_THREADS says otherwise."""
    return Index(path, model)


class Index:
    """An open index: search it, add and delete articles. Use it as a context manager, or `close()`.

    Searches always read the newest commit, including writes from other processes and rebuilds.
    Safe to search from several threads.
    """

    def __init__(self, path: str | Path, model: str | Encoder | None = None) -> None:
        configure_threads()  # before FAISS or a model loads (importing dalil sets nothing)
        from dalil.indexer.store import resolve_generation

        self.path = Path(path)
        self._model = model
        self._live: LiveSearcher | None = None
        self._encoder: Encoder | None = None
        self._closed = False
        self._opening = threading.Lock()
        with translated():
            resolve_generation(self.path)  # a missing or unreadable index fails here, not at first use

    def _searcher(self) -> Searcher:
        """The searcher of the newest version, opened at first use (a delete needs no encoder)."""
        if self._closed:
            raise InvalidRequest("closed", f"the index at {self.path} was closed")
        with self._opening:
            if self._live is None:
                from dalil.search.live import LiveSearcher
                from dalil.search.searcher import Searcher

                with translated():
                    self._live = LiveSearcher(self.path, Searcher.open(self.path, self._model))
        return self._live.get()

    @property
    def version(self) -> str | None:
        """The generation and newest commit being read, e.g. `i20261123-…@4`."""
        self._searcher()
        return self._live.version  # type: ignore[union-attr]

    def __len__(self) -> int:
        """Live passages in the newest commit."""
        with self._searcher().index.snapshot() as snap:
            return snap.live_passages

    def search(
        self,
        question: str,
        k: int = DEFAULT_OPTIONS.k,
        mode: str = DEFAULT_OPTIONS.mode,
        *,
        offset: int = 0,
        source: str | None = None,
        category: str | None = None,
        lang: str | None = None,
        date_from: str | dt.date | None = None,
        date_to: str | dt.date | None = None,
        sort: str = DEFAULT_OPTIONS.sort,
        recency: float | None = None,
    ) -> Results:
        """The `k` best passages for an Arabic or English question (`mode`: hybrid, dense, lexical),
        after skipping `offset`; filters keep only matching articles (dates inclusive, YYYY-MM-DD).
        The question may hold "exact phrases" and -excluded words. `sort="newest"`: the matching
        passages by date; `recency`: a half-life in days that favours recent stories. The list
        also carries `confidence` and `no_close_match` (see `Results`)."""
        from dalil.search.searcher import Filters, SearchOptions

        filters = Filters(
            source=source,
            category=category,
            lang=lang,
            date_from=_iso_date(date_from, "date_from"),
            date_to=_iso_date(date_to, "date_to"),
        )
        with translated():
            options = SearchOptions(k, mode, filters, offset, sort=sort, recency=recency)
            answer = self._searcher().answer(question, options)
        from dalil.search.confidence import confidence_fields

        return Results(answer.results, **confidence_fields(answer.confidence))

    def add(self, articles: str | Path | Iterable[ArticleLike], *, wait: float = 30.0) -> WriteResult:
        """Add or update articles by id, as one commit: dicts with the JSONL fields, or a corpus path.

        An article whose text and metadata did not change is left as it is (`unchanged`). `wait`:
        seconds to wait for another writer (a server, `dalil ingest`) before `dalil.Conflict`."""
        from dalil.api.requests import repeated_id
        from dalil.indexer.corpus import CorpusReport, read_corpus

        report = CorpusReport()
        if isinstance(articles, (str, Path)):
            raw: Iterable[RawArticle] = read_corpus(Path(articles), report)
        else:
            raw = [_raw_article(a, i) for i, a in enumerate(articles)]
            repeated = repeated_id(a.article_id for a in raw)
            if repeated is not None:
                raise InvalidRequest("invalid_request", f"article id {repeated!r} appears more than once")
        return self._write(raw, (), report.problems, wait)

    def delete(self, ids: str | Iterable[str], *, wait: float = 30.0) -> WriteResult:
        """Delete articles by id, as one commit; ids not in the index are listed in `missing`."""
        ids = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        return self._write((), ids, [], wait)

    def _write(
        self, upserts: Iterable[RawArticle], deletes: list[str], problems: list[Problem], wait: float
    ) -> WriteResult:
        from dalil.indexer.update import update_index

        if self._closed:
            raise InvalidRequest("closed", f"the index at {self.path} was closed")
        with translated():
            encoder = self._write_encoder() if upserts else None
            summary = update_index(self.path, upserts, deletes, encoder, wait=wait)
        summary.problems[:0] = problems
        if self._live is not None:
            self._live.reload()
        return WriteResult.from_dict(summary.to_dict())

    def _write_encoder(self) -> Encoder:
        """The searcher's encoder when one is open; else only an engine of the index's model that
        starts quickly (`dalil add` needs no vector index, word table or query engine)."""
        if self._live is not None:
            return self._live.get().encoder
        if self._encoder is None:
            from dalil.indexer.encoders.engines import load_encoder, quick_start_spec
            from dalil.indexer.store import index_metadata

            model = self._model or quick_start_spec(index_metadata(self.path)["encoder"])
            self._encoder = model if hasattr(model, "encode_queries") else load_encoder(model)
        return self._encoder

    def close(self) -> None:
        with self._opening:
            if self._live is not None:
                self._live.get().close()
            self._live, self._closed = None, True

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._live.version if self._live else "not yet read"
        return f"<dalil.Index {str(self.path)!r} {state}>"


def _iso_date(value: str | dt.date | None, name: str) -> str | None:
    if value is None or isinstance(value, dt.date):
        return value.isoformat() if value else None
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise InvalidRequest("invalid_request", f"{name} must be a date YYYY-MM-DD, not {value!r}") from None


def _raw_article(article: ArticleLike, position: int) -> RawArticle:
    """One article given as a dict, checked as the HTTP API checks it (the same fields and limits)."""
    from dalil.api.requests import ArticleIn, field_problems
    from pydantic import ValidationError

    if not isinstance(article, Mapping):
        raise InvalidRequest(
            "invalid_request", f"article {position}: a dict was expected, not {type(article).__name__}"
        )
    try:
        return ArticleIn.model_validate(dict(article)).raw()
    except ValidationError as exc:
        details = field_problems(exc.errors(), article)
        message = one_line(details)
        raise InvalidRequest("invalid_request", f"article {position}: {message}", details=details) from None
