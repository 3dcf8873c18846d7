"""A merge of segments: planned by store/merge_policy.py, read and written off the writer lock, and
committed under it in one transaction that re-checks its plan (a conflicting merge loses cleanly).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import apsw
import numpy as np
from dalil.indexer.store import merge_policy
from dalil.indexer.store.database import (
    COMMIT_KEY,
    commit_number,
    insert_family,
    insert_segment,
    open_for_reading,
    open_for_writing,
    read_meta,
    write_meta,
    write_transaction,
)
from dalil.indexer.store.layout import DATABASE, FAMILIES, SEGMENTS, StoreError, resolve_generation
from dalil.indexer.store.merge_policy import MergePlan, SegmentInfo, cells_outgrown, plan_merge
from dalil.indexer.store.uncommitted import settled, write_faiss
from dalil.indexer.store.vector_settings import VectorIndexSettings
from dalil.indexer.store.vectors import VectorIndex
from dalil.indexer.store.writer import now_stamp

log = logging.getLogger("dalil.store")


def segment_infos(db: apsw.Connection) -> list[SegmentInfo]:
    """Segments in id order, with the tombstoned ids each still stores."""
    rows = db.execute(
        "SELECT s.id, s.file, s.family, s.vectors, s.min_id, s.max_id,"
        " (SELECT count(*) FROM tombstones t WHERE t.passage_id BETWEEN s.min_id AND s.max_id)"
        " FROM segments s ORDER BY s.min_id"
    )
    return [SegmentInfo(*r) for r in rows]


class MergeConflict(StoreError):
    """Another merge changed the segments this one planned on first; nothing was changed."""

    code = "merge_conflict"


@dataclass
class MergeResult:
    merged: list[str]
    into: str | None
    vectors: int
    purged: int
    reason: str
    seconds: float


def merge(
    root: Path,
    lock,
    everything: bool = False,
    tuning: Callable[[list[str]], np.ndarray] | None = None,
) -> MergeResult | None:
    """Merge segments by the policy (or all, with `everything`), off the writer lock but its commit.

    `lock`: a callable returning the writer-lock context manager. The heavy part (reading segments,
    writing the merged one) runs without it; writes go on meanwhile. The commit re-checks under
    the lock that every merged segment is still there, so two mergers never both win.

    `tuning`: passage texts -> query vectors (pseudo-questions embedded as queries). Given it, and
    when `cells_outgrown` says so, every segment is merged into one of newly trained IVF cells, with
    nprobe tuned on them, beside reads and writes: segments committed meanwhile keep their cells
    and are merged into the new ones later.
    """
    started = time.perf_counter()
    path = resolve_generation(Path(root))
    planned = _planned(path, everything, can_retrain=tuning is not None)
    if planned is None:
        return None
    merged, family_id, new_family = _merged_vectors(path, planned, tuning)
    plan = planned.plan
    name = _write_and_commit(path, planned, merged, family_id, new_family, lock)
    for s in plan.segments:  # no commit names them now; readers that loaded them keep their copy
        with contextlib.suppress(OSError):
            (path / SEGMENTS / s.file).unlink()
    result = MergeResult(
        [s.file for s in plan.segments],
        name,
        merged.size,
        len(planned.dead),
        plan.reason,
        time.perf_counter() - started,
    )
    log.info(
        "merged %d segments into %s (%d vectors, %d purged): %s",
        len(result.merged),
        name,
        result.vectors,
        result.purged,
        plan.reason,
    )
    return result


@dataclass
class _Planned:
    """What one read transaction decided: the plan, and what executing it needs."""

    plan: MergePlan
    meta: dict
    family_row: tuple | None  # (id, file, trained_on) of the newest IVF family
    dead: np.ndarray  # every tombstone in the merged range, as of the plan; later ones stay tombstones
    texts: list[str]  # passages to tune new cells on (when retraining)
    retrain: bool


def _planned(path: Path, everything: bool, can_retrain: bool) -> _Planned | None:
    db = open_for_reading(path / DATABASE)
    try:
        db.execute("BEGIN")
        meta = read_meta(db)
        infos = segment_infos(db)
        family_row = db.execute(
            "SELECT id, file, trained_on FROM families ORDER BY id DESC LIMIT 1"
        ).fetchone()
        why = cells_outgrown(meta, family_row[2] if family_row else None, int(meta["counts"]["passages"]))
        retrain = why is not None and can_retrain
        plan = MergePlan(infos, f"new cells: {why}") if retrain else plan_merge(infos, everything)
        if plan is None or not plan.segments:
            return None
        lo, hi = plan.segments[0].min_id, plan.segments[-1].max_id
        dead = _ids(db, "SELECT passage_id FROM tombstones WHERE passage_id BETWEEN ? AND ?", (lo, hi))
        texts = _sample_texts(db, meta) if retrain else []
        db.execute("COMMIT")
    finally:
        db.close()
    return _Planned(plan, meta, family_row, dead, texts, retrain)


def _merged_vectors(path: Path, planned: _Planned, tuning) -> tuple[VectorIndex, int | None, tuple | None]:
    """The merged segment's index, its family id, and (retraining) the new family (file, n, section)."""
    plan, family_row = planned.plan, planned.family_row
    family_id, family = (None, None)
    if family_row is not None and sum(s.live for s in plan.segments) >= merge_policy.IVF_SEGMENT_MIN:
        family_id, family = family_row[0], VectorIndex.read_family(path / FAMILIES / family_row[1])
    try:
        sources = [(VectorIndex.read(path / SEGMENTS / s.file), s.family) for s in plan.segments]
    except RuntimeError as exc:  # a concurrent merge removed a planned segment's file meanwhile
        raise MergeConflict(f"a segment to merge is gone: {exc}") from exc
    if planned.retrain:
        merged, new_family = _retrained(sources, planned.dead, planned.meta, tuning(planned.texts), path)
        return merged, family_id, new_family
    dimension = int(planned.meta["encoder"]["dimension"])
    return VectorIndex.merged(sources, planned.dead, dimension, family_id, family), family_id, None


