"""Classification metrics agree with scikit-learn, handle an absent class, serialize to JSON and plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, roc_auc_score

from feraug.data.classes import EMOTIONS
from feraug.evaluate.metrics import classification_metrics, metrics_table
from feraug.figures.plots import plot_confusion_matrix, plot_per_class_bars


def _fixed_predictions(absent: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 7, 300)
    if absent is not None:
        y[y == absent] = (absent + 1) % 7
    logits = rng.normal(size=(300, 7))
    logits[np.arange(300), y] += 1.5  # a better-than-chance classifier
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, prob.argmax(axis=1), prob


def test_equals_scikit_learn_when_all_classes_present() -> None:
    y, pred, prob = _fixed_predictions()
    m = classification_metrics(y, pred, prob, EMOTIONS)
    labels = list(range(7))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    f1 = f1_score(y, pred, labels=labels, average=None)
    assert [m["per_class"][c]["f1"] for c in EMOTIONS] == pytest.approx(f1)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["macro_precision"] == pytest.approx(precision_score(y, pred, average="macro"))
    assert m["macro_auc"] == pytest.approx(roc_auc_score(y, prob, multi_class="ovr", average="macro"))
    per_auc = [roc_auc_score(y == k, prob[:, k]) for k in labels]
    assert [m["per_class"][c]["auc"] for c in EMOTIONS] == pytest.approx(per_auc)
    assert m["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    assert [m["per_class"][c]["support"] for c in EMOTIONS] == np.bincount(y, minlength=7).tolist()
    assert m["notes"] == []


def test_class_absent_from_y_true() -> None:
    y, pred, prob = _fixed_predictions(absent=1)  # no Disgust in the truth, though it may be predicted
    m = classification_metrics(y, pred, prob, EMOTIONS)
    labels = list(range(7))
    assert m["per_class"]["Disgust"]["auc"] is None
    assert m["per_class"]["Disgust"]["support"] == 0
    present = [k for k in labels if k != 1]
    aucs = [roc_auc_score(y == k, prob[:, k]) for k in present]
    assert m["macro_auc"] == pytest.approx(np.mean(aucs))
    f1 = f1_score(y, pred, labels=labels, average=None, zero_division=0)
    assert [m["per_class"][c]["f1"] for c in EMOTIONS] == pytest.approx(f1)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, labels=labels, average="macro", zero_division=0))
    assert any("Disgust" in note and "macro-AUC" in note for note in m["notes"])
    json.dumps(m, allow_nan=False)  # strict JSON: undefined values are None, not NaN


def test_without_probabilities_and_bad_input() -> None:
    y, pred, _ = _fixed_predictions()
    m = classification_metrics(y, pred, None, EMOTIONS)
    assert m["macro_auc"] is None and all(r["auc"] is None for r in m["per_class"].values())
    with pytest.raises(ValueError, match=r"outside 0\.\.6"):
        classification_metrics(np.array([0, 7]), np.array([0, 1]), None, EMOTIONS)
    with pytest.raises(ValueError, match="y_prob must have shape"):
        classification_metrics(y, pred, np.zeros((len(y), 3)), EMOTIONS)


def test_table_lists_every_class_and_summary() -> None:
    y, pred, prob = _fixed_predictions(absent=1)
    m = classification_metrics(y, pred, prob, EMOTIONS)
    table = metrics_table(m)
    lines = table.splitlines()
    for name in EMOTIONS:
        assert any(line.startswith(name) for line in lines)
    assert f"accuracy {m['accuracy']:.4f}" in table and f"macro-F1 {m['macro_f1']:.4f}" in table
    disgust = next(line for line in lines if line.startswith("Disgust"))
    assert disgust.split()[4] == "-"  # undefined AUC
    assert len({len(line) for line in lines[:9]}) == 1  # header, rule and class rows line up


def _assert_png(path: Path) -> None:
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()


def test_confusion_matrix_plot_is_a_png(tmp_path: Path) -> None:
    y, pred, prob = _fixed_predictions()
    cm = classification_metrics(y, pred, prob, EMOTIONS)["confusion_matrix"]
    for normalize in (True, False):
        out = plot_confusion_matrix(cm, EMOTIONS, tmp_path / f"figs/cm-{normalize}.png", normalize=normalize)
        assert out == tmp_path / f"figs/cm-{normalize}.png"
        _assert_png(out)
    with pytest.raises(ValueError, match="7x7"):
        plot_confusion_matrix(np.zeros((3, 3)), EMOTIONS, tmp_path / "bad.png")


def test_per_class_bars_plot_is_a_png(tmp_path: Path) -> None:
    values = {"baseline": [0.5, None, 0.4, 0.8, 0.45, 0.75, 0.6], "+GAN": [0.52, 0.3, 0.41, 0.8, 0.47, 0.74, 0.58]}
    errors = {arm: [0.02] * 7 for arm in values}
    _assert_png(plot_per_class_bars(values, EMOTIONS, tmp_path / "bars.png", "precision", "per class", errors=errors))
    _assert_png(plot_per_class_bars(values, EMOTIONS, tmp_path / "bars-plain.png", "AUC", "per class"))
    with pytest.raises(ValueError, match="one per class"):
        plot_per_class_bars({"a": [0.1, 0.2]}, EMOTIONS, tmp_path / "bad.png", "x", "y")
