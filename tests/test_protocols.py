"""Every back-end satisfies the seam it stands behind (search/protocols.py, api/served.py): by name,
kind (method or property) and parameters, and, on real objects, by isinstance and by answering."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from dalil.api.served import LocalIndex, ServedIndex
from dalil.indexer.shard_split import split_index
from dalil.indexer.store import IndexReader
from dalil.indexer.store.reader import Snapshot
from dalil.search.protocols import (
    IndexView,
    SearchableIndex,
    ShardReads,
    conformance_problems,
    members,
    shard_calls,
)
from dalil.search.sharded_reader import ShardedIndex, ShardedSnapshot, ShardSearcher, local_shards

IMPLEMENTATIONS = [
    (Snapshot, IndexView),
    (ShardedSnapshot, IndexView),
    (IndexReader, SearchableIndex),
    (ShardedIndex, SearchableIndex),
    (ShardSearcher, ShardReads),
    (LocalIndex, ServedIndex),
]


@pytest.mark.parametrize(("cls", "protocol"), IMPLEMENTATIONS, ids=lambda x: x.__name__)
def test_each_back_end_has_every_member_of_its_protocol(cls, protocol):
    assert conformance_problems(cls, protocol) == []


def test_the_ray_served_shards_satisfy_the_served_face():
    pytest.importorskip("ray")
    from dalil.api.ray_serve import SHARD_CALLS, ServedShards, Shard

    assert conformance_problems(ServedShards, ServedIndex) == []
    # the shard replica accepts exactly the shard Protocol's reads, derived from it
    assert SHARD_CALLS == shard_calls() == set(members(ShardReads)) - {"close"}
    assert hasattr(Shard, "call")


def test_the_conformance_check_catches_a_drifted_back_end():
    class Drifted:
        commit = 3  # a plain attribute where a property is wanted is still readable, but:

        def passages(self, ids, extra):  # a parameter the Protocol does not have
            return {}

    problems = conformance_problems(Drifted, IndexView)
    assert "Drifted has no dense_search" in problems
    assert any(p.startswith("Drifted.passages: parameters") for p in problems)
    assert "Drifted.commit: a property is wanted" in problems


@pytest.fixture(scope="module")
def two_backends(seed_index, tmp_path_factory, encoder):
    root = tmp_path_factory.mktemp("protocols") / "index"
    shutil.copytree(seed_index, root)
    roots = split_index(root, 2)
    searchers = [ShardSearcher(p, k, 2) for k, p in enumerate(roots)]
    one = IndexReader.open(root)
    sharded = ShardedIndex(2, local_shards(searchers), vocabulary_dir=searchers[0].reader.path)
    yield one, sharded, searchers
    one.close()
    for s in searchers:
        s.close()


def test_real_objects_are_instances_and_answer_alike(two_backends, encoder):
    one, sharded, searchers = two_backends
    assert all(isinstance(s, ShardReads) for s in searchers)
    question = encoder.encode_queries(["الجيل الخامس"])
    answers = []
    for index in (one, sharded):
        assert isinstance(index, SearchableIndex)
        assert index.manifest["encoder"]["id"] == index.encoder_id
        with index.snapshot() as view:
            assert isinstance(view, IndexView)
            _, ids = view.dense_search(question, 5, {})
            ids = [int(i) for i in ids[0] if i >= 0]
            # vectors_of is part of the view (related articles use it), not a nested attribute
            assert view.vectors_of(np.asarray(ids)).shape == (len(ids), encoder.dimension)
            articles = index.article_ids(ids)
            answers.append(([articles[i] for i in ids], view.live_passages, view.live_articles))
        manifest, size, segments = index.describe()
        assert manifest["counts"]["passages"] == answers[-1][1] and size > 0 and segments >= 1
    assert answers[0] == answers[1]


def test_the_local_served_index_is_a_served_index(seed_index, tmp_path, encoder):
    from dalil.search.searcher import Searcher

    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    served = LocalIndex(root, Searcher.open(root, encoder))
    try:
        assert isinstance(served, ServedIndex)
        assert served.version and served.describe()[0]["counts"]["articles"] == 5
    finally:
        served.merger.stop()
        served.get().close()
