"""From the runs' predictions to the experiment's numbers: metrics per arm, deltas, and every comparison's tests.

Everything here is a function of :class:`RunResult` objects alone (no model is needed), so a
summary can be recomputed from cached predictions. Which interval decides a comparison, and why,
is :func:`_compare`'s docstring; the tests themselves are :mod:`feraug.evaluate.experiment.statistics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from feraug.evaluate.experiment.statistics import (
    MIN_GAIN,
    TARGET_MIN_GAIN,
    TESTED_METRICS,
    bonferroni_level,
    class_paired_bootstrap,
    clip_interval,
    corrected_resampled_ttest,
    decide,
    paired_bootstrap,
    paired_t_power,
    paired_test,
    pooled_paired_bootstrap,
    power_from_se,
    seeds_for_power,
    t_interval,
)
from feraug.evaluate.metrics import classification_metrics

#: (a, b) pairs compared as "b − a" in the augmentation experiment.
COMPARISONS: tuple[tuple[str, str], ...] = (("baseline", "synthetic"), ("oversample", "synthetic"),
                                            ("baseline", "oversample"))  # fmt: skip
#: Metrics given significance tests (accuracy for Birenbaum, macro-F1 because Disgust is 1.5 % of FER2013).
SCALAR_METRICS: tuple[str, ...] = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc",
                                   "macro_f1_present", "macro_recall_present")  # fmt: skip
PER_CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "auc")
#: The target class's own metrics, tested when the experiment knows its target class: F1 (the second primary
#: question) and recall (the positive control).
TARGET_METRICS: tuple[str, ...] = ("target_f1", "target_recall")


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


def _run_metrics(run: RunResult, name: str, classes: Sequence[str], target: str | None = None) -> dict[str, Any]:
    """:func:`classification_metrics` plus macro averages over the classes present in training and test.

    A class the arm never trained on (TSTR with a one-class synthetic set) or the test set lacks
    (TRTS) has recall/F1 0 by convention, which drags the all-class macro averages down for a
    reason unrelated to quality; ``macro_*_present`` average over the other classes only. With a
    ``target`` class its F1 and recall are also kept as the scalars ``target_f1`` and ``target_recall``,
    so that the target questions are tested exactly as the macro metrics are.
    """
    e = run.evals[name]
    m = classification_metrics(e.y_true, e.prob.argmax(axis=1), e.prob, classes)
    present = [c for k, c in enumerate(classes) if run.train_counts[k] > 0 and m["per_class"][c]["support"] > 0]
    m["present_classes"] = present
    for key in ("f1", "recall"):
        vals = [m["per_class"][c][key] for c in present]
        m[f"macro_{key}_present"] = float(np.mean(vals)) if vals else None
        if target is not None:
            m[f"target_{key}"] = m["per_class"][target][key]
    return m


def _bootstrap(metric: str, y: np.ndarray, pa: np.ndarray, pb: np.ndarray, *, n_boot: int, n_classes: int,
               level: float, target_index: int | None) -> dict[str, Any]:  # fmt: skip
    """The pooled test-image bootstrap of ``metric``: a macro metric, or the target class's own F1 / recall."""
    if metric.startswith("target_") and target_index is not None:
        per_class = class_paired_bootstrap(y, pa, pb, metric.removeprefix("target_"), n_classes, n_boot=n_boot,
                                           level=level)  # fmt: skip
        return {"metric": metric, "n": int(y.size), "runs": len(pa), **per_class[target_index]}
    return pooled_paired_bootstrap(y, pa, pb, metric, n_boot=n_boot, n_classes=n_classes, level=level)


