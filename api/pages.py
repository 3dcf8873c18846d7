"""The search page (`/`) and article page (`/a/{id}`): server-rendered, no front-end build.

Direction is set per piece of text: Arabic results and articles are `dir="rtl" lang="ar"`, the page
follows the script of the question (an English question keeps a left-to-right page), inputs use
`dir="auto"`, and titles and sources sit in <bdi> so mixed text is not garbled.
"""

from __future__ import annotations

import logging
import urllib.parse
from pathlib import Path

from dalil.api.requests import MAX_OFFSET, SearchRequest, run_search
from dalil.indexer.analysis.arabic import script_of
from dalil.search.engine import QueryError
from dalil.search.live import LiveSearcher
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
log = logging.getLogger("dalil.pages")
PAGE_SIZE = 10


def _direction(text: str) -> tuple[str, str]:
    return ("ltr", "en") if script_of(text) == "latin" else ("rtl", "ar")


def add_pages(app: FastAPI, live: LiveSearcher) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request) -> HTMLResponse:
        params = {k: v for k, v in request.query_params.items() if v != ""}
        q = params.get("q", "")
        page_dir, page_lang = _direction(q) if q.strip() else ("rtl", "ar")
        searcher = live.get()  # one index version for the whole page
        context = {
            "q": q,
            "params": params,
            "sources": searcher.index.facet_values("source"),
            "dir": page_dir,
            "lang": page_lang,
            "result": None,
            "error": None,
            "prev_url": None,
            "next_url": None,
        }
        status = 200
        if q.strip():
            try:
                req = SearchRequest(**{**params, "k": PAGE_SIZE, "group": True})
                context["result"] = run_search(searcher, req)
                context.update(_paging(params, req.offset, context["result"]))
            except ValidationError as exc:
                status = 422
                context["error"] = "; ".join(e["msg"] for e in exc.errors())
            except QueryError as exc:  # e.g. a question of invisible characters only
                status = 422
                context["error"] = str(exc)
            except Exception:  # a page must show an error state, never a stack trace
                log.exception("search page failed for %r", q)
                status = 500
                context["error"] = "server_error"
        return templates.TemplateResponse(request, "search.html", context, status_code=status)

    @app.get("/a/{article_id:path}", response_class=HTMLResponse, include_in_schema=False)
    def article_page(request: Request, article_id: str, p: int | None = None, q: str = "") -> HTMLResponse:
        article = live.get().index.article(article_id)
        if article is None:
            context = {"q": q, "dir": "rtl", "lang": "ar", "article_id": article_id}
            return templates.TemplateResponse(request, "missing.html", context, status_code=404)
        context = {"article": article, "marked": p, "q": q, "dir": "rtl", "lang": article.get("lang") or "ar"}
        return templates.TemplateResponse(request, "article.html", context)


def _paging(params: dict, offset: int, result: dict) -> dict:
    def url(new_offset: int) -> str:
        return "/?" + urllib.parse.urlencode({**params, "offset": new_offset})

    more = len(result["results"]) == PAGE_SIZE and offset + PAGE_SIZE <= MAX_OFFSET
    return {
        "prev_url": url(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
        "next_url": url(offset + PAGE_SIZE) if more else None,
    }
