"""The two judges of a synthetic set: cross-fitted classifiers that artefacts do not move.

A judge that reads "degraded or atypical" as the rare class fools every number built on it: with
class-balanced loss weights on ~200 Disgust faces per fold, blurred, noisy Neutral faces read as
Disgust half the time. So each judge here

* is the CPU classifier recipe (``classifier-fast-cpu``) trained with a plain (label-smoothed) loss
  and **degradation augmentation** (:func:`feraug.data.degrade.degrade_batch`: blur, noise, down-up
  sampling, lattices, blotches, brightness, contrast; parameters kept apart from the controls'
  own), so an artefact is not a cue;
* is made to predict the rare class by a **prior correction fitted out of fold**: one logit offset
  per class, chosen to maximise the out-of-fold balanced accuracy of the pool (every emotion
  equally likely: :func:`fit_prior_correction`), instead of a loss that inflates the rare class on
  every input it is unsure of;
* judges a set at a **pinned false-alarm rate**: for a set meant to show emotion *t*, made from (or
  controlled by) faces of emotion *s*, the offset of *t* is moved so that the judge calls
  :data:`FALSE_ALARM` of the out-of-fold pool's real *s* faces *t* (:meth:`Judge.for_target`): the
  most target recall the judge can give at that rate;
* reports its own out-of-fold accuracy, macro-F1 and per-class recall.

Two judges of different architecture and labels give a second opinion: ``A`` is the ``fast`` net on
the data's own labels, ``B`` a small residual net (``resnet``) on the FER+ plurality labels when a
FER+ file is given (else on the data's labels as well). A set the two disagree on by more than
:data:`DISAGREE` is flagged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from feraug.data.dataset import FaceDataset
from feraug.data.ferplus import FerPlus, relabel_with_majority
from feraug.evaluate.instrument.crossfit import CrossFit, cross_fit, judge_config
from feraug.evaluate.metrics import classification_metrics

#: Settings both judges add to the cross-fitting recipe: the CPU classifier recipe (``classifier-fast-cpu``:
#: dropout, erasing, EMA of the weights) for 36 full passes over the fold's faces, predicting without TTA (judges
#: score many sets), degradation augmentation and no class weights.
JUDGE_SETS: tuple[str, ...] = ("preset=classifier-fast-cpu", "epochs=36", "steps_per_epoch=null", "tta=false",
                               "augmentation.degrade_p=0.5", "class_weights=none")  # fmt: skip
#: The second judge's architecture, and its own settings (fewer passes: a ``resnet`` step costs ~1.6x a ``fast`` one).
SECOND_ARCH = "resnet"
SECOND_SETS: tuple[str, ...] = ("epochs=24",)
#: Two judges whose above-control figures differ by more than this disagree (a flag in ``quality``).
DISAGREE = 0.15
#: What the judges' prior correction maximises by default: every emotion as likely as any other.
PRIOR_OBJECTIVE = "balanced"
#: The share of real source-emotion faces a judge may call the target (:meth:`Judge.for_target`).
FALSE_ALARM = 0.02
_OFFSETS = np.arange(-4.0, 4.01, 0.25)


def fit_prior_correction(proba: np.ndarray, labels: np.ndarray, *, passes: int = 3,
                         objective: str = "macro_f1") -> np.ndarray:  # fmt: skip
    """Per-class logit offsets ``b`` maximising ``objective`` of ``argmax(log p + b)`` (coordinate ascent).

    ``objective``: ``macro_f1``, or ``balanced`` (the mean per-class recall: the decision a judge
    would make if every emotion were equally common, which is what "does this face show the
    target?" asks of a synthetic set whose faces all claim one emotion). ``proba`` must be out of
    fold (each row from a model that did not train on it). Offsets are searched on a 0.25 grid in
    [-4, 4], class by class, ``passes`` times; ``b`` is centred (only differences matter). Ties keep
    the smaller offset change, so an uninformative class stays at 0.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown prior-correction objective {objective!r}; choose from {sorted(OBJECTIVES)}")
    metric = OBJECTIVES[objective]
    logp = np.log(np.clip(proba, 1e-12, None))
    n_classes = proba.shape[1]
    bias = np.zeros(n_classes)
    labels = np.asarray(labels)

    def score(b: np.ndarray) -> float:
        pred = (logp + b).argmax(1)
        return metric(labels, pred, n_classes)

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


def _confusion(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(labels * n_classes + pred, minlength=n_classes**2).reshape(n_classes, n_classes)


def _macro_f1(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    cm = _confusion(labels, pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1)
    present = cm.sum(1) > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros(n_classes), where=denom > 0)
    return float(f1[present].mean())


def _balanced_accuracy(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    cm = _confusion(labels, pred, n_classes)
    present = cm.sum(1) > 0
    return float((np.diag(cm)[present] / cm.sum(1)[present]).mean())


#: What a prior correction can maximise (:func:`fit_prior_correction`).
OBJECTIVES: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "macro_f1": _macro_f1, "balanced": _balanced_accuracy}  # fmt: skip


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
    oof_proba: np.ndarray | None = field(default=None, repr=False)
    oof_labels: np.ndarray | None = field(default=None, repr=False)

    def for_target(self, target: int, source: int, alpha: float = FALSE_ALARM) -> Judge:
        """This judge with the ``target`` offset moved so it calls ``alpha`` of real ``source`` faces ``target``.

        A synthetic set's transfer is read against faces of its source emotion (its own sources,
        degraded or not), so what the instrument must pin is its false-alarm rate there: the offset
        is the ``alpha`` quantile of the margins by which the out-of-fold pool's ``source`` faces
        miss being called ``target`` (Neyman-Pearson: the most target recall at that false-alarm
        rate). ``oof`` then holds the recall and accuracy at this operating point and
        ``operating_point`` what was pinned. Without out-of-fold scores, or without ``source``
        faces, the judge is returned unchanged.
        """
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"the false-alarm rate must be in [0, 1), got {alpha}")
        if self.oof_proba is None or self.oof_labels is None or target == source:
            return self
        logp = np.log(np.clip(self.oof_proba, 1e-12, None))
        neg = (logp + self.bias)[self.oof_labels == source]
        if not len(neg):
            return self
        margin = np.sort(np.delete(neg, target, axis=1).max(1) - neg[:, target])  # called once the offset passes it
        allowed = margin[: int(np.floor(alpha * len(margin)))]  # the faces that may be called the target
        above = margin[len(allowed) :]
        below = allowed[allowed < above[0]]  # a tie at the boundary stays uncalled, all of it
        offset = (below[-1] + above[0]) / 2 if len(below) else above[0] - 1e-3
        bias = self.bias.copy()
        bias[target] += offset
        pred = (logp + bias).argmax(1)
        y = self.oof_labels
        n = len(bias)
        recall = [float((pred[y == c] == c).mean()) if (y == c).any() else None for c in range(n)]
        point = {"target": target, "source": source, "alpha": alpha,
                 "false_alarm": float((pred[y == source] == target).mean()), "offset": float(offset)}  # fmt: skip
        oof = {**self.oof, "accuracy": float((pred == y).mean()), "macro_f1": _macro_f1(y, pred, n), "recall": recall,
               "operating_point": point}  # fmt: skip
        return replace(self, bias=bias, oof=oof)

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


def source_emotion(labels: np.ndarray, target: int, source_positions: np.ndarray | None = None) -> int:
    """The emotion a set is read against: its source faces' most common label (translations), else the
    largest class other than ``target`` (sampled sets: their controls are real faces of that class)."""
    if source_positions is not None and len(source_positions):
        return int(np.bincount(labels[source_positions]).argmax())
    counts = np.bincount(labels, minlength=target + 1).astype(np.int64)
    counts[target] = -1
    return int(counts.argmax())


def _calibrated(name: str, fit: CrossFit, pool: FaceDataset, labels: str, arch: str, objective: str,
                log: Callable[[str], None] | None) -> Judge:  # fmt: skip
    """Fit (or load from the judge's cache folder) the prior correction and the out-of-fold figures.

    The out-of-fold probabilities are cached beside the models, so another ``objective`` costs no
    second pass over the pool.
    """
    stored = fit.cache / "oof_proba.npy" if fit.cache is not None else None
    p = np.load(stored, allow_pickle=False) if stored is not None and stored.is_file() else None
    if p is None or p.shape != (len(pool), len(pool.classes)):
        if log:
            log(f"judge {name}: out-of-fold predictions of {len(pool):,} faces for its prior correction")
        p = fit.out_of_fold_proba(pool.images, fit.folds)
        if stored is not None:
            np.save(stored, p)
    cached = fit.cache / f"calibration-{objective}.json" if fit.cache is not None else None
    if cached is not None and cached.is_file():
        record = json.loads(cached.read_text())
        return Judge(name, fit, np.array(record["bias"]), labels, arch, record["oof"], p, pool.labels.numpy())
    y = pool.labels.numpy()
    bias = fit_prior_correction(p, y, objective=objective)
    pred = (np.log(np.clip(p, 1e-12, None)) + bias).argmax(1)
    m = classification_metrics(y, pred, None, pool.classes)
    oof = {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"]), "objective": objective,
           "recall": [float(m["per_class"][c]["recall"]) for c in pool.classes],
           "uncorrected_accuracy": float((p.argmax(1) == y).mean()), "faces": len(pool)}  # fmt: skip
    if cached is not None:
        cached.write_text(json.dumps({"bias": bias.tolist(), "oof": oof}, indent=2))
    return Judge(name, fit, bias, labels, arch, oof, p, y)


def build_judges(pool: FaceDataset, *, k: int = 2, seed: int = 0, ferplus: FerPlus | None = None,
                 sets: tuple[str, ...] = (), second_sets: tuple[str, ...] = (),
                 cache_dir: Any = True, progress: bool = True, objective: str = PRIOR_OBJECTIVE,
                 log: Callable[[str], None] | None = None) -> list[Judge]:  # fmt: skip
    """Train (or load) judges A and B on ``pool`` (the faces generators train on), each cross-fitted in ``k`` folds.

    ``sets`` adjust both judges' classifier recipe (``KEY=VALUE``), except that judge B keeps its own
    architecture (``arch`` and ``arch_kwargs``); ``second_sets`` adjust judge B's only. ``objective``:
    what each judge's prior correction maximises (:func:`fit_prior_correction`).
    """
    cfg_a = judge_config((*JUDGE_SETS, *sets))
    fit_a = cross_fit(pool, cfg_a, k=k, seed=seed, cache_dir=cache_dir, progress=progress, log=log)
    judges = [_calibrated("A", fit_a, pool, "FER2013", cfg_a.arch, objective, log)]
    pool_b, labels_b = (relabel_with_majority(pool, ferplus), "FER+ plurality") if ferplus is not None else \
        (pool, "FER2013")  # fmt: skip
    shared = tuple(s for s in sets if s.split("=", 1)[0].strip().split(".")[0] not in ("arch", "arch_kwargs"))
    cfg_b = judge_config((*JUDGE_SETS, *SECOND_SETS, *shared, f"arch={SECOND_ARCH}", *second_sets))
    fit_b = cross_fit(pool_b, cfg_b, k=k, seed=seed + 1, cache_dir=cache_dir, progress=progress, log=log)
    judges.append(_calibrated("B", fit_b, pool_b, labels_b, cfg_b.arch, objective, log))
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
