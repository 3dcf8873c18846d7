"""Answering questions from an index: encode the question, retrieve, rank, attach metadata."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from dalil.indexer.analysis.arabic import script_of
from dalil.indexer.analysis.terms import query_terms
from dalil.indexer.encoders.engines import Encoder, EncoderSpec, load_encoder, spec_from_description
from dalil.indexer.store.reader import IndexReader, Snapshot
from dalil.indexer.store.vocabulary import Vocabulary
from dalil.search.cache import EmbeddingCache
from dalil.search.crosslingual import CrossLingualTerms
from dalil.search.fusion import DEFAULT_WEIGHTS, FusionWeights, fuse
from dalil.search.grouping import ArticleResult, collapse_duplicates, group_by_article
from dalil.search.highlight import highlight
from dalil.search.lexical import distinctive, lexical_search

MAX_QUERY_CHARS = 1000
MAX_K = 1000
MODES = ("hybrid", "dense", "lexical")
# Lexical retrieval runs here while the question is embedded (measured in bench/scale.py pipeline).
_CHANNELS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dalil-lexical")
QUERY_CACHE_SIZE = 4096  # query embeddings kept (1.5 KiB each)
CANDIDATES = 100  # per channel, before fusion


@dataclass(frozen=True)
class Filters:
    """Restrictions on articles, applied inside retrieval (before the top-k is cut)."""

    source: str | None = None
    category: str | None = None
    date_from: str | None = None  # YYYY-MM-DD, inclusive
    date_to: str | None = None
    lang: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The filters as data, for the store to turn into its own query."""
        return asdict(self)


NO_FILTERS = Filters()


class QueryError(ValueError):
    """The question or its options are unusable (empty, too long, k out of range)."""


class EncoderMismatchError(Exception):
    """The index was built with another encoder than the one offered for queries."""


@dataclass
class Hit:
    """One ranked passage: where it is (article, passage, offsets), what it says, why it matched."""

    rank: int
    score: float
    article_id: str
    title: str
    source: str | None
    date: str | None
    url: str | None
    passage_id: int
    text: str
    start: int  # the passage's offsets in the cleaned article text
    end: int
    snippet: str = ""  # HTML-escaped, question words in <mark>
    highlights: list[tuple[int, int]] = field(default_factory=list)  # matches, offsets into `text`
    ordinal: int = 0  # the passage's place in its article (0 = first); passage_id counts index-wide

    def to_dict(self) -> dict:
        out = asdict(self)
        out["highlights"] = [list(h) for h in self.highlights]
        return out


@dataclass
class ResultPage:
    hits: list[Hit]
    total: int  # candidates that matched (both channels, after filters), capped by retrieval depth
    exhaustive: bool  # True when `total` is exact (fewer candidates than the depth retrieved)