def _compare(a_runs: list[RunResult], b_runs: list[RunResult], name: str, metric: str,
             per_run: dict[str, list[dict[str, Any]]], a: str, b: str, *, n_boot: int, n_classes: int,
             shared_images: bool, kfold: bool, min_gain: float = MIN_GAIN, level: float = 0.95,
             target_index: int | None = None) -> dict[str, Any]:  # fmt: skip
    """All tests of ``metric(b) − metric(a)`` on evaluation set ``name``, and the one interval that decides.

    The deciding ("primary") interval is across training seeds: Nadeau & Bengio's corrected t over
    the folds for k-fold, else the paired t-interval over the per-seed differences (S − 1 df),
    which is conditional on this test set. When every seed gave exactly the same difference
    (training randomness nil) the test-image bootstrap, the only noise left, decides. With one
    seed nothing decides ("not_shown"). The test-image bootstrap is otherwise reported as
    "test-set noise only". ``primary["ci95"]`` is the 95 % interval, ``primary["ci"]`` the one at
    ``level`` that decides (below 95 % never; above it when a multiplicity correction shares the
    error rate among several questions). Every tested metric lies in [0, 1], so both are clipped
    to [-1, 1] (a t-interval over 2 seeds once reached ±300 points). ``outcome`` is
    :func:`~feraug.evaluate.experiment.statistics.decide` of the deciding interval; ``power`` is the
    chance this design had of showing a true +``min_gain`` gain at the observed seed-to-seed spread
    (at the same level), and ``seeds_for_80`` how many seeds would reach 80 %.
    """
    va = np.array([m[metric] for m in per_run[a]])
    vb = np.array([m[metric] for m in per_run[b]])
    seeds = sorted({r.seed for r in a_runs})
    folds = sorted({r.fold for r in a_runs})
    alpha = 1.0 - level
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
        out["bootstrap_pooled"] = _bootstrap(metric, y, pa, pb, n_boot=n_boot, n_classes=n_classes, level=level,
                                             target_index=target_index)  # fmt: skip
        if len(folds) == 1 and metric in TESTED_METRICS:
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
                                    f"n_test={n_test}", "diff": ct["mean"], "ci95": ct["ci95"],
                          "ci": t_interval(ct["mean"], ct["se_corrected"], ct["df"], level), "p": ct["p"]}  # fmt: skip
        out["power"] = power_from_se(ct["se_corrected"], ct["df"], min_gain, alpha) if ct["std"] > 0 else None
    elif pt is not None and pt["ci95"] is not None and pt["std_diff"] > 0:  # not equal up to round-off
        out["primary"] = {"method": f"paired t-interval over {pt['n']} seeds ({pt['df']} df), on this test set",
                          "diff": pt["mean_diff"], "ci95": pt["ci95"],
                          "ci": t_interval(pt["mean_diff"], pt["se_diff"], pt["df"], level), "p": pt["p_ttest"]}
        out["power"] = paired_t_power(pt["n"], pt["std_diff"], min_gain, alpha)
        out["seeds_for_80"] = seeds_for_power(pt["std_diff"], min_gain, alpha=alpha)
    elif pt is not None and boot is not None:  # every seed gave the same difference, up to round-off (zero included)
        out["primary"] = {"method": f"every one of {pt['n']} seeds gave the same difference (no training noise): "
                                    f"paired bootstrap over {boot['n']} test images",
                          "diff": boot["diff"], "ci95": boot["ci95"], "ci": boot["ci"], "p": boot["p"]}  # fmt: skip
    elif pt is not None and pt["ci95"] is not None:  # all differences zero, no shared test images
        out["primary"] = {"method": f"paired t over {pt['n']} seeds: every difference is 0",
                          "diff": 0.0, "ci95": pt["ci95"], "ci": pt["ci95"], "p": pt["p_ttest"]}  # fmt: skip
    if "primary" in out:
        out["primary"]["level"] = level
        out["primary"]["ci95"], out["primary"]["ci"] = (clip_interval(out["primary"][k]) for k in ("ci95", "ci"))
        out["outcome"] = decide(out["primary"]["ci"], min_gain)
    else:
        out["outcome"] = "not_shown"
        out["notes"].append("one seed: training randomness is not assessed, so nothing decides; the test-image "
                            "bootstrap shows test-set noise only. Run at least 2 seeds (see seeds_for_80)")  # fmt: skip
    return out


