"""The segmented live index: writes cost what they change, ranking ignores how articles are spread
over segments, tombstones mask deleted vectors, merges keep the segment count bounded, and readers
keep one consistent view while writers commit."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
from conftest import CORPUS, DATA
from dalil.indexer.build import build_index
from dalil.indexer.corpus import RawArticle, read_corpus
from dalil.indexer.store.check import check_index
from dalil.indexer.store.layout import SEGMENTS, read_current
from dalil.indexer.store.merge_policy import MERGE_FACTOR
from dalil.indexer.store.reader import IndexReader
from dalil.indexer.update import merge_now, update_index
from dalil.search.searcher import Searcher

P1 = "أعلنت شركة هواوي عن هاتف ذكي جديد يدعم شبكات الجيل الخامس في مصر، وقالت إنه سيطرح في الأسواق قريبا."
P2 = "وأوضحت الشركة أن الهاتف يأتي بكاميرا متطورة وبطارية تدوم يومين كاملين مع الاستخدام المعتاد للهاتف."


def news(article_id: str, *paragraphs: str, title: str = "هواوي تطلق هاتفا جديدا") -> RawArticle:
    return RawArticle(article_id=article_id, text="\n\n".join(paragraphs), title=title, date="2024-05-01")


@pytest.fixture
def index(tmp_path, seed_index):
    out = tmp_path / "index"
    shutil.copytree(seed_index, out)
    return out


def _segment_files(index):
    return {p.name: p.stat() for p in (index / read_current(index) / SEGMENTS).iterdir()}


def test_adding_an_article_writes_one_small_segment_and_touches_no_other(index, encoder):
    before = _segment_files(index)
    summary = update_index(index, [news("n1", P1, P2)], (), encoder, merge_after=False)
    after = _segment_files(index)
    new = set(after) - set(before)
    assert summary.added == ["n1"] and len(new) == 1
    assert after[new.pop()].st_size < 16_000  # two 384-d vectors, their ids, FAISS headers
    for name, stat in before.items():  # the existing segment is neither rewritten nor replaced
        assert (after[name].st_ino, after[name].st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert check_index(index) == []


def _questions() -> list[str]:
    return [json.loads(line)["query"] for line in (DATA / "seed_questions.jsonl").read_text().splitlines()]


def _rankings(index, encoder, words_of=None) -> dict:
    """Every seed question's top 10 per mode. `words_of`: another searcher whose word table (Arabic
    counterparts of English words, which English hybrid search uses) stands in for this index's:
    an index grown article by article has its first build's table and the words its commits added,
    a full build of the same articles its own table, and the comparison below is about segments,
    not about that table."""
    searcher = Searcher.open(index, encoder)
    if words_of is not None:
        searcher.translations, searcher.follow_additions = words_of.translations, False
    try:
        out = {}
        for mode in ("hybrid", "dense", "lexical"):
            for q in _questions():
                hits = searcher.search(q, 10, mode)
                out[(mode, q)] = [(h.article_id, h.passage_id, h.score) for h in hits]
        return out
    finally:
        searcher.close()


def _assert_same_rankings(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert [x[:2] for x in a[key]] == [x[:2] for x in b[key]], key
        assert np.allclose([x[2] for x in a[key]], [x[2] for x in b[key]], atol=1e-4), key


def test_ranking_does_not_depend_on_how_articles_are_spread_over_segments(tmp_path, seed_index, encoder):
    at_once = _rankings(seed_index, encoder)
    words = Searcher.open(seed_index, encoder)
    articles = list(read_corpus(CORPUS))
    one_by_one = tmp_path / "one-by-one"
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy(CORPUS / f"{articles[0].article_id}.txt", first)
    build_index(first, one_by_one, encoder, progress=False)
    for article in articles[1:]:
        update_index(one_by_one, [article], (), encoder, merge_after=False)
    # a story added and deleted again leaves tombstones behind, which must not count anywhere
    update_index(one_by_one, [news("gone", P1, P2)], (), encoder, merge_after=False)
    update_index(one_by_one, (), ["gone"], None, merge_after=False)
    reader = IndexReader.open(one_by_one)
    assert len(reader.vectors.segments) == len(articles) + 1 and reader.vectors.deleted
    reader.close()
    assert check_index(one_by_one) == []
    _assert_same_rankings(at_once, _rankings(one_by_one, encoder, words))
    merge_now(one_by_one, everything=True)  # `dalil optimize`
    reader = IndexReader.open(one_by_one)
    assert len(reader.vectors.segments) == 1 and not reader.vectors.deleted
    reader.close()
    assert check_index(one_by_one) == []
    _assert_same_rankings(at_once, _rankings(one_by_one, encoder, words))
    words.close()


def test_deleted_passages_are_masked_until_a_merge_drops_them(index, encoder):
    victim = "000_5e840d295c91c543"
    update_index(index, (), [victim], None, merge_after=False)
    reader = IndexReader.open(index)
    (segment,) = reader.vectors.segments
    masked = reader.vectors.deleted[segment.id]
    assert len(masked) > 0 and all(segment.holds(int(p)) for p in masked)  # still stored, not live
    searcher = Searcher(reader, encoder)
    for mode in ("dense", "hybrid", "lexical"):
        hits = searcher.search("التعاون مع روسيا في الجيل الخامس", 20, mode)
        assert hits and all(h.article_id != victim for h in hits)
    searcher.close()
    merged = merge_now(index, everything=True)
    assert merged is not None and merged.purged == len(masked)
    reader = IndexReader.open(index)
    assert not reader.vectors.deleted and reader.vectors.ntotal == reader.manifest["counts"]["passages"]
    reader.close()
    assert check_index(index) == []


def test_merges_keep_the_segment_count_bounded(index, encoder):
    for i in range(2 * MERGE_FACTOR + 3):
        update_index(index, [news(f"m{i}", P1 + f" رقم {i}")], (), encoder)  # merges after each commit
        segments = len(_segment_files(index))
        assert segments <= MERGE_FACTOR, (i, segments)
    assert check_index(index) == []
    ids = {
        h.article_id for h in Searcher.open(index, encoder).search("هاتف هواوي الجديد رقم", 100, "lexical")
    }
    assert {f"m{i}" for i in range(2 * MERGE_FACTOR + 3)} <= ids


def test_an_open_reader_survives_a_merge_that_removes_its_segment_files(index, encoder):
    for i in range(3):
        update_index(index, [news(f"r{i}", P1 + f" رقم {i}")], (), encoder, merge_after=False)
    searcher = Searcher.open(index, encoder)
    before = searcher.search("هاتف هواوي الجديد", 5)
    merge_now(index, everything=True)
    school = "افتتح وزير التعليم مدرسة جديدة لتعليم البرمجة للأطفال في مدينة أسوان بصعيد مصر هذا الأسبوع."
    update_index(index, [news("r9", school, title="مدرسة للبرمجة")], (), encoder, merge_after=False)
    after = searcher.search("هاتف هواوي الجديد", 5)
    assert [h.article_id for h in after[:3]] == [h.article_id for h in before[:3]] == ["r0", "r1", "r2"]
    assert searcher.search("مدرسة البرمجة في أسوان", 1)[0].article_id == "r9"
    searcher.close()


def test_readers_see_whole_commits_while_a_writer_commits(index, encoder):
    """In every snapshot, FAISS and SQLite agree: each live vector has its row, counts match."""
    searcher = Searcher.open(index, encoder)
    question = encoder.encode_queries(["هاتف هواوي الجديد"])
    stop = threading.Event()
    failures: list[str] = []
    snapshots: list[int] = []

    def read() -> None:
        while not stop.is_set():
            with searcher.index.snapshot() as snap:
                _, ids = snap.vectors.search(question, 100)
                live = [int(i) for i in ids[0] if i >= 0]
                rows = snap.passages(live)
                n = snap.db.execute("SELECT count(*) FROM passages").fetchone()[0]
                if len(rows) != len(live) or not (n == snap.vectors.ntotal == snap.live_passages):
                    failures.append(f"generation {snap.commit}: {len(rows)}/{len(live)} rows, {n} passages")
                snapshots.append(snap.commit)
            searcher.search("5G cooperation with Russia", 5)  # the whole path, beside the writer

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(8):
            update_index(index, [news(f"w{i}", P1 + f" رقم {i}", P2 + f" رقم {i}")], (), encoder)
            if i % 2:
                update_index(index, (), [f"w{i - 1}"], None)
    finally:
        stop.set()
        for t in threads:
            t.join()
    searcher.close()
    assert failures == []
    assert len(set(snapshots)) > 3  # the readers did see the commits go by
    assert check_index(index) == []


def test_an_index_that_outgrows_exact_search_gets_ivf_cells_beside_reads_and_writes(tmp_path, encoder):
    from dalil.indexer.store.vector_settings import VectorIndexSettings

    index = tmp_path / "index"
    build_index(CORPUS, index, encoder, progress=False, vector_settings=VectorIndexSettings(exact_below=60))
    reader = IndexReader.open(index)
    assert reader.manifest["faiss"]["type"] == "IDMap2,Flat"
    live = reader.manifest["counts"]["passages"]
    reader.close()
    searcher = Searcher.open(index, encoder)  # a reader open across the change of cells
    extra = [news(f"g{i}", P1 + f" رقم {i}", P2 + f" رقم {i}") for i in range((60 - live) // 2 + 1)]
    update_index(index, extra, (), encoder, merge_after=False)
    assert merge_now(index) is None or IndexReader.open(index).manifest["faiss"]["type"] == "IDMap2,Flat"
    result = merge_now(index, encoder=encoder)  # what the server's and ingest's mergers do
    assert result is not None and "past exact search" in result.reason
    reader = IndexReader.open(index)
    faiss_section = reader.manifest["faiss"]
    assert faiss_section["type"].startswith("IVF") and faiss_section["tuning"]["queries"] > 0
    (segment,) = reader.vectors.segments
    assert segment.family is not None
    reader.close()
    assert check_index(index) == []
    assert searcher.search("التعاون مع روسيا في الجيل الخامس", 1)[0].article_id == "000_5e840d295c91c543"
    update_index(index, [news("after", P1)], (), encoder)  # a small new segment: exact until merged
    reader = IndexReader.open(index)
    assert [s.family for s in reader.vectors.segments] == [segment.family, None]
    reader.close()
    assert merge_now(index, encoder=encoder) is None  # grown far less than 4x: the cells still fit
    assert check_index(index) == []


@pytest.fixture(scope="module")
def two_segment_ivf(tmp_path_factory, encoder):
    from dalil.indexer.store.vector_settings import VectorIndexSettings

    index = tmp_path_factory.mktemp("ivf") / "index"
    settings = VectorIndexSettings(kind="ivf-flat", nlist=2)
    build_index(CORPUS, index, encoder, progress=False, vector_settings=settings)
    update_index(index, [news("n1", P1, P2)], (), encoder, merge_after=False)  # two segments
    return index


@pytest.mark.parametrize(
    "damage", ["truncate-db", "garbage-db", "truncate-segment", "delete-segment", "delete-family"]
)
def test_every_damaged_file_is_named_by_check_and_refused_by_search(tmp_path, two_segment_ivf, damage):
    from dalil.indexer.store.layout import DATABASE, FAMILIES, StoreError

    index = tmp_path / "index"
    shutil.copytree(two_segment_ivf, index)
    generation = index / read_current(index)
    segment = sorted((generation / SEGMENTS).iterdir())[-1]
    family = next((generation / FAMILIES).iterdir())
    target, name = {
        "truncate-db": (generation / DATABASE, DATABASE),
        "garbage-db": (generation / DATABASE, DATABASE),
        "truncate-segment": (segment, segment.name),
        "delete-segment": (segment, segment.name),
        "delete-family": (family, family.name),
    }[damage]
    if damage.startswith("truncate"):
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 3])
    elif damage.startswith("garbage"):
        target.write_bytes(b"\\x00garbage" * 5000)
    else:
        target.unlink()
    problems = check_index(index)
    assert problems and any(name in p for p in problems), problems
    if damage != "delete-family":  # a missing family only stops new segments from being cloned
        with pytest.raises(StoreError, match="damaged"):
            IndexReader.open(index)


def test_merges_into_ivf_cells_keep_codes_and_re_encode_exact_segments(
    tmp_path, two_segment_ivf, encoder, monkeypatch
):
    from dalil.indexer.store import merge_policy
    from dalil.indexer.store.vectors import IvfVectors

    index = tmp_path / "index"
    shutil.copytree(two_segment_ivf, index)  # an IVF segment from the build, an exact one from an add
    monkeypatch.setattr(merge_policy, "IVF_SEGMENT_MIN", 10)  # the seed corpus is far below 2,048 vectors
    before = Searcher.open(index, encoder).search("هاتف هواوي الجديد", 3)
    update_index(index, (), ["004_19b3c5eaec262736"], None, merge_after=False)
    result = merge_now(index, everything=True)
    assert result is not None and result.purged > 0
    reader = IndexReader.open(index)
    (segment,) = reader.vectors.segments
    assert segment.family is not None and isinstance(segment.index, IvfVectors) and segment.index.nlist == 2
    assert reader.vectors.ntotal == reader.manifest["counts"]["passages"]
    reader.close()
    assert check_index(index) == []
    after = Searcher.open(index, encoder).search("هاتف هواوي الجديد", 3)
    assert after[0].article_id == before[0].article_id == "n1"


def test_two_merges_of_the_same_segments_one_wins_and_nothing_is_lost(index, encoder):
    from dalil.indexer.store.locking import writer_lock
    from dalil.indexer.store.merging import MergeConflict, merge

    for i in range(3):
        update_index(index, [news(f"c{i}", P1 + f" رقم {i}")], (), encoder, merge_after=False)
    before = _segment_files(index)

    def lock_after_a_rival_merged():
        assert merge_now(index, everything=True) is not None  # the rival commits first
        return writer_lock(index)

    with pytest.raises(MergeConflict):
        merge(index, lock_after_a_rival_merged, everything=True)
    after = _segment_files(index)
    assert len(after) == 1 and not set(after) & set(before)  # the loser's file is gone too
    assert check_index(index) == []
    assert len(Searcher.open(index, encoder).search("هاتف هواوي الجديد رقم", 50, "lexical")) >= 3


def test_a_commit_in_the_same_process_spares_the_segment_a_merge_is_writing(index, encoder):
    """A server merges in a background thread while request threads commit: the commit's debris
    sweep must not take the merged segment written off the lock, or the merge would commit a
    segment file that is gone (found by the hostile API fuzz test)."""
    from dalil.indexer.store.locking import writer_lock
    from dalil.indexer.store.merging import merge

    for i in range(3):
        update_index(index, [news(f"c{i}", P1 + f" رقم {i}")], (), encoder, merge_after=False)

    def lock_after_a_commit_in_another_thread():
        update_index(index, [news("late", P2)], (), encoder, merge_after=False)  # sweeps debris
        return writer_lock(index)

    assert merge(index, lock_after_a_commit_in_another_thread, everything=True) is not None
    assert check_index(index) == []
    found = Searcher.open(index, encoder).search("هاتف هواوي الجديد رقم", 50, "lexical")
    assert {"c0", "c1", "c2", "late"} <= {hit.article_id for hit in found}
