"""GGUF export: the file's tensors, metadata and tokenizer, and (with INKLING_BIN) the server loading it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gguf
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM

from conftest import CODE, SPECIAL, fim_examples, make_config
from inkling_finetune import export as E
from inkling_finetune.gguf_export import QWEN2_SPLIT_PATTERNS, GgufExportError, write_gguf

BIN = os.environ.get("INKLING_BIN")
needs_bin = pytest.mark.skipif(not BIN, reason="set INKLING_BIN to run the server on the GGUF")

T = gguf.GGMLQuantizationType
# Written out here rather than imported, so the test checks the mapping independently.
HF_TO_GGUF = {
    "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
}


def hf_to_gguf(name: str) -> str:
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if name in fixed:
        return fixed[name]
    _, _, layer, rest = name.split(".", 3)
    return f"blk.{layer}.{HF_TO_GGUF[rest]}"


def hf_weights(model: Any) -> dict[str, torch.Tensor]:
    """The model's tensors under their GGUF names (``output.weight`` only when untied)."""
    out = {hf_to_gguf(k): v.detach().float() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        del out["output.weight"]
    return out


def load(folder: Path) -> tuple[Any, Any]:
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), AutoTokenizer.from_pretrained(folder)


def field(reader: gguf.GGUFReader, key: str) -> Any:
    f = reader.get_field(key)
    assert f is not None, key
    return f.contents()


def use_qwen2_pretokenizer(tokenizer: Any) -> Any:
    """Give the tiny tokenizer Qwen2's normalizer and pre-tokenizer (its vocabulary and merges stay)."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    backend = tokenizer.backend_tokenizer
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERNS[0]), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    return tokenizer


@pytest.fixture(scope="module")
def tiny(tiny_model: Path) -> tuple[Any, Any]:
    return load(tiny_model)


@pytest.fixture(scope="module")
def memorized(tiny_model: Path) -> tuple[Any, Any]:
    """The tiny model with a Qwen2 pre-tokenizer, trained (in about a second) until it completes
    the fixture's code, so that completions are not all empty."""
    model, tokenizer = load(tiny_model)
    use_qwen2_pretokenizer(tokenizer)
    texts = [e["prompt"] + e["completion"] + "<|endoftext|>" for e in fim_examples(CODE, 32, seed=0)] + [CODE]
    batches = [tokenizer(t, return_tensors="pt").input_ids for t in texts]
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add contention
    try:
        model.train()
        for step in range(120):
            ids = batches[step % len(batches)]
            model(ids, labels=ids).loss.backward()
            opt.step()
            opt.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return model, tokenizer


# Tensors and hyper-parameters ---------------------------------------------------------


