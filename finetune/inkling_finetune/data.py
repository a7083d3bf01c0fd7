"""Reading the dataset JSONL files and turning them into training tensors.

Each line is ``{"prompt": str, "completion": str, "kind": str, "path": str}``. The prompt is
exactly the text the server feeds the model (FIM special tokens written literally); the
completion is what the model should produce next, followed by the end-of-text token.

Loss is taken on the completion and the end token only: prompt positions get label -100.
A prompt that is too long loses tokens from its left (a leading ``<|fim_prefix|>`` is kept);
the completion is never cut. An example whose completion alone does not fit is dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
KINDS = ("fim", "next_token")
FIM_PREFIX = "<|fim_prefix|>"
FIM_PAD = "<|fim_pad|>"


class DataError(ValueError):
    """A dataset problem, with the file and line it comes from."""


@dataclass(frozen=True)
class Example:
    """One dataset line."""

    prompt: str
    completion: str
    kind: str = "fim"
    path: str = ""


@dataclass(frozen=True)
class Encoded:
    """Token ids of one example and its labels (same length)."""

    input_ids: list[int]
    labels: list[int]
    truncated: int = 0
    """How many prompt tokens were dropped from the left."""


def read_jsonl(path: str | Path) -> list[Example]:
    """Read a dataset file; raise :class:`DataError` naming the line on malformed input."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (run `inkling dataset --repo DIR --out DIR` first)")
    examples: list[Example] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not JSON: {e}") from e
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{n}: expected a JSON object")
            for key in ("prompt", "completion"):
                if not isinstance(obj.get(key), str):
                    raise DataError(f"{path}:{n}: missing string field {key!r}")
            kind = obj.get("kind", "fim")
            if not isinstance(kind, str):
                raise DataError(f"{path}:{n}: field 'kind' must be a string")
            if kind not in KINDS:
                log.debug("%s:%d: unknown kind %r, used as is", path, n, kind)
            examples.append(Example(obj["prompt"], obj["completion"], kind, str(obj.get("path", ""))))
    return examples


def token_id(tokenizer: Any, token: str) -> int | None:
    """The id of a token that must be a single vocabulary entry, or None."""
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or tid == getattr(tokenizer, "unk_token_id", None):
        return None
    return int(tid)


def eos_id(tokenizer: Any, eos_token: str) -> int:
    """The end-of-completion id: ``eos_token`` if the vocabulary has it, else the tokenizer's EOS."""
    tid = token_id(tokenizer, eos_token)
    if tid is None:
        tid = tokenizer.eos_token_id
    if tid is None:
        raise DataError(f"the tokenizer has no {eos_token!r} token and no EOS token")
    return int(tid)


def pad_id(tokenizer: Any, fallback: int) -> int:
    """Padding id: ``<|fim_pad|>`` when present, else the tokenizer's pad token, else ``fallback``."""
    tid = token_id(tokenizer, FIM_PAD)
    if tid is None:
        tid = tokenizer.pad_token_id
    return int(fallback if tid is None else tid)


def encode(example: Example, tokenizer: Any, max_seq_len: int, eos: int) -> Encoded | None:
    """Tokenize one example; None when the completion plus one prompt token cannot fit.

    Prompt and completion are tokenized separately, as at serving time: the server tokenizes
    the prompt and the model then produces the completion token by token.
    """
    prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    completion = tokenizer(example.completion, add_special_tokens=False)["input_ids"] + [eos]
    budget = max_seq_len - len(completion)
    if budget < 1 or not prompt:
        return None
    dropped = max(0, len(prompt) - budget)
    if dropped:
        keep_head = 1 if prompt[0] == token_id(tokenizer, FIM_PREFIX) and budget > 1 else 0
        prompt = prompt[:keep_head] + prompt[keep_head + dropped:]
    ids = prompt + completion
    labels = [IGNORE_INDEX] * len(prompt) + completion
    return Encoded(ids, labels, dropped)


def encode_all(examples: Iterable[Example], tokenizer: Any, max_seq_len: int, eos: int,
               name: str = "data") -> list[Encoded]:
    """Encode examples, logging how many were truncated or dropped."""
    out: list[Encoded] = []
    dropped = truncated = 0
    for ex in examples:
        enc = encode(ex, tokenizer, max_seq_len, eos)
        if enc is None:
            dropped += 1
            continue
        truncated += enc.truncated > 0
        out.append(enc)
    if dropped or truncated:
        log.info("%s: %d examples, %d prompts cut from the left, %d dropped (completion longer than "
                 "max_seq_len)", name, len(out), truncated, dropped)
    return out


class Collator:
    """Right-pads a batch: ids with ``pad_id``, labels with -100, attention mask 0."""

    def __init__(self, pad: int) -> None:
        self.pad = pad

    def __call__(self, batch: Sequence[Encoded]) -> dict[str, torch.Tensor]:
        width = max(len(e.input_ids) for e in batch)
        ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e.input_ids)
            ids[i, :n] = torch.tensor(e.input_ids)
            labels[i, :n] = torch.tensor(e.labels)
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class EncodedDataset(torch.utils.data.Dataset):
    """A list of :class:`Encoded` as a torch dataset."""

    def __init__(self, items: list[Encoded]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Encoded:
        return self.items[i]

    def tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.items)
