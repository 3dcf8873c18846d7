"""Answering questions from an index: encode the question, retrieve, rank, attach metadata."""

from __future__ import annotations

import math
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from dalil.indexer.analysis.arabic import script_of
from dalil.indexer.analysis.terms import QueryTerms, StoredTokens, query_terms
from dalil.indexer.encoders.engines import (
    Encoder,
    EncoderSpec,
    load_encoder,
    quick_engine,
    spec_from_description,
)
from dalil.indexer.store import IndexReader, Vocabulary
from dalil.search.batching import query_batcher
from dalil.search.cache import EmbeddingCache
from dalil.search.confidence import DENSE_LOOKED, RESULTS_LOOKED, Confidence, features, judge
from dalil.search.crosslingual import CrossLingualTerms
from dalil.search.fusion import DEFAULT_WEIGHTS, FusionWeights, fuse
from dalil.search.grouping import ArticleResult, articles_of, collapse_duplicates, fill
from dalil.search.highlight import Forms, highlight, holds_a_word, match_groups, match_terms
from dalil.search.lexical import distinctive, lexical_search
from dalil.search.options import (
    DEFAULT_OPTIONS,
    MAX_K,
    MAX_QUERY_CHARS,
    MODES,
    NO_FILTERS,
    Filters,
    SearchOptions,
)
from dalil.search.ordering import MAX_HALF_LIFE_DAYS, SORTS, matches_needed, newest_first, with_recency
from dalil.search.phrases import prefer_phrases
from dalil.search.protocols import IndexView, SearchableIndex
from dalil.search.related import MAX_RELATED, Related, related_articles
from dalil.search.suggest import Suggester
from dalil.search.syntax import ParsedQuery, parse_query

from dalil.errors import DalilError

# Lexical retrieval runs here while the question is embedded (measured in bench/scale.py pipeline).
_CHANNELS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dalil-lexical")
QUERY_CACHE_SIZE = 4096  # query embeddings kept (1.5 KiB each)
CANDIDATES = 100  # per channel, before fusion
MAX_SUGGESTIONS = 20
SUGGEST_REFRESH_S = 30.0


class QueryError(DalilError, ValueError):
    """The question or its options are unusable (empty, too long, k out of range)."""

    code = "invalid_query"


class EncoderMismatchError(DalilError):
    """The index was built with another encoder than the one offered for queries."""

    code = "encoder"


@dataclass
class Hit:
    """One ranked passage: where it is (article, passage, offsets), what it says, why it matched."""

    rank: int
    score: float
    article_id: str
    title: str
    source: str | None
    date: str | None
    url: str | None
    passage_id: int
    text: str
    start: int  # the passage's offsets in the cleaned article text
    end: int
    snippet: str = ""  # HTML-escaped, question words in <mark>
    highlights: list[tuple[int, int]] = field(default_factory=list)  # matches, offsets into `text`
    ordinal: int = 0  # the passage's place in its article (0 = first); passage_id counts index-wide

    def to_dict(self) -> dict:
        out = asdict(self)
        out["highlights"] = [list(h) for h in self.highlights]
        return out


@dataclass
class Answer:
    results: list  # Hit, or ArticleResult with `group`
    total: int  # results there are to page through (capped by retrieval depth)
    exhaustive: bool  # True when `total` is exact
    parsed: ParsedQuery
    facets: dict[str, dict[str, int]] | None = None
    undated: int = 0  # with sort="newest": matching results with no date, listed last
    confidence: Confidence | None = None  # None in lexical mode (no dense scores to judge by)
    # phrases (as typed) that no candidate holds: the results are the words' ("no exact match")
    unmatched: tuple[str, ...] = ()


class Ranked(NamedTuple):
    """One question's uncut ranking, its dense ranking (None in lexical mode: the confidence reads
    its cosines), and the phrases (as typed) that no candidate holds."""

    fused: list[tuple[int, float]]
    dense: list[tuple[int, float]] | None
    unmatched: tuple[str, ...]