def _target_checks(target: str, seeds: Sequence[int], recall: dict[str, Sequence[tuple[int, dict[str, Any]]]],
                   control: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Whether this experiment can answer anything about ``target``, the class the synthetic faces add.

    Two preconditions, checked before any YES or NO is read (an experiment that fails them once
    printed "NO" about faces its classifier could not have noticed):

    * *informativeness* — the test set has ``target`` faces in every run, and the baseline arm
      predicts the class at all: target recall > 0 in at least half the seeds (a seed's recall is
      its mean over folds). A classifier that never outputs the class cannot show a gain on it.
    * *positive control* — oversampling (duplicated real ``target`` faces, the known-good way to add
      that class) beats the baseline on target recall: the 95 % across-seed interval of the change
      (``control``, a :func:`_compare` of ``target_recall``, baseline to oversample) lies above 0.
      The interval rule, not a lenient "positive mean in most seeds": passing the control is what
      lets a NO through, so it must be hard to pass by chance (2.5 % of deaf recipes at most), while
      a recipe that does learn the class moves its recall by tens of points under oversampling and
      passes easily. With 2 seeds the t-interval has 1 df (±12.7 standard errors) and would fail
      nearly every control, so there the change must be positive in both seeds *and* the
      test-image bootstrap interval must lie above 0 (test-set noise only: the most 2 seeds can
      show). With one seed nothing is decided anyway: the control is not assessed (``None``).

    Recall rather than F1: duplicating a class first of all makes the classifier predict it more
    often, which recall registers directly (F1 can stall as precision drops). ``recall`` holds the
    per-run metrics of the "baseline" and "oversample" arms, in the same (seed, fold) order. Returns
    ``{"target", "informative", "support", "seeds", "seeds_predicting", "control", "reasons", "advice"}``;
    ``informative`` is False when a check fails.
    """

    def per_seed(arm: str) -> np.ndarray:
        return np.array([np.mean([m["target_recall"] for seed, m in recall[arm] if seed == s]) for s in seeds])

    support = min(m["per_class"][target]["support"] for _, m in recall["baseline"])
    base = per_seed("baseline")
    predicting = int(np.sum(base > 0))
    prim, boot = control.get("primary"), control.get("bootstrap_pooled")
    ci, passed, method = None, None, None
    if prim is not None and len(seeds) == 2 and prim["method"].startswith("paired t") and boot is not None:
        ci = boot["ci95"]
        passed = bool(np.all(per_seed("oversample") > base) and ci[0] > 0)
        method = "with 2 seeds, a lift in both seeds and a test-image bootstrap interval above 0"
    elif prim is not None:
        ci, method = prim["ci95"], f"interval above 0, {prim['method']}"
        passed = bool(ci[0] > 0)
    reasons = []
    if support == 0:
        reasons.append(f"the test set has no {target} faces")
    elif predicting == 0:
        reasons.append(f"the baseline never predicted {target} in any of {len(seeds)} seed(s)")
    elif 2 * predicting < len(seeds):
        reasons.append(f"the baseline predicted {target} in only {predicting} of {len(seeds)} seeds (needed: at "
                       "least half)")  # fmt: skip
    if passed is False:
        reasons.append(f"oversampling did not lift {target} recall over the baseline ({100 * control['diff']:+.1f} pt "
                       f"[95% CI {100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]; rule: {method}): the positive control "
                       f"failed, so added {target} faces could not show either")  # fmt: skip
    advice = None
    if reasons:
        advice = (f"train the classifier longer (more epochs) or with another recipe (class weights, another "
                  f"arch) until the baseline predicts {target} and duplicating real {target} faces lifts its "
                  "recall" if support else f"test on a set with {target} faces")  # fmt: skip
    return {"target": target, "informative": not reasons, "support": int(support), "seeds": len(seeds),
            "seeds_predicting": predicting, "baseline_recall_per_seed": base.tolist(),
            "control": {"metric": "target_recall", "diff": control["diff"], "ci95": ci, "method": method,
                        "passed": passed},
            "reasons": reasons, "advice": advice}  # fmt: skip


def summarize(runs: Sequence[RunResult], classes: Sequence[str], *, comparisons: Sequence[tuple[str, str]],
              n_boot: int = 2000, kfold: bool = False, primary_metric: str = "macro_f1",
              min_gain: float = MIN_GAIN, target: str | None = None,
              target_min_gain: float = TARGET_MIN_GAIN) -> dict[str, Any]:  # fmt: skip
    """Metrics, per-class deltas and significance tests from the runs' predictions alone (no model needed).

    Returns ``{"sets": {set name: {"arms", "deltas", "comparisons", "shared_images", "checks"}}, "primary_set",
    "target", "correction", ...}``: per arm every scalar and per-class metric as mean ± std over runs, the
    pooled confusion matrix and the per-run values; deltas vs ``baseline`` (difference of means); the
    tests of :func:`_compare` for each pair in ``comparisons`` present in the set.

    With a ``target`` class (the one the synthetic faces add) its F1 is a second pre-declared
    primary question (``role`` "primary", minimum gain ``target_min_gain``) and its recall is
    tested too (``role`` "control" for oversample vs baseline). Two primary questions share the
    5 % error rate by Bonferroni: both decide on 97.5 % intervals. ``checks`` is
    :func:`_target_checks` where the set has a baseline and an oversample arm; when it fails, every
    comparison of the set is ``"not_informative"`` (its interval's own answer kept as ``interval_outcome``).
    """
    if primary_metric not in TESTED_METRICS:
        raise ValueError(f"primary_metric {primary_metric!r} is not one of the tested metrics {TESTED_METRICS}")
    if target is not None and target not in classes:
        raise ValueError(f"target class {target!r} is not one of {list(classes)}")
    target_index = None if target is None else list(classes).index(target)
    metrics = TESTED_METRICS + (TARGET_METRICS if target is not None else ())
    level = bonferroni_level(2) if target is not None else 0.95
    names = list(dict.fromkeys(name for r in runs for name in r.evals))
    sets: dict[str, Any] = {}
    for name in names:
        by_arm: dict[str, list[RunResult]] = {}
        for r in sorted((r for r in runs if name in r.evals), key=lambda r: (r.seed, r.fold)):
            by_arm.setdefault(r.arm, []).append(r)
        first = next(iter(by_arm.values()))
        shared = all(np.array_equal(r.evals[name].index, first[0].evals[name].index) for r in first)
        per_run = {arm: [_run_metrics(r, name, classes, target) for r in rs] for arm, rs in by_arm.items()}
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

        compare = partial(_test, by_arm, per_run, name, level=level, min_gain=min_gain,
                          target_min_gain=target_min_gain, n_boot=n_boot, n_classes=len(classes), shared_images=shared,
                          kfold=kfold, target_index=target_index)  # fmt: skip
        tests = []
        for a, b in comparisons:
            if a not in by_arm or b not in by_arm:
                continue
            same_runs = [(r.seed, r.fold) for r in by_arm[a]] == [(r.seed, r.fold) for r in by_arm[b]]
            if not same_runs or not all(np.array_equal(ra.evals[name].index, rb.evals[name].index)
                                        for ra, rb in zip(by_arm[a], by_arm[b], strict=True)):  # fmt: skip
                raise ValueError(f"arms {a} and {b} were not run on the same seeds, folds and test faces of {name}")
            tests += [compare(a, b, metric, _role(metric, a, b, primary_metric)) for metric in metrics]
        checks = None
        if target is not None and "baseline" in by_arm and "oversample" in by_arm:
            control = next((t for t in tests if t["role"] == "control"), None)
            recall = {arm: [(r.seed, m) for r, m in zip(by_arm[arm], per_run[arm], strict=True)]
                      for arm in ("baseline", "oversample")}  # fmt: skip
            checks = _target_checks(target, sorted({r.seed for r in by_arm["baseline"]}), recall,
                                    control or compare("baseline", "oversample", "target_recall", "control"))
            if not checks["informative"]:
                for t in tests:
                    t["interval_outcome"], t["outcome"] = t["outcome"], "not_informative"
        sets[name] = {"arms": arms, "deltas": deltas, "comparisons": tests, "shared_images": shared, "checks": checks}
    correction = None
    if target is not None:
        correction = {"method": "Bonferroni", "metrics": [primary_metric, "target_f1"], "level": level}
    return {"sets": sets, "primary_set": names[0] if names else None, "primary_metric": primary_metric,
            "min_gain": min_gain, "target": target, "target_min_gain": target_min_gain, "correction": correction}


def _test(by_arm: dict[str, list[RunResult]], per_run: dict[str, list[dict[str, Any]]], name: str, a: str, b: str,
          metric: str, role: str, *, level: float, min_gain: float, target_min_gain: float,
          **kwargs: Any) -> dict[str, Any]:  # fmt: skip
    """:func:`_compare` of ``b − a`` at the level and minimum gain of the metric's ``role``: the primary questions
    at the corrected ``level``, the target F1 against ``target_min_gain``; everything else at 95 %."""
    return _compare(by_arm[a], by_arm[b], name, metric, per_run, a, b, level=level if role == "primary" else 0.95,
                    min_gain=target_min_gain if metric == "target_f1" else min_gain, **kwargs) | {"role": role}


def _role(metric: str, a: str, b: str, primary_metric: str) -> str:
    """A test's role: "primary" (the two pre-declared questions' metrics), "control" (oversampling's lift of the
    target class's recall over the baseline), or "secondary" (reported, never decides)."""
    if metric in (primary_metric, "target_f1"):
        return "primary"
    if metric == "target_recall" and (a, b) == ("baseline", "oversample"):
        return "control"
    return "secondary"


def _diff(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None else b - a



def per_class_changes(runs: Sequence[RunResult], summary: dict[str, Any], arm: str, classes: Sequence[str],
                      metrics: Sequence[str] = ("f1", "recall"), ref: str = "baseline",
                      n_boot: int = 1000) -> list[dict[str, Any]]:  # fmt: skip
    """Exploratory per-class changes of ``arm`` vs ``ref`` on the primary set, each with an interval and its method.

    From 3 seeds on, one paired t-interval per class and metric over the per-seed differences (None
    with zero variance, [0, 0] when every difference is 0). With fewer seeds a t-interval has at most
    1 df (±12.7 standard errors: ±300 points was once printed), so where the runs share their test
    faces the test-image paired bootstrap stands in, labelled as test-set noise only; otherwise no
    interval. Every interval is clipped to [-1, 1], the range of a difference of two metrics in [0, 1].
    The target class (the one synthetic faces add) comes first, the rest by size of change. Fourteen
    intervals at 95 % each: about one may exclude 0 by chance.
    """
    name = summary["primary_set"]
    if name is None or arm not in summary["sets"][name]["arms"] or ref not in summary["sets"][name]["arms"]:
        return []
    by_arm: dict[str, dict[int, list[RunResult]]] = {}
    for r in sorted(runs, key=lambda r: (r.seed, r.fold)):
        if name in r.evals and r.arm in (arm, ref):
            by_arm.setdefault(r.arm, {}).setdefault(r.seed, []).append(r)
    seeds = sorted(set(by_arm.get(arm, {})) & set(by_arm.get(ref, {})))
    metrics_of = {x: {s: [_run_metrics(r, name, classes) for r in by_arm[x][s]] for s in seeds} for x in (ref, arm)}
    boot: dict[str, list[dict[str, Any]]] = {}
    method = f"paired t, {len(seeds)} seeds"
    if len(seeds) < 3:
        method = f"none ({len(seeds)} seed(s))"
        if seeds and summary["sets"][name]["shared_images"]:
            method = f"test-set noise only: test-image bootstrap ({len(seeds)} seed(s), too few for a t-interval)"
            pair = [[r for s in seeds for r in by_arm[x][s]] for x in (ref, arm)]
            y = pair[0][0].evals[name].y_true
            pa, pb = (np.stack([r.evals[name].prob.argmax(axis=1) for r in rs]) for rs in pair)
            boot = {key: class_paired_bootstrap(y, pa, pb, key, len(classes), n_boot=n_boot) for key in metrics}
    out = []
    for k, c in enumerate(classes):
        for key in metrics:
            per_seed = [[float(np.mean([m["per_class"][c][key] for m in metrics_of[x][s]])) for s in seeds]
                        for x in (ref, arm)]  # fmt: skip
            diff = float(np.mean(per_seed[1]) - np.mean(per_seed[0])) if seeds else None
            ci = boot[key][k]["ci95"] if boot else paired_test(*per_seed)["ci95"] if len(seeds) >= 3 else None
            out.append({"class": c, "metric": key, "diff": diff, "ci95": None if ci is None else clip_interval(ci),
                        "method": method})  # fmt: skip
    target = summary.get("target")
    out.sort(key=lambda d: (d["class"] != target, -abs(d["diff"] or 0.0)))
    return out