def _write_and_commit(
    path: Path, planned: _Planned, merged: VectorIndex, family_id, new_family, lock
) -> str | None:
    """Write the merged segment, then commit the swap under the lock; on any failure, remove what
    this merge wrote (no commit names it). Returns the new segment's file (None: nothing was live)."""
    name = None
    try:
        name = write_faiss(merged.native, path / SEGMENTS, "seg") if merged.size else None
        with lock():
            _commit_merge(path, planned.plan, name, family_id, merged.size, planned.dead, new_family)
    except BaseException:
        debris = [path / SEGMENTS / name] if name else []
        debris += [path / FAMILIES / new_family[0]] if new_family else []
        for file in debris:
            with contextlib.suppress(OSError):
                file.unlink()
        raise
    finally:
        settled(name, new_family[0] if new_family else None)
    return name


def _ids(db: apsw.Connection, sql: str, params: tuple = ()) -> np.ndarray:
    return np.fromiter((r[0] for r in db.execute(sql, params)), np.int64)


def _sample_texts(db: apsw.Connection, meta: dict) -> list[str]:
    """Texts of a random sample of live passages, for pseudo-questions that tune nprobe."""
    settings = VectorIndexSettings(**(meta.get("vector_settings") or {}))
    rows = db.execute("SELECT text FROM passage_rows ORDER BY random() LIMIT ?", (settings.tuning_queries,))
    return [r[0] for r in rows]


def _retrained(sources, purged: np.ndarray, meta: dict, queries: np.ndarray, path: Path):
    """All live vectors of the sources in one segment of newly trained cells, and the family file."""
    parts = [index.live(purged) for index, _ in sources]
    vectors, ids = np.vstack([v for v, _ in parts]), np.concatenate([i for _, i in parts])
    settings = VectorIndexSettings(**(meta.get("vector_settings") or {}))
    kind = settings.kind if settings.kind != "auto" else "ivf-sq8"
    index, section = VectorIndex.build(vectors, ids, replace(settings, kind=kind), queries)
    name = write_faiss(index.family(), path / FAMILIES, "fam")
    return index, (name, len(ids), section)


def _commit_merge(
    path: Path, plan: MergePlan, name: str | None, family_id, vectors: int, purged, new_family=None
) -> None:
    db = open_for_writing(path / DATABASE)
    try:
        with write_transaction(db):
            ids = [s.id for s in plan.segments]
            marks = ",".join("?" * len(ids))
            present = db.execute(f"SELECT count(*) FROM segments WHERE id IN ({marks})", ids).fetchone()[0]
            if present != len(ids):
                raise MergeConflict("another merge replaced these segments first")
            if name is not None and not (path / SEGMENTS / name).is_file():  # never name a lost file
                raise StoreError(f"the merged segment {name} vanished before its commit")
            meta = read_meta(db)
            commit = commit_number(meta) + 1
            db.execute(f"DELETE FROM segments WHERE id IN ({marks})", ids)
            changes: dict = {COMMIT_KEY: commit, "updated_at": now_stamp()}
            if new_family is not None:
                family_id = insert_family(db, *new_family)
                changes["faiss"] = new_family[2]
            if name is not None:
                id_range = (plan.segments[0].min_id, plan.segments[-1].max_id)
                insert_segment(db, name, family_id, vectors, id_range, commit)
            db.executemany("DELETE FROM tombstones WHERE passage_id = ?", [(int(p),) for p in purged])
            write_meta(db, changes)
    finally:
        db.close()


__all__ = ["MergeConflict", "MergeResult", "merge", "segment_infos"]
