"""Shared fixtures: a tiny Qwen2 model with a tiny byte-level BPE tokenizer, and a tiny dataset."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPECIAL = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
           "<|repo_name|>", "<|file_sep|>"]

CODE = '''\
def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def mul(a, b):
    return a * b


class Counter:
    def __init__(self):
        self.count = 0

    def bump(self, n=1):
        self.count += n
        return self.count


for i in range(10):
    print(add(i, 1), sub(i, 1), mul(i, 2))
'''


def build_tokenizer(folder: Path) -> None:
    """Train a byte-level BPE (vocab ~400) with the Qwen FIM tokens as special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CODE] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|fim_pad|>",
                                   additional_special_tokens=SPECIAL[1:])
    fast.save_pretrained(folder)


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Qwen2 with tied embeddings, saved as an HF folder."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(seed)
    cfg = Qwen2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=128, vocab_size=len(tok), tie_word_embeddings=True,
                      max_position_embeddings=2048, rope_theta=10000.0, rms_norm_eps=1e-6, initializer_range=0.2,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    Qwen2ForCausalLM(cfg).save_pretrained(folder, safe_serialization=True)
    return folder


def fim_examples(text: str, n: int, seed: int) -> list[dict[str, str]]:
    """Line-aware FIM examples: cut each at a random point of a non-empty line, middle = rest of line."""
    import random

    rng = random.Random(seed)
    lines = text.splitlines(keepends=True)
    out = []
    while len(out) < n:
        i = rng.randrange(len(lines))
        line = lines[i]
        if not line.strip():
            continue
        cut = rng.randrange(0, max(1, len(line.rstrip("\n"))))
        prefix = "".join(lines[:i]) + line[:cut]
        middle = line[cut:].rstrip("\n")
        suffix = "\n" + "".join(lines[i + 1:])
        out.append({"prompt": f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
                    "completion": middle, "kind": "fim", "path": "calc.py"})
    return out


def write_dataset(folder: Path, n_train: int = 8, n_heldout: int = 4) -> Path:
    """Write train.jsonl / heldout.jsonl / manifest.json like `inkling dataset` does for a
    repository too small for a validation split."""
    folder.mkdir(parents=True, exist_ok=True)
    train = fim_examples(CODE, n_train, seed=1)
    train.append({"prompt": "def add(a, b):\n", "completion": "    return a + b\n", "kind": "next_token",
                  "path": "calc.py"})
    heldout = fim_examples(CODE, n_heldout, seed=2)
    for name, rows in (("train.jsonl", train), ("heldout.jsonl", heldout)):
        with (folder / name).open("w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    (folder / "manifest.json").write_text(json.dumps({"train": len(train), "heldout": len(heldout)}))
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data")


def make_config(tmp_path: Path, base: Path, data: Path, lora: dict | None = None, **train: object):
    """A Config for the tiny model with fast settings, overridable per test (``lora`` adds to the
    LoRA table, the keyword arguments to the train table)."""
    from inkling_finetune.config import from_dict

    t = {"output_dir": str(tmp_path / "run"), "learning_rate": 3e-3, "warmup_ratio": 0.0, "max_steps": 6,
         "batch_size": 2, "grad_accum": 2, "eval_every": 2, "save_every": 2, "log_every": 1,
         "early_stopping_patience": 0, "seed": 0}
    t.update(train)
    return from_dict({"model": {"base": str(base)}, "data": {"dir": str(data), "max_seq_len": 512},
                      "lora": {"r": 8, "alpha": 16, "dropout": 0.0, **(lora or {})}, "train": t})
