"""Splitting an index into shards by article id: the partitions that sharded serving holds.

A shard is an ordinary index directory (CURRENT, generations, segments, its own writer lock), so
everything that writes or checks an index works on one shard unchanged. Which shard holds an
article, the directory names and the passage-id translation are in store/shard_routing.py.

Splitting copies rows and stored vectors (nothing is embedded again) and the whole vocabulary table
into each shard, then records the split in `SHARDS`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path

import numpy as np
from dalil.indexer.analysis.cleaning import CleanArticle
from dalil.indexer.analysis.splitting import Passage
from dalil.indexer.store.layout import StoreError, read_current
from dalil.indexer.store.reader import IndexReader
from dalil.indexer.store.shard_routing import SHARDS_FILE, read_shards_file, shard_of, shard_roots, shards_dir
from dalil.indexer.store.vector_settings import VectorIndexSettings
from dalil.indexer.store.vocabulary import VOCABULARY_INDEX, VOCABULARY_VECTORS, VOCABULARY_WORDS
from dalil.indexer.store.writer import IndexBuilder

from dalil.progress import progress_bar

log = logging.getLogger("dalil.shards")

_CHUNK = 256  # articles whose vectors are read from the segments at once


def ensure_shards(root: Path, shards: int, progress: bool = False) -> list[Path]:
    """The shard directories of `root`, split now when there are none yet.

    Shards that exist are kept as they are, even if `root` changed since: after the split, writes go
    to the shards (the sharded service routes them), and `root` is only their starting point. To
    split a changed `root` again, remove its shards-<n> directory."""
    found = read_shards_file(root, shards)
    if found is not None and all(read_current(p) for p in shard_roots(root, shards)):
        return shard_roots(root, shards)
    return split_index(root, shards, progress)


def split_index(root: Path, shards: int, progress: bool = False) -> list[Path]:
    """Split the live version of the index at `root` into `shards` new index directories."""
    if shards < 1:
        raise StoreError("the number of shards must be at least 1")
    reader = IndexReader.open(root)
    try:
        with reader.snapshot() as snap:
            manifest = reader.manifest
            out = shards_dir(root, shards)
            if out.exists():
                shutil.rmtree(out)  # an unfinished split: its SHARDS file was never written
            settings = VectorIndexSettings(**(manifest.get("vector_settings") or {}))
            builders = [
                IndexBuilder(p, manifest["encoder"], manifest.get("settings") or {}, settings)
                for p in shard_roots(root, shards)
            ]
            try:
                _copy_articles(snap, builders, manifest["counts"]["articles"], progress)
                for builder in builders:
                    _copy_vocabulary(reader.path, builder, manifest)
                    builder.commit()
            except BaseException:
                for builder in builders:
                    builder.abort()
                raise
            record = {
                "shards": shards,
                "hash": "blake2b-64(article_id) mod shards",
                "passage_ids": "global = local * shards + shard",
                "source": f"{manifest.get('version')}@{manifest.get('generation')}",
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "articles": [b.articles for b in builders],
            }
            (out / SHARDS_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    finally:
        reader.close()
    log.info("split %s into %d shards: %s articles", root, shards, record["articles"])
    return shard_roots(root, shards)


def _copy_articles(snap, builders: list[IndexBuilder], total: int, progress: bool) -> None:
    bar = progress_bar(total, "art", "sharding", progress)
    with bar:
        chunk: list[dict] = []
        for article in snap.iter_articles():
            chunk.append(article)
            if len(chunk) >= _CHUNK:
                _copy_chunk(snap, builders, chunk)
                bar.update(len(chunk))
                chunk = []
        _copy_chunk(snap, builders, chunk)
        bar.update(len(chunk))


def _copy_chunk(snap, builders: list[IndexBuilder], articles: list[dict]) -> None:
    ids = np.array([p["passage_id"] for a in articles for p in a["passages"]], dtype=np.int64)
    vectors = snap.vectors_of(ids) if len(ids) else np.zeros((0, 0), np.float32)
    row = 0
    for stored in articles:
        passages = [Passage(p["ordinal"], p["start"], p["end"], p["text"]) for p in stored["passages"]]
        article = CleanArticle(
            article_id=stored["article_id"],
            title=stored["title"],
            text=stored["text"],
            paragraphs=(),  # used only to split, which was done when it was indexed
            source=stored["source"],
            category=stored["category"],
            date=stored["date"],
            url=stored["url"],
            lang=stored["lang"],
        )
        builder = builders[shard_of(article.article_id, len(builders))]
        new_ids = builder.add_article(article, passages)
        builder.add_vectors(new_ids, vectors[row : row + len(passages)])
        row += len(passages)


def _copy_vocabulary(source: Path, builder: IndexBuilder, manifest: dict) -> None:
    """Each shard keeps the whole table: cross-lingual highlighting needs every word, on any node."""
    for name in (VOCABULARY_WORDS, VOCABULARY_VECTORS, VOCABULARY_INDEX):
        if (source / name).is_file():
            shutil.copy2(source / name, builder.path / name)
    if "vocabulary" in manifest:
        builder.extra_manifest["vocabulary"] = manifest["vocabulary"]
