"""What a search request is, and how one is answered: shared by the JSON API and the search page."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from dalil.indexer.corpus import LIMITS, ArticleProblem, RawArticle, article_from_record, iso_date
from dalil.search.confidence import confidence_fields
from dalil.search.options import DEFAULT_OPTIONS, MAX_QUERY_CHARS, MODES, SORTS, Filters, SearchOptions
from dalil.search.ordering import MAX_HALF_LIFE_DAYS
from dalil.search.searcher import Searcher
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

MAX_HTTP_K = 100
MAX_OFFSET = 900
MAX_BATCH = 100

EXAMPLES = {
    "arabic": {"summary": "Arabic question", "value": {"q": "التعاون مع روسيا في الجيل الخامس", "k": 5}},
    "english": {
        "summary": "English question over Arabic news",
        "value": {"q": "artificial intelligence cooperation with China", "k": 5, "mode": "hybrid"},
    },
    "filtered": {
        "summary": "Filters, paging, grouping",
        "value": {"q": "الذكاء الاصطناعي", "k": 10, "date_from": "2018-01-01", "offset": 10, "group": True},
    },
}


class SearchRequest(BaseModel):
    """A search: the question, how many results, the mode, filters and paging."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(
        ..., min_length=1, max_length=MAX_QUERY_CHARS, description="the question, Arabic or English"
    )
    k: int = Field(DEFAULT_OPTIONS.k, ge=1, le=MAX_HTTP_K, description="results per page")
    mode: Literal[MODES] = Field(DEFAULT_OPTIONS.mode, description="retrieval mode")  # type: ignore[valid-type]
    source: str | None = Field(None, max_length=200, description="only articles from this source")
    category: str | None = Field(None, max_length=200, description="only articles of this category")
    lang: str | None = Field(None, max_length=20, description="only articles in this language")
    date_from: dt.date | None = Field(None, description="only articles published on or after (YYYY-MM-DD)")
    date_to: dt.date | None = Field(None, description="only articles published on or before (YYYY-MM-DD)")
    offset: int = Field(
        DEFAULT_OPTIONS.offset, ge=0, le=MAX_OFFSET, description="skip this many results (paging)"
    )
    group: bool = Field(DEFAULT_OPTIONS.group, description="one result per article, best passage first")
    collapse: bool = Field(
        DEFAULT_OPTIONS.collapse, description="with group: fold re-reports of one story together"
    )
    sort: Literal[SORTS] = Field(  # type: ignore[valid-type]
        DEFAULT_OPTIONS.sort,
        description="relevance, or newest: the matching results (those holding at least half the "
        "question's words) by date, undated last",
    )
    recency: float | None = Field(
        None,
        gt=0,
        le=MAX_HALF_LIFE_DAYS,
        description="prefer recent stories: a half-life in days (a story this much older than the "
        "index's newest keeps 3/4 of its relevance score, a very old or undated one 1/2)",
    )
    facets: bool = Field(
        DEFAULT_OPTIONS.facets, description="article counts by source, category and month over the matches"
    )

    @field_validator("k", "offset", mode="before")
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        if isinstance(value, bool):  # JSON true would otherwise quietly become 1
            raise ValueError("must be a whole number, not true/false")
        return value

    @field_validator("q")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is empty")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> SearchRequest:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self

    def options(self) -> SearchOptions:
        return SearchOptions(
            k=self.k,
            mode=self.mode,
            filters=self.filters(),
            offset=self.offset,
            group=self.group,
            collapse=self.collapse,
            sort=self.sort,
            recency=self.recency,
            facets=self.facets,
        )

    def filters(self) -> Filters:
        return Filters(
            source=self.source,
            category=self.category,
            lang=self.lang,
            date_from=self.date_from.isoformat() if self.date_from else None,
            date_to=self.date_to.isoformat() if self.date_to else None,
        )


