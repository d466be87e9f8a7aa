"""``results.json`` of an augmentation experiment: the summary's numbers, the verdict in words, the bookkeeping.

A function of the runs' predictions and the guard's records alone, so the file (and the report
built from it) can be recomputed without training anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from feraug.data.dataset import FaceDataset
from feraug.evaluate.experiment.protocols import Fold
from feraug.evaluate.experiment.statistics import MIN_GAIN, TARGET_MIN_GAIN
from feraug.evaluate.experiment.summary import COMPARISONS, RunResult, per_class_changes, summarize
from feraug.report.verdict import QUESTIONS, per_class_delta_lines, verdict


def experiment_results(runs: Sequence[RunResult], *, protocol: str, data: FaceDataset, synthetic: FaceDataset,
                       folds: Sequence[Fold], guard: dict[str, Any], config: dict[str, Any],
                       n_boot: int, primary_metric: str = "macro_f1",
                       min_gain: float = MIN_GAIN) -> dict[str, Any]:  # fmt: skip
    """The ``results.json`` content: :func:`summarize`, :func:`verdict`, per-class changes and bookkeeping.

    The target class is the one the synthetic set adds most faces of (its only class for a
    one-class set such as Disgust translations), asked about where oversampling gives the positive
    control (standard and k-fold protocols); its minimum gain is ``config["target_min_gain"]`` (the
    experiment's configuration as recorded), and the NO sentences name ``config["classifier"]``'s
    arch and epochs as the recipe they hold for.
    """
    arms_protocol = protocol in ("standard", "kfold")
    comparisons = COMPARISONS if arms_protocol else (("baseline", "synthetic_only"),)
    counts = synthetic.class_counts()
    target = data.classes[int(counts.argmax())] if arms_protocol and len(synthetic) else None
    summary = summarize(runs, data.classes, comparisons=comparisons, n_boot=n_boot, kfold=protocol == "kfold",
                        primary_metric=primary_metric, min_gain=min_gain, target=target,
                        target_min_gain=config.get("target_min_gain", TARGET_MIN_GAIN))  # fmt: skip
    notes = []
    absent = [c for k, c in enumerate(data.classes) if not (synthetic.labels == k).any()]
    if absent and protocol in ("tstr", "trts"):
        notes.append(f"classes absent from the synthetic set: {', '.join(absent)}; the 'present classes' macro "
                     "averages leave them out")  # fmt: skip
    if target is not None and int((counts > 0).sum()) > 1:
        notes.append(f"the synthetic set adds faces of {int((counts > 0).sum())} classes; the target-class checks "
                     f"and question use {target}, the class it adds most of")  # fmt: skip
    clf = config.get("classifier") or {}
    recipe = f"{clf['arch']}, {clf['epochs']} epochs" if "arch" in clf and "epochs" in clf else None
    primary = summary["primary_set"]
    changes = {arm: per_class_changes(runs, summary, arm, data.classes, n_boot=n_boot)
               for arm in summary["sets"][primary]["deltas"]}  # fmt: skip
    # The report's headline figure: the synthetic arm against each alternative (the verdict's two questions).
    versus = {f"{b} vs {a}": per_class_changes(runs, summary, b, data.classes, ref=a, n_boot=n_boot)
              for a, b, _ in QUESTIONS}  # fmt: skip
    return {
        "protocol": protocol, "split_note": folds[0].note, "classes": list(data.classes),
        "data": {"real": data.source, "n_real": len(data), "synthetic": synthetic.source,
                 "n_synthetic": len(synthetic),
                 "synthetic_per_class": dict(zip(data.classes, counts.tolist(), strict=True))},
        "seeds": sorted({r.seed for r in runs}), "folds": [f.name for f in folds],
        "leakage_guard": {**guard, "total_dropped": sum(guard["dropped_per_fold"].values())},
        "runs": [{"arm": r.arm, "seed": r.seed, "fold": r.fold, "n_train": int(r.train_counts.sum()),
                  "train_counts": r.train_counts.tolist(), "best_epoch": r.best_epoch, "best_score": r.best_score}
                 for r in runs],
        **summary, "verdict": verdict(summary, recipe=recipe), "per_class_changes": changes,
        "delta_lines": {arm: per_class_delta_lines(c) for arm, c in changes.items()},
        "per_class_versus": {name: c for name, c in versus.items() if c},
        "notes": notes, "config": config,
    }  # fmt: skip


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN/inf float replaced by None (undefined, e.g. an interval over identical per-seed
    differences), so ``results.json`` stays strict JSON."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
