"""Merging a LoRA adapter into its base model and writing a folder the server loads.

The folder holds ``model.safetensors`` (sharded above 2 GB), ``config.json``,
``tokenizer.json`` and ``tokenizer_config.json``. The server reads the safetensors with
candle and converts every tensor to f32, so float16 / bfloat16 only halve the file size.
With ``gguf=True`` a ``model.gguf`` (see :mod:`inkling_finetune.gguf_export`) is written too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from .model import DTYPE_NAMES, load_model, load_tokenizer

log = logging.getLogger(__name__)

REQUIRED_CONFIG_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "rope_theta", "rms_norm_eps", "max_position_embeddings",
                        "tie_word_embeddings", "vocab_size")


class ExportError(ValueError):
    """The adapter or the base model cannot be exported."""


def adapter_base(adapter_dir: Path) -> str:
    """The base model recorded when the adapter was trained."""
    info = adapter_dir / "inkling_train.json"
    if info.is_file():
        return json.loads(info.read_text())["base"]
    cfg = adapter_dir / "adapter_config.json"
    if cfg.is_file():
        return json.loads(cfg.read_text())["base_model_name_or_path"]
    raise ExportError(f"{adapter_dir} is not an adapter folder (no adapter_config.json)")


def merge(adapter_dir: str | Path, base: str | Path | None = None) -> tuple[Any, Any]:
    """The base model (float32) with the adapter merged in, and the tokenizer."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ExportError(f"{adapter_dir}: no adapter_config.json (train first, or pass --adapter)")
    base = base or adapter_base(adapter_dir)
    model = load_model(base, torch.float32)
    tokenizer = load_tokenizer(base)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    merged = peft_model.merge_and_unload()
    merged.eval()
    return merged, tokenizer


def save_folder(model: Any, tokenizer: Any, out: str | Path, dtype: str = "bfloat16") -> Path:
    """Write ``model`` in ``dtype`` as safetensors plus config and tokenizer files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.safetensors"):
        old.unlink()
    model = model.to(DTYPE_NAMES[dtype])
    model.config.use_cache = True
    model.save_pretrained(out, safe_serialization=True, max_shard_size="2GB")
    tokenizer.save_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in config]
    if missing:
        # Qwen2Config always has these; fill them from the live config otherwise.
        for k in missing:
            config[k] = getattr(model.config, k)
        (out / "config.json").write_text(json.dumps(config, indent=2))
    if not (out / "tokenizer.json").is_file():
        raise ExportError("the tokenizer did not write tokenizer.json (it is not a fast tokenizer)")
    return out


def export(adapter_dir: str | Path, out: str | Path, base: str | Path | None = None, dtype: str = "bfloat16",
           gguf: bool = False, gguf_type: str = "f16") -> Path:
    """Merge ``adapter_dir`` into its base and write the server folder (and optionally a GGUF)."""
    model, tokenizer = merge(adapter_dir, base)
    if gguf:
        from .gguf_export import write_gguf

        path = Path(out) / "model.gguf"
        Path(out).mkdir(parents=True, exist_ok=True)
        write_gguf(model, tokenizer, path, gguf_type)  # logs what it wrote
    folder = save_folder(model, tokenizer, out, dtype)
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    log.info("wrote %s (%s, %.1f MB of weights); point the server at it: inkling serve --model %s",
             folder, dtype, size / 1e6, folder)
    return folder
