"""Config loading and validation."""

from pathlib import Path

import pytest

from inkling_finetune import config as C


def test_example_config_loads(tmp_path: Path) -> None:
    p = tmp_path / "finetune.toml"
    p.write_text(C.EXAMPLE)
    cfg = C.load(p)
    assert cfg.lora.r == 16 and cfg.lora.alpha == 32 and cfg.lora.dropout == 0.05
    assert cfg.lora.target_modules == list(C.DEFAULT_TARGET_MODULES)
    assert cfg.train.learning_rate == 3e-4
    assert Path(cfg.data.dir) == tmp_path / "dataset"  # relative to the file
    assert cfg.export_dir == tmp_path / "runs/finetune/export"


@pytest.mark.parametrize("toml, message", [
    ('[train]\nlearnig_rate = 1e-4', "train.learnig_rate' (did you mean 'learning_rate'"),
    ('[trian]\nx = 1', "unknown key 'trian'"),
    ('[model]\nbase = "m.gguf"\n[data]\ndir = "d"\nmax_seq_len = 4096', "data.max_seq_len"),
    ('[model]\nbase = "m.gguf"\n[data]\ndir = "d"\n[lora]\nr = "16"', "lora.r must be int"),
    ('[data]\ndir = "d"', "model.base is required"),
    ('[model]\nbase = "m.gguf"\n[data]\ndir = "d"\n[export]\ndtype = "int4"', "export.dtype"),
    ('[model]\nbase = "m.gguf"\n[data]\ndir = "d"\n[train]\nmax_steps = 0\nepochs = 0', "train.epochs"),
    ('[model]\nbase = "m.gguf"\n[data]\ndir = "d"\n[lora]\ntop_layers = -1', "lora.top_layers must be >= 0"),
])
def test_bad_config_names_the_key(tmp_path: Path, toml: str, message: str) -> None:
    p = tmp_path / "f.toml"
    p.write_text(toml)
    with pytest.raises(C.ConfigError, match=None) as err:
        C.load(p)
    assert message in str(err.value)


def test_ints_accepted_for_floats() -> None:
    cfg = C.from_dict({"model": {"base": "/m.gguf"}, "data": {"dir": "/d"}, "train": {"epochs": 2}})
    assert cfg.train.epochs == 2.0 and isinstance(cfg.train.epochs, float)
