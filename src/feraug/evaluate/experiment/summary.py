"""From the runs' predictions to the experiment's numbers: metrics per arm, deltas, and every comparison's tests.

Everything here is a function of :class:`RunResult` objects alone (no model is needed), so a
summary can be recomputed from cached predictions. Which interval decides a comparison, and why,
is :func:`_compare`'s docstring; the tests themselves are :mod:`feraug.evaluate.experiment.statistics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from feraug.evaluate.experiment.statistics import (
    MIN_GAIN,
    TESTED_METRICS,
    corrected_resampled_ttest,
    decide,
    paired_bootstrap,
    paired_t_power,
    paired_test,
    pooled_paired_bootstrap,
    power_from_se,
    seeds_for_power,
)
from feraug.evaluate.metrics import classification_metrics

#: (a, b) pairs compared as "b − a" in the augmentation experiment.
COMPARISONS: tuple[tuple[str, str], ...] = (("baseline", "synthetic"), ("oversample", "synthetic"),
                                            ("baseline", "oversample"))  # fmt: skip
#: Metrics given significance tests (accuracy for Birenbaum, macro-F1 because Disgust is 1.5 % of FER2013).
SCALAR_METRICS: tuple[str, ...] = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc",
                                   "macro_f1_present", "macro_recall_present")  # fmt: skip
PER_CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "auc")


@dataclass(frozen=True)
class EvalSet:
    """One run's scores on one evaluation set: positions (to check pairing), true labels, probabilities ``[N, K]``."""

    index: np.ndarray
    y_true: np.ndarray
    prob: np.ndarray


@dataclass(frozen=True)
class RunResult:
    """What one trained classifier (arm, seed, fold) produced.

    ``n_train_real`` = the fold's real training + selection faces (the n_train of the corrected
    resampled t-test); ``train_counts`` = the arm's training faces per class (synthetic included).
    """

    arm: str
    seed: int
    fold: str
    train_counts: np.ndarray
    n_train_real: int
    evals: dict[str, EvalSet]
    best_epoch: int | None = None
    best_score: float | None = None


