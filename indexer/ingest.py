"""Continuous ingestion: news feeds, JSON Lines files and folders into a live index.

`dalil ingest SOURCE... [--once | --interval SECONDS]` reads each source, keeps the items it has not
taken in yet (or that changed), and commits them in small batches (store/writer.py): what it reports
as indexed is committed, and a killed ingest resumes where the last commit left it.

- Feeds (RSS 2.0, Atom, any URL) are parsed by `feedparser` from bytes fetched here (a timeout and a
  size cap; conditional GET with the feed's last ETag / Last-Modified). An item's id is its guid,
  else its link; its text is the full content when the feed carries it (`content:encoded`, Atom
  content), else the summary; title, link, date and the feed's title become the article's metadata.
  With `fetch_pages`, an item with only a short summary gets the main text of its linked page
  (extracted by `trafilatura`).
- Files and folders are read as `dalil index` reads them (indexer/corpus.py); a file whose size and
  modification time are unchanged is not read again, and new files in a folder are picked up.

Re-reading adds nothing twice: every item's raw hash is recorded in the same commit as its article,
so an unchanged item costs nothing, and a changed one is an update. Errors are per source (unreachable,
HTTP error, not a feed, broken XML or encoding): reported with the source, and the others go on.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import importlib.util
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from dalil.indexer.corpus import CorpusError, CorpusReport, RawArticle, corpus_files, read_corpus
from dalil.indexer.encoders.engines import Encoder
from dalil.indexer.store.writer import LiveWriter
from dalil.indexer.update import UpdateSummary, update_index

from dalil.errors import DalilError, MissingDependency

log = logging.getLogger("dalil.ingest")

BATCH = 16  # articles per commit: a killed ingest loses at most one uncommitted batch of work
FETCH_TIMEOUT = 20.0  # seconds per HTTP request
MAX_FEED_BYTES = 20 * 2**20
MAX_PAGE_BYTES = 5 * 2**20
SHORT_SUMMARY = 400  # characters: below this an item's text is only a teaser
USER_AGENT = "dalil-ingest/0.1 (+https://github.com/)"


class SourceError(DalilError):
    """A source could not be read this pass (the others go on)."""

    code = "source_unreachable"


@dataclass
class Item:
    key: str  # unique across sources: "feed:URL#id" or "file:PATH#id"
    raw_hash: str  # of everything taken from the source for it
    article: RawArticle


@dataclass
class SourceReport:
    source: str
    items: int = 0
    indexed: int = 0  # new or changed articles committed
    unchanged: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class PassReport:
    sources: list[SourceReport]
    seconds: float

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.error or s.problems]


# --- reading sources -----------------------------------------------------------------------------


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def fetch(url: str, limit: int, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """GET a URL: (status, body, response headers). 304 gives an empty body."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
            body = response.read(limit + 1)
            if len(body) > limit:
                raise SourceError(f"{url}: the response is larger than {limit // 2**20} MiB")
            return response.status, body, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return 304, b"", {}
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"{url}: unreachable ({reason})") from None


