"""The fine-tuning configuration: a TOML file loaded into dataclasses and validated.

Layout (every key is optional except ``model.base`` and ``data.dir``)::

    [model]
    base = "~/.cache/inkling/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"  # or an HF folder

    [data]
    dir = "dataset"          # holds train.jsonl, valid.jsonl and heldout.jsonl
    max_seq_len = 1024

    [lora]
    r = 16
    ...

    [train]
    output_dir = "runs/my-repo"
    ...

    [export]
    dir = "runs/my-repo/export"
    dtype = "bfloat16"

Relative paths are resolved against the folder that holds the TOML file, and ``~`` is
expanded. Unknown keys and wrong types are errors that name the offending key.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MAX_SEQ_LEN_LIMIT = 2048
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ConfigError(ValueError):
    """A configuration problem, with a message meant for the user."""


@dataclass
class ModelSection:
    """Which base model to start from."""

    base: str = ""
    """A ``.gguf`` file (dequantized on load) or a Hugging Face folder."""
    dtype: str = "auto"
    """Training dtype: ``auto`` = bfloat16 on a GPU that supports it, else float32."""
    gradient_checkpointing: bool = False


@dataclass
class DataSection:
    """Where the examples come from and how long they may be."""

    dir: str = ""
    train_file: str = "train.jsonl"
    valid_file: str = "valid.jsonl"
    """Examples the checkpoint is chosen on (and early stopping decided): a few training-side
    files, written by ``inkling dataset``. When missing, ``heldout_file`` is used instead."""
    heldout_file: str = "heldout.jsonl"
    max_seq_len: int = 1024
    eos_token: str = "<|endoftext|>"
    max_heldout_examples: int = 0
    """Evaluate on at most this many held-out examples (0 = all)."""


@dataclass
class LoraSection:
    """LoRA adapter shape."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    top_layers: int = 0
    """Adapt only the top this many transformer layers (0 = all). The layers below get no
    backward pass at all: fewer trainable parameters and a cheaper step."""


@dataclass
class TrainSection:
    """Optimisation schedule, evaluation and checkpointing."""

    output_dir: str = "runs/finetune"
    learning_rate: float = 3e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    epochs: float = 3.0
    max_steps: int = 0
    """Optimizer steps to run; 0 = derived from ``epochs``."""
    batch_size: int = 1
    grad_accum: int = 8
    max_grad_norm: float = 1.0
    eval_every: int = 50
    save_every: int = 50
    log_every: int = 10
    early_stopping_patience: int = 5
    """Stop after this many evaluations without a better held-out loss (0 = never)."""
    early_stopping_min_delta: float = 0.0
    keep_checkpoints: int = 2
    seed: int = 42


@dataclass
class ExportSection:
    """Where and how the merged model is written."""

    dir: str = ""
    """Default: ``<train.output_dir>/export``."""
    dtype: str = "bfloat16"
    gguf: bool = False
    gguf_type: str = "f16"


