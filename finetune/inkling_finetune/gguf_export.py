"""Writing a merged Qwen2 model and its tokenizer as one GGUF file the server loads.

This module owns the mapping from a Hugging Face ``Qwen2ForCausalLM`` to a GGUF file of
architecture ``qwen2``, as read by the server's loader (``src/engine/model/weights.rs`` and
``config.rs``) and by llama.cpp:

* tensors: Hugging Face names become llama.cpp names (``model.layers.3.self_attn.q_proj.weight``
  -> ``blk.3.attn_q.weight``). Shapes keep PyTorch order (``[out, in]``); ``GGUFWriter`` stores
  dimensions innermost first, as GGUF requires, and readers reverse them back. No q/k
  permutation is needed for Qwen2. ``output.weight`` is left out when the embeddings are tied.
* tensor types: ``f32``, ``f16`` or ``q8_0`` for the 2-D weights; norms and biases are always
  f32; with ``q8_0`` a weight whose rows are not a multiple of 32 long is written as f16.
* metadata: the ``qwen2.*`` hyper-parameters and the tokenizer (``tokenizer.ggml.*``: the
  byte-level BPE vocabulary by id, merges, token types, special token ids and the name of the
  pre-tokenizer), rebuilt from the fast tokenizer's ``tokenizer.json``. Added special tokens
  are typed CONTROL so that ``<|fim_prefix|>`` and friends stay single tokens.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

log = logging.getLogger(__name__)

ARCH = "qwen2"
GGUF_TYPES = ("f32", "f16", "q8_0")
Q8_0_BLOCK = 32
FIM_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|endoftext|>")

# Hugging Face parameter name (inside ``model.layers.N.``) -> llama.cpp name (inside ``blk.N.``).
LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
GLOBAL_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
LAYER_NAME = re.compile(r"model\.layers\.(\d+)\.(.+)")

# The split pattern of Qwen2's tokenizer.json and the equivalent one the server's GGUF
# tokenizer uses for ``tokenizer.ggml.pre = "qwen2"``.
QWEN2_SPLIT_PATTERNS = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
)
PAD_TOKEN = re.compile(r"\[PAD(\d+)\]")


class GgufExportError(ValueError):
    """The model, the tokenizer or the requested type cannot be written as GGUF."""


@dataclass
class Vocab:
    """The tokenizer as GGUF stores it: one string and one type per id, and the merges."""

    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str
    unk_id: int | None = None
    ignore_merges: bool = False


# Tensors -----------------------------------------------------------------------------


def gguf_name(hf_name: str) -> str:
    """The llama.cpp name of a Hugging Face Qwen2 parameter."""
    if hf_name in GLOBAL_TENSORS:
        return GLOBAL_TENSORS[hf_name]
    m = LAYER_NAME.fullmatch(hf_name)
    if m and m.group(2) in LAYER_TENSORS:
        return f"blk.{m.group(1)}.{LAYER_TENSORS[m.group(2)]}"
    raise GgufExportError(f"parameter `{hf_name}` has no place in a qwen2 GGUF (is the adapter merged?)")


def expected_names(config: Any) -> set[str]:
    """Every tensor name the server's loader reads for ``config``."""
    names = {"token_embd.weight", "output_norm.weight"}
    if not config.tie_word_embeddings:
        names.add("output.weight")
    for i in range(config.num_hidden_layers):
        names.update(f"blk.{i}.{n}" for n in LAYER_TENSORS.values())
    return names


def named_tensors(model: Any) -> Iterator[tuple[str, np.ndarray]]:
    """``(gguf name, float32 array)`` for every tensor to write, in the model's order."""
    config = model.config
    seen: set[str] = set()
    for hf_name, value in model.state_dict().items():
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        name = gguf_name(hf_name)
        if name == "output.weight" and config.tie_word_embeddings:
            continue
        seen.add(name)
        yield name, value.detach().to(device="cpu", dtype=torch.float32).numpy()
    missing = sorted(expected_names(config) - seen)
    if missing:
        raise GgufExportError(f"the model lacks tensors the server needs: {', '.join(missing[:5])}")


def ggml_type(array: np.ndarray, gguf_type: str) -> Any:
    """The GGML type ``array`` is stored in: norms and biases f32, weights as requested."""
    from gguf import GGMLQuantizationType as T

    if array.ndim < 2 or gguf_type == "f32":
        return T.F32
    if gguf_type == "q8_0" and array.shape[-1] % Q8_0_BLOCK == 0:
        return T.Q8_0
    return T.F16


