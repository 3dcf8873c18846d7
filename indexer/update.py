"""Incremental updates: upsert articles by id and delete by id, all-or-nothing.

An update never modifies the live version. It copies the live version (SQLite through its backup
API, the FAISS index in memory) into a new `.partial` directory, applies the changes there, writes
and verifies the result, and only then switches CURRENT with one atomic rename. A crash at any
instant therefore leaves either the old version or the new one live, never a mixture; debris of a
crashed update is removed by the next writer.

Upsert semantics: a new id is added; an id whose cleaned content changed gets new passages, and only
passages whose text (or the article's title) changed are embedded again, the rest keep their vectors;
an unchanged article costs nothing. An update that changes nothing creates no version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from indexer.analysis.splitting import SplitSettings
from indexer.build import embedding_input, prepare_articles, split_settings_for
from indexer.corpus import Problem, RawArticle
from indexer.encoders.engines import Encoder
from indexer.store.locking import writer_lock
from indexer.store.vectors import describe as describe_vectors
from indexer.store.versions import (
    DATABASE,
    MANIFEST,
    VECTORS,
    IndexVersion,
    StoreError,
    content_hash,
    corpus_fingerprint,
    delete_article_passages,
    insert_article,
    insert_passages,
    new_version_name,
    publish,
    read_current,
)
from indexer.store.vocabulary import VOCABULARY_VECTORS, VOCABULARY_WORDS

log = logging.getLogger("dalil.update")


@dataclass
class UpdateSummary:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ids asked to delete that were not there
    passages_embedded: int = 0
    passages_reused: int = 0
    version: str | None = None  # the new live version; None when nothing changed
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "problems"}
        out["problems"] = [str(p) for p in self.problems]
        return out


def update_index(
    root: Path,
    upserts: Iterable[RawArticle] = (),
    deletes: Sequence[str] = (),
    encoder: Encoder | None = None,
    wait: float = 0.0,
    progress: bool = False,
) -> UpdateSummary:
    """Apply upserts and deletes to the index at `root` as one new version."""
    root = Path(root)
    started = time.perf_counter()
    if read_current(root) is None:
        raise StoreError(f"no index at {root} to update (build one first with: dalil index --out {root})")
    if not os.access(root, os.W_OK):
        raise StoreError(f"index directory is not writable: {root}; nothing was changed")
    with writer_lock(root, wait):
        live = IndexVersion.open(root)
        try:
            if encoder is not None and encoder.model_id != live.encoder_id:
                raise StoreError(
                    f"the index was built with {live.encoder_id!r}; cannot add with {encoder.model_id!r}"
                )
            summary = _apply(root, live, upserts, deletes, encoder, progress)
        finally:
            live.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _apply(root, live, upserts, deletes, encoder, progress) -> UpdateSummary:
    version = new_version_name()
    partial = root / f"{version}.partial"
    partial.mkdir()
    summary = UpdateSummary()
    try:
        db = sqlite3.connect(partial / DATABASE)
        live.db.backup(db)  # a consistent copy, whatever else reads the live file
        vectors = faiss.clone_index(live.vectors)
        changes = _Changes(db, vectors, live.manifest, encoder)
        for article_id in deletes:
            (summary.deleted if changes.delete(article_id) else summary.missing).append(article_id)
        changes.upsert_all(upserts, summary, progress)
        if not (summary.added or summary.updated or summary.deleted):
            db.close()
            shutil.rmtree(partial, ignore_errors=True)
            return summary
        _finish(live, partial, version, db, vectors)
        publish(root, partial, version)
        summary.version = version
        log.info(
            "update %s: %s", version, {k: len(v) for k, v in summary.__dict__.items() if isinstance(v, list)}
        )
        return summary
    except BaseException:
        with contextlib.suppress(Exception):
            db.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise


class _Changes:
    def __init__(self, db: sqlite3.Connection, vectors, manifest: dict, encoder: Encoder | None) -> None:
        self.db, self.vectors, self.manifest, self.encoder = db, vectors, manifest, encoder
        self.next_id = int(db.execute("SELECT coalesce(max(id), -1) + 1 FROM passages").fetchone()[0])

    def delete(self, article_id: str) -> bool:
        row = self.db.execute("SELECT id FROM articles WHERE article_id = ?", (article_id,)).fetchone()
        if row is None:
            return False
        removed = delete_article_passages(self.db, row[0])
        self.vectors.remove_ids(np.array([pid for pid, _, _ in removed], dtype=np.int64))
        self.db.execute("DELETE FROM articles WHERE id = ?", (row[0],))
        return True

    def upsert_all(self, upserts: Iterable[RawArticle], summary: UpdateSummary, progress: bool) -> None:
        upserts = iter(upserts)
        first = next(upserts, None)
        if first is None:
            return
        if self.encoder is None:
            raise StoreError("an encoder is needed to add articles")
        upserts = itertools.chain([first], upserts)
        settings = split_settings_for(self.encoder, SplitSettings(**self.manifest["settings"]["split"]))
        pending: dict[int, str] = {}  # passage id -> text to embed; filled in one batch at the end
        for article, passages in prepare_articles(upserts, self.encoder, settings):
            if not passages:
                summary.problems.append(Problem(article.article_id, None, "no content left after cleaning"))
                continue
            digest = content_hash(article)
            row = self.db.execute(
                "SELECT id, content_hash FROM articles WHERE article_id = ?", (article.article_id,)
            ).fetchone()
            if row is not None and row[1] == digest:
                summary.unchanged.append(article.article_id)
                continue
            reusable: dict[tuple[str, str], np.ndarray] = {}
            if row is not None:  # changed: drop the old passages, remembering their vectors by text
                for pid, title, text in delete_article_passages(self.db, row[0]):
                    if pending.pop(pid, None) is None:  # (an id seen earlier in this same update is
                        reusable[(title, text)] = self.vectors.reconstruct(pid)  # not embedded yet)
                        self.vectors.remove_ids(np.array([pid], dtype=np.int64))
                self.db.execute("DELETE FROM articles WHERE id = ?", (row[0],))
                if article.article_id not in summary.added:
                    summary.updated.append(article.article_id)
            else:
                summary.added.append(article.article_id)
            rowid = insert_article(self.db, article, digest)
            ids = list(range(self.next_id, self.next_id + len(passages)))
            self.next_id += len(passages)
            insert_passages(self.db, rowid, ids, article.title, passages)
            for pid, passage in zip(ids, passages, strict=True):
                vector = reusable.get((article.title, passage.text))
                if vector is not None:
                    self.vectors.add_with_ids(vector.reshape(1, -1), np.array([pid], dtype=np.int64))
                    summary.passages_reused += 1
                else:
                    pending[pid] = embedding_input(article.title, passage.text)
        ids, texts = list(pending), list(pending.values())
        for start in range(0, len(texts), 64):
            self.vectors.add_with_ids(
                self.encoder.encode_passages(texts[start : start + 64]),
                np.array(ids[start : start + 64], dtype=np.int64),
            )
        summary.passages_embedded += len(texts)


def _finish(live: IndexVersion, partial: Path, version: str, db: sqlite3.Connection, vectors) -> None:
    """Write the new version's files: FAISS, vocabulary (shared), manifest last."""
    db.execute("INSERT INTO passages_fts (passages_fts) VALUES ('optimize')")
    db.commit()
    articles = int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    passages = int(db.execute("SELECT count(*) FROM passages").fetchone()[0])
    fingerprint = corpus_fingerprint(db.execute("SELECT article_id, content_hash FROM articles"))
    db.close()
    if vectors.ntotal != passages:
        raise StoreError(f"internal error: {vectors.ntotal} vectors for {passages} passages")
    faiss.write_index(vectors, str(partial / VECTORS))
    for name in (VOCABULARY_WORDS, VOCABULARY_VECTORS):  # new words are not embedded by updates
        if (live.path / name).is_file():
            try:
                os.link(live.path / name, partial / name)
            except OSError:
                shutil.copy2(live.path / name, partial / name)
    manifest = dict(live.manifest)
    manifest.update(
        {
            "version": version,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "counts": {"articles": articles, "passages": passages},
            "corpus_fingerprint": fingerprint,
            "updated_from": live.manifest.get("version"),
            # same type, nlist and nprobe; an index that outgrows exact search is converted by a rebuild
            "faiss": live.manifest.get("faiss", {}) | describe_vectors(vectors),
        }
    )
    import json

    (partial / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
