"""Words the page prints around numbers and names: Arabic counts, and sources by a readable name.

Arabic counts follow CLDR's Arabic plural rules (one, two, few = 3-10, many = 11-99, other = 100,
101, 102 ...; by the last two digits). Written here rather than taken from Babel: the rule is six
lines, and Babel would bring 30 MB of locale data to the server for it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArabicNoun:
    """The forms a counted Arabic noun takes (the number is written before the last three)."""

    one: str  # "مقال واحد"
    two: str  # "مقالان"
    few: str  # 3-10: "مقالات"
    many: str  # 11-99: "مقالاً"
    other: str  # 100, 101, 102 ...: "مقال"


ARTICLES = ArabicNoun("مقال واحد", "مقالان", "مقالات", "مقالاً", "مقال")
MATCHING_PASSAGES = ArabicNoun(
    "فقرة مطابقة واحدة", "فقرتان مطابقتان", "فقرات مطابقة", "فقرةً مطابقة", "فقرة مطابقة"
)


def arabic_count(n: int, noun: ArabicNoun, more: bool = False) -> str:
    """`n` and its noun as Arabic writes them: "مقال واحد", "مقالان", "5 مقالات", "11 مقالاً",
    "100 مقال". `more`: n is a lower bound, said in words ("100 مقال أو أكثر"): a "100+" would be
    drawn "+100" in right-to-left text."""
    tail = n % 100
    if n == 1:
        counted = noun.one
    elif n == 2:
        counted = noun.two
    elif 3 <= tail <= 10:
        counted = f"{n} {noun.few}"
    elif 11 <= tail <= 99:
        counted = f"{n} {noun.many}"
    else:
        counted = f"{n} {noun.other}"
    return f"{counted} أو أكثر" if more else counted


def english_count(n: int, noun: str, more: bool = False) -> str:
    """ "1 article", "2 articles", "100+ articles"."""
    return f"{n}{'+' if more else ''} {noun}{'' if n == 1 and not more else 's'}"


class SourceNames:
    """Sources shown by name: from a JSON map {source id: name} when one is given
    (`DALIL_SOURCE_NAMES`, `dalil serve --source-names FILE`), otherwise the id's last part
    (`ant-multisource/bbcarabic` -> `bbcarabic`); the id itself stays in filters and links."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = names or {}

    @classmethod
    def from_file(cls, path: Path | str | None) -> SourceNames:
        if not path:
            return cls()
        try:
            names = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"the source names file {path} cannot be read: {exc}") from exc
        if not isinstance(names, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in names.items()
        ):
            raise ValueError(f"the source names file {path} must be a JSON object of source id -> name")
        return cls(names)

    @classmethod
    def from_env(cls) -> SourceNames:
        return cls.from_file(os.environ.get("DALIL_SOURCE_NAMES"))

    def __call__(self, source: str | None) -> str:
        if not source:
            return ""
        return self.names.get(source) or source.rstrip("/").rsplit("/", 1)[-1] or source
