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
from dalil.api.wording import ARTICLES, MATCHING_PASSAGES, SourceNames, arabic_count, english_count
from dalil.indexer.analysis.arabic import script_of
from dalil.search.live import LiveSearcher
from dalil.search.searcher import QueryError
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals.update(
    arabic_count=arabic_count,
    english_count=english_count,
    ARTICLES=ARTICLES,
    MATCHING_PASSAGES=MATCHING_PASSAGES,
)
log = logging.getLogger("dalil.pages")
PAGE_SIZE = 10
RELATED_ON_PAGE = 5
RECENT_HALF_LIFE_DAYS = 30.0
SORT_CHOICES = [  # "recent": relevance with a 30-day recency half-life
    ("relevance", "الأنسب · relevance"),
    ("newest", "الأحدث · newest"),
    ("recent", "الأنسب الأحدث · recent"),
]
FEED_FIELDS = ("q", "mode", "source", "category", "lang", "date_from", "date_to")


def _direction(text: str) -> tuple[str, str]:
    return ("ltr", "en") if script_of(text) == "latin" else ("rtl", "ar")


def add_pages(app: FastAPI, live: LiveSearcher, source_name: SourceNames) -> None:
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
            "facet_links": {},
            "feed_url": None,
            "sorts": SORT_CHOICES,
            "source_name": source_name,
        }
        status = 200
        if q.strip():
            try:
                req = SearchRequest(**_search_fields(params))
                context["result"] = run_search(searcher, req)
                context.update(_paging(params, req.offset, context["result"]))
                context["facet_links"] = _facet_links(params, context["result"]["facets"])
                context["feed_url"] = _feed_url(params)
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
            context["source_name"] = source_name
            return templates.TemplateResponse(request, "missing.html", context, status_code=404)
        try:
            related = live.get().related(article_id, RELATED_ON_PAGE)
        except Exception:  # the article itself must still be shown
            log.exception("related articles failed for %r", article_id)
            related = None
        context = {
            "article": article,
            "marked": p,
            "q": q,
            "dir": "rtl",
            "lang": article.get("lang") or "ar",
            "related": related,
            "source_name": source_name,
        }
        return templates.TemplateResponse(request, "article.html", context)


def _search_fields(params: dict) -> dict:
    """The page's parameters as a search request: grouped, with facets; the sort menu's "recent"
    is relevance with a 30-day recency half-life."""
    fields = {k: v for k, v in params.items() if k != "sort"}
    sort = params.get("sort", "relevance")
    if sort == "recent":
        fields["recency"] = RECENT_HALF_LIFE_DAYS
    else:  # relevance, newest, or something else that the request's own check refuses
        fields["sort"] = sort
    return {**fields, "k": PAGE_SIZE, "group": True, "facets": True}


def _facet_links(params: dict, facets: dict) -> dict[str, list[dict]]:
    """Each facet entry with the page URL that filters to it (or, when it is the filter in force,
    the URL that lifts it). Paging restarts at the first page."""
    base = {k: v for k, v in params.items() if k != "offset"}
    out: dict[str, list[dict]] = {}
    for name, entries in facets.items():
        links = []
        for entry in entries:
            if name == "month":
                span = {"date_from": entry.get("date_from", ""), "date_to": entry.get("date_to", "")}
                chosen = all(base.get(key) == value for key, value in span.items())
                narrowed = {**base, **span}
                lifted = {k: v for k, v in base.items() if k not in span}
            else:
                chosen = base.get(name) == entry["value"]
                narrowed = {**base, name: entry["value"]}
                lifted = {k: v for k, v in base.items() if k != name}
            target = lifted if chosen else narrowed
            links.append({**entry, "chosen": chosen, "url": "/?" + urllib.parse.urlencode(target)})
        out[name] = links
    return out


def _feed_url(params: dict) -> str:
    kept = {k: v for k, v in params.items() if k in FEED_FIELDS}
    return "/search.atom?" + urllib.parse.urlencode(kept)


def _paging(params: dict, offset: int, result: dict) -> dict:
    def url(new_offset: int) -> str:
        return "/?" + urllib.parse.urlencode({**params, "offset": new_offset})

    more = len(result["results"]) == PAGE_SIZE and offset + PAGE_SIZE <= MAX_OFFSET
    return {
        "prev_url": url(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
        "next_url": url(offset + PAGE_SIZE) if more else None,
    }
