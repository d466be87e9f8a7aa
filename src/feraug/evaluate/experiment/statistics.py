"""Significance tests that match how the augmentation experiment is designed.

Three designs, three tests — each answers a different question, and none is a substitute for another:

* :func:`paired_test` — arms trained with the same seeds on the same splits (one score per seed
  and arm): "does the method help across training runs?" Paired t-test and Wilcoxon signed-rank
  test on the per-seed differences.
* :func:`corrected_resampled_ttest` — repeated k-fold cross-validation (Pasini et al.'s 3x10-fold):
  the folds share training data, so the per-fold differences are correlated and the plain t-test
  is far too confident; Nadeau & Bengio's correction inflates the variance accordingly.
* :func:`paired_bootstrap` — one trained model per arm, one test set: "is the gap between these
  two models larger than test-set sampling noise?" It says nothing about training randomness.
  :func:`pooled_paired_bootstrap` asks the same of R runs per arm scored on one test set.

:func:`decide` turns an interval into the verdict's answer, and the power functions say how
likely a design was to show a gain of a given size.

All functions return plain JSON-serializable dicts; undefined quantities are ``None`` and
``notes`` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

#: A metric for :func:`paired_bootstrap`: ``metric(y_true, y_pred) -> float``.
Metric = Callable[[np.ndarray, np.ndarray], float]

#: Metrics given significance tests (accuracy for Birenbaum, macro-F1 because Disgust is 1.5 % of FER2013).
TESTED_METRICS: tuple[str, ...] = ("accuracy", "macro_f1")


def _constant(d: np.ndarray) -> bool:
    """Whether all differences are equal up to float round-off (then their variance is zero and t undefined)."""
    return float(np.ptp(d)) <= 1e-12 * max(1.0, float(np.abs(d).max()))


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Arm ``b`` vs arm ``a`` over paired runs (same seeds, same splits): paired t-test and Wilcoxon.

    With differences d_i = b_i − a_i, i = 1..n (Student 1908; e.g. Demšar 2006, JMLR 7:1-30, sec. 3.1):

        mean = (1/n) Σ d_i,   s = sqrt(Σ (d_i − mean)² / (n − 1)),   se = s / √n
        t = mean / se  with  n − 1 degrees of freedom (``scipy.stats.ttest_rel``)
        95 % CI:  mean ± t_{0.975, n−1} · se

    The Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, exact for small n; zero differences
    dropped) does not assume normal differences. Its smallest attainable two-sided p-value is
    2 / 2^m for m non-zero differences, so with m <= 5 it can never reach 0.05; ``wilcoxon_min_p``
    reports that floor and a note flags it. When all differences are equal the t statistic is
    undefined (zero variance): t, its p and the CI are ``None``, except when all are zero (p = 1,
    CI [0, 0]: the arms never differed).

    Returns:
        ``{"n", "mean_a", "mean_b", "mean_diff", "std_diff", "se_diff", "t", "df", "p_ttest", "ci95",
        "p_wilcoxon", "wilcoxon_min_p", "notes"}``; positive differences favour ``b``.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-D and paired (same length), got shapes {x.shape} and {y.shape}")
    n = len(x)
    if n < 2:
        raise ValueError(f"a paired test needs at least 2 pairs, got {n}")
    d = y - x
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / np.sqrt(n)
    notes: list[str] = []
    t: float | None
    p_t: float | None
    ci: list[float] | None
    if _constant(d):
        t = None
        if np.all(d == 0):
            p_t = 1.0
            notes.append("all differences are zero: the arms gave identical scores on every pair")
        else:
            p_t = None
            notes.append("all differences are equal: zero variance, t-test undefined; see the Wilcoxon p-value")
        ci = [0.0, 0.0] if mean == 0 else None
    else:
        res = stats.ttest_rel(y, x)
        t, p_t = float(res.statistic), float(res.pvalue)
        low, high = res.confidence_interval(0.95)
        ci = [float(low), float(high)]

    nonzero = int(np.count_nonzero(d))
    if nonzero == 0:
        p_w, min_p = 1.0, 1.0
    else:
        p_w = float(stats.wilcoxon(d[d != 0]).pvalue)
        min_p = min(1.0, 2.0 / 2.0**nonzero)
    if min_p > 0.05:
        notes.append(f"with {nonzero} non-zero differences the Wilcoxon test cannot reach p < 0.05 "
                     f"(smallest possible p = {min_p:.3g})")  # fmt: skip

    return {
        "n": n, "mean_a": float(x.mean()), "mean_b": float(y.mean()), "mean_diff": mean, "std_diff": sd,
        "se_diff": float(se), "t": t, "df": n - 1, "p_ttest": p_t, "ci95": ci,
        "p_wilcoxon": p_w, "wilcoxon_min_p": min_p, "notes": notes,
    }  # fmt: skip


def corrected_resampled_ttest(diffs: Sequence[float], n_train: int, n_test: int) -> dict[str, Any]:
    """Nadeau & Bengio's corrected resampled t-test for (repeated) k-fold cross-validation.

    Reference: C. Nadeau, Y. Bengio, "Inference for the Generalization Error", Machine Learning 52,
    239-281 (2003), eq. for the corrected resampled t; applied to r-times-repeated k-fold CV by
    R. Bouckaert, E. Frank, "Evaluating the Replicability of Significance Tests for Comparing
    Learning Algorithms", PAKDD 2004. With J = k·r per-fold differences d_j (b − a on fold j):

        mean = (1/J) Σ d_j,   s² = Σ (d_j − mean)² / (J − 1)
        t = mean / sqrt((1/J + n_test/n_train) · s²),   df = J − 1,   p = 2 · (1 − F_t(|t|; df))

    The naive standard error sqrt(s²/J) assumes independent folds; overlapping training sets make
    the d_j positively correlated, and the n_test/n_train term is the correction for it (for
    10-fold CV, n_test/n_train = 1/9, which dominates 1/J = 1/30 for 3x10 folds).

    Returns:
        ``{"J", "df", "mean", "std", "t", "p", "se_corrected", "se_uncorrected", "variance_inflation",
        "ci95", "notes"}``, where ``variance_inflation`` = (1/J + n_test/n_train) / (1/J) is how much
        the correction widens the variance of the mean, and ``ci95`` = mean ± t_{0.975, df} · se_corrected.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"need at least 2 per-fold differences, got shape {d.shape}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be positive, got {n_train} and {n_test}")
    j = len(d)
    mean, var = float(d.mean()), float(d.var(ddof=1))
    factor = 1.0 / j + n_test / n_train
    se_corrected = float(np.sqrt(factor * var))
    se_uncorrected = float(np.sqrt(var / j))
    df = j - 1
    notes: list[str] = []
    t: float | None
    p: float | None
    if _constant(d):
        t, p = None, (1.0 if np.all(d == 0) else None)
        notes.append("all differences are equal: zero variance, t undefined")
    else:
        t = mean / se_corrected
        p = float(2.0 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.975, df)) * se_corrected
    return {
        "J": j, "df": df, "mean": mean, "std": float(np.sqrt(var)), "t": t, "p": p,
        "se_corrected": se_corrected, "se_uncorrected": se_uncorrected, "variance_inflation": factor * j,
        "ci95": [mean - half, mean + half], "notes": notes,
    }  # fmt: skip


