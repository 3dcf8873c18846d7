"""Default locations, so that `dalil index` and `dalil search` work with no arguments."""

from __future__ import annotations

import os
from pathlib import Path

INDEX_ENV = "DALIL_INDEX"
# The checkout's root (editable install), or site-packages/dalil (a wheel): corpus/ is in both,
# since packaging maps the corpus folder to the data-only package dalil.corpus.
_REPO_ROOT = Path(__file__).resolve().parent.parent


def default_index_dir() -> Path:
    """$DALIL_INDEX, else $XDG_DATA_HOME/dalil/index (usually ~/.local/share/dalil/index)."""
    if os.environ.get(INDEX_ENV):
        return Path(os.environ[INDEX_ENV]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "dalil" / "index"


def bundled_corpus_dir() -> Path:
    """The five seed articles: the repository's corpus/ folder, installed as dalil/corpus/."""
    return _REPO_ROOT / "corpus"


def default_eval_dir() -> Path:
    """The labelled development sets, in ../shared/eval beside the repository."""
    return _REPO_ROOT.parent / "shared" / "eval"


def default_news_corpus() -> Path:
    """The tech-news corpus the news-domain evaluation set is made from (../shared/corpus)."""
    return _REPO_ROOT.parent / "shared" / "corpus" / "arabic-tech-news.jsonl"


def default_pasted_corpus() -> Path:
    """The news corpus whose headlines, in their own punctuation, are the pasted-question set."""
    return _REPO_ROOT.parent / "shared" / "corpus" / "arabic-news-large.jsonl.gz"


def written_questions_dir() -> Path:
    """Questions written for evaluation (English news questions, unanswerable ones): bench/data."""
    return _REPO_ROOT / "bench" / "data"


def default_eval_cache() -> Path:
    """Evaluation indexes are rebuilt only when their texts or encoder change."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "dalil" / "eval"
