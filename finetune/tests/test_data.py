"""Tokenization, label masking and truncation."""

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from inkling_finetune import data as D
from inkling_finetune.model import load_tokenizer


def test_fim_tokens_are_single_tokens(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    ids = tok("<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|fim_prefix|>")
    assert tok.convert_tokens_to_ids("<|fim_middle|>") == ids[-1]


def test_labels_mask_exactly_the_prompt(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    eos = D.eos_id(tok, "<|endoftext|>")
    ex = D.Example("<|fim_prefix|>def add(a, b):\n<|fim_suffix|>\n<|fim_middle|>    return ", "a + b")
    enc = D.encode(ex, tok, 512, eos)
    n_prompt = len(tok(ex.prompt, add_special_tokens=False)["input_ids"])
    completion = tok(ex.completion, add_special_tokens=False)["input_ids"]
    assert enc.labels[:n_prompt] == [D.IGNORE_INDEX] * n_prompt
    assert enc.labels[n_prompt:] == completion + [eos]
    assert enc.input_ids[n_prompt:] == completion + [eos]
    assert tok.decode(enc.input_ids[n_prompt:-1]) == "a + b"


def test_long_prompt_is_cut_from_the_left(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    eos = D.eos_id(tok, "<|endoftext|>")
    prompt = "<|fim_prefix|>" + "x = 1\n" * 200 + "<|fim_suffix|>\n<|fim_middle|>"
    enc = D.encode(D.Example(prompt, "return a + b"), tok, 64, eos)
    assert len(enc.input_ids) == 64 and enc.truncated > 0
    completion = tok("return a + b", add_special_tokens=False)["input_ids"] + [eos]
    assert enc.input_ids[-len(completion):] == completion  # the completion is intact
    assert enc.input_ids[0] == tok.convert_tokens_to_ids("<|fim_prefix|>")  # kept
    assert enc.input_ids[-len(completion) - 1] == tok.convert_tokens_to_ids("<|fim_middle|>")
    # A completion that cannot fit is dropped, never cut.
    assert D.encode(D.Example("p", "y = 2\n" * 100), tok, 32, eos) is None


def test_collator_pads_with_ignored_labels(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    eos = D.eos_id(tok, "<|endoftext|>")
    items = [D.encode(D.Example("a", "b"), tok, 64, eos), D.encode(D.Example("abc = 1\n", "x"), tok, 64, eos)]
    batch = D.Collator(D.pad_id(tok, eos))(items)
    short = len(items[0].input_ids)
    assert batch["input_ids"].shape[0] == 2
    assert (batch["labels"][0, short:] == D.IGNORE_INDEX).all()
    assert (batch["attention_mask"][0, short:] == 0).all() and batch["attention_mask"][0, :short].all()


def test_read_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "train.jsonl"
    p.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    with pytest.raises(D.DataError, match=r"train.jsonl:2: missing string field 'completion'"):
        D.read_jsonl(p)
    with pytest.raises(D.DataError, match="no such file"):
        D.read_jsonl(tmp_path / "nope.jsonl")