@dataclass
class Config:
    """The whole configuration."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    lora: LoraSection = field(default_factory=LoraSection)
    train: TrainSection = field(default_factory=TrainSection)
    export: ExportSection = field(default_factory=ExportSection)

    # Derived paths -------------------------------------------------------------------
    @property
    def train_path(self) -> Path:
        return Path(self.data.dir) / self.data.train_file

    @property
    def heldout_path(self) -> Path:
        return Path(self.data.dir) / self.data.heldout_file

    @property
    def valid_path(self) -> Path:
        return Path(self.data.dir) / self.data.valid_file

    @property
    def output_dir(self) -> Path:
        return Path(self.train.output_dir)

    @property
    def adapter_dir(self) -> Path:
        """The adapter that ``export`` merges: the best one by held-out loss."""
        return self.output_dir / "adapter"

    @property
    def export_dir(self) -> Path:
        return Path(self.export.dir) if self.export.dir else self.output_dir / "export"

    def validate(self) -> None:
        """Raise :class:`ConfigError` on values that cannot work."""
        if not self.model.base:
            raise ConfigError("model.base is required: a .gguf file or a Hugging Face folder")
        if not self.data.dir:
            raise ConfigError("data.dir is required: the folder holding train.jsonl and heldout.jsonl")
        _one_of("model.dtype", self.model.dtype, DTYPES)
        _one_of("export.dtype", self.export.dtype, DTYPES[1:])
        _one_of("export.gguf_type", self.export.gguf_type, ("f16", "f32", "q8_0"))
        if not 16 <= self.data.max_seq_len <= MAX_SEQ_LEN_LIMIT:
            raise ConfigError(f"data.max_seq_len must be in 16..={MAX_SEQ_LEN_LIMIT}, got {self.data.max_seq_len}")
        _positive("lora.r", self.lora.r)
        _positive("lora.alpha", self.lora.alpha)
        if not 0.0 <= self.lora.dropout < 1.0:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {self.lora.dropout}")
        if self.lora.top_layers < 0:
            raise ConfigError(f"lora.top_layers must be >= 0 (0 = all layers), got {self.lora.top_layers}")
        if not self.lora.target_modules:
            raise ConfigError("lora.target_modules must name at least one module")
        _positive("train.learning_rate", self.train.learning_rate)
        if not 0.0 <= self.train.warmup_ratio < 1.0:
            raise ConfigError(f"train.warmup_ratio must be in [0, 1), got {self.train.warmup_ratio}")
        if self.train.max_steps < 0:
            raise ConfigError(f"train.max_steps must be >= 0, got {self.train.max_steps}")
        if self.train.max_steps == 0 and self.train.epochs <= 0:
            raise ConfigError("set train.epochs > 0 or train.max_steps > 0")
        for key in ("batch_size", "grad_accum", "eval_every", "save_every", "log_every", "keep_checkpoints"):
            _positive(f"train.{key}", getattr(self.train, key))
        if self.train.early_stopping_patience < 0:
            raise ConfigError("train.early_stopping_patience must be >= 0")
        if self.train.weight_decay < 0 or self.train.max_grad_norm < 0:
            raise ConfigError("train.weight_decay and train.max_grad_norm must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


_PATH_KEYS = {("model", "base"), ("data", "dir"), ("train", "output_dir"), ("export", "dir")}


def _check_type(key: str, value: Any, expected: Any) -> Any:
    """Return ``value`` converted to ``expected``, or raise a ConfigError naming ``key``."""
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, float)
    elif expected is str:
        ok = isinstance(value, str)
    else:  # list[str]
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        name = getattr(expected, "__name__", str(expected))
        raise ConfigError(f"{key} must be {name}, got {type(value).__name__} {value!r}")
    return value


def _unknown(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown key {key!r}{hint}; known keys: {', '.join(sorted(known))}")


def from_dict(raw: dict[str, Any], base_dir: Path | None = None) -> Config:
    """Build a validated :class:`Config` from a parsed TOML table."""
    cfg = Config()
    sections = {"model": ModelSection, "data": DataSection, "lora": LoraSection,
                "train": TrainSection, "export": ExportSection}
    for name, table in raw.items():
        if name not in sections:
            raise _unknown(name, list(sections))
        if not isinstance(table, dict):
            raise ConfigError(f"{name} must be a table ([{name}]), got {type(table).__name__}")
        section = getattr(cfg, name)
        hints = get_type_hints(sections[name])
        for key, value in table.items():
            full = f"{name}.{key}"
            if key not in hints:
                raise _unknown(full, list(hints))
            value = _check_type(full, value, hints[key])
            if (name, key) in _PATH_KEYS and value:
                value = str(_resolve(value, base_dir))
            setattr(section, key, value)
    cfg.validate()
    return cfg


def _resolve(value: str, base_dir: Path | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def load(path: str | Path) -> Config:
    """Read and validate a TOML configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from e
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    try:
        return from_dict(raw, base_dir=path.resolve().parent)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


EXAMPLE = """\
# inkling fine-tuning configuration. Relative paths are relative to this file.

[model]
# A GGUF file (dequantized on load) or a Hugging Face folder (config.json + safetensors).
base = "~/.cache/inkling/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
dtype = "auto"                 # auto: bfloat16 on a capable GPU, else float32
gradient_checkpointing = false # true saves memory on long sequences, costs ~30% speed

[data]
dir = "dataset"                # written by `inkling dataset --repo . --out dataset`
max_seq_len = 1024             # at most 2048; prompts are cut from the left, never the completion
max_heldout_examples = 200     # 0 = evaluate on the whole held-out split

[lora]
r = 16
alpha = 32
dropout = 0.05
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
top_layers = 0                 # > 0: adapt only the top N layers (no backward pass below them)

[train]
output_dir = "runs/finetune"
learning_rate = 3e-4
warmup_ratio = 0.05
epochs = 3
max_steps = 0                  # > 0 overrides epochs
batch_size = 1
grad_accum = 8
eval_every = 25
save_every = 25
early_stopping_patience = 4    # evaluations without improvement before stopping
seed = 42

[export]
dir = ""                       # default: <output_dir>/export
dtype = "bfloat16"             # float16 / bfloat16 halve the size; the server converts to f32 on load
gguf = false                   # also write model.gguf (needs the `gguf` package)
gguf_type = "f16"              # f16, f32 or q8_0
"""