def encode(array: np.ndarray, qtype: Any) -> np.ndarray:
    """``array`` (float32) converted to ``qtype``; quantized types come back as raw bytes."""
    from gguf import GGMLQuantizationType as T
    from gguf.quants import quantize

    if qtype == T.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if qtype == T.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)


def add_tensors(writer: Any, model: Any, gguf_type: str) -> None:
    """Queue every tensor of ``model`` on ``writer`` in its GGUF type."""
    from gguf import GGMLQuantizationType as T

    for name, array in named_tensors(model):
        qtype = ggml_type(array, gguf_type)
        data = encode(array, qtype)
        if qtype in (T.F32, T.F16):
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, data, raw_dtype=qtype)


# Hyper-parameters --------------------------------------------------------------------


def check_model(model: Any) -> None:
    """Fail unless ``model`` is a Qwen2 causal language model."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type != ARCH:
        raise GgufExportError(f"only Qwen2 models can be written as GGUF, not `{model_type}`")


def head_dim(config: Any) -> int:
    """Width of one attention head."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def add_hyperparameters(writer: Any, config: Any, gguf_type: str) -> None:
    """The ``general.*`` and ``qwen2.*`` keys."""
    import gguf

    file_types = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                  "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    writer.add_name(Path(getattr(config, "_name_or_path", "") or "qwen2").name)
    writer.add_file_type(int(file_types[gguf_type]))
    if gguf_type == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads or config.num_attention_heads)
    writer.add_key_length(head_dim(config))
    writer.add_value_length(head_dim(config))
    writer.add_rope_freq_base(float(config.rope_theta))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    if getattr(config, "rope_scaling", None):
        log.warning("rope_scaling %s is not written to the GGUF (the server does not use it)", config.rope_scaling)


# Tokenizer ---------------------------------------------------------------------------