def _macro_f1_from_counts(tp: np.ndarray, n_pred: np.ndarray, n_true: np.ndarray) -> np.ndarray:
    """Macro-F1 per row from per-class counts ``[B, K]``: F1_k = 2·TP_k / (P_k + T_k), 0 when P_k + T_k = 0.

    2·TP / (P + T) equals 2·precision·recall / (precision + recall) and is what scikit-learn's
    ``f1_score(labels=range(K), average="macro", zero_division=0)`` averages.
    """
    denom = n_pred + n_true
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp, dtype=np.float64), where=denom > 0)
    return f1.mean(axis=1)


def paired_bootstrap(y_true: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike, metric: str | Metric = "accuracy",
                     n_boot: int = 2000, seed: int = 0, n_classes: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Paired bootstrap over test images of ``metric(b) − metric(a)`` (Efron & Tibshirani 1993, ch. 13, 16).

    Each resample draws N test images with replacement — ``np.random.default_rng(seed).integers(0, N,
    size=(n_boot, N))``, one row per resample — and scores *both* arms on the same draw, so the
    image-difficulty variation shared by the arms cancels in the difference Δ* = m_b* − m_a*.

        95 % CI: the 2.5th and 97.5th percentiles of Δ* (percentile method)
        p = min(1, 2 · min(1 + #{Δ* <= 0}, 1 + #{Δ* >= 0}) / (n_boot + 1))

    i.e. twice the share of resamples on the far side of zero from the observed gap (ties at zero
    count against the difference), with the Monte Carlo "+1" (Davison & Hinkley 1997, "Bootstrap
    Methods and their Application", ch. 4) so that a finite number of resamples never reports p = 0:
    the smallest possible value is 2 / (n_boot + 1).

    ``metric="accuracy"`` and ``"macro_f1"`` are vectorized: the multiplicity W[b, i] of image i
    in resample b comes from one ``np.bincount``, and per-class TP, predicted and true counts are
    ``W @ one-hot`` products; ``macro_f1`` averages over labels ``0..n_classes-1`` (default: the
    largest label seen + 1) with ``zero_division=0``, as :func:`classification_metrics` does. A
    callable ``metric(y_true, y_pred)`` is evaluated per resample (slow but general).

    The interval covers test-set sampling noise only: two models trained once. Whether a method
    helps across training runs is :func:`paired_test`'s question.

    Returns:
        ``{"metric", "n", "n_boot", "seed", "metric_a", "metric_b", "diff", "ci95", "se", "p"}`` with
        ``diff`` the observed metric(b) − metric(a) on the full test set and ``se`` the bootstrap
        standard deviation of Δ*.
    """
    y = np.asarray(y_true).astype(np.int64)
    pa = np.asarray(pred_a).astype(np.int64)
    pb = np.asarray(pred_b).astype(np.int64)
    if not (y.shape == pa.shape == pb.shape) or y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y_true, pred_a and pred_b must be equal-length non-empty 1-D arrays, got "
                         f"{y.shape}, {pa.shape}, {pb.shape}")  # fmt: skip
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    n = len(y)
    k = int(max(y.max(), pa.max(), pb.max())) + 1 if n_classes is None else n_classes
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))

    if callable(metric):
        name = getattr(metric, "__name__", "metric")
        observed = (float(metric(y, pa)), float(metric(y, pb)))
        boot_a = np.array([metric(y[r], pa[r]) for r in idx], dtype=np.float64)
        boot_b = np.array([metric(y[r], pb[r]) for r in idx], dtype=np.float64)
    elif metric in ("accuracy", "macro_f1"):
        name = metric
        eye = np.eye(k)

        def score(w: np.ndarray, p: np.ndarray) -> np.ndarray:
            """The metric of predictions ``p`` under each weight row of ``w [B, N]`` (all ones: the test set)."""
            if metric == "accuracy":
                return w @ (p == y).astype(np.float64) / n
            return _macro_f1_from_counts(w @ (eye[p] * (p == y)[:, None]), w @ eye[p], w @ eye[y])

        observed = tuple(float(score(np.ones((1, n)), p)[0]) for p in (pa, pb))
        w = _weights(idx, n)
        boot_a, boot_b = score(w, pa), score(w, pb)
    else:
        raise ValueError(f"unknown metric {metric!r}: expected 'accuracy', 'macro_f1' or a callable")

    return {"metric": name, "n": n, "n_boot": n_boot, "seed": seed, "metric_a": observed[0],
            "metric_b": observed[1], "diff": observed[1] - observed[0],
            **bootstrap_interval(boot_b - boot_a)}  # fmt: skip


def bootstrap_interval(delta: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Percentile 95% CI, the percentile interval at ``level`` (``ci``), standard error and two-sided p of
    bootstrap differences ``delta``.

    ``p = min(1, 2·min(1 + #{Δ ≤ 0}, 1 + #{Δ ≥ 0}) / (B + 1))``: the share of resamples on the far side
    of zero, with the +1 correction that keeps p above 0 for a finite number of resamples. ``level``
    other than 95 % is for a multiplicity-corrected decision (e.g. Bonferroni's 97.5 % for two questions).
    """
    n_boot = delta.size
    low, high = np.percentile(delta, [2.5, 97.5])
    tail = (100.0 - 100.0 * level) / 2.0  # 2.5 exactly at level 0.95 (50·(1 − 0.95) is not)
    c_low, c_high = np.percentile(delta, [tail, 100.0 - tail])
    below, above = int(np.sum(delta <= 0)), int(np.sum(delta >= 0))
    return {"ci95": [float(low), float(high)], "ci": [float(c_low), float(c_high)], "level": level,
            "se": float(delta.std(ddof=1)) if n_boot > 1 else None,
            "p": min(1.0, 2.0 * min(below + 1, above + 1) / (n_boot + 1))}  # fmt: skip


def _weights(idx: np.ndarray, n: int) -> np.ndarray:
    """W[b, i] = how often image i was drawn in resample row b of ``idx [B, N]``."""
    w = np.bincount((idx + n * np.arange(len(idx))[:, None]).ravel(), minlength=len(idx) * n)
    return w.reshape(len(idx), n).astype(np.float64)


def class_paired_bootstrap(y_true: np.ndarray, preds_a: np.ndarray, preds_b: np.ndarray, metric: str,
                           n_classes: int, n_boot: int = 2000, seed: int = 0,
                           level: float = 0.95) -> list[dict[str, Any]]:  # fmt: skip
    """:func:`pooled_paired_bootstrap` of every class's own ``metric`` ("f1" or "recall"), one record per class.

    The same resamples of test images (``default_rng(seed)``, images as the unit) score the R runs
    of each arm; per class k, with counts weighted by the resample: recall_k = TP_k / T_k and
    F1_k = 2·TP_k / (P_k + T_k), 0 where the denominator is 0 (as :func:`classification_metrics`).
    A per-class metric lies in [0, 1], so its difference and every interval of it lie in [-1, 1].
    Test-set noise only, as every bootstrap over test images: it is what an experiment with fewer
    than 3 seeds can show about a class, never a statement about training randomness.

    Returns:
        per class ``{"diff", "ci95", "ci", "level", "se", "p"}`` as :func:`bootstrap_interval`.
    """
    if metric not in ("f1", "recall"):
        raise ValueError(f"unknown per-class metric {metric!r}: expected 'f1' or 'recall'")
    y = np.asarray(y_true, dtype=np.int64)
    pa, pb = (np.atleast_2d(np.asarray(p, dtype=np.int64)) for p in (preds_a, preds_b))
    if pa.shape != pb.shape or pa.shape[1] != y.size or y.ndim != 1 or y.size == 0:
        raise ValueError(f"need y_true [N] and preds [R, N] of equal shapes, got {y.shape}, {pa.shape}, {pb.shape}")
    n = y.size
    eye = np.eye(n_classes)

    def score(w: np.ndarray, preds: np.ndarray) -> np.ndarray:
        """Run-averaged per-class metric ``[B, K]`` under the weight rows ``w [B, N]``."""
        n_true = w @ eye[y]
        total = np.zeros((w.shape[0], n_classes))
        for p in preds:
            tp = w @ (eye[p] * (p == y)[:, None])
            denom = n_true if metric == "recall" else w @ eye[p] + n_true
            total += np.divide((1.0 if metric == "recall" else 2.0) * tp, denom, out=np.zeros_like(tp),
                               where=denom > 0)  # fmt: skip
        return total / len(preds)

    observed = score(np.ones((1, n)), pb)[0] - score(np.ones((1, n)), pa)[0]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    delta = np.empty((n_boot, n_classes))
    for start in range(0, n_boot, 256):
        w = _weights(idx[start : start + 256], n)
        delta[start : start + len(w)] = score(w, pb) - score(w, pa)
    return [{"diff": float(observed[k]), **bootstrap_interval(delta[:, k], level)} for k in range(n_classes)]


def pooled_paired_bootstrap(
    y_true: np.ndarray, preds_a: np.ndarray, preds_b: np.ndarray, metric: str = "accuracy", n_boot: int = 2000,
    seed: int = 0, n_classes: int | None = None, level: float = 0.95,
) -> dict[str, Any]:  # fmt: skip
    """Paired bootstrap over test images of the run-averaged difference, for R runs per arm on one test set.

    ``preds_a``/``preds_b`` are ``[R, N]``: run r of arm a and run r of arm b share seed and fold.
    Each resample draws N images with replacement (the same draw as :func:`paired_bootstrap`:
    ``default_rng(seed).integers(0, N, size=(n_boot, N))``); with W[b, i] the multiplicity of
    image i in resample b, every run is scored on the same resample and

        Δ*_b = (1/R) Σ_r m(pred_b,r; W_b) − (1/R) Σ_r m(pred_a,r; W_b)

    accuracy: m = Σ_i W_i [p_i = y_i] / N; macro-F1: m = (1/K) Σ_k 2·TP_k / (P_k + T_k) with counts
    weighted by W (0 when P_k + T_k = 0, as :func:`classification_metrics`). Resampling *images*
    — not (run, image) pairs — keeps the correlation between runs scored on the same image: the
    image is the unit of test-set sampling (a cluster bootstrap, Davison & Hinkley 1997, sec. 3.8).
    CI and p-value as in :func:`paired_bootstrap`; with R = 1 the two functions agree exactly;
    ``ci`` is the interval at ``level`` (:func:`bootstrap_interval`).

    Returns:
        :func:`paired_bootstrap`'s keys plus ``"runs"`` (R).
    """
    y = np.asarray(y_true, dtype=np.int64)
    pa, pb = (np.atleast_2d(np.asarray(p, dtype=np.int64)) for p in (preds_a, preds_b))
    if pa.shape != pb.shape or pa.shape[1] != y.size or y.ndim != 1 or y.size == 0:
        raise ValueError(f"need y_true [N] and preds [R, N] of equal shapes, got {y.shape}, {pa.shape}, {pb.shape}")
    if metric not in TESTED_METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {TESTED_METRICS}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    n = y.size
    k = int(max(y.max(), pa.max(), pb.max())) + 1 if n_classes is None else n_classes
    eye = np.eye(k)

    def score(w: np.ndarray, preds: np.ndarray) -> np.ndarray:
        """Run-averaged metric per row of the weight matrix ``w [B, N]``."""
        if metric == "accuracy":
            return (w @ (preds == y).T.astype(np.float64)).mean(axis=1) / n
        n_true = w @ eye[y]
        total = np.zeros(w.shape[0])
        for p in preds:
            tp, n_pred = w @ (eye[p] * (p == y)[:, None]), w @ eye[p]
            denom = n_pred + n_true
            total += np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0).mean(axis=1)
        return total / len(preds)

    ones = np.ones((1, n))
    observed = (float(score(ones, pa)[0]), float(score(ones, pb)[0]))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    delta = np.empty(n_boot)
    for start in range(0, n_boot, 256):  # W in slices: n_boot x N floats at once can be hundreds of MB
        w = _weights(idx[start : start + 256], n)
        delta[start : start + len(w)] = score(w, pb) - score(w, pa)
    return {"metric": metric, "n": n, "n_boot": n_boot, "seed": seed, "metric_a": observed[0],
            "metric_b": observed[1], "diff": observed[1] - observed[0], **bootstrap_interval(delta, level),
            "runs": len(pa)}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# The decision rule: three answers from one interval, and the power that interval had.
# ---------------------------------------------------------------------------------------------------------------

#: The smallest gain in the primary metric (macro-F1, as a fraction) worth finding: +2 percentage points.
MIN_GAIN = 0.02
#: The smallest gain in the target class's own F1 worth finding (the second primary question): +5 points. One
#: class's F1 moves about seven times as much as a 7-class macro-F1 for the same faces, hence the larger bar.
TARGET_MIN_GAIN = 0.05
#: The error rate shared by the primary questions (family-wise), split among them by Bonferroni's correction.
FAMILY_ALPHA = 0.05


def bonferroni_level(questions: int, alpha: float = FAMILY_ALPHA) -> float:
    """The confidence level of each of ``questions`` intervals that together keep a family-wise error ``alpha``.

    Bonferroni rather than Holm: the answers are three-way decisions on intervals (YES, NO, NOT
    SHOWN), not p-value rejections, and Bonferroni's intervals hold jointly for every answer at
    once; with two questions it costs little (97.5 % instead of 95 % intervals).
    """
    return 1.0 - alpha / questions


def t_interval(mean: float, se: float, df: int, level: float) -> list[float]:
    """``mean ± t_{(1+level)/2, df} · se``: a t-interval at any ``level`` (the tests report 95 % only)."""
    half = float(stats.t.ppf(0.5 + level / 2.0, df)) * se
    return [mean - half, mean + half]


def clip_interval(ci: Sequence[float], low: float = -1.0, high: float = 1.0) -> list[float]:
    """``ci`` cut to ``[low, high]``: a difference of two metrics in [0, 1] cannot leave [-1, 1], whatever a
    symmetric t-interval over few seeds says (1 df once printed ±300 points)."""
    return [min(max(float(ci[0]), low), high), min(max(float(ci[1]), low), high)]


def decide(ci95: Sequence[float], min_gain: float = MIN_GAIN) -> str:
    """Three answers from a 95 % interval of ``b − a`` (never "no difference" from a non-significant test).

    * ``"yes"`` — the interval lies above 0: a gain is shown;
    * ``"worse"`` — it lies below 0: a loss is shown;
    * ``"no"`` — it contains 0 but lies below ``+min_gain``: any gain is smaller than the minimum that
      matters (an equivalence-style statement, the interval's upper end is the largest gain still plausible);
    * ``"not_shown"`` — it contains 0 and reaches ``+min_gain``: the experiment could not tell.

    A fifth answer, ``"not_informative"``, is no interval's: the summary gives it to every comparison of
    a set whose target-class checks fail (the baseline never predicts the class, or oversampling does not
    lift it), because then no interval of that set answers the question, whatever it says.
    """
    low, high = float(ci95[0]), float(ci95[1])
    if low > 0:
        return "yes"
    if high < 0:
        return "worse"
    if high < min_gain:
        return "no"
    return "not_shown"


def power_from_se(se: float, df: int, effect: float = MIN_GAIN, alpha: float = 0.05) -> float:
    """Power of a two-sided t-test with standard error ``se`` and ``df`` degrees of freedom to show ``effect``.

    t = mean/se follows a noncentral t with ``df`` df and noncentrality effect/se;
    power = P(t > t_crit) + P(t < −t_crit), t_crit = t_{1−α/2, df}.
    """
    if df < 1:
        return 0.0
    if se <= 0:
        return 1.0
    ncp = effect / se
    crit = stats.t.ppf(1 - alpha / 2, df)
    if np.isfinite(ncp) and abs(ncp) > 1e3:
        # scipy's noncentral t returns NaN past ncp ~1e9 (a spread of rounding size, e.g. 1e-12 between
        # seeds); the power is already 1 to double precision at ncp = 1e3
        return 1.0
    # The lower tail as the upper tail of the mirrored distribution: scipy's ``nct.cdf(-crit, df, ncp)`` returns NaN
    # for noncentralities from ~8 on at small df (a NaN power once printed "the design had nan% power"), while
    # ``nct.sf(crit, df, -ncp)``, the same probability, stays finite over the whole range.
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.sf(crit, df, -ncp))


def paired_t_power(n: int, sd: float, effect: float = MIN_GAIN, alpha: float = 0.05) -> float:
    """Power of the paired t-test with ``n`` pairs whose differences have spread ``sd`` to show ``effect``."""
    return power_from_se(sd / np.sqrt(n), n - 1, effect, alpha) if n >= 2 else 0.0


def seeds_for_power(sd: float, effect: float = MIN_GAIN, target: float = 0.8, alpha: float = 0.05,
                    max_seeds: int = 200) -> int | None:  # fmt: skip
    """The fewest paired seeds whose t-test finds ``effect`` with probability ``target`` (None: over ``max_seeds``).

    Power grows with the number of seeds, so a bisection finds it in ~8 power evaluations instead of up
    to ``max_seeds`` (a class's own F1, spread widely, once made the search the slowest part of a summary).
    """
    if paired_t_power(max_seeds, sd, effect, alpha) < target:
        return None
    low, high = 2, max_seeds  # power(high) >= target
    while low < high:
        mid = (low + high) // 2
        if paired_t_power(mid, sd, effect, alpha) >= target:
            high = mid
        else:
            low = mid + 1
    return low