def test_f32_tensors_are_the_weights(tmp_path: Path, tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    path = write_gguf(model, tokenizer, tmp_path / "model.gguf", "f32")
    reader = gguf.GGUFReader(path)
    expected = hf_weights(model)
    assert {t.name for t in reader.tensors} == set(expected)
    assert "output.weight" not in expected  # tied
    for t in reader.tensors:
        want = expected[t.name]
        assert t.tensor_type == T.F32, t.name
        # GGUF lists dimensions innermost first: [in, out] for a PyTorch [out, in] weight.
        assert list(reversed(t.shape.tolist())) == list(want.shape), t.name
        assert np.array_equal(t.data, want.numpy()), t.name
    cfg = model.config
    assert field(reader, "general.architecture") == "qwen2"
    assert field(reader, "general.file_type") == 0
    for key, value in {"qwen2.context_length": cfg.max_position_embeddings, "qwen2.embedding_length": 64,
                       "qwen2.block_count": 2, "qwen2.feed_forward_length": 128, "qwen2.attention.head_count": 4,
                       "qwen2.attention.head_count_kv": 2, "qwen2.attention.key_length": 16}.items():
        assert field(reader, key) == value, key
    assert field(reader, "qwen2.rope.freq_base") == pytest.approx(10000.0)
    assert field(reader, "qwen2.attention.layer_norm_rms_epsilon") == pytest.approx(1e-6)


def test_f16_and_q8_0_types(tmp_path: Path, tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    expected = hf_weights(model)
    for gguf_type, matrix_type, tolerance in (("f16", T.F16, 1e-3), ("q8_0", T.Q8_0, 2e-2)):
        reader = gguf.GGUFReader(write_gguf(model, tokenizer, tmp_path / f"{gguf_type}.gguf", gguf_type))
        assert field(reader, "general.file_type") == {"f16": 1, "q8_0": 7}[gguf_type]
        for t in reader.tensors:
            want = expected[t.name].numpy()
            # Norms and biases stay f32; every tiny-model row is a multiple of 32 long.
            assert t.tensor_type == (matrix_type if want.ndim == 2 else T.F32), (gguf_type, t.name)
            got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(want.shape)
            scale = float(np.abs(want).max())
            assert np.abs(got - want).max() <= tolerance * scale, (gguf_type, t.name)


def test_q8_0_keeps_rows_that_are_not_whole_blocks_in_f16(tmp_path: Path, tiny: tuple[Any, Any]) -> None:
    _, tokenizer = tiny
    model = small_qwen2(len(tokenizer), hidden_size=48, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=96)
    reader = gguf.GGUFReader(write_gguf(model, tokenizer, tmp_path / "model.gguf", "q8_0"))
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == T.F16  # rows of 48
    assert types["blk.0.ffn_up.weight"] == T.F16  # rows of 48
    assert types["blk.0.ffn_down.weight"] == T.Q8_0  # rows of 96
    assert types["blk.0.attn_q.bias"] == T.F32


def small_qwen2(vocab_size: int, tie: bool = True, **sizes: int) -> Qwen2ForCausalLM:
    from transformers import Qwen2Config

    args = dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=128, max_position_embeddings=512, initializer_range=0.2)
    args.update(sizes)
    torch.manual_seed(1)
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab_size, tie_word_embeddings=tie, **args)).eval()


def test_untied_model_with_padded_vocabulary(tmp_path: Path, tiny: tuple[Any, Any]) -> None:
    _, tokenizer = tiny
    n = len(tokenizer)
    model = small_qwen2(n + 5, tie=False)
    reader = gguf.GGUFReader(write_gguf(model, tokenizer, tmp_path / "model.gguf", "f32"))
    tensors = {t.name: t for t in reader.tensors}
    assert np.array_equal(tensors["output.weight"].data, model.lm_head.weight.detach().numpy())
    assert not np.array_equal(tensors["output.weight"].data, tensors["token_embd.weight"].data)
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == n + 5
    assert tokens[n:] == [f"[PAD{i}]" for i in range(n, n + 5)]
    assert set(types[n:]) == {gguf.TokenType.UNUSED}


# Tokenizer ---------------------------------------------------------------------------


