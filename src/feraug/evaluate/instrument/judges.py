"""The two judges of a synthetic set: cross-fitted classifiers that artefacts do not move.

A judge that reads "degraded or atypical" as the rare class fools every number built on it: with
class-balanced loss weights on ~200 Disgust faces per fold, blurred, noisy Neutral faces read as
Disgust half the time. So each judge here

* trains with a plain (label-smoothed) loss and **degradation augmentation**
  (:func:`feraug.data.degrade.degrade_batch`: blur, noise, down-up sampling, lattices, blotches,
  brightness, contrast; parameters kept apart from the controls' own), so an artefact is not a cue;
* is made to predict the rare class by a **prior correction fitted out of fold**: one logit offset
  per class, chosen to maximise the out-of-fold macro-F1 of the pool (:func:`fit_prior_correction`),
  instead of a loss that inflates the rare class on every input it is unsure of;
* reports its own out-of-fold accuracy, macro-F1 and per-class recall.

Two judges of different architecture and labels give a second opinion: ``A`` is the ``fast`` net on
the data's own labels, ``B`` a small residual net (``resnet``) on the FER+ plurality labels when a
FER+ file is given (else on the data's labels as well). A set the two disagree on by more than
:data:`DISAGREE` is flagged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from feraug.data.dataset import FaceDataset
from feraug.data.ferplus import FerPlus, relabel_with_majority
from feraug.evaluate.instrument.crossfit import CrossFit, cross_fit, judge_config
from feraug.evaluate.metrics import classification_metrics

#: Settings both judges add to the cross-fitting recipe: degradation augmentation, no class weights.
JUDGE_SETS: tuple[str, ...] = ("augmentation.degrade_p=0.5", "class_weights=none")
#: The second judge's architecture.
SECOND_ARCH = "resnet"
#: Two judges whose above-control figures differ by more than this disagree (a flag in ``quality``).
DISAGREE = 0.15
_OFFSETS = np.arange(-4.0, 4.01, 0.25)


def fit_prior_correction(proba: np.ndarray, labels: np.ndarray, *, passes: int = 3) -> np.ndarray:
    """Per-class logit offsets ``b`` maximising the macro-F1 of ``argmax(log p + b)`` (coordinate ascent).

    ``proba`` must be out of fold (each row from a model that did not train on it). Offsets are
    searched on a 0.25 grid in [-4, 4], class by class, ``passes`` times; ``b`` is centred (only
    differences matter). Ties keep the smaller offset change, so an uninformative class stays at 0.
    """
    logp = np.log(np.clip(proba, 1e-12, None))
    n_classes = proba.shape[1]
    bias = np.zeros(n_classes)
    labels = np.asarray(labels)

    def score(b: np.ndarray) -> float:
        pred = (logp + b).argmax(1)
        return _macro_f1(labels, pred, n_classes)

    best = score(bias)
    for _ in range(passes):
        for c in range(n_classes):
            for v in sorted(_OFFSETS, key=lambda o: abs(o - bias[c])):
                trial = bias.copy()
                trial[c] = v
                s = score(trial)
                if s > best + 1e-12:
                    best, bias = s, trial
    return bias - bias.mean()


def _macro_f1(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    cm = np.bincount(labels * n_classes + pred, minlength=n_classes**2).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1)
    present = cm.sum(1) > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros(n_classes), where=denom > 0)
    return float(f1[present].mean())


@dataclass(frozen=True)
class Judge:
    """One cross-fitted judge with its prior correction.

    Attributes:
        name: ``A`` or ``B``.
        fit: the cross-fitted models and the folds of the faces they trained on.
        bias: ``[C]`` logit offsets added before the softmax (:func:`fit_prior_correction`).
        labels: what its labels are ("FER2013", "FER+ plurality").
        arch: its classifier architecture.
        oof: out-of-fold accuracy, macro-F1 and per-class recall on its pool, after the correction.
    """

    name: str
    fit: CrossFit
    bias: np.ndarray
    labels: str
    arch: str
    oof: dict[str, Any] = field(default_factory=dict)

    def proba(self, images: torch.Tensor, rows: np.ndarray | None = None) -> np.ndarray:
        """Corrected class probabilities of ``images``; ``rows[j]`` is the source row of image ``j`` (-1: none).

        An image whose row (or its source face's row) is in the judge's pool is scored by the model
        that did not train on it; any other by the mean of all models.
        """
        folds = np.full(images.shape[0], -1) if rows is None else self.fit.fold_of_rows(np.asarray(rows, np.int64))
        p = self.fit.out_of_fold_proba(images, folds)
        logit = np.log(np.clip(p, 1e-12, None)) + self.bias
        logit -= logit.max(1, keepdims=True)
        e = np.exp(logit)
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    def describe(self) -> str:
        """One line: architecture, labels, folds and out-of-fold figures."""
        o = self.oof
        return (f"judge {self.name}: {self.fit.k} cross-fitted {self.arch} classifiers on {self.labels} labels, "
                f"out of fold accuracy {o['accuracy']:.1%}, macro-F1 {o['macro_f1']:.1%}")  # fmt: skip


def _calibrated(name: str, fit: CrossFit, pool: FaceDataset, labels: str, arch: str,
                log: Callable[[str], None] | None) -> Judge:  # fmt: skip
    """Fit (or load from the judge's cache folder) the prior correction and the out-of-fold figures."""
    cached = fit.cache / "calibration.json" if fit.cache is not None else None
    if cached is not None and cached.is_file():
        record = json.loads(cached.read_text())
        return Judge(name, fit, np.array(record["bias"]), labels, arch, record["oof"])
    if log:
        log(f"judge {name}: out-of-fold predictions of {len(pool):,} faces for its prior correction")
    p = fit.out_of_fold_proba(pool.images, fit.folds)
    y = pool.labels.numpy()
    bias = fit_prior_correction(p, y)
    pred = (np.log(np.clip(p, 1e-12, None)) + bias).argmax(1)
    m = classification_metrics(y, pred, None, pool.classes)
    oof = {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"]),
           "recall": [float(m["per_class"][c]["recall"]) for c in pool.classes],
           "uncorrected_accuracy": float((p.argmax(1) == y).mean()), "faces": len(pool)}  # fmt: skip
    if cached is not None:
        cached.write_text(json.dumps({"bias": bias.tolist(), "oof": oof}, indent=2))
    return Judge(name, fit, bias, labels, arch, oof)


def build_judges(pool: FaceDataset, *, k: int = 2, seed: int = 0, ferplus: FerPlus | None = None,
                 sets: tuple[str, ...] = (), second_sets: tuple[str, ...] = (),
                 cache_dir: Any = True, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> list[Judge]:  # fmt: skip
    """Train (or load) judges A and B on ``pool`` (the faces generators train on), each cross-fitted in ``k`` folds.

    ``sets`` adjust both judges' classifier recipe (``KEY=VALUE``), except that judge B keeps its own
    architecture (``arch`` and ``arch_kwargs``); ``second_sets`` adjust judge B's only.
    """
    cfg_a = judge_config((*JUDGE_SETS, *sets))
    fit_a = cross_fit(pool, cfg_a, k=k, seed=seed, cache_dir=cache_dir, progress=progress, log=log)
    judges = [_calibrated("A", fit_a, pool, "FER2013", cfg_a.arch, log)]
    pool_b, labels_b = (relabel_with_majority(pool, ferplus), "FER+ plurality") if ferplus is not None else \
        (pool, "FER2013")  # fmt: skip
    shared = tuple(s for s in sets if s.split("=", 1)[0].strip().split(".")[0] not in ("arch", "arch_kwargs"))
    cfg_b = judge_config((*JUDGE_SETS, *shared, f"arch={SECOND_ARCH}", *second_sets))
    fit_b = cross_fit(pool_b, cfg_b, k=k, seed=seed + 1, cache_dir=cache_dir, progress=progress, log=log)
    judges.append(_calibrated("B", fit_b, pool_b, labels_b, cfg_b.arch, log))
    return judges


def training_signal_conflict(judges: list[Judge], runs: list[Path]) -> str | None:
    """Why a judge may not score these generators' faces, or None.

    A classifier a generator trained against (a perceptual loss ``φ``, recorded in its run's
    ``meta.json``) rewards exactly what fools it; it must never be the judge of that generator's
    faces. A judge conflicts when one of its models' checkpoint files has ``φ``'s SHA-256, or when
    ``φ`` lies inside the judge's cache folder.
    """
    from feraug.core.checkpoint import file_sha256
    from feraug.train.run_folder import best_checkpoint

    for run in runs:
        meta = Path(run) / "meta.json"
        if not meta.is_file():
            continue
        phi = json.loads(meta.read_text()).get("perceptual") or {}
        if not phi.get("sha256"):
            continue
        for j in judges:
            folder = j.fit.cache
            inside = folder is not None and Path(phi.get("path", "")).resolve().is_relative_to(folder.resolve())
            shas = {file_sha256(best_checkpoint(folder / f"fold{i}")) for i in range(j.fit.k)
                    if folder is not None and best_checkpoint(folder / f"fold{i}").is_file()}  # fmt: skip
            if inside or phi["sha256"] in shas:
                return (f"judge {j.name} ({folder}) is the classifier generator run {run} trained against "
                        f"(loss.perceptual {phi.get('path')}): a loss is never the judge of its own generator; "
                        "use another --judge-cache or --seed")  # fmt: skip
    return None
