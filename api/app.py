"""The HTTP service: JSON API and search page over one open index (thin over search/).

Errors always have one shape: {"error": {"code", "message", "details"?}} with 4xx for bad input;
no input can cause a 500 (an unexpected failure is logged and answered as a 500 with that shape).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from pathlib import Path
from typing import Annotated

from dalil.api.errors import one_line
from dalil.api.feeds import atom_feed
from dalil.api.pages import add_pages
from dalil.api.requests import (
    ARTICLE_EXAMPLES,
    EXAMPLES,
    ArticleBatch,
    ArticlesIn,
    BatchRequest,
    FeedRequest,
    SearchRequest,
    field_problems,
    run_search,
)
from dalil.api.served import LocalIndex, ServedIndex
from dalil.api.wording import SourceNames
from dalil.indexer.encoders.threads import configure_threads
from dalil.search.related import MAX_RELATED
from dalil.search.searcher import MAX_SUGGESTIONS, QueryError, Searcher
from dalil.search.suggest import MAX_PREFIX_CHARS
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dalil.errors import KINDS, DalilError, kind_of

access_log = logging.getLogger("dalil.access")
log = logging.getLogger("dalil.api")


class AccessLog:
    """One log line per request, as plain ASGI middleware.

    FastAPI's `@app.middleware("http")` wraps every response in a streaming task; this only watches
    the messages go by (measured: /search and /health p50, before and after, in docs/benchmarks.md).
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            ms = (time.perf_counter() - started) * 1000
            access_log.info("method=%s path=%s status=%d ms=%.1f", scope["method"], scope["path"], status, ms)


# Starlette's own refusals (routing, methods) under the codes of dalil/errors.py's table.
HTTP_CODES = {KINDS[c].status: c for c in ("unauthorized", "forbidden", "not_found", "method_not_allowed")}


def _error(code: str, message: str, details: list | None = None, status: int | None = None) -> JSONResponse:
    """The API's one error shape; the HTTP status is the code's (dalil/errors.py) unless given."""
    body: dict = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse(status_code=status or kind_of(code).status, content={"error": body})


def _validation_details(exc: RequestValidationError) -> list[dict]:
    return field_problems(exc.errors(), getattr(exc, "body", None))


def _batch_item(searcher: Searcher, query: object) -> dict:
    """One query of a batch: its response, or its error in the API's error shape."""
    if not isinstance(query, dict):
        return {"error": {"code": "invalid_request", "message": "a query must be a JSON object"}}
    try:
        return run_search(searcher, SearchRequest.model_validate(query))
    except ValidationError as exc:
        details = field_problems(exc.errors(), query)
        message = one_line(details)
        return {"error": {"code": "invalid_request", "message": message, "details": details}}
    except QueryError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}


def _warm_suggestions(live) -> None:
    try:
        live.get().suggest("ا")
    except Exception as exc:  # a suggestion request will say what is wrong; serving goes on
        log.warning("the suggestion table could not be built ahead: %s", exc)


