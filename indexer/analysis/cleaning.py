"""Dropping page furniture from news articles by general rules, keeping every content paragraph.

Furniture is recognised by what it is, never by which file it is in:
- lines with no letter or digit (separators, a lone ".");
- site notices: buttons ("اظهر المزيد", "زر الذهاب إلى الأعلى"), newsletter and app prompts,
  copyright and "opinions are the writers'" disclaimers; a newsletter/back-to-top line that
  starts a short tail also takes that tail (the site footer) with it;
- bylines and datelines ("عين اليوم – متابعات", "فرانس24/ أ ف ب", "// انتهى //");
- photo captions ("جانب من اللقاء", "صورة أرشيفية");
- hashtag-only lines, and the tag list some pages append to the last paragraph ("… سمات آبل آيفون");
- in raw page dumps (.txt), breadcrumb lines before the headline, where the page glued section
  labels onto each other ("السياسة والشارع المصريعاجل").
Short content lines such as section sub-headings are kept (the splitter merges them with the
paragraph they introduce).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # analysis imports nothing else of dalil at run time
    from dalil.indexer.corpus import RawArticle

_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_WORD = re.compile(r"\S+")

# Notices that are furniture wherever they appear.
_NOTICE_PATTERNS = [
    r"زر الذهاب [اإ]لى ال[اأ]على",
    r"^[اأ]ظهر المزيد$",
    r"^(اقر[اأ]|شاهد) ([اأ]يضا|[اأ]يضاً|المزيد)\b",
    r"قائمتنا البريدية|النشر[ةه] (البريدي[ةه]|الاخباري[ةه]|الإخباري[ةه])",
    r"^(اشترك|سجل) (في|فى) ",
    r"(تسلم|استلام) إشعارات",
    r"جميع المقالات المنشورة تمثل ر[اأ]ي كتابها",
    r"جميع الحقوق محفوظة|^©",
    r"^/+\s*انتهى\s*/+$",
    r"^(تابعونا|تابعنا|تابعوا) على\b",
    r"^(شارك|مشاركة|شاركها)( (على|عبر))?( (فيسبوك|تويتر|واتساب|واتس اب))*$",
]
_NOTICE = re.compile("|".join(f"(?:{p})" for p in _NOTICE_PATTERNS), re.IGNORECASE)

# Notices after which a page shows only its footer: the rest of the page goes with them.
_FOOTER_START = re.compile(
    r"زر الذهاب [اإ]لى ال[اأ]على|قائمتنا البريدية|النشر[ةه] البريدي|جميع الحقوق محفوظة", re.IGNORECASE
)
_FOOTER_MAX_TAIL_LINES = 3  # a longer "tail" is content, and is kept

_CAPTION = re.compile(r"^\(?\s*(جانب من|صور[ةه]?\b|الصور[ةه]\b|[اأ]رشيفي[ةه]|من اللقاء)")
_CAPTION_MAX_WORDS = 6

# Slider buttons that some pages glue onto the first paragraph: removed, the paragraph is kept.
_LEADING_BUTTONS = re.compile(r"^(next\s+previous|previous\s+next)\s*", re.IGNORECASE)

# "A – B", "A / B" where both sides are a few words: a byline or a dateline.
_BYLINE = re.compile(r"^[^.،,:؟?!]{2,40}?\s*[–—\-/]\s*[^\W\d_][^.،,:؟?!\d]{0,29}$")
_BYLINE_MAX_WORDS = 6
_AGENCY = re.compile(r"^\(?(رويترز|[اأ] ف ب|ا ف ب|د ب ا|وكالات|متابعات|واس|سبوتنيك)\)?$")

# Section labels that sites put in breadcrumbs; glued onto another word they betray a crumb line.
_SECTION_LABELS = ("عاجل", "الأخبار", "الاخبار", "الرئيسية", "أخبار", "اخبار")
_CRUMB_MAX_WORDS = 6
_MIN_GLUED_REST = 3
_SENTENCE_PUNCT = re.compile(r"[.،,:؛؟?!]")

# A page's tag list glued to the end of the article: "سمات" then a few bare words, no punctuation.
# ("سمات" is also the ordinary word "features"; in running text it is followed by a sentence.)
_TAG_TAIL = re.compile(r"(?:^|(?<=\s))سمات((?:\s+[^\s.،,:؛؟?!]+){1,12})\s*$")

_HEADLINE_MAX_WORDS = 25
_TITLE_FALLBACK_WORDS = 14


@dataclass(frozen=True)
class CleanArticle:
    """An article ready to split: `text` is the kept paragraphs joined by a blank line."""

    article_id: str
    title: str
    text: str
    paragraphs: tuple[tuple[int, int], ...]  # [start, end) of each paragraph in `text`
    source: str | None
    category: str | None
    date: str | None
    url: str | None
    lang: str
    dropped: tuple[str, ...] = ()  # the furniture removed, for inspection and tests


def furniture_reason(line: str) -> str | None:
    """Why a single line is furniture, or None if it is content."""
    words = _WORD.findall(line)
    if not _LETTER_OR_DIGIT.search(line):
        return "no text"
    if _NOTICE.search(line):
        return "site notice"
    if all(w.startswith("#") for w in words):
        return "hashtags"
    if len(words) <= _CAPTION_MAX_WORDS and _CAPTION.match(line):
        return "caption"
    if len(words) <= _BYLINE_MAX_WORDS and (_AGENCY.match(line) or _is_byline(line)):
        return "byline"
    return None


def _is_byline(line: str) -> bool:
    match = _BYLINE.match(line)
    if not match:
        return False
    left, _, right = re.split(r"\s*([–—\-/])\s*", line, maxsplit=1)
    return 0 < len(left.split()) <= 3 and 0 < len(right.split()) <= 3 and not any(c.isdigit() for c in left)


def is_breadcrumb(line: str) -> bool:
    """A leading nav line: a few words, no punctuation, with section labels glued to other words."""
    words = line.split()
    if not words or len(words) > _CRUMB_MAX_WORDS or _SENTENCE_PUNCT.search(line):
        return False
    if all(w in _SECTION_LABELS for w in words):
        return True
    return any(_glued_label(w) for w in words)


def _glued_label(word: str) -> bool:
    for label in _SECTION_LABELS:
        rest = len(word) - len(label)
        if rest >= _MIN_GLUED_REST and (word.endswith(label) or word.startswith(label)):
            return True
    return False


def _is_headline(line: str) -> bool:
    return len(line.split()) <= _HEADLINE_MAX_WORDS and not line.rstrip().endswith((".", ":", "،"))


def clean_article(raw: RawArticle) -> CleanArticle:
    """Split a raw article into lines, drop furniture, pick the headline, join what is kept."""
    lines = [_LEADING_BUTTONS.sub("", ln.strip()) for ln in raw.text.split("\n")]
    lines = [ln for ln in lines if ln]
    dropped: list[str] = []
    title = raw.title
    if raw.from_plain_text:
        lines, title = _take_headline(lines, dropped)
    kept = _drop_furniture(lines, dropped)
    kept = _strip_tag_tail(kept, dropped)
    if title is None:
        title = _fallback_title(kept)
    text, spans = _join(kept)
    return CleanArticle(
        article_id=raw.article_id,
        title=title,
        text=text,
        paragraphs=spans,
        source=raw.source,
        category=raw.category,
        date=raw.date,
        url=raw.url,
        lang=raw.lang,
        dropped=tuple(dropped),
    )


def _take_headline(lines: list[str], dropped: list[str]) -> tuple[list[str], str | None]:
    """In a page dump, skip leading crumbs; the first short line after them is the headline."""
    i = 0
    while i < len(lines) and (is_breadcrumb(lines[i]) or furniture_reason(lines[i])):
        dropped.append(lines[i])
        i += 1
    if i < len(lines) and _is_headline(lines[i]):
        return lines[i + 1 :], lines[i]
    return lines[i:], None


def _drop_furniture(lines: list[str], dropped: list[str]) -> list[str]:
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _FOOTER_START.search(line) and len(lines) - i - 1 <= _FOOTER_MAX_TAIL_LINES:
            dropped.extend(lines[i:])
            break
        if furniture_reason(line):
            dropped.append(line)
        else:
            kept.append(line)
    return kept


def _strip_tag_tail(paragraphs: list[str], dropped: list[str]) -> list[str]:
    if not paragraphs:
        return paragraphs
    match = _TAG_TAIL.search(paragraphs[-1])
    if match is None:
        return paragraphs
    dropped.append(paragraphs[-1][match.start() :].strip())
    rest = paragraphs[-1][: match.start()].rstrip()
    return paragraphs[:-1] + ([rest] if rest else [])


def _fallback_title(paragraphs: list[str]) -> str:
    """No headline: the opening words of the first paragraph stand in for one."""
    if not paragraphs:
        return ""
    words = paragraphs[0].split()
    if len(words) <= _TITLE_FALLBACK_WORDS:
        return paragraphs[0]
    return " ".join(words[:_TITLE_FALLBACK_WORDS]) + " …"


def _join(paragraphs: list[str]) -> tuple[str, tuple[tuple[int, int], ...]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    for p in paragraphs:
        spans.append((pos, pos + len(p)))
        pos += len(p) + 2
    return "\n\n".join(paragraphs), tuple(spans)
