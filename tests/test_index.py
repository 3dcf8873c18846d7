"""The index on disk: round trip, metadata, generations and atomic switch, damage detection."""

from __future__ import annotations

import shutil

import pytest
from dalil.indexer.build import build_index
from dalil.indexer.corpus import CorpusError
from dalil.indexer.store.database import FORMAT_VERSION, open_for_writing, read_meta, write_meta
from dalil.indexer.store.layout import (
    CURRENT,
    DATABASE,
    SEGMENTS,
    IndexCorruptError,
    IndexNotFoundError,
    OldFormatError,
    StoreError,
    read_current,
)
from dalil.indexer.store.reader import IndexReader
from dalil.search.searcher import EncoderMismatchError, QueryError, Searcher


def test_round_trip_build_reopen_search(seed_index, encoder):
    version = IndexReader.open(seed_index)
    m = version.manifest
    assert m["format_version"] == FORMAT_VERSION and m["encoder"]["id"] == encoder.model_id
    assert m["encoder"]["dimension"] == 384 and m["counts"]["articles"] == 5
    assert m["counts"]["passages"] == version.vectors.ntotal > 5
    assert len(m["corpus_fingerprint"]) == 64 and m["created_at"]
    searcher = Searcher(version, encoder)
    hits = searcher.search("5G cooperation with Russia", k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert hits[0].article_id == "000_5e840d295c91c543"
    article_text = version.article(hits[0].article_id)["text"]
    assert article_text[hits[0].start : hits[0].end] == hits[0].text
    searcher.close()


def test_search_opens_the_database_read_only(seed_index):
    version = IndexReader.open(seed_index)
    with version.snapshot() as snap, pytest.raises(Exception, match="readonly"):
        snap.db.execute("DELETE FROM passages")
    version.close()


def test_vectors_are_unit_length(seed_index):
    version = IndexReader.open(seed_index)
    (segment,) = version.vectors.segments
    vectors, _ = segment.index.all()
    assert abs(float((vectors**2).sum(axis=1).min()) - 1) < 1e-4
    version.close()


@pytest.fixture
def tiny_corpus(tmp_path):
    corpus = tmp_path / "tiny"
    corpus.mkdir()
    (corpus / "a.txt").write_text("مصر وروسيا\nاتفقت مصر وروسيا على التعاون في مجال الجيل الخامس.\n")
    (corpus / "b.txt").write_text("الصين\nبحث الوزير مع سفير الصين التعاون في الذكاء الاصطناعي.\n")
    return corpus


def test_rebuild_switches_atomically_and_keeps_one_previous(tmp_path, tiny_corpus, encoder):
    out = tmp_path / "idx"
    build_index(tiny_corpus, out, encoder, progress=False)
    first = read_current(out)
    build_index(tiny_corpus, out, encoder, progress=False)
    second = read_current(out)
    assert first != second and (out / first).is_dir() and (out / second).is_dir()
    build_index(tiny_corpus, out, encoder, progress=False)
    assert not (out / first).exists()  # only the one previous version is kept


def test_failed_rebuild_leaves_the_old_index_serving(tmp_path, tiny_corpus, encoder):
    out = tmp_path / "idx"
    build_index(tiny_corpus, out, encoder, progress=False)
    before = read_current(out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{broken\n")
    with pytest.raises(CorpusError):
        build_index(bad, out, encoder, progress=False)
    assert read_current(out) == before
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]
    assert Searcher.open(out).search("مصر وروسيا", 1)


def test_encoder_mismatch_is_refused(seed_index, encoder):
    version = IndexReader.open(seed_index)
    version.manifest["encoder"]["id"] = "sentence-transformers:some/other-model"
    with pytest.raises(EncoderMismatchError, match="built with encoder"):
        Searcher(version, encoder)


def _copy(seed_index, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(seed_index, dst)
    return dst, dst / read_current(dst)


def _set_meta(generation, **values):
    db = open_for_writing(generation / DATABASE)
    write_meta(db, values)
    db.close()


def test_damaged_indexes_give_clear_errors(seed_index, tmp_path):
    with pytest.raises(IndexNotFoundError):
        IndexReader.open(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IndexNotFoundError, match="no CURRENT"):
        IndexReader.open(empty)

    root, generation = _copy(seed_index, tmp_path)
    (segment,) = (generation / SEGMENTS).iterdir()
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) // 3])
    with pytest.raises(IndexCorruptError, match=r"cannot read segments/seg-.*\.faiss"):
        IndexReader.open(root)

    shutil.rmtree(root)
    root, generation = _copy(seed_index, tmp_path)
    _set_meta(generation, format_version=FORMAT_VERSION + 1)
    with pytest.raises(StoreError, match="format version"):
        IndexReader.open(root)

    shutil.rmtree(root)
    root, generation = _copy(seed_index, tmp_path)
    (generation / DATABASE).write_bytes(b"not a database at all" * 100)
    with pytest.raises(IndexCorruptError, match=r"index\.sqlite"):
        IndexReader.open(root)

    (root / CURRENT).write_text("i-does-not-exist\n")
    with pytest.raises(IndexCorruptError, match="missing"):
        IndexReader.open(root)


def test_an_index_of_the_old_format_is_refused_with_how_to_rebuild(tmp_path):
    root = tmp_path / "old"
    (root / "v20261101T000000000000Z-1").mkdir(parents=True)
    (root / "v20261101T000000000000Z-1" / "manifest.json").write_text('{"format": "dalil-index"}')
    (root / CURRENT).write_text("v20261101T000000000000Z-1\n")
    with pytest.raises(OldFormatError, match=r"older dalil .* dalil index --corpus"):
        IndexReader.open(root)


def test_metadata_counts_must_match(seed_index, tmp_path):
    root, generation = _copy(seed_index, tmp_path)
    db = open_for_writing(generation / DATABASE)
    counts = read_meta(db)["counts"]
    db.close()
    _set_meta(generation, counts={**counts, "passages": counts["passages"] + 1})
    with pytest.raises(IndexCorruptError, match="passages"):
        IndexReader.open(root)


def test_unwritable_output_directory(tmp_path, tiny_corpus, encoder):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create index directory"):
        build_index(tiny_corpus, blocker / "idx", encoder, progress=False)


@pytest.mark.parametrize(
    "query,k", [("", 5), ("   \n", 5), ("x" * 1001, 5), ("ok", 0), ("ok", 1001), (None, 5)]
)
def test_bad_queries_are_rejected(searcher, query, k):
    with pytest.raises(QueryError):
        searcher.search(query, k)


def test_concurrent_searches_match_sequential_ones(searcher):
    """The server answers from a thread pool: one model handle, one SQLite connection, many threads."""
    from concurrent.futures import ThreadPoolExecutor

    questions = [
        "التعاون مع روسيا",
        "5G cooperation with Russia",
        "الذكاء الاصطناعي",
        "paperless government",
    ] * 6

    def answer(q):
        return [(h.passage_id, h.score, h.snippet) for h in searcher.search(q, 5)]

    sequential = [answer(q) for q in questions]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(answer, questions)) == sequential
