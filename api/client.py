"""`dalil.Client`: the HTTP API from Python, with the same methods as a local `dalil.Index`.

Failures are raised as the `dalil.Error` family with the server's error code, message and field
details; a server that cannot be reached or does not answer in time is `dalil.Unavailable`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import quote

import httpx
from dalil.api.errors import Error, InvalidRequest, Unavailable, from_response
from dalil.api.python import Results, WriteResult
from dalil.search.options import DEFAULT_OPTIONS
from dalil.search.searcher import Hit

ARTICLES_PER_REQUEST = 1_000  # the server's limit for one POST /articles
_HIT_FIELDS = {f.name for f in fields(Hit)}


class Client:
    """A dalil server at `base_url` (e.g. `http://127.0.0.1:8000`); `token` for writes.

    `timeout` is in seconds for each request (writes embed articles on the server: allow for it).
    Use as a context manager, or `close()`, to release the connection pool.
    """

    def __init__(
        self, base_url: str, token: str | None = None, timeout: float = 30.0, *, transport=None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

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
        """The server's `POST /search`, as `Index.search` (hits, with the answer's confidence); the
        same options (tests/test_python_api.py compares the two signatures)."""
        body = {
            "q": question, "k": k, "mode": mode, "offset": offset, "source": source, "category": category,
            "lang": lang, "date_from": _date(date_from), "date_to": _date(date_to), "sort": sort,
            "recency": recency,
        }  # fmt: skip
        answer = self._request("POST", "/search", json={k: v for k, v in body.items() if v is not None})
        hits = [_hit(r) for r in answer["results"]]
        return Results(hits, answer.get("confidence"), bool(answer.get("no_close_match", False)))

    def add(self, articles: Iterable[Mapping[str, Any]]) -> WriteResult:
        """Add or update articles (dicts with the JSONL fields); one commit per 1,000 articles."""
        batch = [dict(a) if isinstance(a, Mapping) else a for a in articles]
        if not batch:
            raise InvalidRequest("invalid_request", "no articles to add")
        results = [
            WriteResult.from_dict(self._request("POST", "/articles", json={"articles": chunk}))
            for chunk in _chunks(batch, ARTICLES_PER_REQUEST)
        ]
        return _combined(results)

    def delete(self, ids: str | Iterable[str]) -> WriteResult:
        """Delete articles by id; ids the server does not have are listed in `missing`."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        results = []
        for article_id in ids:
            try:
                results.append(
                    WriteResult.from_dict(self._request("DELETE", f"/articles/{quote(article_id)}"))
                )
            except Error as exc:
                if exc.status != 404 or exc.code != "not_found":
                    raise
                results.append(WriteResult(missing=[article_id]))
        return _combined(results)

    def stats(self) -> dict:
        """What the server serves: counts, encoder, index version, size."""
        return self._request("GET", "/stats")

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unavailable("timeout", f"{self.base_url} did not answer in time ({exc})") from exc
        except httpx.TransportError as exc:
            raise Unavailable("unreachable", f"cannot reach {self.base_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and body is not None:
            return body
        if response.is_success:
            raise Error(
                "bad_response", f"{method} {path}: the server's answer is not JSON", response.status_code
            )
        raise from_response(response.status_code, body)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<dalil.Client {self.base_url!r}>"


def _hit(data: Mapping[str, Any]) -> Hit:
    values = {k: v for k, v in data.items() if k in _HIT_FIELDS}  # a newer server may add fields
    values["highlights"] = [tuple(h) for h in values.get("highlights", [])]
    return Hit(**values)


def _date(value: str | dt.date | None) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else value


def _chunks(items: list, size: int) -> Iterable[list]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _combined(results: list[WriteResult]) -> WriteResult:
    """Several commits' results as one (the last commit's version)."""
    merged: dict[str, Any] = {}
    for name in ("added", "updated", "unchanged", "deleted", "missing", "skipped"):
        merged[name] = [x for r in results for x in getattr(r, name)]
    for name in ("passages_embedded", "passages_reused", "seconds"):
        merged[name] = sum(getattr(r, name) for r in results)
    versions = [r.version for r in results if r.version]
    return WriteResult(**merged, version=versions[-1] if versions else None)
