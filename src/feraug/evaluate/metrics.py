"""Classification metrics of one trained classifier on one test set, with scikit-learn's definitions (tested equal).

Pasini et al. judged augmentation by per-class precision and one-vs-rest AUC; Birenbaum by accuracy and
per-class accuracy (= recall). :func:`classification_metrics` reports all of them plus F1 and the
confusion matrix in one JSON-serializable dict, so every arm of an experiment is scored the same
way and a report can be rebuilt from the stored numbers alone.

Conventions (stated once, applied everywhere):

* Labels are ``0 .. len(classes) - 1``; every per-class score and every macro average runs over
  all of them, so arms are averaged over the same classes even if one never predicts a class.
* A ratio with a zero denominator (precision of a class never predicted, recall of a class absent
  from ``y_true``) is 0, scikit-learn's ``zero_division=0``.
* ROC-AUC is undefined for a class absent from ``y_true`` (no positives) or covering all of it
  (no negatives): it is ``None`` for that class, left out of the macro-AUC, and named in ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, y_prob: ArrayLike | None,
                           classes: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """Accuracy, per-class and macro precision/recall/F1/ROC-AUC, support and the confusion matrix.

    Args:
        y_true: true labels ``[N]`` in ``0 .. K-1``.
        y_pred: predicted labels ``[N]``.
        y_prob: class scores ``[N, K]`` (softmax probabilities or any monotone score per class) for
            the one-vs-rest AUC; ``None`` when the classifier gives no scores (AUCs are then ``None``).
        classes: the K class names, in label order.

    Returns:
        ``{"classes", "n", "accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc",
        "per_class": {name: {"precision", "recall", "f1", "auc", "support"}}, "confusion_matrix",
        "notes"}`` with plain Python numbers (``macro_recall`` is the balanced accuracy), rows of the
        confusion matrix being true classes and columns predictions.
    """
    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = np.asarray(y_pred).astype(np.int64)
    labels = np.arange(len(classes))
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred must be equal-length non-empty 1-D arrays, got {y_true.shape} "
                         f"and {y_pred.shape}")  # fmt: skip
    for what, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= len(classes):
            raise ValueError(f"{what} has labels outside 0..{len(classes) - 1} ({len(classes)} classes)")

    # From the confusion matrix, as scikit-learn defines them with zero_division=0 (equality is tested): the
    # experiment scores thousands of runs and resamples, where sklearn's per-call validation dominated the time.
    k = len(classes)
    cm = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    tp, support, predicted = np.diag(cm).astype(np.float64), cm.sum(axis=1), cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(k), where=(support + predicted) > 0)
    notes: list[str] = []
    absent = [classes[k] for k in labels if support[k] == 0]
    if absent:
        notes.append(
            f"absent from y_true: {', '.join(absent)} "
            "(their recall and F1 are 0 by convention and still count in the macro averages)"
        )
    auc: list[float | None] = [None] * len(classes)
    if y_prob is not None:
        prob = np.asarray(y_prob, dtype=np.float64)
        if prob.shape != (len(y_true), len(classes)):
            raise ValueError(f"y_prob must have shape {(len(y_true), len(classes))}, got {prob.shape}")
        # One-vs-rest ROC-AUC as the Mann-Whitney U statistic (ties get average ranks), which is what
        # roc_auc_score computes: AUC_k = (Σ ranks of positives − P(P+1)/2) / (P·(N−P)).
        ranks = stats.rankdata(prob, axis=0)
        n = len(y_true)
        for c in labels:
            positives = y_true == c
            n_pos = int(positives.sum())
            if 0 < n_pos < n:
                auc[c] = float((ranks[positives, c].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos)))
        undefined = [classes[k] for k in labels if auc[k] is None]
        if undefined:
            notes.append(f"ROC-AUC undefined (one-vs-rest needs positives and negatives) for "
                         f"{', '.join(undefined)}: excluded from macro-AUC")  # fmt: skip
    defined = [a for a in auc if a is not None]

    return {
        "classes": list(classes),
        "n": len(y_true),
        "accuracy": float(tp.sum() / len(y_true)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "macro_auc": float(np.mean(defined)) if defined else None,
        "per_class": {
            name: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "auc": auc[k],
                "support": int(support[k]),
            }
            for k, name in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
        "notes": notes,
    }


def metrics_table(metrics: dict[str, Any]) -> str:
    """Fixed-width text table of :func:`classification_metrics` output, for logs and reports.

    One row per class (precision, recall, F1, AUC, support), then accuracy, macro-F1 and macro-AUC;
    undefined values print as ``-``; notes follow the table.
    """

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    width = max(8, *(len(name) for name in metrics["classes"]))
    lines = [f"{'class':<{width}}  {'precision':>9}  {'recall':>9}  {'F1':>9}  {'AUC':>9}  {'support':>8}"]
    lines.append("-" * len(lines[0]))
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:<{width}}  {fmt(row['precision']):>9}  {fmt(row['recall']):>9}  {fmt(row['f1']):>9}  "
                     f"{fmt(row['auc']):>9}  {row['support']:>8d}")  # fmt: skip
    lines.append("-" * len(lines[0]))
    lines.append(f"{'macro':<{width}}  {fmt(metrics['macro_precision']):>9}  {fmt(metrics['macro_recall']):>9}  "
                 f"{fmt(metrics['macro_f1']):>9}  {fmt(metrics['macro_auc']):>9}  {metrics['n']:>8d}")  # fmt: skip
    lines.append(f"accuracy {fmt(metrics['accuracy'])}   macro-F1 {fmt(metrics['macro_f1'])}   "
                 f"macro-AUC {fmt(metrics['macro_auc'])}")  # fmt: skip
    lines += [f"note: {note}" for note in metrics["notes"]]
    return "\n".join(lines)