def create_app(
    index_dir: Path | str | None,
    searcher: Searcher | None = None,
    cors_origins: list[str] | None = None,
    write_token: str | None = None,
    served: ServedIndex | None = None,
    source_names: SourceNames | None = None,
):
    """An app over `index_dir` (or what `served` serves); the index and query encoder load once,
    here, never per request.

    The page shows sources by `source_names` (default: $DALIL_SOURCE_NAMES, else each id's last
    part). Read-only unless `write_token` is given: then POST/DELETE /articles and POST /admin/reload
    accept `Authorization: Bearer <write_token>`.
    """
    live = served or LocalIndex(index_dir, searcher)
    # The suggestion table (headlines) is built now, beside start-up, not at the first keystroke.
    threading.Thread(target=_warm_suggestions, args=(live,), name="dalil-suggest", daemon=True).start()
    # FastAPIOffline: /docs (Swagger UI) and /redoc served from files in the fastapi-offline package;
    # FastAPI's own pages load them from a CDN and are blank with no network.
    app = FastAPIOffline(
        title="dalil — دليل",
        summary="Semantic search over Arabic tech news: Arabic or English questions, ranked Arabic passages.",
        version="0.1.0",
        static_url="/docs-assets",
    )
    app.state.live = live
    if cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"]
        )

    app.add_middleware(WriteGuard, token=write_token)  # inside the access log: refusals are logged
    app.add_middleware(AccessLog)

    _add_error_handlers(app)
    # Order matters where paths overlap: /articles/{id}/related before /articles/{id}.
    _add_search_routes(app, live)
    _add_article_routes(app, live)
    _add_service_routes(app, live)
    _add_write_routes(app, live)
    add_pages(app, live, source_names or SourceNames.from_env())
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure as `{"error": {"code", "message"}}` with the status dalil/errors.py gives it."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        message = one_line(details)
        code = (
            "invalid_json"
            if all(e.get("type") == "json_invalid" for e in exc.errors())
            else "invalid_request"
        )
        return _error(code, message or "invalid request", details)

    @app.exception_handler(DalilError)  # the engine's errors: status and code from dalil/errors.py
    async def engine_error(_request: Request, exc: DalilError) -> JSONResponse:
        return _error(exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's own and Starlette's (404 routes, 405)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not JSON at all (invalid UTF-8, nesting too deep)
            return _error("invalid_json", f"the request body is not valid JSON: {exc.detail}")
        code = HTTP_CODES.get(exc.status_code, "http_error")
        response = _error(code, str(exc.detail), status=exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", exc)
        return _error("internal_error", "the server failed to answer; the error was logged")


def _add_search_routes(app: FastAPI, live: ServedIndex) -> None:
    """GET/POST /search, /search/batch, /search.atom and /suggest."""

    @app.get("/search", tags=["search"])
    def search_get(req: Annotated[SearchRequest, Query()]) -> JSONResponse:
        """Search with query parameters, e.g. `/search?q=الذكاء الاصطناعي&k=5`."""
        return JSONResponse(run_search(live.get(), req))  # plain JSON types: no re-encoding pass

    @app.post("/search", tags=["search"])
    def search_post(req: Annotated[SearchRequest, Body(openapi_examples=EXAMPLES)]) -> JSONResponse:
        """Search with a JSON body (same fields as the GET parameters)."""
        return JSONResponse(run_search(live.get(), req))

    @app.post("/search/batch", tags=["search"])
    def search_batch(batch: BatchRequest) -> dict:
        """Many searches in one call (at most 100); one response per query, in order. An invalid
        query gets `{"error": {...}}` in its place (as a 422 would say it); the others are answered."""
        started = time.perf_counter()
        searcher = live.get()  # one version for the whole batch
        responses = [_batch_item(searcher, query) for query in batch.queries]
        return {"took_ms": round((time.perf_counter() - started) * 1000, 2), "responses": responses}

    @app.get("/search.atom", tags=["search"], response_class=Response)
    def search_feed(request: Request, req: Annotated[FeedRequest, Query()]) -> Response:
        """An Atom feed of the newest articles matching a search (subscribe to it in a feed reader);
        same parameters as GET /search, answered grouped by article and newest first."""
        searcher = live.get()
        answer = run_search(searcher, req.search())
        params = {k: str(v) for k, v in req.model_dump(exclude_defaults=True).items()}
        updated = searcher.index.manifest.get("updated_at") or searcher.index.manifest.get("created_at")
        body = atom_feed(answer, str(request.base_url), params, updated or "1970-01-01T00:00:00Z")
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    @app.get("/suggest", tags=["search"])
    def suggest(
        q: Annotated[
            str, Query(min_length=1, max_length=MAX_PREFIX_CHARS, description="what has been typed")
        ],
        k: Annotated[int, Query(ge=1, le=MAX_SUGGESTIONS, description="suggestions wanted")] = 8,
    ) -> dict:
        """Completions of a typed prefix from the index's headlines, most frequent first."""
        started = time.perf_counter()
        found = live.get().suggest(q, k)
        took = round((time.perf_counter() - started) * 1000, 2)
        return {"query": q, "took_ms": took, "suggestions": found}


def _add_article_routes(app: FastAPI, live: ServedIndex) -> None:
    """Reading one article, and the articles related to it."""

    @app.get("/articles/{article_id:path}/related", tags=["articles"])
    def related(
        article_id: str,
        k: Annotated[int, Query(ge=1, le=MAX_RELATED, description="related articles wanted")] = 5,
    ) -> dict:
        """Articles close to this one (its re-reports by other outlets folded into `same_story`)."""
        started = time.perf_counter()
        found = live.get().related(article_id, k)
        if found is None:
            raise HTTPException(404, f"no article with id {article_id!r}")
        return {"took_ms": round((time.perf_counter() - started) * 1000, 2), **found.to_dict()}

    @app.get("/articles/{article_id:path}", tags=["articles"])
    def article(article_id: str) -> dict:
        """The cleaned article with its metadata and passages."""
        found = live.get().index.article(article_id)
        if found is None:
            raise HTTPException(404, f"no article with id {article_id!r}")
        return found


def _add_service_routes(app: FastAPI, live: ServedIndex) -> None:
    """Liveness, readiness and what is served."""

    @app.get("/health", tags=["service"])
    def health() -> dict:
        """Liveness: the process answers (`pid`: which server process, with `--workers N`)."""
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/ready", tags=["service"])
    def ready() -> JSONResponse:
        """Readiness: the index is open and a search answers."""
        try:
            live.get().search("اختبار", 1)
        except Exception as exc:  # readiness reports any failure instead of raising it
            return _error("not_ready", f"search is not answering: {exc}")
        return JSONResponse({"status": "ready", "index_version": live.version})

    @app.get("/stats", tags=["service"])
    def stats() -> dict:
        """What is served: counts, encoder, index format and version, build time, size on disk."""
        m, size, segments = live.describe()
        return {
            "articles": m["counts"]["articles"],
            "passages": m["counts"]["passages"],
            "encoder": m["encoder"],
            "format": m["format"],
            "format_version": m["format_version"],
            "index_version": live.version,
            "built_at": m.get("created_at"),
            "updated_at": m.get("updated_at"),
            "segments": segments,
            "size_bytes": size,
            "lexical": m.get("lexical"),
            "faiss": m.get("faiss"),
            "query_engines": live.get().query_engines(),
        }


def _add_write_routes(app: FastAPI, live: ServedIndex) -> None:
    """Adding, updating and deleting articles, and reloading (all need the write token: WriteGuard)."""

    @app.post("/articles", tags=["articles"], status_code=200)
    def upsert_articles(
        body: Annotated[ArticlesIn, Body(openapi_examples=ARTICLE_EXAMPLES)],
    ):
        """Add or update articles by id (one, or a batch of up to 1,000). Needs the write token."""
        articles = body.articles if isinstance(body, ArticleBatch) else [body]
        return live.write([a.raw() for a in articles], ()).to_dict()

    @app.delete("/articles/{article_id:path}", tags=["articles"])
    def delete_article(article_id: str) -> dict:
        """Delete an article by id (404 if it is not there). Needs the write token."""
        summary = live.write((), [article_id])
        if summary.missing:
            raise HTTPException(404, f"no article with id {article_id!r}")
        return summary.to_dict()

    @app.post("/admin/reload", tags=["service"])
    def reload() -> dict:
        """Serve the live version now (the server also notices new versions by itself)."""
        return {"index_version": live.reload()}


def _is_write(method: str, path: str) -> bool:
    """The routes that change the index (or the server): they all need the write token."""
    return (method == "POST" and path in ("/articles", "/admin/reload")) or (
        method == "DELETE" and path.startswith("/articles/")
    )


class WriteGuard:
    """Bearer-token check for write routes, as ASGI middleware: it answers before the body is read.

    A route's own parameters would be parsed and validated first (a 422 for a malformed body told
    an anonymous caller about the API's shapes, and an oversized body was read in full); here a
    request without the right token gets 401/403 whatever it carries. Compared in constant time.
    """

    def __init__(self, app, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and _is_write(scope["method"], scope["path"]):
            refusal = self.refusal(dict(scope["headers"]).get(b"authorization", b""))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, header: bytes) -> JSONResponse | None:
        if self.token is None:
            return _error(
                "forbidden", "this server is read-only (start it with a write token to allow writes)"
            )
        scheme, _, given = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            response = _error("unauthorized", "a write token is required: Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if not hmac.compare_digest(given.strip().encode(), self.token):
            return _error("forbidden", "the write token is wrong")
        return None


def read_write_token() -> str | None:
    """$DALIL_WRITE_TOKEN, else the file named by $DALIL_WRITE_TOKEN_FILE (never a command-line value)."""
    token = os.environ.get("DALIL_WRITE_TOKEN", "").strip()
    if not token and os.environ.get("DALIL_WRITE_TOKEN_FILE"):
        token = token_from_file(Path(os.environ["DALIL_WRITE_TOKEN_FILE"]))
    return token or None


def token_from_file(path: Path) -> str:
    """The write token in `path`; an empty file is refused (ValueError), since a server meant to take
    writes must not start read-only without saying so. OSError when it cannot be read."""
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(
            f"the write token file {path} is empty: put a token in it, or leave out --write-token-file "
            "to serve read-only"
        )
    return token


def create_app_from_env() -> FastAPI:
    """The factory `dalil serve` gives uvicorn, so each worker process opens the index itself."""
    configure_threads()  # inherited from `dalil serve`; the defaults when uvicorn is run directly
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
    )
    access_log.setLevel(logging.INFO)  # worker processes do not inherit the parent's logging set-up
    origins = [o.strip() for o in os.environ.get("DALIL_CORS_ORIGINS", "").split(",") if o.strip()]
    return create_app(os.environ["DALIL_INDEX"], cors_origins=origins, write_token=read_write_token())