class FeedRequest(BaseModel):
    """A search to follow as an Atom feed: the question and filters (answered newest first)."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, description="the question")
    k: int = Field(20, ge=1, le=MAX_HTTP_K, description="entries in the feed")
    mode: Literal[MODES] = DEFAULT_OPTIONS.mode  # type: ignore[valid-type]
    source: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=200)
    lang: str | None = Field(None, max_length=20)
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    _not_blank = field_validator("q")(SearchRequest._not_blank.__func__)  # type: ignore[attr-defined]
    _dates_in_order = model_validator(mode="after")(SearchRequest._dates_in_order)

    def search(self) -> SearchRequest:
        return SearchRequest(**self.model_dump(), group=True, sort="newest")


class BatchRequest(BaseModel):
    """Up to 100 searches. Each is checked on its own: an invalid one is answered with its error in
    its place, and the others are still answered (as the CLI's batch mode does)."""

    model_config = ConfigDict(extra="forbid")
    queries: list[Any] = Field(
        ...,
        min_length=1,
        max_length=MAX_BATCH,
        description="search requests, each with the fields of POST /search",
        json_schema_extra={"items": {"$ref": "#/components/schemas/SearchRequest"}},
    )


def run_search(searcher: Searcher, req: SearchRequest) -> dict:
    """One search as the API answers it (shared by GET, POST, batch, the page and the Atom feed)."""
    started = time.perf_counter()
    answer = searcher.answer(req.q, req.options())
    out = {
        "query": req.q,
        "mode": req.mode,
        "k": req.k,
        "offset": req.offset,
        "group": req.group,
        "sort": req.sort,
        "recency": req.recency,
        "took_ms": round((time.perf_counter() - started) * 1000, 2),
        "total": answer.total,
        "total_is_estimate": not answer.exhaustive,
        "results": [r.to_dict() for r in answer.results],
    }
    if answer.parsed.has_syntax:  # what the query syntax made of the question
        out["syntax"] = syntax_fields(answer)
    if req.sort == "newest":
        out["undated"] = answer.undated
    if answer.facets is not None:
        out["facets"] = facet_lists(answer.facets)
    out.update(confidence_fields(answer.confidence))  # is the question answered at all?
    return out


def syntax_fields(answer) -> dict:
    """The query syntax as the API reports it: the question searched, the preferred and required
    phrases and excluded words as typed, and `unmatched`, the phrases no result holds (the results
    are then the words' own: "no exact match for ...")."""
    parsed = answer.parsed
    return {
        "question": parsed.text,
        "phrases": list(parsed.shown_phrases),
        "required": list(parsed.shown_required),
        "excluded": list(parsed.shown_excluded),
        "unmatched": list(answer.unmatched),
    }


def facet_lists(facets: dict[str, dict[str, int]]) -> dict[str, list[dict]]:
    """Facet counts as the API gives them: sources and categories by count (then name), months
    newest first, each month with the date range that filters to it."""
    out: dict[str, list[dict]] = {}
    for name, counts in facets.items():
        if name == "month":
            out[name] = [
                {"value": m, "count": c, **_month_range(m)} for m, c in sorted(counts.items(), reverse=True)
            ]
        else:
            ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            out[name] = [{"value": v, "count": c} for v, c in ordered]
    return out


def _month_range(month: str) -> dict[str, str]:
    try:
        first = dt.date.fromisoformat(f"{month}-01")
    except ValueError:
        return {}
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return {"date_from": first.isoformat(), "date_to": (following - dt.timedelta(days=1)).isoformat()}


def field_problems(errors: Sequence[dict], body: object = None) -> list[dict]:
    """pydantic's errors as the API reports them, one entry per problem, naming the field as the
    caller wrote it (`text`, `articles.0.id`); `body`, what was sent, picks a union's branch."""
    errors = _meant_branch(errors, body)
    details = []
    for err in errors:
        if err.get("type") == "json_invalid":  # its loc is a character offset, not a field
            where = (err.get("loc") or ("", "?"))[-1]
            reason = (err.get("ctx") or {}).get("error", "malformed")
            details.append(
                {"field": None, "message": f"the body is not valid JSON: {reason} (character {where})"}
            )
            continue
        parts = [str(p) for p in err.get("loc", ()) if p not in ("query", "body") and not _is_branch_tag(p)]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"field": ".".join(parts) or None, "message": message})
    return details