def stored_tokens(row) -> StoredTokens:
    """A passage's tokens: as indexing stored them, or analysed now (an index built before that)."""
    return StoredTokens.decode(row.tokens) if row.tokens is not None else StoredTokens.of(row.text)


def validate_mode(mode: object) -> str:
    if mode not in MODES:
        raise QueryError(f"mode must be one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def _visible(text: str) -> str:
    """Drop control and format characters (NUL, bidi marks, zero-width): they carry no meaning."""
    return "".join(
        " " if c in "\t\n\r" else c
        for c in text
        if unicodedata.category(c) not in ("Cc", "Cf") or c in "\t\n\r"
    )


def validate_query(query: object, k: object) -> tuple[str, int]:
    if not isinstance(query, str):
        raise QueryError("the question must be a string")
    if "\ufffd" in query:
        raise QueryError("the question is not valid UTF-8")
    text = " ".join(_visible(query).split())
    if not text:
        raise QueryError("the question is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the question is too long ({len(text)} characters; the limit is {MAX_QUERY_CHARS})")
    check_whole_number("k", k, 1, MAX_K)
    return text, k


def check_whole_number(name: str, value: object, low: int, high: int, note: str = "") -> None:
    """QueryError unless `value` is an int (not a bool) from `low` to `high`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueryError(f"{name} must be a whole number from {low} to {high}{note}")


def _check_suggest(prefix: object, k: object) -> None:
    if not isinstance(prefix, str):
        raise QueryError("the prefix must be a string")
    check_whole_number("k", k, 1, MAX_SUGGESTIONS)


class Searcher:
    """An open index and a warm query encoder; cheap to call many times."""

    def __init__(self, index: SearchableIndex, encoder: Encoder) -> None:
        if encoder.model_id != index.encoder_id:
            raise EncoderMismatchError(
                f"the index at {index.path} was built with encoder {index.encoder_id!r}, "
                f"but queries would be encoded with {encoder.model_id!r}; "
                "search it with the same model or rebuild it with this one"
            )
        self.index = index
        self.encoder = encoder
        self.embed_queries = query_batcher(encoder)  # concurrent questions share model calls
        quick = quick_engine(encoder)
        # Arabic questions: the int8 twin where there is one (a third of the fp32 time here; answers
        # unchanged, docs/relevance.md); its own thread makes its calls.
        self.embed_quick = self.embed_queries if quick is encoder else query_batcher(quick)
        self.embed_words = query_batcher(encoder, "words")  # beside the question, not after it
        self.query_vectors = EmbeddingCache(self._embed_questions, QUERY_CACHE_SIZE)
        self.overlap_channels = True
        built = Vocabulary.open(index.path, index.manifest.get("vocabulary"))
        self.built_vocabulary = built if built is not None else Vocabulary.empty(encoder.dimension)
        self.translations = CrossLingualTerms(
            self.built_vocabulary, encoder, EmbeddingCache(self.embed_words, QUERY_CACHE_SIZE)
        )
        self.follow_additions = True  # False keeps `translations` as set (tests that hold it equal)
        self._additions_seen = 0
        self._translations_lock = threading.Lock()
        self._suggest_lock = threading.Lock()
        self._suggestions: tuple[int, float, Suggester] | None = None  # (commit, checked at, table)

    def _embed_questions(self, texts: Sequence[str]) -> np.ndarray:
        """Question vectors: Arabic questions by the quick engine, others by the exact one (in int8,
        English questions lost 3.0 MRR@10 on news, Arabic ones nothing beyond ±0.3: docs/relevance.md)."""
        if self.embed_quick is self.embed_queries:
            return self.embed_queries(texts)
        out = np.zeros((len(texts), self.encoder.dimension), np.float32)
        arabic = np.array([script_of(text) == "ar" for text in texts], dtype=bool)
        for engine, which in ((self.embed_quick, arabic), (self.embed_queries, ~arabic)):
            if which.any():
                out[which] = engine([t for t, taken in zip(texts, which, strict=True) if taken])
        return out

    def query_engines(self) -> dict[str, str]:
        """Which engine embeds what (for /stats): Arabic questions; other questions and the words of
        an English question (looked up in the word table)."""

        def name(encoder) -> str:
            described = encoder.describe() if hasattr(encoder, "describe") else {}
            return str(described.get("model") or described.get("backend") or type(encoder).__name__)

        exact, quick = name(self.encoder), name(quick_engine(self.encoder))
        return {"arabic_questions": quick, "other_questions": exact, "question_words": exact}

    @classmethod
    def open(cls, index_dir: Path | str, model: str | EncoderSpec | Encoder | None = None) -> Searcher:
        """Open an index with a loaded encoder, a model to load, or (None) the one it was built with."""
        index = IndexReader.open(Path(index_dir))
        try:
            if model is None:
                model = spec_from_description(index.manifest["encoder"])
            encoder = model if hasattr(model, "encode_queries") else load_encoder(model)  # type: ignore[arg-type]
            return cls(index, encoder)
        except BaseException:
            index.close()
            raise

    # The one search path is `answer`: what the API, the page, the CLI, the Python API and `dalil
    # eval` call. `search` and `search_articles` are its two common shapes, for code and tests.
    def search(
        self, query: str, k: int = 10, mode: str = "hybrid", filters: Filters = NO_FILTERS, offset: int = 0
    ) -> list[Hit]:
        """Ranked passages (`offset` skips that many, for paging): `answer`'s results."""
        return self.answer(query, SearchOptions(k=k, mode=mode, filters=filters, offset=offset)).results

    @staticmethod
    def _all_seen(ranking: list, snap: IndexView, wanted: int) -> bool:
        """Each channel retrieves `depth` candidates: when fewer came back, or the whole index fits in
        that depth, every match was seen and a count of them is exact."""
        depth = min(max(wanted, CANDIDATES), snap.live_passages)
        return len(ranking) < depth or depth == snap.live_passages

    def _rank_parsed(
        self, parsed: Sequence[ParsedQuery], mode: str, k: int, filters: Filters, snap: IndexView
    ) -> list[Ranked]:
        """Uncut rankings of parsed questions, those with the same narrowed filters ranked together;
        quoted phrases then move the passages holding them up (search/phrases.py)."""
        out: list = [None] * len(parsed)
        together: dict[Filters, list[int]] = {}
        for i, p in enumerate(parsed):
            together.setdefault(filters.narrowed(p), []).append(i)
        for narrowed, which in together.items():
            texts = [parsed[i].text for i in which]
            rankings = self.rank_channels(texts, mode, k, narrowed, snap=snap)
            for i, (fused, dense) in zip(which, rankings, strict=True):
                p = parsed[i]
                fused, unmatched = prefer_phrases(fused, p.phrases, snap)
                if p.required and not fused:  # a wall nothing passes: say which phrases it was
                    unmatched += p.required
                out[i] = Ranked(fused, dense, tuple(p.shown(s) for s in unmatched))
        return out

    def search_articles(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        collapse: bool = True,
        filters: Filters = NO_FILTERS,
    ) -> list[ArticleResult]:
        """Up to k articles, each with its best passage first; near-duplicate stories folded together."""
        options = SearchOptions(k=k, mode=mode, filters=filters, group=True, collapse=collapse)
        return self.answer(query, options).results

    def answer(self, query: str, options: SearchOptions = DEFAULT_OPTIONS) -> Answer:
        """A question answered as the API and the page answer it: passages or articles, by relevance
        (optionally with recency) or newest first, with facets, from one commit of the index."""
        validate_mode(options.mode)
        text, k = validate_query(query, options.k)
        offset = options.offset
        check_whole_number("offset", offset, 0, MAX_K - k, " (1000 - k)")
        if options.sort not in SORTS:
            raise QueryError(f"sort must be one of {', '.join(SORTS)}")
        recency = options.recency
        number = isinstance(recency, (int, float)) and not isinstance(recency, bool)
        if recency is not None and not (number and 0 < recency <= MAX_HALF_LIFE_DAYS):
            raise QueryError(f"recency must be a half-life in days, above 0 and at most {MAX_HALF_LIFE_DAYS}")
        parsed = parse_query(text)
        with self.index.snapshot() as snap:
            if not (options.group or options.sort != "relevance" or options.recency or options.facets):
                return self._answer_page(parsed, options, snap)
            return self._answer_from_candidates(parsed, options, snap)

    def _answer_page(self, parsed: ParsedQuery, options: SearchOptions, snap: IndexView) -> Answer:
        """One page of passages by relevance."""
        wanted = options.offset + options.k
        [ranked] = self._rank_parsed([parsed], options.mode, wanted, options.filters, snap)
        ranking, dense, unmatched = ranked
        page = ranking[options.offset : wanted]
        rows = snap.passages(self._confidence_ids(ranking, dense) | {pid for pid, _ in page})
        translations = self._translations(parsed.text, snap) if ranking else {}
        hits = self._hits(page, rows, parsed.text, options.offset, translations)
        confidence = self._confidence(parsed.text, ranking, dense, rows, translations, snap)
        exhaustive = self._all_seen(ranking, snap, wanted)
        return Answer(hits, len(ranking), exhaustive, parsed, confidence=confidence, unmatched=unmatched)

    @staticmethod
    def _confidence_ids(ranking: list[tuple[int, float]], dense: list[tuple[int, float]] | None) -> set[int]:
        """The passages the confidence reads: the first results and the dense candidates."""
        if dense is None:
            return set()
        return {pid for pid, _ in ranking[:RESULTS_LOOKED]} | {pid for pid, _ in dense[:DENSE_LOOKED]}

    def _confidence(
        self,
        question: str,
        ranking: list[tuple[int, float]],
        dense: list[tuple[int, float]] | None,
        rows: Mapping[int, object],
        translations: Mapping[str, Sequence[str]],
        snap: IndexView,
    ) -> Confidence | None:
        feats = self._confidence_features(question, ranking, dense, rows, translations, snap)
        return None if feats is None else judge(question, feats)

    def _confidence_features(
        self,
        question: str,
        ranking: list[tuple[int, float]],
        dense: list[tuple[int, float]] | None,
        rows: Mapping,
        translations: Mapping[str, Sequence[str]],
        snap: IndexView,
    ) -> tuple[float, ...] | None:
        """(c1, gap, coverage…) of search/confidence.py; None without a dense ranking (lexical mode)."""
        if dense is None:
            return None
        groups = [g for g in match_groups(question, translations) if g]
        freqs = snap.doc_freqs({form for g in groups for form in g.exact})  # one query for both uses
        searchable = len(self._matchable(groups, question, snap, freqs))
        first = [rows[p] for p, _ in ranking[:RESULTS_LOOKED] if p in rows]
        texts = [Forms.of(row.title, stored_tokens(row)) for row in first]
        looked = dense[:DENSE_LOOKED]
        article_of = {pid: rows[pid].article_id for pid, _ in looked if pid in rows}
        rarity = self._rarity(groups, freqs, snap.live_passages)
        return features(looked, article_of, groups, texts, searchable, rarity)

    @staticmethod
    def _rarity(groups: list[QueryTerms], freqs: Mapping[str, int], passages: int) -> list[float]:
        """log(1 + N / (1 + df)) per question word, df of its most frequent form."""
        n = max(1, passages)
        return [math.log(1 + n / (1 + max(freqs.get(f, 0) for f in g.exact))) for g in groups]

    def confidence_features(self, queries: Sequence[str]) -> list[tuple[float, ...]]:
        """The confidence features of hybrid answers to validated questions (for calibration:
        bench/no_match.py, `dalil eval`)."""
        with self.index.snapshot() as snap:
            ranked = self.rank_channels(queries, "hybrid", CANDIDATES, snap=snap)
            rows = snap.passages(set().union(*(self._confidence_ids(f, d) for f, d in ranked)))
            return [
                self._confidence_features(q, fused, dense, rows, self._translations(q, snap), snap)
                for q, (fused, dense) in zip(queries, ranked, strict=True)
            ]

    def _answer_from_candidates(self, parsed: ParsedQuery, options: SearchOptions, snap: IndexView) -> Answer:
        """Grouping, date order and facets look at every candidate, not just one page of them."""
        wanted = options.offset + options.k
        depth = min(MAX_K, max(CANDIDATES, 5 * wanted))  # enough passages to fill k distinct articles
        [ranked] = self._rank_parsed([parsed], options.mode, depth, options.filters, snap)
        ranking, dense, unmatched = ranked
        exhaustive = self._all_seen(ranking, snap, depth)
        rows = snap.passages({pid for pid, _ in ranking} | self._confidence_ids(ranking, dense))
        translations = self._translations(parsed.text, snap) if ranking else {}
        confidence = self._confidence(parsed.text, ranking, dense, rows, translations, snap)
        if options.recency:
            dates = {pid: row.date for pid, row in rows.items()}
            ranking = with_recency(ranking, dates, snap.newest_date(), options.recency)
        facets, undated = None, 0
        if options.sort == "newest" or options.facets:
            words = self._matchable(match_groups(parsed.text, translations), parsed.text, snap)
            matching = snap.matching_passages((pid for pid, _ in ranking), words, matches_needed(len(words)))
            facets = snap.facet_counts(matching) if options.facets else None
            if options.sort == "newest":
                ranking = [item for item in ranking if item[0] in matching and item[0] in rows]
        if options.group:
            terms = match_terms(match_groups(parsed.text, translations))
            groups = articles_of(ranking, rows, lambda row: holds_a_word(stored_tokens(row), terms))
            if options.sort == "newest":
                groups = newest_first(groups, lambda g: g.date)
            if options.collapse:  # the first 2·(offset + k) are compared: enough to fill the page
                looked, rest = groups[: 2 * wanted], groups[2 * wanted :]
                groups = collapse_duplicates(looked, snap) + rest
                exhaustive = exhaustive and not rest
            results: list = groups[options.offset : wanted]
            fill(results, lambda place, items: self._hits(items, rows, parsed.text, place, terms=terms))
            total = len(groups)
            undated = sum(1 for g in groups if not g.date) if options.sort == "newest" else 0
        else:
            if options.sort == "newest":
                ranking = newest_first(ranking, lambda item: rows[item[0]].date)
                undated = sum(1 for pid, _ in ranking if not rows[pid].date)
            page = ranking[options.offset : wanted]
            results = self._hits(page, rows, parsed.text, options.offset, translations)
            total = len(ranking)
        return Answer(results, total, exhaustive, parsed, facets, undated, confidence, unmatched)

    @staticmethod
    def _matchable(
        words: list[QueryTerms], question: str, snap: IndexView, freqs: Mapping[str, int] | None = None
    ) -> list[QueryTerms]:
        """The words of a question that Arabic text can hold: all of an Arabic question's; of an
        English one, those with Arabic counterparts or found in the index as written ("5G").
        `freqs`: document frequencies already read for (at least) the words' written forms."""
        if script_of(question) == "ar":
            return words
        written = freqs if freqs is not None else snap.doc_freqs(w.exact[0] for w in words)
        return [w for w in words if len(w.exact) > 1 or written.get(w.exact[0], 0) > 0]

    def related(self, article_id: str, k: int = 5) -> Related | None:
        """Up to k articles close to this one, its re-reports apart (search/related.py); None when
        there is no such article."""
        check_whole_number("k", k, 1, MAX_RELATED)
        with self.index.snapshot() as snap:
            return related_articles(
                snap, article_id, k, lambda ranking, rows, place: self._hits(ranking, rows, "", place)
            )

    def suggest(self, prefix: str, k: int = 8) -> list[dict]:
        """Completions of a typed prefix from the index's headlines (search/suggest.py)."""
        _check_suggest(prefix, k)
        return self._suggester().complete(_visible(prefix), k)

    @staticmethod
    def suggest_from(index: SearchableIndex, prefix: str, k: int = 8) -> list[dict]:
        """Suggestions from an index opened without an encoder (the CLI: headlines need none)."""
        _check_suggest(prefix, k)
        with index.snapshot() as snap:
            return Suggester(snap.titles()).complete(_visible(prefix), k)

    def _suggester(self) -> Suggester:
        """The headline table of a recent commit: built on first use, and again when the index has
        changed, at most once a SUGGEST_REFRESH_S (a busy live index commits every few seconds;
        a headline is offered at most that long after its article is added)."""
        with self._suggest_lock:
            built = self._suggestions
            stale = built is None or time.monotonic() - built[1] > SUGGEST_REFRESH_S
            if stale:
                with self.index.snapshot() as snap:
                    if built is None or built[0] != snap.commit:
                        built = (snap.commit, time.monotonic(), Suggester(snap.titles()))
                    else:
                        built = (built[0], time.monotonic(), built[2])
                self._suggestions = built
            return built[2]

    def rank(
        self,
        queries: Sequence[str],
        mode: str,
        k: int,
        filters: Filters = NO_FILTERS,
        weights: FusionWeights = DEFAULT_WEIGHTS,
        cut: bool = True,
        snap: IndexView | None = None,
    ) -> list[list[tuple[int, float]]]:
        """Top-k (passage id, score) rankings, best first, for validated questions (all candidates
        when `cut` is False), from one snapshot of the index (taken here when none is given)."""
        ranked = self.rank_channels(queries, mode, k, filters, weights, snap)
        return [fused[:k] if cut else fused for fused, _ in ranked]

    def rank_channels(
        self,
        queries: Sequence[str],
        mode: str,
        k: int,
        filters: Filters = NO_FILTERS,
        weights: FusionWeights = DEFAULT_WEIGHTS,
        snap: IndexView | None = None,
    ) -> list[tuple[list[tuple[int, float]], list[tuple[int, float]] | None]]:
        """Uncut (ranking, dense ranking) per question; the dense one is None in lexical mode (the
        confidence reads its cosines)."""
        if snap is None:
            with self.index.snapshot() as own:
                return self.rank_channels(queries, mode, k, filters, weights, own)
        depth = max(k, CANDIDATES)  # each channel's candidates; fusion normalises over these
        where = filters.as_dict()
        lexical_done: list[list[tuple[int, float]]] = []
        pending: Future | None = None
        if mode != "dense":
            job = self._lexical_ranking if mode == "hybrid" else self._plain_lexical_ranking

            def all_lexical() -> list[list[tuple[int, float]]]:  # one thread: one snapshot connection
                return [job(snap, query, depth, where) for query in queries]

            # SQLite and the encoder both release the GIL: in hybrid mode run lexical beside embedding
            if self.overlap_channels and mode == "hybrid":
                pending = _CHANNELS.submit(all_lexical)
            else:
                lexical_done = all_lexical()
        dense = self.dense_rankings(queries, depth, where, snap) if mode != "lexical" else None
        if pending is not None:
            lexical_done = pending.result()
        out = []
        for i, query in enumerate(queries):
            if mode == "dense":
                out.append((dense[i], dense[i]))
            elif mode == "lexical":
                out.append((lexical_done[i], None))
            else:
                out.append((fuse(dense[i], lexical_done[i], script_of(query), weights), dense[i]))
        return out

    @staticmethod
    def _plain_lexical_ranking(
        snap: IndexView, query: str, depth: int, where: dict
    ) -> list[tuple[int, float]]:
        return lexical_search(snap, query_terms(query), depth, filters=where)

    def _lexical_ranking(
        self, snap: IndexView, query: str, depth: int, where: dict
    ) -> list[tuple[int, float]]:
        """The lexical channel of hybrid search: for a non-Arabic question, the Arabic counterparts
        of its words and its distinctive Latin names and numbers (search/fusion.py)."""
        return lexical_search(snap, self.hybrid_lexical_terms(snap, query), depth, filters=where)

    def hybrid_lexical_terms(self, snap: IndexView, query: str) -> QueryTerms:
        if script_of(query) == "ar":
            return query_terms(query)
        latin = distinctive(snap, query_terms(query, latin_only=True))
        return latin + self.translations_at(snap).arabic_query_terms(query)

    def dense_rankings(
        self,
        queries: Sequence[str],
        depth: int,
        filters: Mapping[str, object] | None = None,
        snap: IndexView | None = None,
    ) -> list[list[tuple[int, float]]]:
        if snap is None:
            with self.index.snapshot() as own:
                return self.dense_rankings(queries, depth, filters, own)
        vectors = np.ascontiguousarray(self.query_vectors.get_many(list(queries)), dtype=np.float32)
        scores, ids = snap.dense_search(vectors, depth, filters or {})
        return [
            [(int(pid), float(score)) for score, pid in zip(row_s, row_i, strict=True) if pid >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def translations_at(self, snap: IndexView) -> CrossLingualTerms:
        """The word table as of this commit: the build's and the words later commits added
        (store/vocabulary.py), rebuilt here only when a commit has added words since."""
        if not self.follow_additions:
            return self.translations
        words, vectors = snap.vocabulary_additions()
        if len(words) != self._additions_seen:
            with self._translations_lock:
                if len(words) != self._additions_seen:
                    table = self.built_vocabulary.with_additions(words, vectors)
                    self.translations = CrossLingualTerms(table, self.encoder, self.translations.word_vectors)
                    self._additions_seen = len(words)
        return self.translations

    def _translations(self, query: str, snap: IndexView) -> Mapping[str, Sequence[str]]:
        """Arabic words for each of a non-Arabic question's words (for highlighting and matching)."""
        return self.translations_at(snap).arabic_terms_by_word(query) if script_of(query) != "ar" else {}

    def _hits(
        self,
        ranking: list[tuple[int, float]],
        rows: dict,
        query: str,
        offset: int = 0,
        translations: Mapping[str, Sequence[str]] | None = None,
        terms: tuple[set[str], set[str]] | None = None,
    ) -> list[Hit]:
        """Hits for ranked passages, the question's words (and `translations`, an English
        question's Arabic counterparts) marked; `terms`: their `match_terms`, when the caller
        has them (computed here otherwise: once per call, not per hit)."""
        if terms is None:
            terms = match_terms(match_groups(query, translations or {}))
        hits: list[Hit] = []
        for pid, score in ranking:
            row = rows.get(int(pid))
            if row is None:
                continue
            marked = highlight(row.text, query, stored=stored_tokens(row), terms=terms)
            hits.append(
                Hit(
                    rank=offset + len(hits) + 1,
                    score=round(float(score), 6),
                    article_id=row.article_id,
                    title=row.title,
                    source=row.source,
                    date=row.date,
                    url=row.url,
                    passage_id=row.passage_id,
                    text=row.text,
                    start=row.start,
                    end=row.end,
                    snippet=marked.snippet,
                    highlights=marked.offsets,
                    ordinal=row.ordinal,
                )
            )
        return hits

    def close(self) -> None:
        self.index.close()
