"""The quality filter: fitting on `inkling eval`-shaped results, the exported file scoring as
scikit-learn does, the coverage table, the router, and the server reproducing the file's checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inkling_finetune import filter as F

DENSE = 8


def _features(rng: np.random.Generator, good: bool, noise: float = 1.0) -> dict:
    """Features in the shape src/quality/features.rs writes; every branch carries some signal."""
    dense = rng.normal(0, 1, DENSE)
    dense[0] += 1.5 if good else -1.5
    numeric = {n: float(rng.normal()) for n in F.NUMERIC if n != "since_edit_ms"}
    numeric["mean_logprob"] = float(rng.normal(-0.3 if good else -1.2, noise))
    numeric["since_edit_ms"] = None
    units = ["self", ".", "x"] + (["return"] if good and rng.random() < 0.7 else ["print"] * int(rng.integers(1, 3)))
    return {"dense": dense.tolist(), "completion_units": units, "context_units": ["def", "f", "(", ")"],
            "numeric": numeric,
            "categorical": {"language": "python", "cursor_node": str(rng.choice(["block", "call", "argument_list"])),
                            "stop": "end_of_line"}}


def write_results(path: Path, repo: str, files: list[str], n: int, seed: int, p_good: float = 0.5,
                  good_of=None) -> Path:
    """A results.json like `inkling eval` writes: samples, each with a `default` prediction."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        good = bool(rng.random() < p_good) if good_of is None else good_of(i)
        em = 1.0 if good and rng.random() < 0.6 else 0.0
        es = 1.0 if em else (rng.uniform(0.7, 0.95) if good else rng.uniform(0.0, 0.6))
        text = "" if i % 17 == 0 else "x = 1"
        pred = {"text": text, "ms": 100.0 + i, "scores": {"em": em, "es": es, "parse": 1.0}}
        if text:
            pred["features"] = _features(rng, good)
        samples.append({"id": f"s{i}", "kind": "rest_of_line", "path": files[i % len(files)], "predictions": {"default": pred}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"repo": f"/src/{repo}", "configs": [{"name": "default"}], "samples": samples}))
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("filter")
    train = [write_results(root / "a-train.json", "a", [f"a/t{i}.py" for i in range(12)], 220, seed=1),
             write_results(root / "b-train.json", "b", [f"b/t{i}.py" for i in range(12)], 220, seed=2)]
    test = [write_results(root / "a-test.json", "a", [f"a/h{i}.py" for i in range(5)], 160, seed=3),
            write_results(root / "b-test.json", "b", [f"b/h{i}.py" for i in range(5)], 160, seed=4)]
    result = F.run([str(p) for p in train], [str(p) for p in test], root / "out")
    return root, result


def test_the_exported_file_scores_every_test_suggestion_as_scikit_learn_does(fitted) -> None:
    root, _ = fitted
    filter_json = json.loads((root / "out" / "filter.json").read_text())
    assert filter_json["format"] == F.FORMAT and 0 <= filter_json["min_confidence"] <= 1
    assert len(filter_json["checks"]) == F.N_CHECKS
    for check in filter_json["checks"]:
        assert F.score_file(filter_json, check["features"]) == pytest.approx(check["probability"], abs=1e-9)
    # since_edit_ms is missing in every record: it is left out, not imputed from nothing.
    assert "since_edit_ms" not in {t["name"] for t in filter_json["numeric"]}
    assert (root / "out" / "coverage.png").stat().st_size > 1000


def test_the_filter_beats_showing_everything_and_the_log_probability_alone(fitted) -> None:
    _, result = fitted
    rows = {r["coverage"]: r for r in result["coverage"]}
    assert rows[1.0]["es"]["filter"] == pytest.approx(rows[1.0]["es"]["all"])
    half = rows[0.5]["es"]
    # The synthetic signal is spread over the branches, so using them all beats one number.
    assert half["gain_over_all"][1] > 0, half
    assert half["filter"] > half["logprob"], half
    assert result["test_suggestions"] > 250 and result["train_suggestions"] > 350


def test_the_command_fits_and_writes_the_filter(tmp_path: Path) -> None:
    """`python -m inkling_finetune filter`, as the README runs it."""
    train = write_results(tmp_path / "t.json", "a", [f"a/t{i}.py" for i in range(10)], 200, seed=8)
    test = write_results(tmp_path / "h.json", "a", [f"a/h{i}.py" for i in range(5)], 120, seed=9)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "inkling_finetune", "filter", "--train", str(train), "--test", str(test),
                          "--out", str(out)], capture_output=True, text=True, timeout=300,
                         cwd=Path(F.__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr
    assert "minConfidence" in run.stdout and "test suggestions" in run.stdout
    assert json.loads((out / "filter.json").read_text())["format"] == F.FORMAT


def test_files_in_both_the_training_and_the_test_runs_are_refused(tmp_path: Path) -> None:
    a = write_results(tmp_path / "a.json", "a", ["a/x.py", "a/y.py"], 60, seed=1)
    b = write_results(tmp_path / "b.json", "a", ["a/y.py"], 30, seed=2)
    with pytest.raises(ValueError, match="both the training and the test"):
        F.run([str(a)], [str(b)], tmp_path / "out")


def test_the_router_sends_low_scores_to_the_big_model(tmp_path: Path) -> None:
    train = write_results(tmp_path / "t.json", "a", [f"a/t{i}.py" for i in range(10)], 300, seed=5)
    test = write_results(tmp_path / "h.json", "a", [f"a/h{i}.py" for i in range(5)], 200, seed=6)
    big = write_results(tmp_path / "big.json", "a", [f"a/h{i}.py" for i in range(5)], 200, seed=7, good_of=lambda i: True)
    result = F.run([str(train)], [str(test)], tmp_path / "out", router_test=[str(big)])
    rows = result["router"]
    small, large = rows[0], rows[1]
    assert large["em"] > small["em"] and large["routed"] == 1.0
    for r in rows[2:]:
        assert small["em"] <= r["em"] <= large["em"] + 1e-9 and 0 < r["routed"] < 1
        assert small["ms"] < r["ms"] < small["ms"] + large["ms"]


@pytest.mark.e2e
def test_the_server_reproduces_the_filter_files_checks(fitted, tmp_path: Path) -> None:
    """The Rust loader scores the file's check records and refuses the file unless it gives
    scikit-learn's probabilities; a tampered file is refused with a clear message."""
    binary = os.environ.get("INKLING_BIN")
    if not binary:
        pytest.skip("INKLING_BIN is not set")
    root, _ = fitted
    path = root / "out" / "filter.json"
    ok = subprocess.run([binary, "filter-check", str(path)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "reproduces its 8 checks" in ok.stdout
    tampered = json.loads(path.read_text())
    tampered["intercept"] += 0.5
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    refused = subprocess.run([binary, "filter-check", str(bad)], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "does not reproduce its own checks" in refused.stderr