class _Paragraphs(HTMLParser):
    """Plain text of an HTML fragment with block elements as paragraph breaks.

    Written here because feed content is a fragment that only needs tags dropped and blocks kept
    apart; the full-page extractor (trafilatura) is for whole pages and is optional.
    """

    BLOCKS = frozenset("p div br li h1 h2 h3 h4 h5 h6 blockquote tr section article figcaption".split())
    SKIP = frozenset(("script", "style", "noscript"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag) -> None:
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    parser = _Paragraphs()
    parser.feed(fragment)
    parser.close()
    paragraphs = (" ".join(p.split()) for p in "".join(parser.parts).split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def _entry_date(entry) -> str | None:
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if parsed:
            return time.strftime("%Y-%m-%d", time.gmtime(calendar.timegm(parsed)))
    return None


def _entry_text(entry) -> str:
    contents = [c.get("value", "") for c in entry.get("content") or [] if c.get("value")]
    text = html_to_text(max(contents, key=len)) if contents else ""
    summary = html_to_text(entry.get("summary", "") or "")
    return text if len(text) >= len(summary) else summary


def read_feed(
    url: str, state: dict[str, str], fetch_page: Callable[[str], str | None] | None = None
) -> tuple[list[Item], dict[str, str]]:
    """Items of a feed, and the validators to send next time (ETag / Last-Modified)."""
    import feedparser

    headers = {}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("modified"):
        headers["If-Modified-Since"] = state["modified"]
    status, body, response_headers = fetch(url, MAX_FEED_BYTES, headers)
    if status == 304:
        return [], state
    parsed = feedparser.parse(body, response_headers=response_headers)
    if not parsed.version and not parsed.entries:
        raise SourceError(f"{url}: not a feed (no RSS or Atom document)")
    if parsed.bozo:  # feedparser reads on past errors; a damaged feed is refused whole, not half-read
        raise SourceError(f"{url}: {_bozo_reason(parsed)}")
    feed_name = parsed.feed.get("title") or url
    items = []
    for entry in parsed.entries:
        item_id = entry.get("id") or entry.get("link")
        if not item_id:
            continue
        text = _entry_text(entry)
        title = html.unescape(entry.get("title", "") or "").strip()
        if fetch_page is not None and len(text) < SHORT_SUMMARY and entry.get("link"):
            text = fetch_page(entry["link"]) or text
        if not text.strip():
            continue
        tags = entry.get("tags") or []
        article = RawArticle(
            article_id=item_id,
            text=text,
            title=title or None,
            source=feed_name,
            category=(tags[0].get("term") if tags else None),
            date=_entry_date(entry),
            url=entry.get("link"),
        )
        items.append(
            Item(f"feed:{url}#{item_id}", _hash(item_id, title, text, article.date, article.url), article)
        )
    validators = {k: v for k, v in (("etag", parsed.get("etag")), ("modified", parsed.get("modified"))) if v}
    return items, validators


def _bozo_reason(parsed) -> str:
    exc = parsed.get("bozo_exception")
    if "Encoding" in type(exc).__name__:
        return f"bad character encoding ({exc})"
    return f"broken XML ({exc})"


def page_extractor():
    """trafilatura, imported: MissingDependency with the import's own message when it cannot be (not
    installed, or installed without a part it needs, as lxml 6 without lxml_html_clean)."""
    try:
        import trafilatura
    except ImportError as exc:
        installed = importlib.util.find_spec("trafilatura") is not None
        hint = "" if installed else " (install it with: pip install 'dalil[pages]')"
        message = f"fetching pages needs trafilatura, which cannot be imported: {exc}{hint}"
        raise MissingDependency(message) from exc
    return trafilatura


def page_text(url: str) -> str | None:
    """The main text of a linked page (trafilatura), or None when it cannot be had."""
    trafilatura = page_extractor()
    try:
        _, body, _ = fetch(url, MAX_PAGE_BYTES)
    except SourceError as exc:
        log.warning("page not fetched: %s", exc)
        return None
    return trafilatura.extract(body.decode("utf-8", errors="replace"), include_comments=False) or None


def source_files(source: Path) -> list[Path]:
    """The corpus files of a file or folder source (none yet in an empty watched folder)."""
    if source.is_dir() and not any(source.iterdir()):
        return []
    try:
        return corpus_files(source)
    except CorpusError as exc:
        raise SourceError(str(exc)) from None


def file_key(file: Path) -> str:
    return f"file:{file.resolve()}"


def read_files(
    files: list[Path], seen_files: dict[str, str], report: CorpusReport
) -> tuple[list[Item], dict[str, str]]:
    """Records of the files that are new or changed since they were last read, and their stamps."""
    items: list[Item] = []
    stamps: dict[str, str] = {}
    for file in files:
        stat = file.stat()
        stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        key = file_key(file)
        if seen_files.get(key) == stamp:
            continue
        for article in read_corpus(file, report):
            raw = _hash(article.article_id, article.title or "", article.text, article.date, article.url)
            items.append(Item(f"{key}#{article.article_id}", raw, article))
        stamps[key] = stamp
    return items, stamps


def _hash(*parts: str | None) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update((part or "").encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


# --- one pass --------------------------------------------------------------------------------------


@dataclass
class Ingestor:
    """Takes sources into the index at `root`, one pass at a time."""

    root: Path
    sources: list[str]
    encoder: Encoder
    fetch_pages: bool = False
    wait: float = 30.0
    on_commit: Callable[[str, UpdateSummary], None] | None = None

    def __post_init__(self) -> None:
        if self.fetch_pages:  # say so before the first pass, not at the first short summary
            page_extractor()

    def run_pass(self) -> PassReport:
        started = time.perf_counter()
        reports = [self._one_source(source) for source in self.sources]
        return PassReport(reports, time.perf_counter() - started)

    def _one_source(self, source: str) -> SourceReport:
        report = SourceReport(source)
        try:
            items, bookkeeping = self._read(source, report)
            report.items = len(items)
            self._take_in(source, items, bookkeeping, report)
        except SourceError as exc:
            report.error = str(exc)
            log.info("source %s: %s", source, exc)  # the caller reports it (the CLI on stderr)
        return report

    def _read(self, source: str, report: SourceReport) -> tuple[list[Item], dict[str, str]]:
        if is_url(source):
            state = self._state([f"state:{source}:etag", f"state:{source}:modified"])
            previous = {k.rsplit(":", 1)[1]: v for k, v in state.items()}
            items, validators = read_feed(source, previous, page_text if self.fetch_pages else None)
            return items, {f"state:{source}:{k}": v for k, v in validators.items()}
        files = source_files(Path(source))
        corpus = CorpusReport()
        items, stamps = read_files(files, self._state([file_key(f) for f in files]), corpus)
        report.problems += [str(p) for p in corpus.problems]
        return items, stamps

    def _state(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        writer = LiveWriter(self.root)
        try:
            return writer.ingested(keys)
        finally:
            writer.close()

    def _take_in(
        self, source: str, items: list[Item], bookkeeping: dict[str, str], report: SourceReport
    ) -> None:
        seen = self._state([i.key for i in items])
        fresh = [i for i in items if seen.get(i.key) != i.raw_hash]
        report.unchanged = len(items) - len(fresh)
        for start in range(0, len(fresh), BATCH):
            batch = fresh[start : start + BATCH]
            marks = {i.key: (i.raw_hash, i.article.article_id) for i in batch}
            last = start + BATCH >= len(fresh)
            if last:  # file stamps and feed validators only once every item of the pass is in
                marks.update({k: (v, None) for k, v in bookkeeping.items()})
            summary = update_index(
                self.root,
                [i.article for i in batch],
                (),
                self.encoder,
                wait=self.wait,
                merge_after=False,
                marks=marks,
            )
            report.indexed += len(summary.added) + len(summary.updated)
            report.unchanged += len(summary.unchanged)
            report.problems += [str(p) for p in summary.problems]
            if self.on_commit is not None:
                self.on_commit(source, summary)
        if not fresh and bookkeeping:  # nothing new: the stamps and validators alone, one commit
            marks = {k: (v, None) for k, v in bookkeeping.items()}
            update_index(self.root, (), (), None, wait=self.wait, merge_after=False, marks=marks)