def _mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof 1) of the defined values; ``None`` where undefined."""
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    return {"mean": float(v.mean()) if v.size else None, "std": float(v.std(ddof=1)) if v.size > 1 else None,
            "n": int(v.size), "values": [None if x is None else float(x) for x in values]}  # fmt: skip


def _run_metrics(run: RunResult, name: str, classes: Sequence[str]) -> dict[str, Any]:
    """:func:`classification_metrics` plus macro averages over the classes present in training and test.

    A class the arm never trained on (TSTR with a one-class synthetic set) or the test set lacks
    (TRTS) has recall/F1 0 by convention, which drags the all-class macro averages down for a
    reason unrelated to quality; ``macro_*_present`` average over the other classes only.
    """
    e = run.evals[name]
    m = classification_metrics(e.y_true, e.prob.argmax(axis=1), e.prob, classes)
    present = [c for k, c in enumerate(classes) if run.train_counts[k] > 0 and m["per_class"][c]["support"] > 0]
    m["present_classes"] = present
    for key in ("f1", "recall"):
        vals = [m["per_class"][c][key] for c in present]
        m[f"macro_{key}_present"] = float(np.mean(vals)) if vals else None
    return m


def _compare(a_runs: list[RunResult], b_runs: list[RunResult], name: str, metric: str,
             per_run: dict[str, list[dict[str, Any]]], a: str, b: str, *, n_boot: int, n_classes: int,
             shared_images: bool, kfold: bool, min_gain: float = MIN_GAIN) -> dict[str, Any]:  # fmt: skip
    """All tests of ``metric(b) − metric(a)`` on evaluation set ``name``, and the one interval that decides.

    The deciding ("primary") interval is across training seeds: Nadeau & Bengio's corrected t over
    the folds for k-fold, else the paired t-interval over the per-seed differences (S − 1 df),
    which is conditional on this test set. When every seed gave exactly the same difference
    (training randomness nil) the test-image bootstrap, the only noise left, decides. With one
    seed nothing decides ("not_shown"). The test-image bootstrap is otherwise reported as
    "test-set noise only". ``outcome`` is :func:`~feraug.evaluate.experiment.statistics.decide` of the primary
    interval; ``power`` is the chance this design had of showing a true +``min_gain`` gain at the
    observed seed-to-seed spread, and ``seeds_for_80`` how many seeds would reach 80 %.
    """
    va = np.array([m[metric] for m in per_run[a]])
    vb = np.array([m[metric] for m in per_run[b]])
    seeds = sorted({r.seed for r in a_runs})
    folds = sorted({r.fold for r in a_runs})
    out: dict[str, Any] = {"a": a, "b": b, "metric": metric, "diff": float(vb.mean() - va.mean()), "notes": []}
    seed_of = np.array([r.seed for r in a_runs])
    fold_of = np.array([r.fold for r in a_runs])
    if len(seeds) >= 2:
        out["paired_test"] = paired_test([float(va[seed_of == s].mean()) for s in seeds],
                                         [float(vb[seed_of == s].mean()) for s in seeds])  # fmt: skip
    if shared_images:
        y = a_runs[0].evals[name].y_true
        pa = np.stack([r.evals[name].prob.argmax(axis=1) for r in a_runs])
        pb = np.stack([r.evals[name].prob.argmax(axis=1) for r in b_runs])
        out["bootstrap_pooled"] = pooled_paired_bootstrap(y, pa, pb, metric, n_boot=n_boot, n_classes=n_classes)
        if len(folds) == 1:
            out["bootstrap_per_seed"] = [{"seed": s, **paired_bootstrap(y, pa[i], pb[i], metric, n_boot=n_boot,
                                                                        n_classes=n_classes)}
                                         for i, s in enumerate(r.seed for r in a_runs)]  # fmt: skip
    pt, boot = out.get("paired_test"), out.get("bootstrap_pooled")
    if kfold and not shared_images:
        diffs = [float((vb - va)[fold_of == f].mean()) for f in folds]
        n_train = round(np.mean([r.n_train_real for r in a_runs]))
        n_test = round(np.mean([r.evals[name].y_true.size for r in a_runs]))
        ct = out["corrected_ttest"] = corrected_resampled_ttest(diffs, n_train, n_test)
        out["primary"] = {"method": f"corrected resampled t-test over {len(folds)} folds, n_train={n_train}, "
                                    f"n_test={n_test}",
                          "diff": ct["mean"], "ci95": ct["ci95"], "p": ct["p"]}  # fmt: skip
        out["power"] = power_from_se(ct["se_corrected"], ct["df"], min_gain) if ct["std"] > 0 else None
    elif pt is not None and pt["ci95"] is not None and pt["std_diff"] > 0:  # not equal up to round-off
        out["primary"] = {"method": f"paired t-interval over {pt['n']} seeds ({pt['df']} df), on this test set",
                          "diff": pt["mean_diff"], "ci95": pt["ci95"], "p": pt["p_ttest"]}  # fmt: skip
        out["power"] = paired_t_power(pt["n"], pt["std_diff"], min_gain)
        out["seeds_for_80"] = seeds_for_power(pt["std_diff"], min_gain)
    elif pt is not None and boot is not None:  # every seed gave the same difference, up to round-off (zero included)
        out["primary"] = {"method": f"every one of {pt['n']} seeds gave the same difference (no training noise): "
                                    f"paired bootstrap over {boot['n']} test images",
                          "diff": boot["diff"], "ci95": boot["ci95"], "p": boot["p"]}  # fmt: skip
    elif pt is not None and pt["ci95"] is not None:  # all differences zero, no shared test images
        out["primary"] = {"method": f"paired t over {pt['n']} seeds: every difference is 0",
                          "diff": 0.0, "ci95": pt["ci95"], "p": pt["p_ttest"]}  # fmt: skip
    if "primary" in out:
        out["outcome"] = decide(out["primary"]["ci95"], min_gain)
    else:
        out["outcome"] = "not_shown"
        out["notes"].append("one seed: training randomness is not assessed, so nothing decides; the test-image "
                            "bootstrap shows test-set noise only. Run at least 2 seeds (see seeds_for_80)")  # fmt: skip
    return out


def summarize(runs: Sequence[RunResult], classes: Sequence[str], *, comparisons: Sequence[tuple[str, str]],
              n_boot: int = 2000, kfold: bool = False, primary_metric: str = "macro_f1",
              min_gain: float = MIN_GAIN) -> dict[str, Any]:  # fmt: skip
    """Metrics, per-class deltas and significance tests from the runs' predictions alone (no model needed).

    Returns ``{"sets": {set name: {"arms", "deltas", "comparisons", "shared_images"}}, "primary_set"}``:
    per arm every scalar and per-class metric as mean ± std over runs, the pooled confusion matrix
    and the per-run values; deltas vs ``baseline`` (difference of means); the tests of
    :func:`_compare` for each pair in ``comparisons`` present in the set.
    """
    names = list(dict.fromkeys(name for r in runs for name in r.evals))
    sets: dict[str, Any] = {}
    for name in names:
        by_arm: dict[str, list[RunResult]] = {}
        for r in sorted((r for r in runs if name in r.evals), key=lambda r: (r.seed, r.fold)):
            by_arm.setdefault(r.arm, []).append(r)
        first = next(iter(by_arm.values()))
        shared = all(np.array_equal(r.evals[name].index, first[0].evals[name].index) for r in first)
        per_run = {arm: [_run_metrics(r, name, classes) for r in rs] for arm, rs in by_arm.items()}
        arms: dict[str, Any] = {}
        for arm, ms in per_run.items():
            arms[arm] = {
                "runs": [{"seed": r.seed, "fold": r.fold} for r in by_arm[arm]],
                "n_test": int(np.mean([r.evals[name].y_true.size for r in by_arm[arm]])),
                **{key: _mean_std([m[key] for m in ms]) for key in SCALAR_METRICS},
                "present_classes": [c for c in classes if all(c in m["present_classes"] for m in ms)],
                "per_class": {c: {key: _mean_std([m["per_class"][c][key] for m in ms]) for key in PER_CLASS_METRICS}
                              | {"support": round(np.mean([m["per_class"][c]["support"] for m in ms]))}
                              for c in classes},
                "confusion_matrix": np.sum([m["confusion_matrix"] for m in ms], axis=0).tolist(),
            }  # fmt: skip
        deltas: dict[str, Any] = {}
        if "baseline" in arms:
            base = arms["baseline"]
            for arm, s in arms.items():
                if arm == "baseline":
                    continue
                deltas[arm] = {
                    **{key: _diff(s[key]["mean"], base[key]["mean"]) for key in SCALAR_METRICS},
                    "per_class": {c: {key: _diff(s["per_class"][c][key]["mean"], base["per_class"][c][key]["mean"])
                                      for key in PER_CLASS_METRICS} for c in classes},
                }  # fmt: skip
        tests = []
        for a, b in comparisons:
            if a not in by_arm or b not in by_arm:
                continue
            same_runs = [(r.seed, r.fold) for r in by_arm[a]] == [(r.seed, r.fold) for r in by_arm[b]]
            if not same_runs or not all(np.array_equal(ra.evals[name].index, rb.evals[name].index)
                                        for ra, rb in zip(by_arm[a], by_arm[b], strict=True)):  # fmt: skip
                raise ValueError(f"arms {a} and {b} were not run on the same seeds, folds and test faces of {name}")
            tests += [_compare(by_arm[a], by_arm[b], name, metric, per_run, a, b, n_boot=n_boot,
                               n_classes=len(classes), shared_images=shared, kfold=kfold, min_gain=min_gain)
                      | {"role": "primary" if metric == primary_metric else "secondary"}
                      for metric in TESTED_METRICS]  # fmt: skip
        sets[name] = {"arms": arms, "deltas": deltas, "comparisons": tests, "shared_images": shared}
    if primary_metric not in TESTED_METRICS:
        raise ValueError(f"primary_metric {primary_metric!r} is not one of the tested metrics {TESTED_METRICS}")
    return {"sets": sets, "primary_set": names[0] if names else None, "primary_metric": primary_metric,
            "min_gain": min_gain}


def _diff(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None else b - a



def per_class_changes(runs: Sequence[RunResult], summary: dict[str, Any], arm: str, classes: Sequence[str],
                      metrics: Sequence[str] = ("f1", "recall"),
                      ref: str = "baseline") -> list[dict[str, Any]]:  # fmt: skip
    """Exploratory per-class changes of ``arm`` vs ``ref`` on the primary set, each with an across-seed 95 % CI.

    One paired t-interval per class and metric over the per-seed differences (None with one seed or
    zero variance); Disgust (FER2013's smallest class, the one synthetic faces are for) first, the
    rest by size of change. Fourteen intervals at 95 % each: about one may exclude 0 by chance.
    """
    name = summary["primary_set"]
    if name is None or arm not in summary["sets"][name]["arms"] or ref not in summary["sets"][name]["arms"]:
        return []
    by_arm: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for r in runs:
        if name in r.evals and r.arm in (arm, ref):
            by_arm.setdefault(r.arm, {}).setdefault(r.seed, []).append(_run_metrics(r, name, classes))
    seeds = sorted(set(by_arm.get(arm, {})) & set(by_arm.get(ref, {})))
    out = []
    for c in classes:
        for key in metrics:
            per_seed = [[float(np.mean([m["per_class"][c][key] for m in by_arm[x][s]])) for s in seeds]
                        for x in (ref, arm)]  # fmt: skip
            diff = float(np.mean(per_seed[1]) - np.mean(per_seed[0])) if seeds else None
            ci = paired_test(*per_seed)["ci95"] if len(seeds) >= 2 else None
            out.append({"class": c, "metric": key, "diff": diff, "ci95": ci})
    out.sort(key=lambda d: (d["class"] != "Disgust", -abs(d["diff"] or 0.0)))
    return out