def tokenizer_json(tokenizer: Any) -> dict[str, Any]:
    """The ``tokenizer.json`` of a Hugging Face fast tokenizer, parsed."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise GgufExportError("the tokenizer is not a fast tokenizer (no tokenizer.json to convert)")
    data = json.loads(backend.to_str())
    if data.get("model", {}).get("type") != "BPE":
        raise GgufExportError(f"only BPE tokenizers can be written as GGUF, not {data.get('model', {}).get('type')}")
    return data


def merge_strings(merges: list[Any]) -> list[str]:
    """Merges as GGUF stores them, ``"a b"``, from either tokenizer.json form."""
    out = []
    for merge in merges:
        pair = merge.split(" ") if isinstance(merge, str) else list(merge)
        if len(pair) != 2 or not all(pair):
            raise GgufExportError(f"merge {merge!r} cannot be written as `a b`")
        out.append(f"{pair[0]} {pair[1]}")
    return out


def pre_tokenizer_name(data: dict[str, Any]) -> str:
    """``tokenizer.ggml.pre``: ``qwen2``, with a warning when tokenizer.json splits text otherwise."""
    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    if (kinds == ["Split", "ByteLevel"] and steps[0].get("pattern", {}).get("Regex") in QWEN2_SPLIT_PATTERNS
            and not steps[1].get("add_prefix_space") and not steps[1].get("use_regex", True)):
        return "qwen2"
    log.warning("the tokenizer's pre-tokenizer (%s) is not Qwen2's; the GGUF says `qwen2`, so the server "
                "may split text into different tokens than tokenizer.json does", " + ".join(map(str, kinds)))
    return "qwen2"


def token_strings(data: dict[str, Any], size: int) -> list[str | None]:
    """Token string by id (``None`` where the tokenizer has no token), from vocab and added tokens."""
    tokens: list[str | None] = [None] * size
    entries = list(data["model"]["vocab"].items()) + [(t["content"], t["id"]) for t in data.get("added_tokens", [])]
    for text, tid in entries:
        if tid >= size:
            raise GgufExportError(f"token {text!r} has id {tid} but the model has only {size} embedding rows")
        if tokens[tid] not in (None, text):
            raise GgufExportError(f"id {tid} is both {tokens[tid]!r} and {text!r}")
        tokens[tid] = text
    return tokens


def token_types(data: dict[str, Any], tokens: list[str | None], special_ids: set[int]) -> list[int]:
    """GGUF token types: CONTROL for special tokens, USER_DEFINED for other added tokens,
    UNUSED for padding rows, NORMAL otherwise."""
    from gguf import TokenType

    types = [int(TokenType.NORMAL)] * len(tokens)
    for t in data.get("added_tokens", []):
        types[t["id"]] = int(TokenType.CONTROL if t.get("special") else TokenType.USER_DEFINED)
    for tid in special_ids:
        if 0 <= tid < len(tokens):
            types[tid] = int(TokenType.CONTROL)
    for tid, text in enumerate(tokens):
        pad = PAD_TOKEN.fullmatch(text or "")
        if text is None or (pad and int(pad.group(1)) == tid and types[tid] == TokenType.NORMAL):
            types[tid] = int(TokenType.UNUSED)
    return types


def build_vocab(tokenizer: Any, size: int) -> Vocab:
    """The GGUF form of ``tokenizer`` for a model with ``size`` embedding rows (unused rows are
    padded with ``[PAD<id>]`` tokens, as llama.cpp does)."""
    data = tokenizer_json(tokenizer)
    found = token_strings(data, size)
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    types = token_types(data, found, special_ids)
    tokens = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(found)]
    if len(set(tokens)) != len(tokens):
        twice = next(t for t, n in Counter(tokens).items() if n > 1)
        raise GgufExportError(f"token {twice!r} is at two ids; GGUF needs one id per token string")
    unk = data["model"].get("unk_token")
    vocab = Vocab(tokens=tokens, types=types, merges=merge_strings(data["model"].get("merges") or []),
                  pre=pre_tokenizer_name(data), unk_id=data["model"]["vocab"].get(unk) if unk else None,
                  ignore_merges=bool(data["model"].get("ignore_merges")))
    check_fim_tokens(vocab)
    return vocab


def check_fim_tokens(vocab: Vocab) -> None:
    """Fail unless every FIM token is a special (hence single) token of ``vocab``."""
    from gguf import TokenType

    index = {t: i for i, t in enumerate(vocab.tokens)}
    for token in FIM_TOKENS:
        tid = index.get(token)
        if tid is None or vocab.types[tid] not in (TokenType.CONTROL, TokenType.USER_DEFINED):
            raise GgufExportError(f"`{token}` is not a special token of the tokenizer; the server needs it as "
                                  f"one token (use a Qwen2.5-Coder tokenizer)")


def special_ids(tokenizer: Any, config: Any) -> dict[str, int]:
    """bos / eos / padding ids that the tokenizer (or, for bos and eos, the config) defines."""
    ids = {
        "bos": getattr(tokenizer, "bos_token_id", None),
        "eos": getattr(tokenizer, "eos_token_id", None),
        "pad": getattr(tokenizer, "pad_token_id", None),
    }
    for key in ("bos", "eos"):
        if ids[key] is None:
            ids[key] = getattr(config, f"{key}_token_id", None)
    return {k: int(v) for k, v in ids.items() if isinstance(v, int)}


def add_tokenizer(writer: Any, tokenizer: Any, config: Any, size: int) -> Vocab:
    """The ``tokenizer.ggml.*`` keys (and the chat template, when there is one)."""
    vocab = build_vocab(tokenizer, size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    ids = special_ids(tokenizer, config)
    if "bos" in ids:
        writer.add_bos_token_id(ids["bos"])
    if "eos" in ids:
        writer.add_eos_token_id(ids["eos"])
    if "pad" in ids:
        writer.add_pad_token_id(ids["pad"])
    if vocab.unk_id is not None:
        writer.add_unk_token_id(vocab.unk_id)
    if vocab.ignore_merges:
        writer.add_bool("tokenizer.ggml.ignore_merges", True)
    writer.add_add_bos_token(False)
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template:
        writer.add_chat_template(template)
    return vocab


# The whole file ----------------------------------------------------------------------


def write_gguf(model: Any, tokenizer: Any, path: str | Path, gguf_type: str = "f16") -> Path:
    """Write ``model`` (a Qwen2 causal LM) and ``tokenizer`` (a fast BPE tokenizer) to ``path``.

    The file is written next to its final name and renamed into place, so an interrupted
    export leaves no truncated ``model.gguf``.
    """
    import gguf

    if gguf_type not in GGUF_TYPES:
        raise GgufExportError(f"unsupported GGUF type `{gguf_type}` (use one of {', '.join(GGUF_TYPES)})")
    check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = model.get_input_embeddings().weight.shape[0]
    tmp = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(tmp, ARCH)
    try:
        add_hyperparameters(writer, model.config, gguf_type)
        add_tokenizer(writer, tokenizer, model.config, rows)
        add_tensors(writer, model, gguf_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(path)
    log.info("wrote %s (%s, %.1f MB)", path, gguf_type, path.stat().st_size / 1e6)
    return path
