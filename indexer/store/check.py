"""`dalil check`: prove an index is whole, or say precisely what is wrong with it.

It composes the checks of each part: SQLite's own integrity check and FTS5's, every segment file
(readable, the ids its row says, disjoint ranges), tombstones against stored vectors, live vectors
against passage rows one for one, the counts and the corpus fingerprint in the metadata, the
vocabulary table, and (optionally) that the recorded encoder loads and matches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import apsw
import numpy as np
from dalil.indexer.store.database import (
    check_format,
    fingerprint_of,
    open_for_reading,
    open_for_writing,
    read_meta,
)
from dalil.indexer.store.layout import DATABASE, FAMILIES, SEGMENTS, StoreError, resolve_generation
from dalil.indexer.store.reader import IndexReader
from dalil.indexer.store.vectors import VectorIndex
from dalil.indexer.store.vocabulary import addition_problems, vocabulary_problems


def check_index(
    root: Path,
    expected_encoder: str | None = None,
    encoder_check: Callable[[dict], list[str]] | None = None,
) -> list[str]:
    """Problems found in the live generation of `root` (empty when the index is consistent).

    `encoder_check`: given the recorded encoder description, the problems of loading it here (the
    pipelines pass `indexer.encoders.engines.encoder_problems`; the store loads no model itself).
    """
    try:
        path = resolve_generation(Path(root))
        db = open_for_reading(path / DATABASE)
    except StoreError as exc:
        return [str(exc)]
    try:
        db.execute("BEGIN")  # one commit for every check
        meta = read_meta(db)
        check_format(meta, path)
        problems = _database_problems(db)
        problems += _segment_problems(db, path, meta)
        problems += _row_problems(db, meta)
        problems += vocabulary_problems(path, meta.get("vocabulary"))
        problems += addition_problems(db, int(meta["encoder"]["dimension"]))
        if expected_encoder and meta["encoder"]["id"] != expected_encoder:
            problems.append(f"encoder is {meta['encoder']['id']!r}, expected {expected_encoder!r}")
        if encoder_check is not None:
            problems += encoder_check(meta["encoder"])
    except StoreError as exc:
        problems = [str(exc)]
    except apsw.Error as exc:
        problems = [f"{DATABASE}: {exc}"]
    finally:
        db.close()
    if not problems:
        problems += _lexical_problems(path)
    if not problems:
        try:  # what a search does: open every part together
            IndexReader.open(path).close()
        except StoreError as exc:
            problems.append(str(exc))
    return problems


def _database_problems(db: apsw.Connection) -> list[str]:
    problems = []
    if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        problems.append(f"{DATABASE} fails SQLite's integrity check")
    return problems


def _lexical_problems(path: Path) -> list[str]:
    """FTS5's own check of its index structure. It is run as an INSERT command, so it needs a
    writable connection (it changes nothing); on a read-only index the row counts stand in for it."""
    if not os.access(path / DATABASE, os.W_OK) or not os.access(path, os.W_OK):
        return []
    db = open_for_writing(path / DATABASE)
    try:
        db.execute("INSERT INTO passages_fts (passages_fts, rank) VALUES ('integrity-check', 0)")
    except apsw.Error as exc:
        return [f"the lexical index fails FTS5's integrity check: {exc}"]
    finally:
        db.close()
    return []


def _segment_problems(db: apsw.Connection, path: Path, meta: dict) -> list[str]:
    problems = []
    families = {fid: file for fid, file in db.execute("SELECT id, file FROM families")}
    for fid, file in families.items():
        if not (path / FAMILIES / file).is_file():
            problems.append(f"{FAMILIES}/{file} (IVF family {fid}) is missing")
            continue
        try:  # read only by writers (new segments are cloned from it), so searches never notice
            family = VectorIndex.read_family(path / FAMILIES / file)
        except RuntimeError:
            problems.append(f"{FAMILIES}/{file} (IVF family {fid}) is unreadable")
            continue
        if family.d != int(meta["encoder"]["dimension"]):
            problems.append(f"{FAMILIES}/{file} (IVF family {fid}) holds {family.d}-d cells")
    stored: list[np.ndarray] = []
    previous_max = -1
    rows = db.execute("SELECT file, family, vectors, min_id, max_id FROM segments ORDER BY min_id")
    for file, family, vectors, lo, hi in list(rows):
        where = f"{SEGMENTS}/{file}"
        if family is not None and family not in families:
            problems.append(f"{where} names IVF family {family}, which is not recorded")
        if lo <= previous_max:
            problems.append(f"{where} overlaps the id range of the segment before it")
        previous_max = hi
        try:
            index = VectorIndex.read(path / SEGMENTS / file)
        except RuntimeError:
            problems.append(f"{where} is missing or unreadable")
            continue
        ids = index.ids()
        if index.d != int(meta["encoder"]["dimension"]):
            problems.append(
                f"{where} holds {index.d}-d vectors, the encoder makes {meta['encoder']['dimension']}"
            )
        if len(ids) != vectors:
            problems.append(f"{where} holds {len(ids)} vectors, its row says {vectors}")
        if len(ids) and (ids.min() < lo or ids.max() > hi):
            problems.append(f"{where} holds ids outside its range {lo}-{hi}")
        stored.append(ids)
    all_ids = np.sort(np.concatenate(stored)) if stored else np.zeros(0, np.int64)
    if len(np.unique(all_ids)) != len(all_ids):
        problems.append("a passage id is stored in two segments")
    tombstones = np.fromiter((r[0] for r in db.execute("SELECT passage_id FROM tombstones")), np.int64)
    orphans = np.setdiff1d(tombstones, all_ids)
    if len(orphans):
        problems.append(f"tombstones for ids no segment stores: {orphans[:10].tolist()}")
    live = np.setdiff1d(all_ids, tombstones)
    rows_ids = np.fromiter((r[0] for r in db.execute("SELECT id FROM passages ORDER BY id")), np.int64)
    if not np.array_equal(live, rows_ids):
        without_row = np.setdiff1d(live, rows_ids)[:10].tolist()
        without_vector = np.setdiff1d(rows_ids, live)[:10].tolist()
        problems.append(
            f"live vectors and passages differ: vectors without a passage row {without_row}, "
            f"passages without a vector {without_vector}"
        )
    if len(rows_ids) and rows_ids.max() >= int(meta["next_passage_id"]):
        problems.append("a passage id is at or above the next id to hand out")
    return problems


def _row_problems(db: apsw.Connection, meta: dict) -> list[str]:
    problems = []
    passages = db.execute("SELECT count(*) FROM passages").fetchone()[0]
    articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    counts = meta["counts"]
    if articles != counts.get("articles"):
        problems.append(f"the metadata says {counts.get('articles')} articles, the database has {articles}")
    if passages != counts.get("passages"):
        problems.append(f"the metadata says {counts.get('passages')} passages, the database has {passages}")
    lexical = db.execute("SELECT count(*) FROM passages_fts").fetchone()[0]
    if lexical != passages:
        problems.append(f"the lexical index has {lexical} rows for {passages} passages")
    bad = db.execute(
        "SELECT count(*) FROM passages p LEFT JOIN articles a ON a.id = p.article"
        " WHERE a.id IS NULL OR p.start < 0 OR p.end > length(a.text) OR p.start >= p.end"
    ).fetchone()[0]
    if bad:
        problems.append(f"{bad} passages point outside their article")
    fingerprint = fingerprint_of(db.execute("SELECT article_id, content_hash FROM articles"))
    if fingerprint != meta.get("corpus_fingerprint"):
        problems.append("the corpus fingerprint does not match the articles stored")
    return problems
