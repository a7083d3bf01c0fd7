"""Loading a base model and its tokenizer from a GGUF file or a Hugging Face folder.

Everything is read from local files: ``HF_HUB_OFFLINE`` is set before ``transformers`` is
imported and every ``from_pretrained`` call passes ``local_files_only=True``.

A GGUF file is dequantized by ``transformers`` (needs the ``gguf`` package). Two details of
that route are fixed up here:

* the tokenizer rebuilt from GGUF metadata does not treat ``<|fim_prefix|>`` and friends as
  special tokens, so the literal text of a prompt would be split into ``<``, ``|``, ...;
  they are registered as special tokens (same ids, nothing added to the vocabulary);
* a GGUF without ``output.weight`` has tied embeddings; the config is corrected and the
  output layer tied to the embedding.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import torch  # noqa: E402

log = logging.getLogger(__name__)

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
)
DTYPE_NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelError(ValueError):
    """The base model cannot be used."""


def resolve_dtype(name: str) -> torch.dtype:
    """``auto`` = bfloat16 on a CUDA device that supports it, else float32."""
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return DTYPE_NAMES[name]


def _split(base: str | Path) -> tuple[str, dict[str, Any]]:
    """The ``from_pretrained`` location and extra arguments for ``base``."""
    path = Path(base).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"base model {path} does not exist (fetch it with "
                             f"`python3 finetune/fetch_model.py --small`)")
        return str(path.parent), {"gguf_file": path.name}
    if not (path / "config.json").is_file():
        raise ModelError(f"base model {path} is neither a .gguf file nor a folder with config.json")
    return str(path), {}


def fix_special_tokens(tokenizer: Any) -> Any:
    """Make the Qwen control tokens that the vocabulary has into single special tokens."""
    present = [t for t in QWEN_SPECIAL_TOKENS
               if (tid := tokenizer.convert_tokens_to_ids(t)) is not None and tid != tokenizer.unk_token_id]
    already = set(tokenizer.all_special_tokens)
    missing = [t for t in present if t not in already]
    if missing:
        before = len(tokenizer)
        tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                     replace_additional_special_tokens=False)
        if len(tokenizer) != before:
            raise ModelError("registering the FIM tokens grew the vocabulary; the tokenizer is not a Qwen one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|fim_pad|>" if "<|fim_pad|>" in present else tokenizer.eos_token
    return tokenizer


def load_tokenizer(base: str | Path) -> Any:
    """The tokenizer of ``base`` with the FIM tokens registered as special tokens."""
    from transformers import AutoTokenizer

    where, extra = _split(base)
    tok = AutoTokenizer.from_pretrained(where, local_files_only=True, **extra)
    return fix_special_tokens(tok)


def _gguf_has_output(path: Path) -> bool:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return any(t.name == "output.weight" for t in reader.tensors)


def load_model(base: str | Path, dtype: torch.dtype = torch.float32) -> Any:
    """The causal LM of ``base`` in ``dtype`` (a GGUF is dequantized)."""
    from transformers import AutoModelForCausalLM

    where, extra = _split(base)
    model = AutoModelForCausalLM.from_pretrained(where, local_files_only=True, dtype=dtype, **extra)
    if "gguf_file" in extra and not _gguf_has_output(Path(where) / extra["gguf_file"]):
        # No output.weight in the file: the output layer is the token embedding.
        model.config.tie_word_embeddings = True
        model.lm_head.weight = model.get_input_embeddings().weight
    return model


def load(base: str | Path, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """Model and tokenizer of ``base``."""
    return load_model(base, dtype), load_tokenizer(base)
