"""Answering questions from an index: encode the question, retrieve, rank, attach metadata."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from indexer.analysis.arabic import script_of
from indexer.analysis.terms import query_terms
from indexer.encoders.engines import Encoder, EncoderSpec, load_encoder, spec_from_description
from indexer.store.vectors import search_parameters
from indexer.store.versions import IndexVersion
from indexer.store.vocabulary import Vocabulary
from search.cache import EmbeddingCache
from search.crosslingual import CrossLingualTerms
from search.fusion import DEFAULT_WEIGHTS, FusionWeights, fuse
from search.grouping import ArticleResult, collapse_duplicates, group_by_article
from search.highlight import highlight
from search.lexical import distinctive, lexical_search

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

    def sql(self) -> tuple[str, list[str]]:
        """A WHERE clause over the articles table `a`, and its parameters."""
        clauses, params = [], []
        for column in ("source", "category", "lang"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"a.{column} = ?")
                params.append(value)
        if self.date_from:
            clauses.append("a.date >= ?")
            params.append(self.date_from)
        if self.date_to:
            clauses.append("a.date <= ?")
            params.append(self.date_to)
        return " AND ".join(clauses), params


NO_FILTERS = Filters()


class QueryError(ValueError):
    """The question or its options are unusable (empty, too long, k out of range)."""


class EncoderMismatchError(Exception):
    """The index was built with another encoder than the one offered for queries."""


@dataclass
class SearchHit:
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

    def to_dict(self) -> dict:
        out = asdict(self)
        out["highlights"] = [list(h) for h in self.highlights]
        return out


@dataclass
class ResultPage:
    hits: list[SearchHit]
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

    def __init__(self, index: IndexVersion, encoder: Encoder) -> None:
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
        self.translations = CrossLingualTerms(Vocabulary.open(index.path), encoder)

    @classmethod
    def open(cls, index_dir: Path | str, model: str | EncoderSpec | Encoder | None = None) -> Searcher:
        """Open an index with a loaded encoder, a model to load, or (None) the one it was built with."""
        index = IndexVersion.open(Path(index_dir))
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
    ) -> list[SearchHit]:
        return self.search_many([query], k, mode, filters, offset)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = "hybrid",
        filters: Filters = NO_FILTERS,
        offset: int = 0,
    ) -> list[list[SearchHit]]:
        """Ranked passages for each question; `offset` skips that many for paging."""
        return [page.hits for page in self.search_pages(queries, k, mode, filters, offset)]

    def search_pages(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = "hybrid",
        filters: Filters = NO_FILTERS,
        offset: int = 0,
    ) -> list[ResultPage]:
        mode = validate_mode(mode)
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_K - k:
            raise QueryError(f"offset must be a whole number from 0 to {MAX_K} - k")
        cleaned = [validate_query(q, k)[0] for q in queries]
        if not cleaned:
            return []
        rankings = self.rank(cleaned, mode, offset + k, filters, cut=False)
        pages = [ranking[offset : offset + k] for ranking in rankings]
        rows = self.index.passages({pid for page in pages for pid, _ in page})
        # Each channel retrieves `depth` candidates: when fewer came back, or the whole index fits in
        # that depth, every match was seen and `total` is exact.
        depth = min(max(offset + k, CANDIDATES), self.index.vectors.ntotal)
        return [
            ResultPage(
                self._hits(page, rows, q, offset),
                total=len(ranking),
                exhaustive=len(ranking) < depth or depth == self.index.vectors.ntotal,
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
        groups = group_by_article(self.search(query, depth, mode, filters))
        if collapse:
            groups = collapse_duplicates(groups[: 2 * k], self.index)
        return groups[:k]

    def rank(
        self,
        queries: Sequence[str],
        mode: str,
        k: int,
        filters: Filters = NO_FILTERS,
        weights: FusionWeights = DEFAULT_WEIGHTS,
        cut: bool = True,
    ) -> list[list[tuple[int, float]]]:
        """Top-k (passage id, score) rankings, best first, for validated questions (all candidates
        when `cut` is False)."""
        depth = max(k, CANDIDATES)  # each channel's candidates; fusion normalises over these
        where = filters.sql()
        allowed = self.index.passage_ids_where(*where) if where[0] else None
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in queries]
        lexical: list[Future | list[tuple[int, float]]] = []
        if mode != "dense":
            job = self._lexical_ranking if mode == "hybrid" else self._plain_lexical_ranking
            # SQLite and the encoder both release the GIL: in hybrid mode run lexical beside embedding
            overlap = self.overlap_channels and mode == "hybrid"
            for query in queries:
                lexical.append(
                    _CHANNELS.submit(job, query, depth, where) if overlap else job(query, depth, where)
                )
        dense = self.dense_rankings(queries, depth, allowed) if mode != "lexical" else None
        lexical_done = [r.result() if isinstance(r, Future) else r for r in lexical]
        out = []
        for i, query in enumerate(queries):
            if mode == "dense":
                out.append(dense[i])
            elif mode == "lexical":
                out.append(lexical_done[i])
            else:
                out.append(fuse(dense[i], lexical_done[i], script_of(query), weights))
        return [ranking[:k] for ranking in out] if cut else out

    def _plain_lexical_ranking(self, query: str, depth: int, where: tuple) -> list[tuple[int, float]]:
        return lexical_search(self.index.db, query_terms(query), depth, where=where)

    def _lexical_ranking(self, query: str, depth: int, where: tuple) -> list[tuple[int, float]]:
        """The lexical channel of hybrid search: for non-Arabic questions only their distinctive
        Latin names and numbers may vote."""
        script = script_of(query)
        terms = query_terms(query, latin_only=script != "ar")
        if script != "ar":
            terms = distinctive(self.index.db, terms, self.index.vectors.ntotal)
        return lexical_search(self.index.db, terms, depth, where=where)

    def dense_rankings(
        self, queries: Sequence[str], depth: int, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        vectors = np.ascontiguousarray(self.query_vectors.get_many(list(queries)), dtype=np.float32)
        # Filters apply inside FAISS, so a selective filter still yields `depth` candidates.
        params = search_parameters(self.index.vectors, allowed)
        scores, ids = self.index.vectors.search(vectors, depth, params=params)
        return [
            [(int(pid), float(score)) for score, pid in zip(row_s, row_i, strict=True) if pid >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def _hits(
        self, ranking: list[tuple[int, float]], rows: dict, query: str, offset: int = 0
    ) -> list[SearchHit]:
        translations = (
            self.translations.arabic_terms(query) if ranking and script_of(query) != "ar" else frozenset()
        )
        hits: list[SearchHit] = []
        for pid, score in ranking:
            row = rows.get(int(pid))
            if row is None:
                continue
            marked = highlight(row.text, query, translations=translations)
            hits.append(
                SearchHit(
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
                )
            )
        return hits

    def close(self) -> None:
        self.index.close()
