"""Incremental updates: upsert articles by id and delete by id, in one commit each call.

A commit writes what changed and nothing else (store/writer.py): one small FAISS segment with the
vectors of the new passages, their rows and lexical entries, and tombstones for the passages they
replace; readers see all of it at once or none of it. Small segments are merged in the background
(store/writer.py `merge`), or here, after the commit, when no background merger runs.

Upsert semantics: a new id is added; an id whose cleaned content changed gets new passages, and only
passages whose text (or the article's title) changed are embedded again, the rest keep their vectors;
an unchanged article costs nothing. An update that changes nothing commits nothing.

The word table (store/vocabulary.py) grows in the same commit: the new articles' words that it does
not hold yet and that enough passages hold are embedded and added, so an English question about a
name first seen in ingested news finds its Arabic counterpart at once, without a rebuild.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from dalil.indexer.analysis.splitting import SplitSettings
from dalil.indexer.build import embedding_input, prepare_articles, pseudo_questions, split_settings_for
from dalil.indexer.corpus import Problem, RawArticle
from dalil.indexer.encoders.engines import Encoder
from dalil.indexer.store.layout import IndexNotWritable, StoreError, ensure_writable
from dalil.indexer.store.locking import LockTimeoutError, writer_lock
from dalil.indexer.store.merging import MergeConflict, merge
from dalil.indexer.store.vocabulary import table_words
from dalil.indexer.store.writer import ArticleChange, LiveWriter, content_hash

log = logging.getLogger("dalil.update")
EMBED_BATCH = 64


@dataclass
class UpdateSummary:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ids asked to delete that were not there
    passages_embedded: int = 0
    passages_reused: int = 0
    version: str | None = None  # the generation and commit now live; None when nothing changed
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "problems"}
        out["problems"] = [str(p) for p in self.problems]
        return out

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)


def update_index(
    root: Path,
    upserts: Iterable[RawArticle] = (),
    deletes: Sequence[str] = (),
    encoder: Encoder | None = None,
    wait: float = 0.0,
    merge_after: bool = True,
    marks: dict[str, tuple[str, str | None]] | None = None,
) -> UpdateSummary:
    """Apply upserts and deletes to the index at `root` as one commit.

    `merge_after`: run the merge policy once after the commit (for callers with no background
    merger, such as `dalil add`), so the number of segments stays bounded.
    """
    root = Path(root)
    started = time.perf_counter()
    ensure_writable(root)
    with writer_lock(root, wait):
        writer = LiveWriter(root)
        try:
            writer.remove_debris()
            if encoder is not None and encoder.model_id != writer.encoder_id:
                raise IndexNotWritable(
                    f"the index was built with {writer.encoder_id!r}; cannot add with {encoder.model_id!r}"
                )
            summary = _apply(writer, upserts, deletes, encoder, marks)
        finally:
            writer.close()
    if merge_after and summary.changed:
        try:
            merge_now(root, wait)
        except (LockTimeoutError, MergeConflict) as exc:  # the commit stands; another writer merges
            log.info("no merge after this commit: %s", exc)
    summary.seconds = time.perf_counter() - started
    return summary


def merge_now(root: Path, wait: float = 0.0, everything: bool = False, encoder: Encoder | None = None):
    """Merge segments as the policy asks (all of them with `everything`); None when none needed.

    With an encoder, IVF cells that the corpus has outgrown are retrained in the same merge (their
    nprobe tuned on pseudo-questions embedded by it, as a full build does).
    """
    tuning = None
    if encoder is not None:

        def tuning(texts: list[str]):
            return encoder.encode_queries(pseudo_questions(texts))

    return merge(root, lambda: writer_lock(root, max(wait, 10.0)), everything, tuning)


def _apply(writer: LiveWriter, upserts, deletes, encoder, marks) -> UpdateSummary:
    summary = UpdateSummary()
    changes = _plan_upserts(writer, upserts, encoder, summary)
    to_delete = []
    for article_id in deletes:
        if article_id in changes:  # deleted and re-added in one call: the upsert wins
            continue
        (to_delete if writer.existing(article_id) is not None else summary.missing).append(article_id)
    summary.deleted = list(to_delete)
    if not (changes or to_delete):
        if marks:
            writer.commit([], [], marks)
        return summary
    words = _new_words(writer, changes.values(), encoder)
    result = writer.commit(list(changes.values()), to_delete, marks, words)
    summary.version = f"{writer.path.name}@{result.commit}"
    log.info(
        "commit %s: %d added, %d updated, %d deleted, %d passages, %d tombstones",
        summary.version,
        len(summary.added),
        len(summary.updated),
        len(summary.deleted),
        result.passages_added,
        result.tombstones,
    )
    return summary


def _new_words(writer: LiveWriter, changes, encoder) -> tuple[list[str], np.ndarray] | None:
    """The words these articles bring to the word table, embedded as queries (as a build embeds its
    table), so that English questions find the names and words of new articles at once."""
    seen: Counter[str] = Counter()
    for change in changes:  # as a build counts its corpus: every occurrence in headline and text
        seen.update(table_words(f"{change.article.title}\n{change.article.text}"))
    words = writer.words_to_add(seen) if seen else []
    if not words:
        return None
    batches = range(0, len(words), EMBED_BATCH)
    vectors = np.vstack([encoder.encode_queries(words[i : i + EMBED_BATCH]) for i in batches])
    log.info("the word table gains %d words", len(words))
    return words, vectors


def _plan_upserts(writer: LiveWriter, upserts, encoder, summary: UpdateSummary) -> dict[str, ArticleChange]:
    """Clean, split and embed what changed; the vectors of unchanged passages are reused."""
    upserts = iter(upserts)
    first = next(upserts, None)
    if first is None:
        return {}
    if encoder is None:
        raise StoreError("an encoder is needed to add articles")
    settings = split_settings_for(encoder, SplitSettings(**writer.meta["settings"]["split"]))
    changes: dict[str, ArticleChange] = {}
    to_embed: list[tuple[str, int, str]] = []  # (article id, passage ordinal in the change, text)
    for article, passages in prepare_articles(itertools.chain([first], upserts), encoder, settings):
        if not passages:
            summary.problems.append(Problem(article.article_id, None, "no content left after cleaning"))
            continue
        digest = content_hash(article)
        stored = writer.existing(article.article_id)
        if stored == digest and article.article_id not in changes:
            summary.unchanged.append(article.article_id)
            continue
        if article.article_id in changes:  # the same id twice in one call: the later one wins
            to_embed = [e for e in to_embed if e[0] != article.article_id]
        elif stored is None:
            summary.added.append(article.article_id)
        else:
            summary.updated.append(article.article_id)
        reusable = {(t, x): pid for pid, t, x in writer.stored_passages(article.article_id)}
        keep = [reusable.get((article.title, p.text)) for p in passages]
        vectors = np.zeros((len(passages), writer.dimension), np.float32)
        kept = [(i, pid) for i, pid in enumerate(keep) if pid is not None]
        if kept:
            vectors[[i for i, _ in kept]] = writer.vectors_of([pid for _, pid in kept])
            summary.passages_reused += len(kept)
        to_embed += [
            (article.article_id, i, embedding_input(article.title, p.text))
            for i, p in enumerate(passages)
            if keep[i] is None
        ]
        changes[article.article_id] = ArticleChange(article, digest, passages, vectors)
    for start in range(0, len(to_embed), EMBED_BATCH):
        chunk = to_embed[start : start + EMBED_BATCH]
        vectors = encoder.encode_passages([text for _, _, text in chunk])
        for (article_id, i, _), vector in zip(chunk, vectors, strict=True):
            changes[article_id].vectors[i] = vector
    summary.passages_embedded += len(to_embed)
    return changes


class BackgroundMerger:
    """Runs the merge policy in a daemon thread of a long-lived writer (server, ingest).

    Poked after each commit, and every `interval` seconds; merges until the policy is content.
    A merge reads and writes segments without the writer lock and takes it only to commit, so
    writes go on beside it. Failures are logged and retried at the next poke.
    """

    def __init__(self, root: Path, encoder: Encoder | None = None, interval: float = 60.0) -> None:
        self.root = Path(root)
        self.encoder = encoder  # for retraining IVF cells the corpus has outgrown
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.merges = 0

    def poke(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dalil-merger", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                while not self._stop.is_set() and merge_now(self.root, encoder=self.encoder) is not None:
                    self.merges += 1
            except (LockTimeoutError, MergeConflict) as exc:
                log.info("merge postponed: %s", exc)
            except Exception as exc:  # a merge must never take the process down; say why it stopped
                log.error("background merge failed: %s", exc)
