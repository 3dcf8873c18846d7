"""Where an article lives in an index split into shards, and how passage ids translate.

    <index>/shards-<n>/SHARDS         which index version was split, and how (indexer/shard_split.py)
    <index>/shards-<n>/shard-<k>/     shard k: an ordinary index directory

An article lives in shard `shard_of(article_id, n)`: a stable hash (Python's own hash() is salted per
process), so every process and machine routes an article, its updates and its deletion to the same
shard. A passage keeps its own number inside its shard; `global_id` / `local_id` translate, so ids are
unique over the whole collection without the shards agreeing on anything.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

SHARDS_FILE = "SHARDS"


def shard_of(article_id: str, shards: int) -> int:
    digest = hashlib.blake2b(article_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def global_id(local: int, shard: int, shards: int) -> int:
    return local * shards + shard


def local_id(passage: int, shards: int) -> tuple[int, int]:
    """(shard, passage id inside it) of a collection-wide passage id."""
    return passage % shards, passage // shards


def shards_dir(root: Path, shards: int) -> Path:
    return Path(root) / f"shards-{shards}"


def shard_roots(root: Path, shards: int) -> list[Path]:
    return [shards_dir(root, shards) / f"shard-{k}" for k in range(shards)]


def read_shards_file(root: Path, shards: int) -> dict | None:
    try:
        return json.loads((shards_dir(root, shards) / SHARDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
