"""Reading articles: a directory of .txt files, or JSON Lines (.jsonl / .jsonl.gz).

Readers never stop at a bad record: they yield every good article and report each bad one
(file, line, reason) to a `CorpusReport`, so a caller can say exactly what was skipped.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dalil.errors import DalilError

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")


class CorpusError(DalilError):
    """The corpus path cannot be read at all (missing, unreadable, no articles in it)."""

    code = "invalid_corpus"


@dataclass(frozen=True)
class RawArticle:
    """An article as read, before cleaning. For .txt files `title` is None: the cleaner finds it."""

    article_id: str
    text: str
    title: str | None = None
    source: str | None = None
    category: str | None = None
    date: str | None = None
    url: str | None = None
    lang: str = "ar"
    from_plain_text: bool = False  # a raw page dump, where the headline is the first content line


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass
class CorpusReport:
    """What a read skipped, so the CLI can say what was and was not indexed."""

    problems: list[Problem] = field(default_factory=list)
    articles_read: int = 0

    def skip(self, path: Path | str, line: int | None, reason: str) -> None:
        self.problems.append(Problem(str(path), line, reason))


def corpus_files(path: Path) -> list[Path]:
    """The files a corpus path stands for, in a stable order."""
    if not path.exists():
        raise CorpusError(f"corpus path does not exist: {path}")
    if path.is_file():
        if path.suffix == ".txt" or path.name.endswith(JSONL_SUFFIXES):
            return [path]
        raise CorpusError(f"unsupported corpus file (expected .txt, .jsonl or .jsonl.gz): {path}")
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file() and _is_corpus_file(p))
    except PermissionError as exc:
        raise CorpusError(f"cannot read corpus directory {path}: {exc.strerror}") from exc
    if not files:
        raise CorpusError(f"no .txt, .jsonl or .jsonl.gz files found under {path}")
    return files


def _is_corpus_file(p: Path) -> bool:
    return not p.name.startswith(".") and (p.suffix == ".txt" or p.name.endswith(JSONL_SUFFIXES))


def read_corpus(path: Path | str, report: CorpusReport | None = None) -> Iterator[RawArticle]:
    """Stream every readable article under `path`; bad records go to `report`."""
    report = report if report is not None else CorpusReport()
    seen: set[str] = set()
    for file in corpus_files(Path(path)):
        reader = _read_txt if file.suffix == ".txt" else _read_jsonl
        for article in reader(file, report):
            if article.article_id in seen:
                report.skip(file, None, f"duplicate article id {article.article_id!r}; first copy kept")
                continue
            seen.add(article.article_id)
            report.articles_read += 1
            yield article


def _read_txt(file: Path, report: CorpusReport) -> Iterator[RawArticle]:
    try:
        data = file.read_bytes()
    except OSError as exc:
        report.skip(file, None, f"cannot read file: {exc.strerror}")
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        report.skip(file, line, f"not valid UTF-8 (byte {exc.start}); file skipped")
        return
    text = _strip_controls(text)
    if not text.strip():
        report.skip(file, None, "empty file")
        return
    yield RawArticle(article_id=file.stem, text=text, from_plain_text=True)


def _open_lines(file: Path) -> Iterator[bytes]:
    if file.name.endswith(".gz"):
        with gzip.open(file, "rb") as fh:
            yield from fh
    else:
        with file.open("rb") as fh:
            yield from fh


def _read_jsonl(file: Path, report: CorpusReport) -> Iterator[RawArticle]:
    lineno = 0
    try:
        for lineno, raw in enumerate(_open_lines(file), start=1):
            if not raw.strip():
                continue
            article = _parse_jsonl_record(raw, file, lineno, report)
            if article is not None:
                yield article
    except (OSError, EOFError, zlib.error) as exc:
        report.skip(
            file, lineno + 1, f"file is truncated or corrupt ({exc}); the rest of the file is skipped"
        )


def _parse_jsonl_record(raw: bytes, file: Path, lineno: int, report: CorpusReport) -> RawArticle | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        report.skip(file, lineno, f"not valid UTF-8 (byte {exc.start} of the line)")
        return None
    except json.JSONDecodeError as exc:
        report.skip(file, lineno, f"malformed JSON ({exc.msg} at column {exc.colno})")
        return None
    if not isinstance(record, dict):
        report.skip(file, lineno, "a JSON object was expected")
        return None
    try:
        return article_from_record(record)
    except ArticleProblem as problem:
        report.skip(file, lineno, str(problem))
        return None


# What an article given as data may hold, for files, the HTTP API and the Python API alike (the
# API's schema, api/requests.py, states the same limits from here).
LIMITS = {
    "id": 500,
    "title": 2_000,
    "text": 2_000_000,
    "source": 200,
    "category": 200,
    "url": 2_000,
    "lang": 20,
}
OPTIONAL_FIELDS = ("title", "source", "category", "date", "url", "lang")


class ArticleProblem(ValueError):
    """Why a record is not an article: the field, and what is wrong with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field!r}: {message}")
        self.field, self.message = field, message


def article_from_record(record: Mapping[str, object]) -> RawArticle:
    """The one rule for an article given as data (a JSONL line, an API body, a Python dict):
    `id` (text or a whole number) and `text` present and not blank; every field within LIMITS;
    `date` a YYYY-MM-DD date (a longer ISO timestamp keeps its date); control characters dropped.
    Fields it does not know are left to the caller (files ignore them; the API refuses them)."""
    article_id = record.get("id")
    if isinstance(article_id, bool) or not isinstance(article_id, (str, int)) or not str(article_id).strip():
        raise ArticleProblem("id", "missing, blank, or not text")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ArticleProblem("text", "missing or empty")
    fields = {name: _optional_str(record.get(name)) for name in OPTIONAL_FIELDS}
    values = {"id": str(article_id).strip(), "text": text, **fields}
    for name, limit in LIMITS.items():
        if values[name] is not None and len(values[name]) > limit:
            raise ArticleProblem(name, f"longer than {limit:,} characters")
    return RawArticle(
        article_id=values["id"],
        text=_strip_controls(text),
        title=fields["title"],
        source=fields["source"],
        category=fields["category"],
        date=iso_date(fields["date"]),
        url=fields["url"],
        lang=fields["lang"] or "ar",
    )


def iso_date(value: str | None) -> str | None:
    """A given date as YYYY-MM-DD (None stays None); ArticleProblem if it is not one."""
    if value is None:
        return None
    value = value.strip()
    try:
        if value[10:11] not in ("", "T", " "):  # a date, or a timestamp that starts with one
            raise ValueError(value)
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise ArticleProblem("date", f"{value!r} is not a YYYY-MM-DD date") from None


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    text = _strip_controls(str(value)).strip()
    return text or None


_CONTROL_TABLE = {c: None for c in range(32) if chr(c) not in "\n\t"} | {0x7F: None}


def _strip_controls(text: str) -> str:
    """Drop NULs and other C0 controls (crawler debris); keep newlines and tabs."""
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL_TABLE)
