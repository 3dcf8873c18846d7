"""The HTTP service: a JSON search API over one open index."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from search.engine import MAX_QUERY_CHARS, QueryError, Searcher

MAX_HTTP_K = 100


def create_app(index_dir: Path | str, searcher: Searcher | None = None) -> FastAPI:
    """An app over `index_dir`; the index and query encoder are loaded once, here, not per request."""
    searcher = searcher or Searcher.open(index_dir)
    app = FastAPI(title="dalil", summary="Semantic search over Arabic tech news")
    app.state.searcher = searcher

    @app.get("/search")
    def search(
        q: str = Query(..., max_length=MAX_QUERY_CHARS * 4, description="the question, Arabic or English"),
        k: int = Query(10, ge=1, le=MAX_HTTP_K, description="how many passages"),
        mode: Literal["hybrid", "dense", "lexical"] = Query("hybrid", description="retrieval mode"),
        group: bool = Query(False, description="one result per article, best passage first"),
        collapse: bool = Query(True, description="with group: fold near-duplicate stories together"),
    ) -> JSONResponse:
        started = time.perf_counter()
        try:
            if group:
                hits = searcher.search_articles(q, k, mode, collapse=collapse)
            else:
                hits = searcher.search(q, k, mode)
        except QueryError as exc:
            return JSONResponse(status_code=422, content={"error": "invalid_query", "detail": str(exc)})
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        return JSONResponse(
            {"query": q, "k": k, "mode": mode, "took_ms": took_ms, "results": [h.to_dict() for h in hits]}
        )

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app
