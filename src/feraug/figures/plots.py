"""Report figures: confusion matrices, per-class grouped bars comparing experiment arms, GAN training curves.

Figures are built on :class:`matplotlib.figure.Figure` directly and written by its Agg canvas
(what ``matplotlib.use("Agg")`` would select), without pyplot: pyplot keeps a global registry of
open figures and a process-wide backend, so a library that imports it can switch an interactive
user's backend or leak figures in long runs. A bare ``Figure`` is garbage-collected like any
object and works headless, in threads and in notebooks alike (matplotlib's own advice for
servers: "Embedding in a web application server").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike


def _save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` (format from the suffix, PNG by default) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    return out


def plot_confusion_matrix(cm: ArrayLike, classes: Sequence[str], path: str | Path, normalize: bool = True,
                          title: str = "Confusion matrix") -> Path:  # fmt: skip
    """Heatmap of a confusion matrix (rows: true class, columns: prediction), annotated per cell.

    With ``normalize`` the colours are row percentages — each row is one class's recall profile,
    comparable across classes as imbalanced as FER2013's (Disgust has ~1/16 of Happy's faces) —
    and each cell shows the percentage over its raw count; otherwise colours and labels are counts.
    """
    counts = np.asarray(cm, dtype=np.float64)
    k = len(classes)
    if counts.shape != (k, k):
        raise ValueError(f"confusion matrix must be {k}x{k} for {k} classes, got shape {counts.shape}")
    rows = counts.sum(axis=1, keepdims=True)
    shown = np.divide(100.0 * counts, rows, out=np.zeros_like(counts), where=rows > 0) if normalize else counts

    fig = Figure(figsize=(1.0 + 0.9 * k, 0.8 + 0.8 * k))
    ax = fig.add_subplot()
    vmax = 100.0 if normalize else max(float(shown.max()), 1.0)
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of true class" if normalize else "images")
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.0f}%\n({counts[i, j]:.0f})" if normalize else f"{counts[i, j]:.0f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > 0.6 * vmax else "black")  # fmt: skip
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def plot_per_class_bars(values: Mapping[str, Sequence[float]], classes: Sequence[str], path: str | Path,
                        ylabel: str, title: str,
                        errors: Mapping[str, Sequence[float]] | None = None) -> Path:  # fmt: skip
    """Grouped bars: one group per class, one bar per arm (e.g. baseline vs. +GAN precision or AUC).

    ``values[arm][k]`` is arm's score for class k; ``errors[arm][k]`` (optional, e.g. a standard
    deviation over seeds or a CI half-width — say which in ``ylabel``) draws symmetric error bars.
    A ``None``/NaN value (an undefined AUC) leaves its bar out.
    """
    arms = list(values)
    k = len(classes)
    if not arms:
        raise ValueError("values needs at least one arm")
    series = [(f"values[{arm!r}]", values[arm]) for arm in arms]
    series += [(f"errors[{arm!r}]", err) for arm, err in (errors or {}).items()]
    for what, seq in series:
        if len(seq) != k:
            raise ValueError(f"{what} has {len(seq)} entries, expected one per class ({k})")

    fig = Figure(figsize=(max(6.0, 0.35 * k * (len(arms) + 1) + 2.0), 4.0))
    ax = fig.add_subplot()
    width = 0.8 / len(arms)
    x = np.arange(k)
    for i, arm in enumerate(arms):
        heights = np.array([np.nan if v is None else v for v in values[arm]], dtype=np.float64)
        err = None if errors is None or arm not in errors else np.asarray(errors[arm], dtype=np.float64)
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, heights, width, yerr=err, capsize=2, label=arm)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_per_class_changes(changes: Mapping[str, Sequence[Mapping]], classes: Sequence[str], path: str | Path,
                           metric: str = "f1", title: str = "Per-class F1 change") -> Path:  # fmt: skip
    """Horizontal bars of each class's change in ``metric`` (percentage points) with its 95 % CI, one per comparison.

    ``changes[name]`` is a list of ``{"class", "metric", "diff", "ci95"}`` records (differences as
    fractions, ``ci95`` a ``[lo, hi]`` pair or None), as the experiment's per-class changes are;
    records of other metrics are ignored. Classes run top to bottom in ``classes`` order, so the
    reader finds Disgust in the same place in every report; a dashed line marks no change.
    """
    names = list(changes)
    if not names:
        raise ValueError("changes needs at least one comparison")
    k = len(classes)
    fig = Figure(figsize=(6.5, max(3.0, 0.5 * k + 1.2)))
    ax = fig.add_subplot()
    height = 0.8 / len(names)
    y = np.arange(k)
    for i, name in enumerate(names):
        by_class = {d["class"]: d for d in changes[name] if d["metric"] == metric}
        diffs = np.full(k, np.nan)
        lo, hi = np.zeros(k), np.zeros(k)
        for j, c in enumerate(classes):
            d = by_class.get(c)
            if d is None or d["diff"] is None:
                continue
            diffs[j] = 100 * d["diff"]
            if d.get("ci95") is not None:
                lo[j] = diffs[j] - 100 * d["ci95"][0]
                hi[j] = 100 * d["ci95"][1] - diffs[j]
        ax.barh(y + (i - (len(names) - 1) / 2) * height, diffs, height, xerr=np.vstack([lo, hi]), capsize=2,
                label=name)  # fmt: skip
    ax.axvline(0.0, color="black", linestyle="--", linewidth=0.8)
    ax.set_yticks(y, classes)
    ax.invert_yaxis()
    ax.set_xlabel(f"change in {metric.replace('f1', 'F1')}, percentage points (bars: 95% CI across seeds)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(names), frameon=False)
    return _save(fig, path)


#: Panels of :func:`plot_training_curves`: title, and which logged keys it shows.
_CURVE_PANELS = (
    ("losses", lambda k: k.startswith("D/") or k in ("G/total", "G/adv")),
    ("D real/fake score gap (grows as a D overfits)", lambda k: k.endswith("/gap")),
    ("augmentation p (ADA) and instance-noise σ", lambda k: k.endswith("/ada_p") or k == "noise_sigma"),
)


def plot_training_curves(metrics: str | Path, path: str | Path) -> Path | None:
    """A GAN run's ``metrics.jsonl`` as curves over steps: losses, each discriminator's real/fake score gap
    (its overfitting, made visible) and, when logged, ADA's p and the instance-noise σ; None without logs."""
    records = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]
    records = [r for r in records if "step" in r]
    if not records:
        return None
    keys = sorted({k for r in records for k, v in r.items() if isinstance(v, int | float) and k != "step"})
    panels = [(title, [k for k in keys if pick(k)]) for title, pick in _CURVE_PANELS]
    panels = [(title, ks) for title, ks in panels if ks]
    fig = Figure(figsize=(6.5, 2.4 * len(panels)))
    for i, (title, ks) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        for k in ks:
            steps = [r["step"] for r in records if k in r]
            ax.plot(steps, [r[k] for r in records if k in r], label=k, linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    fig.axes[-1].set_xlabel("step")
    fig.tight_layout()
    return _save(fig, path)