def _is_branch_tag(part: object) -> bool:
    """pydantic names the branch of a union in `loc` ("ArticleIn", "function-after[..., ArticleBatch]");
    field names here are lower case."""
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _meant_branch(errors: Sequence[dict], body: object) -> list[dict]:
    """Of a union's errors (one article, or {"articles": [...]}), those of the shape the body has:
    a missing `text` is the problem to report, not that `articles` is missing too."""
    tags = {str(p) for e in errors for p in e.get("loc", ()) if _is_branch_tag(p)}
    if len(tags) < 2:
        return list(errors)
    batch = isinstance(body, dict) and "articles" in body
    return [
        e for e in errors
        if not any(_is_branch_tag(p) and ("Batch" in str(p)) != batch for p in e.get("loc", ()))
    ]  # fmt: skip


class ArticleIn(BaseModel):
    """One article to add or update (the corpus JSONL schema)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, max_length=LIMITS["id"])
    title: str | None = Field(None, max_length=LIMITS["title"])
    text: str = Field(..., min_length=1, max_length=LIMITS["text"])
    source: str | None = Field(None, max_length=LIMITS["source"])
    category: str | None = Field(None, max_length=LIMITS["category"])
    date: str | None = Field(
        None,
        max_length=40,
        description="YYYY-MM-DD (an ISO timestamp keeps its date)",
        examples=["2024-06-01"],
    )
    url: str | None = Field(None, max_length=LIMITS["url"])
    lang: str = Field("ar", max_length=LIMITS["lang"])
    _article: RawArticle = PrivateAttr()

    @field_validator("id", "text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("date")
    @classmethod
    def _a_date(cls, value: str | None) -> str | None:
        try:
            return iso_date(value)
        except ArticleProblem as problem:
            raise ValueError(problem.message) from None

    @model_validator(mode="after")
    def _an_article(self) -> ArticleIn:
        """indexer/corpus.py's one rule, which the fields above state for the schema; the article
        it reads is kept for `raw()`, so a request's articles are read once."""
        try:
            self._article = article_from_record(self.model_dump(mode="json"))
        except ArticleProblem as problem:
            raise ValueError(str(problem)) from None
        return self

    def raw(self) -> RawArticle:
        """The article as a corpus file's line with these fields would be read."""
        return self._article


class ArticleBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    articles: list[ArticleIn] = Field(..., min_length=1, max_length=1_000)

    @model_validator(mode="after")
    def _ids_unique(self) -> ArticleBatch:
        repeated = repeated_id(article.id.strip() for article in self.articles)
        if repeated is not None:
            raise ValueError(f"article id {repeated!r} appears more than once in the batch")
        return self


def repeated_id(ids: Iterable[str]) -> str | None:
    """The first id given twice in one batch (one commit cannot hold two versions of an article)."""
    seen: set[str] = set()
    for key in ids:
        if key in seen:
            return key
        seen.add(key)
    return None


ArticlesIn = ArticleIn | ArticleBatch

ARTICLE_EXAMPLES = {
    "one": {
        "summary": "One article",
        "value": {
            "id": "example-1",
            "title": "إطلاق شبكة الجيل الخامس",
            "source": "example",
            "date": "2024-06-01",
            "text": "أعلنت وزارة الاتصالات عن إطلاق شبكة الجيل الخامس.\n\nوتغطي الشبكة المرحلة الأولى.",
        },
    },
    "batch": {
        "summary": "A batch",
        "value": {
            "articles": [
                {"id": "example-2", "text": "خبر أول عن الذكاء الاصطناعي."},
                {"id": "example-3", "text": "خبر ثان عن الأمن السيبراني."},
            ]
        },
    },
}
