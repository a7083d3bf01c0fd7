"""End to end with the real binary: `inkling dataset` -> train -> export -> `inkling complete`.

Runs only when INKLING_BIN points at an inkling binary (``bash finetune/tests/e2e_tiny.sh``);
it starts from the tiny random model, so it checks plumbing, not quality.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import CODE, make_config

BIN = os.environ.get("INKLING_BIN")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not BIN, reason="set INKLING_BIN to run the end-to-end test")]


def make_repo(root: Path) -> Path:
    """A small git repository of Python files."""
    root.mkdir(parents=True)
    (root / "calc.py").write_text(CODE)
    for i in range(6):
        (root / f"mod{i}.py").write_text(CODE.replace("add", f"add{i}").replace("Counter", f"Counter{i}"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-q", "-m", "init"]):
        subprocess.run(cmd, cwd=root, check=True, env=env)
    return root


def test_dataset_train_export_complete(tmp_path: Path, tiny_model: Path) -> None:
    from inkling_finetune import export as E
    from inkling_finetune import train as T

    repo = make_repo(tmp_path / "repo")
    data = tmp_path / "dataset"
    subprocess.run([BIN, "dataset", "--repo", str(repo), "--out", str(data)], check=True, timeout=300)
    for name in ("train.jsonl", "heldout.jsonl", "manifest.json"):
        assert (data / name).is_file(), name

    cfg = make_config(tmp_path, tiny_model, data, max_steps=3)
    T.train(cfg)
    out = E.export(cfg.adapter_dir, tmp_path / "export", dtype="float32")

    request = {"prefix": "def add(a, b):\n    return ", "suffix": "\n", "path": "calc.py", "language": "python"}
    proc = subprocess.run([BIN, "complete", "--model", str(out), "--jsonl", "-"], input=json.dumps(request) + "\n",
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    assert "error" not in lines[0], lines[0]
    assert isinstance(lines[0]["completion"], str)
