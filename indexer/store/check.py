"""`dalil check`: prove an index is whole, or say precisely what is wrong with it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from indexer.store.versions import IndexVersion, StoreError, corpus_fingerprint


def check_index(root: Path, expected_encoder: str | None = None, load_encoder: bool = False) -> list[str]:
    """Problems found in the live version of `root` (empty when the index is consistent).

    With `load_encoder`, the encoder recorded in the manifest is also loaded here and must produce
    vectors of the recorded id and dimension (the index is unusable for queries otherwise).
    """
    try:
        version = IndexVersion.open(Path(root))  # manifest, format, counts of all three parts
    except StoreError as exc:
        return [str(exc)]
    problems: list[str] = []
    try:
        db, m = version.db, version.manifest
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            problems.append("passages.sqlite fails SQLite's integrity check")
        faiss_ids = np.sort(faiss_id_map(version))
        rows = np.fromiter((r[0] for r in db.execute("SELECT id FROM passages ORDER BY id")), dtype=np.int64)
        if not np.array_equal(faiss_ids, rows):
            only_faiss = np.setdiff1d(faiss_ids, rows)[:10].tolist()
            only_rows = np.setdiff1d(rows, faiss_ids)[:10].tolist()
            problems.append(
                f"FAISS ids and passage rows differ: vectors without a row {only_faiss}, "
                f"rows without a vector {only_rows}"
            )
        articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
        if articles != m["counts"]["articles"]:
            problems.append(f"manifest says {m['counts']['articles']} articles, the database has {articles}")
        lexical = db.execute("SELECT count(*) FROM passages_fts").fetchone()[0]
        if lexical != len(rows):
            problems.append(f"the lexical index has {lexical} rows for {len(rows)} passages")
        bad = db.execute(
            "SELECT count(*) FROM passages p LEFT JOIN articles a ON a.id = p.article"
            " WHERE a.id IS NULL OR p.start < 0 OR p.end > length(a.text) OR p.start >= p.end"
        ).fetchone()[0]
        if bad:
            problems.append(f"{bad} passages point outside their article")
        fingerprint = corpus_fingerprint(db.execute("SELECT article_id, content_hash FROM articles"))
        if fingerprint != m.get("corpus_fingerprint"):
            problems.append("the corpus fingerprint does not match the articles stored")
        if expected_encoder and version.encoder_id != expected_encoder:
            problems.append(f"encoder is {version.encoder_id!r}, expected {expected_encoder!r}")
        if load_encoder:
            problems += _encoder_problems(version)
    except sqlite3.DatabaseError as exc:
        problems.append(f"passages.sqlite: {exc}")
    finally:
        version.close()
    return problems


def faiss_id_map(version: IndexVersion) -> np.ndarray:
    from indexer.store.vectors import stored_ids

    return stored_ids(version.vectors)


def _encoder_problems(version: IndexVersion) -> list[str]:
    from indexer.encoders.engines import EncoderError, spec_from_description
    from indexer.encoders.engines import load_encoder as load

    try:
        encoder = load(spec_from_description(version.manifest["encoder"]))
    except EncoderError as exc:
        return [f"the index's encoder {version.encoder_id!r} cannot be loaded here: {exc}"]
    problems = []
    if encoder.model_id != version.encoder_id:
        problems.append(
            f"the encoder loaded is {encoder.model_id!r}, the index was built with {version.encoder_id!r}"
        )
    if encoder.dimension != version.vectors.d:
        problems.append(
            f"the encoder makes {encoder.dimension}-d vectors, the index holds {version.vectors.d}-d"
        )
    return problems