def test_tokenizer_metadata(tmp_path: Path, tiny: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    model, tokenizer = tiny
    with caplog.at_level(logging.INFO, logger="inkling_finetune.gguf_export"):
        path = write_gguf(model, tokenizer, tmp_path / "model.gguf", "f16")
    # The fixture's tokenizer splits text like GPT-2, which the GGUF cannot express.
    assert "pre-tokenizer" in caplog.text and "is not Qwen2's" in caplog.text
    assert f"wrote {path} (f16, " in caplog.text
    reader = gguf.GGUFReader(path)
    assert field(reader, "tokenizer.ggml.model") == "gpt2"
    assert field(reader, "tokenizer.ggml.pre") == "qwen2"
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert tokens == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    types = field(reader, "tokenizer.ggml.token_type")
    for token in SPECIAL:
        assert types[tokens.index(token)] == gguf.TokenType.CONTROL, token
    assert types.count(gguf.TokenType.NORMAL) == len(tokens) - len(SPECIAL)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    written = field(reader, "tokenizer.ggml.merges")
    assert written == [m if isinstance(m, str) else " ".join(m) for m in merges] and written
    assert field(reader, "tokenizer.ggml.eos_token_id") == tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert field(reader, "tokenizer.ggml.padding_token_id") == tokenizer.pad_token_id
    assert field(reader, "tokenizer.ggml.add_bos_token") is False


def test_qwen2_pretokenizer_is_recognised(tmp_path: Path, tiny_model: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    model, tokenizer = load(tiny_model)
    use_qwen2_pretokenizer(tokenizer)
    with caplog.at_level(logging.WARNING, logger="inkling_finetune.gguf_export"):
        write_gguf(model, tokenizer, tmp_path / "model.gguf", "f32")
    assert "pre-tokenizer" not in caplog.text


# Errors ------------------------------------------------------------------------------


def test_unsupported_type_and_architecture(tmp_path: Path, tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    with pytest.raises(GgufExportError, match="unsupported GGUF type `q4_k`"):
        write_gguf(model, tokenizer, tmp_path / "model.gguf", "q4_k")
    llama = SimpleNamespace(config=SimpleNamespace(model_type="llama"))
    with pytest.raises(GgufExportError, match="only Qwen2 models .* not `llama`"):
        write_gguf(llama, tokenizer, tmp_path / "model.gguf", "f16")
    assert not list(tmp_path.iterdir())


def test_fim_tokens_must_be_special(tmp_path: Path, tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "<|fim_middle|>"]
    plain = SimpleNamespace(backend_tokenizer=SimpleNamespace(to_str=lambda: json.dumps(data)),
                            all_special_ids=[tokenizer.eos_token_id], eos_token_id=tokenizer.eos_token_id)
    with pytest.raises(GgufExportError, match="<\\|fim_middle\\|>"):
        write_gguf(model, plain, tmp_path / "model.gguf", "f16")
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_export_writes_the_gguf_into_the_folder(tmp_path: Path, tiny_model: Path, dataset: Path) -> None:
    from inkling_finetune import train as Tr

    cfg = make_config(tmp_path, tiny_model, dataset, max_steps=2, eval_every=2, save_every=2)
    Tr.train(cfg)
    out = E.export(cfg.adapter_dir, tmp_path / "export", dtype="float32", gguf=True, gguf_type="q8_0")
    assert (out / "model.gguf").is_file() and (out / "model.safetensors").is_file()
    reader = gguf.GGUFReader(out / "model.gguf")
    assert {t.tensor_type for t in reader.tensors} == {T.Q8_0, T.F32}


# The server --------------------------------------------------------------------------

REQUESTS = [
    {"prefix": "def add(a, b):\n    return ", "suffix": "\n", "path": "calc.py", "language": "python"},
    {"prefix": "class Counter:\n    def __init__(self):\n        self.", "suffix": "\n", "path": "calc.py",
     "language": "python"},
    {"prefix": "for i in range(10):\n    print(", "suffix": ")\n", "path": "calc.py", "language": "python"},
    {"prefix": "def mul(a, b):\n    return a * b\n\n\ndef ", "suffix": "", "path": "calc.py", "language": "python"},
]


def complete(model: Path) -> list[dict[str, Any]]:
    """The server's answers to REQUESTS (``ms`` left out)."""
    assert BIN
    proc = subprocess.run([BIN, "complete", "--model", str(model), "--jsonl", "-", "--threads", "1"],
                          input="".join(json.dumps(r) + "\n" for r in REQUESTS),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(answers) == len(REQUESTS), proc.stdout
    for a in answers:
        assert "error" not in a, a
        a.pop("ms")
    return answers


@needs_bin
def test_server_gives_the_same_completions_from_gguf_and_safetensors(tmp_path: Path,
                                                                     memorized: tuple[Any, Any]) -> None:
    model, tokenizer = memorized
    folder = E.save_folder(model, tokenizer, tmp_path / "folder", dtype="float32")
    path = write_gguf(model, tokenizer, tmp_path / "model.gguf", "f32")
    from_folder = complete(folder)
    assert any(a["completion"] for a in from_folder), from_folder  # the comparison means something
    assert complete(path) == from_folder


@needs_bin
def test_server_loads_f16_and_q8_0(tmp_path: Path, memorized: tuple[Any, Any]) -> None:
    model, tokenizer = memorized
    for gguf_type in ("f16", "q8_0"):
        answers = complete(write_gguf(model, tokenizer, tmp_path / f"{gguf_type}.gguf", gguf_type))
        assert all(isinstance(a["completion"], str) and a["prompt_tokens"] > 0 for a in answers), answers
