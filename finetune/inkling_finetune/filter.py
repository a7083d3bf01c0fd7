"""The quality filter: which suggestions are worth showing, fitted on what ``inkling eval`` records.

``inkling eval`` writes, for every suggestion, the features the server computes for it (one Rust
function for both; ``src/quality/features.rs``): the model's hidden states (dense), the lexical
units of the suggestion and of the text around the cursor (sparse), and metadata (log-probabilities,
length, cursor kind, ...), beside its scores. This module fits a logistic regression on those,
with scikit-learn: a ``ColumnTransformer`` of three branches (dense → ``StandardScaler``; two
``TfidfVectorizer``; metadata → ``SimpleImputer`` + ``StandardScaler`` and ``OneHotEncoder``), each
branch weighted, the weights and the regularization chosen by cross-validation grouped by file on
the training records only. It then writes the fitted model as JSON with every transform folded
into per-feature numbers (``src/quality/filter.rs`` reads it and evaluates it in microseconds),
plus a few check records with scikit-learn's probabilities, which the server must reproduce.

A suggestion is *good* (the label) when its edit similarity to what was really there is ≥ 0.7;
precision is reported both for that and for exact match. Measured on held-out records (other
files than the training records', ideally other ``inkling eval --files heldout`` runs), against
showing everything and against a threshold on the mean token log-probability alone.

With ``--router-test`` (the same held-out cursors answered by a bigger model), it also measures
the router: a suggestion of the small model that scores below a threshold is asked of the big one.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = "inkling-filter/1"
GOOD_ES = 0.7
NUMERIC = ("mean_logprob", "min_logprob", "first_logprob", "chars", "lines", "shown_tokens", "generated_tokens",
           "prompt_tokens", "cross_file_chunks", "shaped_cut", "blank_line_head", "line_head_chars", "multiline",
           "since_edit_ms")
CATEGORICAL = ("language", "cursor_node", "stop")
COVERAGES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2)
TARGET_COVERAGE = 0.8
N_CHECKS = 8


@dataclass
class Record:
    """One suggestion of one configuration at one cursor."""

    key: str          # repo + sample id: the same cursor in another run has the same key
    group: str        # repo + file: cross-validation never splits a file
    kind: str
    features: dict[str, Any]
    em: float
    es: float
    ms: float

    @property
    def good(self) -> bool:
        return self.es >= GOOD_ES


@dataclass
class Cursor:
    """One cursor of a run, whatever was answered there (for the router)."""

    key: str
    em: float
    ms: float
    record: Record | None   # the suggestion, when there was one


def read_runs(paths: list[str | Path], config: str) -> list[Cursor]:
    """Every cursor of ``config`` in the given ``results.json`` files."""
    cursors = []
    for path in paths:
        report = json.loads(Path(path).read_text())
        repo = Path(report["repo"]).name
        names = [c["name"] for c in report["configs"]]
        if config not in names:
            raise ValueError(f"{path} has no configuration `{config}` (it has {', '.join(names)})")
        for s in report["samples"]:
            p = s["predictions"].get(config)
            if p is None:
                continue
            key = f"{repo}:{s['id']}"
            scores = p["scores"]
            rec = None
            if p.get("features") and p["text"].strip():
                rec = Record(key=key, group=f"{repo}:{s['path']}", kind=s["kind"], features=p["features"],
                             em=float(scores["em"]), es=float(scores["es"]), ms=float(p["ms"]))
            cursors.append(Cursor(key=key, em=float(scores["em"]), ms=float(p["ms"]), record=rec))
    return cursors


def records(cursors: list[Cursor]) -> list[Record]:
    return [c.record for c in cursors if c.record is not None]


# ---------------------------------------------------------------- the scikit-learn pipeline


def _identity(units: list[str]) -> list[str]:
    return units


def _table(recs: list[Record], numeric: list[str]) -> np.ndarray:
    """An object array, one row per record: dense, completion units, context units, numeric..., categorical..."""
    rows = []
    for r in recs:
        f = r.features
        num = [f["numeric"].get(n) for n in numeric]
        rows.append([np.asarray(f["dense"], dtype=np.float64), f["completion_units"], f["context_units"],
                     *[np.nan if v is None else float(v) for v in num],
                     *[str(f["categorical"].get(c, "")) for c in CATEGORICAL]])
    table = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            table[i, j] = v
    return table


def _numeric_names(recs: list[Record]) -> list[str]:
    """Metadata present and not constant in the training records (``since_edit_ms`` is missing in
    every ``inkling eval`` record: there is no editor)."""
    names = []
    for n in NUMERIC:
        values = [r.features["numeric"].get(n) for r in recs]
        present = [v for v in values if v is not None]
        if present and len(set(present)) > 1:
            names.append(n)
    return names


def _stack(column: np.ndarray) -> np.ndarray:
    return np.vstack(list(np.ravel(column)))


def _floats(block: np.ndarray) -> np.ndarray:
    return np.asarray(block, dtype=np.float64)


def build_pipeline(numeric: list[str], dense_dim: int, weights: dict[str, float], c: float, min_df: int = 2) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    k = len(numeric)
    branches = []
    if dense_dim:
        branches.append(("dense", Pipeline([("stack", FunctionTransformer(_stack)), ("scale", StandardScaler())]), 0))
    tfidf = dict(analyzer=_identity, lowercase=False, sublinear_tf=True, smooth_idf=True, norm="l2", min_df=min_df)
    branches.append(("completion_units", TfidfVectorizer(**tfidf), 1))
    branches.append(("context_units", TfidfVectorizer(**tfidf), 2))
    if k:
        branches.append(("numeric", Pipeline([("float", FunctionTransformer(_floats)),
                                              ("impute", SimpleImputer(strategy="mean")),
                                              ("scale", StandardScaler())]), list(range(3, 3 + k))))
    branches.append(("categorical", OneHotEncoder(handle_unknown="ignore"), list(range(3 + k, 3 + k + len(CATEGORICAL)))))
    columns = ColumnTransformer(branches, transformer_weights={name: weights.get(name, 1.0) for name, _, _ in branches})
    return Pipeline([("features", columns), ("lr", LogisticRegression(C=c, max_iter=5000))])


GRID_C = (0.01, 0.03, 0.1, 0.3, 1.0)
GRID_WEIGHTS = (
    {"dense": 1.0, "completion_units": 1.0, "context_units": 1.0, "numeric": 1.0, "categorical": 1.0},
    {"dense": 0.3, "completion_units": 1.0, "context_units": 0.5, "numeric": 1.0, "categorical": 1.0},
    {"dense": 0.1, "completion_units": 1.0, "context_units": 0.5, "numeric": 1.0, "categorical": 1.0},
    {"dense": 0.0, "completion_units": 1.0, "context_units": 1.0, "numeric": 1.0, "categorical": 1.0},
)


def _min_df(n: int) -> int:
    """Units seen in fewer than two suggestions are left out, once there are enough suggestions
    for that to leave a vocabulary."""
    return 2 if n >= 100 else 1


def _oof_scores(recs: list[Record], numeric: list[str], dense_dim: int, weights: dict[str, float], c: float,
                folds: int, seed: int) -> np.ndarray:
    """Out-of-fold probabilities, folds grouped by file."""
    from sklearn.model_selection import GroupKFold

    x, y = _table(recs, numeric), np.array([r.good for r in recs])
    groups = np.array([r.group for r in recs])
    out = np.zeros(len(recs))
    n_groups = len(set(groups))
    splitter = GroupKFold(n_splits=min(folds, n_groups), shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(x, y, groups):
        if len(set(y[train_idx])) < 2:
            out[test_idx] = y[train_idx].mean()
            continue
        model = build_pipeline(numeric, dense_dim, weights, c, _min_df(len(train_idx))).fit(x[train_idx], y[train_idx])
        out[test_idx] = model.predict_proba(x[test_idx])[:, 1]
    return out


def _average_precision_over_coverages(scores: np.ndarray, good: np.ndarray) -> float:
    return float(np.mean([precision_at(scores, good, c) for c in COVERAGES[1:]]))


def fit(recs: list[Record], folds: int = 5, seed: int = 1) -> tuple[Any, dict[str, Any]]:
    """Chooses branch weights and C by grouped cross-validation (mean precision over the coverage
    grid), then fits on all of ``recs``. Returns the model and what was chosen."""
    if len({r.good for r in recs}) < 2:
        raise ValueError("the training records are all good or all bad: nothing to learn")
    numeric = _numeric_names(recs)
    dense_dim = len(recs[0].features["dense"])
    if any(len(r.features["dense"]) != dense_dim for r in recs):
        raise ValueError("the records come from models of different sizes (dense features differ in length)")
    good = np.array([r.good for r in recs])
    best = None
    grid = GRID_WEIGHTS if dense_dim else GRID_WEIGHTS[-1:]
    for weights in grid:
        for c in GRID_C:
            oof = _oof_scores(recs, numeric, dense_dim, weights, c, folds, seed)
            score = _average_precision_over_coverages(oof, good)
            log.info("filter: weights %s C %g: mean precision over coverages %.3f", weights, c, score)
            if best is None or score > best[0]:
                best = (score, weights, c, oof)
    assert best is not None
    _, weights, c, oof = best
    model = build_pipeline(numeric, dense_dim, weights, c, _min_df(len(recs))).fit(_table(recs, numeric), good)
    # The threshold that shows TARGET_COVERAGE of the suggestions, judged out of fold.
    threshold = float(np.quantile(oof, 1 - TARGET_COVERAGE))
    chosen = {"weights": weights, "C": c, "numeric": numeric, "dense_dim": dense_dim, "cv_threshold": threshold,
              "cv_mean_precision": best[0]}
    return model, chosen


# ---------------------------------------------------------------- export


def export(model: Any, chosen: dict[str, Any], checks: list[Record], trained_on: dict[str, Any]) -> dict[str, Any]:
    """The fitted pipeline as the JSON ``src/quality/filter.rs`` reads: every transform and branch
    weight folded into per-feature numbers."""
    columns = model.named_steps["features"]
    lr = model.named_steps["lr"]
    coef = lr.coef_[0]
    weights = columns.transformer_weights or {}
    out: dict[str, Any] = {"format": FORMAT, "intercept": float(lr.intercept_[0]), "numeric": [], "categorical": []}
    at = 0
    for name, transformer, _ in columns.transformers_:
        if isinstance(transformer, str):  # "drop" / "passthrough" of an empty remainder
            continue
        w = weights.get(name, 1.0)
        if name == "dense":
            scaler = transformer.named_steps["scale"]
            n = len(scaler.mean_)
            out["dense"] = {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
                            "coef": (w * coef[at:at + n]).tolist()}
        elif name in ("completion_units", "context_units"):
            vocab = transformer.vocabulary_
            n = len(vocab)
            out[name] = {"terms": {t: [float(transformer.idf_[i]), float(w * coef[at + i])] for t, i in vocab.items()}}
        elif name == "numeric":
            scaler = transformer.named_steps["scale"]
            n = len(scaler.mean_)
            for i, feature in enumerate(chosen["numeric"]):
                out["numeric"].append({"name": feature, "mean": float(scaler.mean_[i]), "scale": float(scaler.scale_[i]),
                                       "coef": float(w * coef[at + i])})
        elif name == "categorical":
            n = 0
            for feature, categories in zip(CATEGORICAL, transformer.categories_):
                values = {str(v): float(w * coef[at + n + j]) for j, v in enumerate(categories)}
                out["categorical"].append({"name": feature, "coef": values})
                n += len(categories)
        else:  # pragma: no cover
            raise ValueError(f"unknown branch {name}")
        at += n
    if at != len(coef):
        raise ValueError(f"the export covers {at} of {len(coef)} coefficients")
    out["min_confidence"] = chosen["cv_threshold"]
    probabilities = score(model, chosen, checks)
    out["checks"] = [{"features": r.features, "probability": float(p)} for r, p in zip(checks, probabilities)]
    out["trained_on"] = trained_on
    return out


def score(model: Any, chosen: dict[str, Any], recs: list[Record]) -> np.ndarray:
    if not recs:
        return np.zeros(0)
    return model.predict_proba(_table(recs, chosen["numeric"]))[:, 1]


def score_file(filter_json: dict[str, Any], features: dict[str, Any]) -> float:
    """The probability the filter file gives ``features``, computed from the JSON alone as
    ``src/quality/filter.rs`` computes it (a second implementation, for tests)."""
    z = filter_json["intercept"]
    dense = filter_json.get("dense")
    if dense:
        for x, m, s, c in zip(features["dense"], dense["mean"], dense["scale"], dense["coef"]):
            z += c * (x - m) / (s if s else 1.0)
    for name in ("completion_units", "context_units"):
        branch = filter_json.get(name)
        if not branch:
            continue
        counts: dict[str, int] = {}
        for u in features[name]:
            if u in branch["terms"]:
                counts[u] = counts.get(u, 0) + 1
        v = {u: (1 + math.log(n)) * branch["terms"][u][0] for u, n in counts.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        if norm:
            z += sum(branch["terms"][u][1] * x for u, x in v.items()) / norm
    for term in filter_json["numeric"]:
        x = features["numeric"].get(term["name"])
        if x is not None:
            z += term["coef"] * (x - term["mean"]) / (term["scale"] if term["scale"] else 1.0)
    for term in filter_json["categorical"]:
        z += term["coef"].get(str(features["categorical"].get(term["name"], "")), 0.0)
    return 1 / (1 + math.exp(-z))


# ---------------------------------------------------------------- measuring


def precision_at(scores: np.ndarray, hits: np.ndarray, coverage: float) -> float:
    """Share of hits among the ``coverage`` share of suggestions with the highest scores."""
    n = len(scores)
    if n == 0:
        return float("nan")
    k = max(1, int(round(coverage * n)))
    order = np.argsort(-scores, kind="stable")
    return float(np.mean(hits[order[:k]]))


def coverage_table(filter_scores: np.ndarray, logprob: np.ndarray, em: np.ndarray, good: np.ndarray,
                   resamples: int = 1000, seed: int = 1) -> list[dict[str, Any]]:
    """Precision (EM, and ES ≥ 0.7) at each coverage for the filter, the log-probability threshold
    and showing everything, with 95% bootstrap intervals of the filter's gains."""
    rng = np.random.default_rng(seed)
    n = len(filter_scores)
    boots = [rng.integers(0, n, n) for _ in range(resamples)]
    rows = []
    for c in COVERAGES:
        row: dict[str, Any] = {"coverage": c}
        for metric, hits in (("em", em), ("es", good.astype(float))):
            f = precision_at(filter_scores, hits, c)
            lp = precision_at(logprob, hits, c)
            everything = float(np.mean(hits))
            gain_all = [precision_at(filter_scores[b], hits[b], c) - float(np.mean(hits[b])) for b in boots]
            gain_lp = [precision_at(filter_scores[b], hits[b], c) - precision_at(logprob[b], hits[b], c) for b in boots]
            row[metric] = {"filter": f, "logprob": lp, "all": everything,
                           "gain_over_all": [f - everything, *np.percentile(gain_all, [2.5, 97.5]).tolist()],
                           "gain_over_logprob": [f - lp, *np.percentile(gain_lp, [2.5, 97.5]).tolist()]}
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| coverage | precision EM: filter / logprob / all | filter − all (95% CI) | filter − logprob (95% CI) "
             "| precision ES≥0.7: filter / logprob / all | filter − all (95% CI) | filter − logprob (95% CI) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r['coverage']:.0%}"]
        for m in ("em", "es"):
            x = r[m]
            cells.append(f"{x['filter']:.3f} / {x['logprob']:.3f} / {x['all']:.3f}")
            for key in ("gain_over_all", "gain_over_logprob"):
                g = x[key]
                cells.append(f"{g[0]:+.3f} ({g[1]:+.3f}…{g[2]:+.3f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    cov = [r["coverage"] * 100 for r in rows]
    for ax, metric, title in ((axes[0], "em", "exact match"), (axes[1], "es", "edit similarity ≥ 0.7")):
        for key, label, style in (("filter", "filter", "o-"), ("logprob", "mean log-probability", "s--"), ("all", "show everything", ":")):
            ax.plot(cov, [r[metric][key] for r in rows], style, label=label)
        ax.set_xlabel("coverage (% of suggestions shown)")
        ax.set_ylabel(f"precision ({title})")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def router_table(small: list[Cursor], big: list[Cursor], small_scores: dict[str, float],
                 thresholds: list[float]) -> list[dict[str, Any]]:
    """EM and mean latency of the small model alone, the big one alone, and the router at each
    threshold, over the cursors both runs answered. A cursor is routed when the small model's
    suggestion scores below the threshold (an empty answer stays)."""
    by_key = {c.key: c for c in big}
    pairs = [(s, by_key[s.key]) for s in small if s.key in by_key]
    if not pairs:
        raise ValueError("the router runs share no cursor with the small model's (same repository, seed and kinds?)")
    rows = [{"what": "small alone", "em": float(np.mean([s.em for s, _ in pairs])), "ms": float(np.mean([s.ms for s, _ in pairs])), "routed": 0.0},
            {"what": "big alone", "em": float(np.mean([b.em for _, b in pairs])), "ms": float(np.mean([b.ms for _, b in pairs])), "routed": 1.0}]
    for t in thresholds:
        routed = [s.record is not None and small_scores.get(s.key, 1.0) < t for s, _ in pairs]
        em = [b.em if r else s.em for (s, b), r in zip(pairs, routed)]
        ms = [s.ms + (b.ms if r else 0.0) for (s, b), r in zip(pairs, routed)]
        rows.append({"what": f"router < {t:.2f}", "em": float(np.mean(em)), "ms": float(np.mean(ms)), "routed": float(np.mean(routed))})
    gain = rows[1]["em"] - rows[0]["em"]
    for r in rows:
        r["share_of_gain"] = (r["em"] - rows[0]["em"]) / gain if gain else float("nan")
        r["ms_vs_big"] = r["ms"] / rows[1]["ms"] if rows[1]["ms"] else float("nan")
    return rows


def run(train: list[str], test: list[str], out: Path, config: str = "default", router_test: list[str] | None = None,
        folds: int = 5, seed: int = 1) -> dict[str, Any]:
    """Fits on ``train``, writes ``filter.json``, ``coverage.json`` and ``coverage.png`` to ``out``,
    measures on ``test`` (and the router with ``router_test``)."""
    out.mkdir(parents=True, exist_ok=True)
    train_cursors, test_cursors = read_runs(train, config), read_runs(test, config)
    train_recs, test_recs = records(train_cursors), records(test_cursors)
    overlap = {r.group for r in train_recs} & {r.group for r in test_recs}
    if overlap:
        raise ValueError(f"{len(overlap)} files have records in both the training and the test runs, e.g. {sorted(overlap)[0]}")
    if not test_recs:
        raise ValueError("the test runs hold no suggestion with features")
    log.info("filter: %d training suggestions (%d good), %d test suggestions (%d good)", len(train_recs),
             sum(r.good for r in train_recs), len(test_recs), sum(r.good for r in test_recs))
    model, chosen = fit(train_recs, folds=folds, seed=seed)
    scores = score(model, chosen, test_recs)
    rng = np.random.default_rng(seed)
    checks = [test_recs[i] for i in sorted(rng.choice(len(test_recs), min(N_CHECKS, len(test_recs)), replace=False))]
    trained_on = {"train": [str(p) for p in train], "records": len(train_recs), "label": f"edit similarity >= {GOOD_ES}",
                  "chosen": {k: v for k, v in chosen.items() if k != "cv_threshold"}}
    filter_json = export(model, chosen, checks, trained_on)
    (out / "filter.json").write_text(json.dumps(filter_json))
    logprob = np.array([r.features["numeric"]["mean_logprob"] for r in test_recs])
    em = np.array([r.em for r in test_recs])
    good = np.array([r.good for r in test_recs])
    rows = coverage_table(scores, logprob, em, good, seed=seed)
    at_threshold = scores >= filter_json["min_confidence"]
    result: dict[str, Any] = {
        "train": [str(p) for p in train], "test": [str(p) for p in test],
        "train_suggestions": len(train_recs), "test_suggestions": len(test_recs),
        "chosen": trained_on["chosen"], "min_confidence": filter_json["min_confidence"],
        "at_min_confidence": {"coverage": float(at_threshold.mean()),
                              "precision_em": float(em[at_threshold].mean()) if at_threshold.any() else float("nan"),
                              "precision_es": float(good[at_threshold].mean()) if at_threshold.any() else float("nan")},
        "coverage": rows,
    }
    if router_test:
        small_scores = {r.key: float(s) for r, s in zip(test_recs, scores)}
        thresholds = sorted({round(float(np.quantile(scores, q)), 3) for q in (0.1, 0.2, 0.3, 0.4, 0.5)})
        result["router"] = router_table(test_cursors, read_runs(router_test, config), small_scores, thresholds)
    (out / "coverage.json").write_text(json.dumps(result, indent=2))
    plot(rows, out / "coverage.png")
    return result