def validate_mode(mode: object) -> str:
    if mode not in MODES:
        raise QueryError(f"mode must be one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def _visible(text: str) -> str:
    """Drop control and format characters (NUL, bidi marks, zero-width): they carry no meaning."""
    return "".join(
        " " if c in "\t\n\r" else c
        for c in text
        if unicodedata.category(c) not in ("Cc", "Cf") or c in "\t\n\r"
    )


def validate_query(query: object, k: object) -> tuple[str, int]:
    if not isinstance(query, str):
        raise QueryError("the question must be a string")
    if "\ufffd" in query:
        raise QueryError("the question is not valid UTF-8")
    text = " ".join(_visible(query).split())
    if not text:
        raise QueryError("the question is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the question is too long ({len(text)} characters; the limit is {MAX_QUERY_CHARS})")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise QueryError(f"k must be a whole number from 1 to {MAX_K}")
    return text, k


class Searcher:
    """An open index and a warm query encoder; cheap to call many times."""

    def __init__(self, index: IndexReader, encoder: Encoder) -> None:
        if encoder.model_id != index.encoder_id:
            raise EncoderMismatchError(
                f"the index at {index.path} was built with encoder {index.encoder_id!r}, "
                f"but queries would be encoded with {encoder.model_id!r}; "
                "search it with the same model or rebuild it with this one"
            )
        self.index = index
        self.encoder = encoder
        self.query_vectors = EmbeddingCache(encoder.encode_queries, QUERY_CACHE_SIZE)
        self.overlap_channels = True
        vocabulary = Vocabulary.open(index.path, index.manifest.get("vocabulary"))
        self.translations = CrossLingualTerms(vocabulary, encoder)

    @classmethod
    def open(cls, index_dir: Path | str, model: str | EncoderSpec | Encoder | None = None) -> Searcher:
        """Open an index with a loaded encoder, a model to load, or (None) the one it was built with."""
        index = IndexReader.open(Path(index_dir))
        try:
            if model is None:
                model = spec_from_description(index.manifest["encoder"])
            encoder = model if hasattr(model, "encode_queries") else load_encoder(model)  # type: ignore[arg-type]
            return cls(index, encoder)
        except BaseException:
            index.close()
            raise

    def search(
        self, query: str, k: int = 10, mode: str = "hybrid", filters: Filters = NO_FILTERS, offset: int = 0
    ) -> list[Hit]:
        return self.search_many([query], k, mode, filters, offset)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = "hybrid",
        filters: Filters = NO_FILTERS,
        offset: int = 0,
    ) -> list[list[Hit]]:
        """Ranked passages for each question; `offset` skips that many for paging."""
        return [page.hits for page in self.search_pages(queries, k, mode, filters, offset)]

    def search_pages(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = "hybrid",
        filters: Filters = NO_FILTERS,
        offset: int = 0,
        snap: Snapshot | None = None,
    ) -> list[ResultPage]:
        """Result pages from one commit of the index (taken here unless `snap` is given)."""
        mode = validate_mode(mode)
        cleaned = [validate_query(q, k)[0] for q in queries]  # k is checked here, before offset uses it
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_K - k:
            raise QueryError(f"offset must be a whole number from 0 to {MAX_K - k} (1000 - k)")
        if not cleaned:
            return []
        if snap is None:
            with self.index.snapshot() as own:
                return self.search_pages(cleaned, k, mode, filters, offset, own)
        rankings = self.rank(cleaned, mode, offset + k, filters, cut=False, snap=snap)
        pages = [ranking[offset : offset + k] for ranking in rankings]
        rows = snap.passages({pid for page in pages for pid, _ in page})
        live = snap.live_passages
        # Each channel retrieves `depth` candidates: when fewer came back, or the whole index fits in
        # that depth, every match was seen and `total` is exact.
        depth = min(max(offset + k, CANDIDATES), live)
        return [
            ResultPage(
                self._hits(page, rows, q, offset),
                total=len(ranking),
                exhaustive=len(ranking) < depth or depth == live,
            )
            for page, ranking, q in zip(pages, rankings, cleaned, strict=True)
        ]

    def search_articles(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        collapse: bool = True,
        filters: Filters = NO_FILTERS,
    ) -> list[ArticleResult]:
        """Up to k articles, each with its best passage first; near-duplicate stories folded together."""
        validate_query(query, k)
        depth = min(MAX_K, max(CANDIDATES, 5 * k))  # enough passages to fill k distinct articles
        with self.index.snapshot() as snap:  # passages and their comparison from one commit
            (page,) = self.search_pages([query], depth, mode, filters, 0, snap)
            groups = group_by_article(page.hits)
            if collapse:
                groups = collapse_duplicates(groups[: 2 * k], snap)
        return groups[:k]

    def rank(
        self,
        queries: Sequence[str],
        mode: str,
        k: int,
        filters: Filters = NO_FILTERS,
        weights: FusionWeights = DEFAULT_WEIGHTS,
        cut: bool = True,
        snap: Snapshot | None = None,
    ) -> list[list[tuple[int, float]]]:
        """Top-k (passage id, score) rankings, best first, for validated questions (all candidates
        when `cut` is False), from one snapshot of the index (taken here when none is given)."""
        if snap is None:
            with self.index.snapshot() as own:
                return self.rank(queries, mode, k, filters, weights, cut, own)
        depth = max(k, CANDIDATES)  # each channel's candidates; fusion normalises over these
        where = filters.as_dict()
        lexical_done: list[list[tuple[int, float]]] = []
        pending: Future | None = None
        if mode != "dense":
            job = self._lexical_ranking if mode == "hybrid" else self._plain_lexical_ranking

            def all_lexical() -> list[list[tuple[int, float]]]:  # one thread: one snapshot connection
                return [job(snap, query, depth, where) for query in queries]

            # SQLite and the encoder both release the GIL: in hybrid mode run lexical beside embedding
            if self.overlap_channels and mode == "hybrid":
                pending = _CHANNELS.submit(all_lexical)
            else:
                lexical_done = all_lexical()
        dense = self.dense_rankings(queries, depth, where, snap) if mode != "lexical" else None
        if pending is not None:
            lexical_done = pending.result()
        out = []
        for i, query in enumerate(queries):
            if mode == "dense":
                out.append(dense[i])
            elif mode == "lexical":
                out.append(lexical_done[i])
            else:
                out.append(fuse(dense[i], lexical_done[i], script_of(query), weights))
        return [ranking[:k] for ranking in out] if cut else out

    @staticmethod
    def _plain_lexical_ranking(
        snap: Snapshot, query: str, depth: int, where: dict
    ) -> list[tuple[int, float]]:
        return lexical_search(snap, query_terms(query), depth, filters=where)

    @staticmethod
    def _lexical_ranking(snap: Snapshot, query: str, depth: int, where: dict) -> list[tuple[int, float]]:
        """The lexical channel of hybrid search: for non-Arabic questions only their distinctive
        Latin names and numbers may vote."""
        script = script_of(query)
        terms = query_terms(query, latin_only=script != "ar")
        if script != "ar":
            terms = distinctive(snap, terms)
        return lexical_search(snap, terms, depth, filters=where)

    def dense_rankings(
        self,
        queries: Sequence[str],
        depth: int,
        filters: Mapping[str, str | None] | None = None,
        snap: Snapshot | None = None,
    ) -> list[list[tuple[int, float]]]:
        if snap is None:
            with self.index.snapshot() as own:
                return self.dense_rankings(queries, depth, filters, own)
        vectors = np.ascontiguousarray(self.query_vectors.get_many(list(queries)), dtype=np.float32)
        scores, ids = snap.dense_search(vectors, depth, filters or {})
        return [
            [(int(pid), float(score)) for score, pid in zip(row_s, row_i, strict=True) if pid >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def _hits(self, ranking: list[tuple[int, float]], rows: dict, query: str, offset: int = 0) -> list[Hit]:
        translations = (
            self.translations.arabic_terms(query) if ranking and script_of(query) != "ar" else frozenset()
        )
        hits: list[Hit] = []
        for pid, score in ranking:
            row = rows.get(int(pid))
            if row is None:
                continue
            marked = highlight(row.text, query, translations=translations)
            hits.append(
                Hit(
                    rank=offset + len(hits) + 1,
                    score=round(float(score), 6),
                    article_id=row.article_id,
                    title=row.title,
                    source=row.source,
                    date=row.date,
                    url=row.url,
                    passage_id=row.passage_id,
                    text=row.text,
                    start=row.start,
                    end=row.end,
                    snippet=marked.snippet,
                    highlights=marked.offsets,
                    ordinal=row.ordinal,
                )
            )
        return hits

    def close(self) -> None:
        self.index.close()
