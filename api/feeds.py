"""Searches as Atom feeds (RFC 4287): subscribe to a question, get its newest matching articles.

`GET /search.atom?q=...` answers like `/search?...&group=true&sort=newest` and writes the articles
as entries, so a feed reader polling it shows each new matching article once (its entry id is the
article's, stable across polls). Written with the standard library's ElementTree: the document is a
dozen elements, and the Atom writers on PyPI (feedgen) pull in lxml for nothing more.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import urllib.parse
import xml.etree.ElementTree as ET

ATOM = "http://www.w3.org/2005/Atom"
ET.register_namespace("", ATOM)
_TAGS = re.compile(r"<[^>]+>")


def _el(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    if text is not None:
        element.text = text
    return element


def _timestamp(date: str | None, fallback: str) -> str:
    """An RFC 3339 time for an article date (YYYY-MM-DD, or a full time)."""
    if date:
        try:
            when = dt.datetime.fromisoformat(date.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            return when.isoformat().replace("+00:00", "Z")
    return fallback


def _plain(snippet: str) -> str:
    """A snippet's text without its <mark> tags (feed readers show summaries as plain text)."""
    return html.unescape(_TAGS.sub("", snippet))


def atom_feed(answer: dict, base_url: str, params: dict[str, str], index_updated: str) -> bytes:
    """The feed for one grouped, newest-first search response (`run_search`'s dict)."""
    base = base_url.rstrip("/")
    query = urllib.parse.urlencode(params)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _el(feed, "id", f"{base}/search.atom?{query}")
    _el(feed, "title", f"dalil — {answer['query']}")
    _el(feed, "subtitle", "أحدث المقالات المطابقة · the newest matching articles")
    _el(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/search.atom?{query}")
    page = urllib.parse.urlencode({**params, "sort": "newest"})
    _el(feed, "link", rel="alternate", type="text/html", href=f"{base}/?{page}")
    _el(feed, "generator", "dalil")
    entries = []
    for result in answer["results"]:
        entry = ET.Element(f"{{{ATOM}}}entry")
        link = f"{base}/a/{urllib.parse.quote(result['article_id'], safe='')}"
        _el(entry, "id", link)
        _el(entry, "title", result["title"] or result["article_id"])
        _el(entry, "link", rel="alternate", type="text/html", href=link)
        if result.get("url"):
            _el(entry, "link", rel="via", href=result["url"])
        updated = _timestamp(result.get("date"), index_updated)
        _el(entry, "updated", updated)
        if result.get("date"):
            _el(entry, "published", updated)
        author = _el(entry, "author")
        _el(author, "name", result.get("source") or "dalil")
        summary = _el(entry, "summary", _plain(result["best"]["snippet"]), type="text")
        summary.set("{http://www.w3.org/XML/1998/namespace}lang", "ar")
        entries.append((updated, entry))
    _el(feed, "updated", max((u for u, _ in entries), default=index_updated))
    feed.extend(entry for _, entry in entries)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
