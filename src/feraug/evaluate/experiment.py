"""Does adding GAN-synthesized faces to the training set help a classifier — more than duplicating real ones?

:func:`run_augmentation_experiment` trains the same classifier in three arms on identical folds
and seeds and scores them on the same real test faces:

* ``baseline`` — the fold's real training faces;
* ``synthetic`` — plus the synthetic faces that pass the leakage guard (all of them, or with
  ``balance=T`` per class up to T training faces, never more than there are);
* ``oversample`` — plus, per class, exactly as many *duplicated real* training faces (seeded
  draw with replacement) as the synthetic arm added. Duplicating the ~500 real Disgust faces
  already lifts Disgust recall a lot, so a synthetic arm that beats the baseline has only shown
  that rebalancing helps; beating this arm shows the synthetic faces carry something new.

Leakage guard: a synthetic face keeps its source's identity, so one whose source (provenance
``source_row``, matched against :attr:`FaceDataset.rows`) is in a fold's validation or test set
is dropped from that fold's training set (:func:`leakage_guard`).

Statistics (equations in :mod:`feraug.evaluate.statistics` and :func:`pooled_paired_bootstrap`):

* the **decision** — one primary metric (``primary_metric``, macro-F1 by default: Disgust is 1.5 %
  of FER2013 and accuracy barely sees it) and one primary interval, across training seeds: the
  paired t-interval over the per-seed differences (S − 1 df) for the standard protocol, Nadeau &
  Bengio's corrected resampled t over the folds for repeated k-fold. It is conditional on the test
  set (the test faces are the same for every seed). :func:`~feraug.evaluate.statistics.decide`
  turns it into YES (excludes 0, in favour), NO (excludes a gain of ``min_gain``, 2 pt by default,
  or shows a loss) or NOT SHOWN (could not tell), and NOT SHOWN comes with the power the design had
  for a ``min_gain`` gain and the seeds that would reach 80 %. When every seed gave exactly the
  same difference (no training noise at all) the test-image bootstrap decides instead; with one
  seed nothing does.
* over test images — :func:`pooled_paired_bootstrap` on every evaluation set whose faces are
  the same for all runs (the standard test split; k-fold's fixed test set): images are resampled
  once per bootstrap draw and all runs of both arms are scored on that draw. It is reported as
  "test-set noise only" and never decides: it ignores training randomness, and in a simulation at
  FER2013 scale it excludes 0 in 10-30 % of experiments with no true difference
  (benchmarks/verdict_calibration.py, tests/test_verdict.py). The standard protocol also lists
  :func:`~feraug.evaluate.statistics.paired_bootstrap` per seed.
* secondary metrics (accuracy when macro-F1 is primary) get the same tests, labelled secondary;
  per-class changes get an across-seed interval each and are exploratory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml

from feraug.core.seeding import SELECT, derive_seed
from feraug.data.dataset import FaceDataset
from feraug.evaluate.metrics import classification_metrics
from feraug.evaluate.protocols import (
    Fold,
    LeakageError,
    check_disjoint,
    kfold_protocol,
    standard_protocol,
    synthetic_leaks,
    trts_protocol,
    tstr_protocol,
)
from feraug.evaluate.statistics import (
    MIN_GAIN,
    bootstrap_interval,
    corrected_resampled_ttest,
    decide,
    paired_bootstrap,
    paired_t_power,
    paired_test,
    power_from_se,
    seeds_for_power,
)

if TYPE_CHECKING:
    from feraug.config import ExperimentConfig

ARMS: tuple[str, ...] = ("baseline", "synthetic", "oversample")
#: (a, b) pairs compared as "b − a" in the augmentation experiment.
COMPARISONS: tuple[tuple[str, str], ...] = (("baseline", "synthetic"), ("oversample", "synthetic"),
                                            ("baseline", "oversample"))  # fmt: skip
#: Metrics given significance tests (accuracy for seed 000, macro-F1 because Disgust is 1.5 % of FER2013).
TESTED_METRICS: tuple[str, ...] = ("accuracy", "macro_f1")
SCALAR_METRICS: tuple[str, ...] = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc",
                                   "macro_f1_present", "macro_recall_present")  # fmt: skip
METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
PER_CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "auc")
#: The questions the verdict answers: (a, b, question).
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("oversample", "synthetic", "Did synthetic faces beat oversampling real faces?"),
    ("baseline", "synthetic", "Did synthetic faces beat the baseline (no rebalancing)?"),
)


# ----------------------------------------------------------------------------------------------------------------
# Data plumbing: one dataset of real then synthetic faces, provenance -> source positions, the leakage guard.
# ----------------------------------------------------------------------------------------------------------------


def concat(real: FaceDataset, synthetic: FaceDataset) -> FaceDataset:
    """Real faces at positions ``0..R-1``, synthetic ones after them (``usage`` ``"Synthetic"``)."""
    if real.classes != synthetic.classes:
        raise ValueError(f"class lists differ: {real.classes} vs {synthetic.classes}")
    if real.size != synthetic.size:
        raise ValueError(f"real faces are {real.size}px, synthetic faces {synthetic.size}px: load both at one --size")
    usage = np.concatenate([real.usage.astype(str), np.full(len(synthetic), "Synthetic")])
    return FaceDataset(torch.cat([real.images, synthetic.images]), torch.cat([real.labels, synthetic.labels]),
                       usage, np.concatenate([real.rows, synthetic.rows]), real.classes, real.source)  # fmt: skip


def source_positions(data: FaceDataset, synthetic: FaceDataset, provenance: dict[str, np.ndarray]) -> np.ndarray:
    """Position in ``data`` of each synthetic face's source, from provenance ``source_row`` and ``data.rows``.

    A sampled face (``source_row`` -1, :mod:`feraug.synth.sample`) has no source: position -1, which
    no fold holds out, so the guard keeps it.

    Provenance rows are matched to synthetic faces by ``synthetic_row`` (the synthetic face's
    row in its CSV, i.e. ``synthetic.rows``). Every mismatch is an error, not a warning: a
    synthetic set whose sources cannot be located cannot be guarded against leakage.
    """
    syn_rows = np.asarray(provenance["synthetic_row"], dtype=np.int64)
    src_rows = np.asarray(provenance["source_row"], dtype=np.int64)
    if np.unique(syn_rows).size != syn_rows.size:
        raise ValueError("provenance lists a synthetic_row twice")
    order = np.argsort(syn_rows)
    at = np.searchsorted(syn_rows, synthetic.rows, sorter=order)
    at = order[np.minimum(at, len(order) - 1)]
    missing = syn_rows[at] != synthetic.rows
    if missing.any():
        raise ValueError(f"{int(missing.sum())} synthetic face(s) have no provenance row (e.g. synthetic row "
                         f"{int(synthetic.rows[missing][0])}): is the provenance file the one written with "
                         "this CSV?")  # fmt: skip
    if "label" in provenance:
        wrong = np.asarray(provenance["label"], dtype=np.int64)[at] != synthetic.labels.numpy()
        if wrong.any():
            raise ValueError(f"provenance labels disagree with the synthetic CSV for {int(wrong.sum())} face(s)")
    if np.unique(data.rows).size != len(data):
        raise ValueError(f"{data.source}: repeated row indices; cannot map provenance source_row to faces")
    real_order = np.argsort(data.rows)
    pos = np.searchsorted(data.rows, src_rows[at], sorter=real_order)
    pos = real_order[np.minimum(pos, len(data) - 1)]
    sampled = src_rows[at] == -1  # `feraug sample`: made from noise, no source face to guard
    unknown = (data.rows[pos] != src_rows[at]) & ~sampled
    if unknown.any():
        raise ValueError(f"{int(unknown.sum())} provenance source_row value(s) are not rows of {data.source} "
                         f"(e.g. {int(src_rows[at][unknown][0])}): was the synthetic set made from another "
                         "dataset?")  # fmt: skip
    return np.where(sampled, -1, pos).astype(np.int64)


def synthetic_faces_grid(data: FaceDataset, synthetic: FaceDataset, sources: np.ndarray, folder: Path,
                         k: int = 10) -> dict[str, str]:  # fmt: skip
    """Draw the report's grid of synthetic faces under their sources (if any); returns its file name and caption.

    A reader should see the faces before the tables that judge them. When ``feraug quality`` has
    scored this very set (its ``quality.json`` in ``<csv>.quality`` beside the CSV, one score per
    face), the grid shows the ``k`` best and ``k`` worst by the judge's target probability;
    otherwise ``k`` faces spread evenly over the set, and the caption says how to rank them.
    """
    from feraug.figures.grid import labelled_grid, save_image

    csv = Path(synthetic.source)
    scores = None
    qfile = csv.with_name(csv.name.removesuffix(".gz").removesuffix(".csv") + ".quality") / "quality.json"
    if qfile.is_file():
        p_target = json.loads(qfile.read_text()).get("per_face", {}).get("p_target")
        if p_target is not None and len(p_target) == len(synthetic):
            scores = np.asarray(p_target, dtype=np.float64)
    n = min(k, len(synthetic))
    if scores is not None:
        order = np.argsort(-scores, kind="stable")
        groups = [("best", order[:n]), ("worst", order[::-1][:n])]
        caption = (f"The {n} synthetic faces the quality judge found most and least like their target class "
                   f"(p(target) from {qfile}), each under its source face")  # fmt: skip
    else:
        groups = [("", np.linspace(0, len(synthetic) - 1, n).round().astype(np.int64))]
        caption = (f"{n} synthetic faces spread over the set, each under its source face (run `feraug quality "
                   f"--synthetic {csv}` to see the best and worst)")  # fmt: skip
    rows, names = [], []
    for label, idx in groups:
        t = torch.from_numpy(np.ascontiguousarray(idx))
        if (sources[idx] >= 0).all():
            rows.append(data.images[torch.from_numpy(sources[idx])])
            names.append(f"{label} source".strip())
        rows.append(synthetic.images[t])
        names.append(f"{label} synthetic".strip())
    name = "synthetic_faces.png"
    save_image(labelled_grid(rows, names, label_width=110), folder / name)
    return {"file": name, "caption": caption}


class GeneratorOverlapError(ValueError):
    """A generator trained on faces an experiment fold tests on; the message names the run, fold and counts."""


@dataclass(frozen=True)
class Generators:
    """Which run made each synthetic face, and the data rows each run's generator trained on (None: unknown)."""

    face_run: np.ndarray  # int64 [N]: index into ``runs``, -1 when the provenance names no run
    runs: tuple[str, ...]
    rows: tuple[np.ndarray | None, ...]


def generators_of(synthetic: FaceDataset, provenance: dict[str, np.ndarray]) -> Generators:
    """The generator runs named by ``provenance['run']`` and their recorded training rows."""
    from feraug.train.provenance import read_training_rows

    if "run" not in provenance:
        return Generators(np.full(len(synthetic), -1, dtype=np.int64), (), ())
    order = np.argsort(provenance["synthetic_row"])
    at = order[np.searchsorted(provenance["synthetic_row"], synthetic.rows, sorter=order)]
    names = tuple(sorted(set(provenance["run"].tolist())))
    index = {name: i for i, name in enumerate(names)}
    face_run = np.array([index[r] for r in provenance["run"][at]], dtype=np.int64)
    return Generators(face_run, names, tuple(read_training_rows(name) for name in names))


def generator_overlap(data: FaceDataset, fold: Fold, gens: Generators, mode: str,
                      ) -> tuple[dict[str, dict[str, int] | None], np.ndarray]:  # fmt: skip
    """Per generator run, how many of ``fold``'s test and validation faces it trained on; and the faces to drop.

    A generator that trained on a test face taints every face it made for this fold (what it learned
    from that face is in all of them). ``mode``: ``refuse`` raises :class:`GeneratorOverlapError`,
    ``drop`` returns those faces to leave out of this fold's training, ``report`` keeps them (the
    report states the overlap). Validation overlap is counted, never enforced: validation only picks
    the epoch, and under the standard protocol it is carved from the Training split every GAN trains on.
    """
    test_rows = data.rows[np.concatenate(list(fold.tests.values()))]
    val_rows = data.rows[fold.val]
    overlap: dict[str, dict[str, int] | None] = {}
    tainted = np.zeros(gens.face_run.size, dtype=bool)
    for i, (run, rows) in enumerate(zip(gens.runs, gens.rows, strict=True)):
        if rows is None:
            overlap[run] = None
            continue
        n_test, n_val = int(np.isin(test_rows, rows).sum()), int(np.isin(val_rows, rows).sum())
        overlap[run] = {"test": n_test, "val": n_val}
        if n_test and mode == "refuse":
            raise GeneratorOverlapError(
                f"fold {fold.name}: the generator of {run} trained on {n_test} of the faces this fold tests on, so "
                "its synthetic faces carry what it learned from them. Train the generator on data without them, or "
                "set generator_overlap=drop (leave its faces out of such folds) or =report (keep them; the report "
                "states the overlap)"
            )
        if n_test and mode == "drop":
            tainted |= gens.face_run == i
    return overlap, tainted


def leakage_guard(fold: Fold, sources: np.ndarray,
                  tainted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(keep, dropped)``: positions in the synthetic set allowed in ``fold``'s training set, and the rest.

    Dropped are exactly the synthetic faces whose source is in the fold's validation or any test set,
    and those ``tainted`` (made by a generator that trained on a test face: :func:`generator_overlap`).
    """
    leaks = synthetic_leaks(sources, fold.held_out())
    if tainted is not None:
        leaks = leaks | tainted
    return np.flatnonzero(~leaks), np.flatnonzero(leaks)


@dataclass(frozen=True)
class ArmSet:
    """The training sets of one fold and seed, as positions in :func:`concat` (real, then synthetic).

    Attributes:
        train: arm name -> training positions (oversample repeats real positions on purpose).
        added: ``int64 [K]`` faces the synthetic arm added per class (and the oversample arm duplicated).
        dropped: synthetic positions the leakage guard removed for this fold.
    """

    train: dict[str, np.ndarray]
    added: np.ndarray
    dropped: np.ndarray


def build_arms(fold: Fold, real_labels: np.ndarray, synthetic_labels: np.ndarray, sources: np.ndarray, *,
               balance: int | None, seed: int, n_classes: int,
               tainted: np.ndarray | None = None) -> ArmSet:  # fmt: skip
    """Baseline, synthetic and oversample training sets of one fold, paired by construction.

    ``balance=None`` adds every guarded synthetic face; ``balance=T`` adds, per class k,
    ``min(max(T − n_k, 0), available_k)`` of them (n_k = real training faces of k), a seeded choice.
    The oversample arm then draws, per class, the same number of real training faces of that class
    with replacement. Both draws depend on ``(seed, fold.index)`` only. ``tainted`` synthetic faces
    (their generator trained on a test face of this fold) are dropped like leaking ones.
    """
    n_real, k = len(real_labels), n_classes
    keep, dropped = leakage_guard(fold, sources, tainted)
    rng_syn = np.random.default_rng(derive_seed(seed, SELECT, fold.index, 0))
    rng_dup = np.random.default_rng(derive_seed(seed, SELECT, fold.index, 1))
    train_counts = np.bincount(real_labels[fold.train], minlength=k)
    chosen, duplicated = [], []
    added = np.zeros(k, dtype=np.int64)
    for c in range(k):
        pool = keep[synthetic_labels[keep] == c]
        take = pool.size if balance is None else min(max(balance - int(train_counts[c]), 0), pool.size)
        if take == 0:
            continue
        chosen.append(pool if take == pool.size else np.sort(rng_syn.choice(pool, size=take, replace=False)))
        real_c = fold.train[real_labels[fold.train] == c]
        if real_c.size == 0:
            raise ValueError(f"class {c} has synthetic faces but no real training faces in fold {fold.name}: "
                             "the oversample arm cannot duplicate any")  # fmt: skip
        duplicated.append(np.sort(rng_dup.choice(real_c, size=take, replace=True)))
        added[c] = take
    synthetic_part = n_real + np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    dup_part = np.concatenate(duplicated) if duplicated else np.zeros(0, dtype=np.int64)
    train = {"baseline": fold.train, "synthetic": np.concatenate([fold.train, synthetic_part]),
             "oversample": np.concatenate([fold.train, dup_part])}  # fmt: skip
    held = {"val": fold.val, **fold.tests}
    for arm, idx in train.items():
        check_disjoint({f"{arm} train": idx, **held}, n_real + len(synthetic_labels), allow_repeats=(f"{arm} train",))
    if synthetic_leaks(sources[synthetic_part - n_real], fold.held_out()).any():
        raise LeakageError(f"fold {fold.name}: a synthetic face whose source is held out reached training")
    return ArmSet(train, added, dropped)


# ----------------------------------------------------------------------------------------------------------------
# Statistics over runs.
# ----------------------------------------------------------------------------------------------------------------


def pooled_paired_bootstrap(
    y_true: np.ndarray, preds_a: np.ndarray, preds_b: np.ndarray, metric: str = "accuracy", n_boot: int = 2000,
    seed: int = 0, n_classes: int | None = None,
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
    CI and p-value as in :func:`paired_bootstrap`; with R = 1 the two functions agree exactly.

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
        rows = idx[start : start + 256]
        w = np.bincount((rows + n * np.arange(len(rows))[:, None]).ravel(), minlength=len(rows) * n)
        w = w.reshape(len(rows), n).astype(np.float64)
        delta[start : start + len(rows)] = score(w, pb) - score(w, pa)
    return {"metric": metric, "n": n, "n_boot": n_boot, "seed": seed, "metric_a": observed[0],
            "metric_b": observed[1], "diff": observed[1] - observed[0], **bootstrap_interval(delta),
            "runs": len(pa)}  # fmt: skip


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
    "test-set noise only". ``outcome`` is :func:`~feraug.evaluate.statistics.decide` of the primary
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


def _pt(x: float) -> str:
    """A difference of fractions in percentage points, signed: ``+5.0 pt``."""
    return f"{100 * x:+.1f} pt"


_ANSWER = {"yes": "YES", "no": "NO", "worse": "NO, it did worse", "not_shown": "NOT SHOWN"}


def verdict(summary: dict[str, Any],
            questions: Sequence[tuple[str, str, str]] = QUESTIONS) -> dict[str, Any]:  # fmt: skip
    """Plain-language answers to ``questions`` (default :data:`QUESTIONS`), decided by the primary metric alone.

    The answer is the primary metric's (macro-F1 by default) :func:`~feraug.evaluate.statistics.decide`
    on the primary interval of :func:`_compare` — across training seeds, never the test-image
    bootstrap alone: YES (the interval excludes 0, in favour), NO (it excludes a gain of the
    minimum size, or shows a loss), NOT SHOWN (it could not tell: the sentence then gives the
    power this design had for a gain of the minimum size and the seeds that would reach 80 %).
    Secondary metrics and the test-set-noise-only interval are listed after it, labelled so.
    """
    primary_set = summary["primary_set"]
    metric = summary.get("primary_metric", "macro_f1")
    min_gain = summary.get("min_gain", MIN_GAIN)
    tests = summary["sets"][primary_set]["comparisons"] if primary_set else []
    out: dict[str, Any] = {}
    for a, b, question in questions:
        found = {t["metric"]: t for t in tests if t["a"] == a and t["b"] == b}
        if metric not in found:
            continue
        t = found[metric]
        answer = t["outcome"]
        parts = [f"{METRIC_LABELS[metric]} {_pt(t['diff'])}"]
        if "primary" in t:
            lo, hi = t["primary"]["ci95"]
            parts[0] += f" [95% CI {100 * lo:+.1f}, {100 * hi:+.1f}] ({t['primary']['method']})"
        else:
            parts[0] += " (one seed: no across-seed interval)"
        if answer == "no" and "primary" in t:
            parts.append(f"a gain of {_pt(min_gain)} or more is ruled out")
        power, need = t.get("power"), t.get("seeds_for_80")
        if power is not None:
            parts.append(f"the design had {100 * power:.0f}% power to show a {_pt(min_gain)} gain")
        if answer == "not_shown" and need:
            parts.append(f"about {need} seeds would give 80%")
        boot = t.get("bootstrap_pooled")
        if boot is not None and "test images" not in t.get("primary", {}).get("method", ""):
            parts.append(f"test-set noise only: [{100 * boot['ci95'][0]:+.1f}, {100 * boot['ci95'][1]:+.1f}]")
        for other, s in found.items():
            if other != metric and "primary" in s:
                lo, hi = s["primary"]["ci95"]
                parts.append(f"secondary: {METRIC_LABELS[other]} {_pt(s['diff'])} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
        out[f"{b}_vs_{a}"] = {
            "question": question, "answer": answer, "metric": metric, "power": t.get("power"),
            "seeds_for_80": t.get("seeds_for_80"), "outcomes": {m: s["outcome"] for m, s in found.items()},
            "diff": t["diff"], "ci95": t["primary"]["ci95"] if "primary" in t else None,
            "sentence": f"{question} {_ANSWER[answer]}: {'; '.join(parts)}.",
        }  # fmt: skip
    return out


def headline(results: dict[str, Any]) -> str:
    """The verdict in one line: the first question's answer, its difference and across-seed 95 % CI."""
    if not results["verdict"]:
        return "No verdict: this protocol compares no synthetic arm with the baseline or with oversampling."
    v = next(iter(results["verdict"].values()))
    if v.get("diff") is None:  # a results.json written before the verdict kept its difference
        return v["sentence"].split(";")[0].rstrip(".") + "."
    ci = "" if v.get("ci95") is None else f" [95% CI {100 * v['ci95'][0]:+.1f}, {100 * v['ci95'][1]:+.1f}]"
    return (f"{v['question']} {_ANSWER[v['answer']]}: {METRIC_LABELS[v['metric']]} {_pt(v['diff'])}{ci}, "
            f"{len(results['seeds'])} seed(s).")  # fmt: skip


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


def per_class_delta_lines(changes: Sequence[dict[str, Any]]) -> list[str]:
    """Lines such as ``"Disgust F1 +5.0 pt [95% CI -1.2, +11.2]"`` from :func:`per_class_changes`, in its order."""
    lines = []
    for d in changes:
        if d["diff"] is None:
            continue
        ci = f" [95% CI {100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]" if d["ci95"] else ""
        lines.append(f"{d['class']} {d['metric'].replace('f1', 'F1')} {_pt(d['diff'])}{ci}")
    return lines


# ----------------------------------------------------------------------------------------------------------------
# Running the experiment.
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One classifier to train: an arm's training positions on one fold with one seed."""

    arm: str
    seed: int
    fold: Fold
    train: np.ndarray


def _jobs(cfg: ExperimentConfig, data: FaceDataset, synthetic: FaceDataset, sources: np.ndarray,
          gens: Generators | None = None) -> tuple[list[Fold], list[Job], dict[str, Any]]:  # fmt: skip
    """Folds, jobs and the leakage-guard / arm-size / generator-overlap bookkeeping for ``cfg.protocol``."""
    seeds = range(cfg.seeds)
    gens = gens or Generators(np.full(len(synthetic), -1, dtype=np.int64), (), ())
    guard: dict[str, Any] = {"n_synthetic": len(synthetic), "dropped_per_fold": {}, "added_per_fold": {},
                             "generator_overlap": {}, "generator_overlap_mode": cfg.generator_overlap}  # fmt: skip
    jobs: list[Job] = []
    if cfg.protocol in ("standard", "kfold"):
        folds = (standard_protocol(data, val_fraction=cfg.val_fraction) if cfg.protocol == "standard" else
                 kfold_protocol(data, n_per_class_test=cfg.n_per_class_test, repeats=cfg.repeats, folds=cfg.folds,
                                val_fraction=cfg.val_fraction))  # fmt: skip
        real_labels, syn_labels = data.labels.numpy(), synthetic.labels.numpy()
        tainted = {}
        for fold in folds:
            guard["generator_overlap"][fold.name], tainted[fold.name] = generator_overlap(data, fold, gens,
                                                                                          cfg.generator_overlap)
        for seed in seeds:
            for fold in folds:
                arms = build_arms(fold, real_labels, syn_labels, sources, balance=cfg.balance, seed=seed,
                                  n_classes=len(data.classes), tainted=tainted[fold.name])  # fmt: skip
                guard["dropped_per_fold"][fold.name] = int(arms.dropped.size)
                guard["added_per_fold"][fold.name] = dict(zip(data.classes, arms.added.tolist(), strict=True))
                jobs += [Job(arm, seed, fold, arms.train[arm]) for arm in ARMS]
        return folds, jobs, guard
    if cfg.protocol == "tstr":
        (fold,) = tstr_protocol(data, sources, val_fraction=cfg.val_fraction)
        guard["generator_overlap"][fold.name], tainted_faces = generator_overlap(data, fold, gens,
                                                                                 cfg.generator_overlap)
        fold = dataclasses.replace(fold, train=fold.train[~tainted_faces[fold.train - len(data)]])
        (real,) = standard_protocol(data, val_fraction=cfg.val_fraction)
        guard["dropped_per_fold"][fold.name] = int(len(synthetic) - fold.train.size)
        jobs = [j for s in seeds for j in (Job("baseline", s, fold, real.train), Job("synthetic_only", s, fold,
                                                                                      fold.train))]  # fmt: skip
        return [fold], jobs, guard
    (fold,) = trts_protocol(data, sources, val_fraction=cfg.val_fraction)
    guard["dropped_per_fold"][fold.name] = 0
    guard["removed_real_sources"] = int(standard_protocol(data, val_fraction=cfg.val_fraction)[0].train.size
                                        - fold.train.size)  # fmt: skip
    return [fold], [Job("baseline", s, fold, fold.train) for s in seeds], guard


def _train_and_predict(job: Job, combined: FaceDataset, cfg: ExperimentConfig, cache: Path,
                       progress: bool) -> RunResult:  # fmt: skip
    """Train ``job``'s classifier (or load its cached predictions) and score every evaluation set of its fold."""
    from feraug.config import ClassifierConfig
    from feraug.evaluate.classifier import predict_proba, train_classifier
    from feraug.train.device import resolve_device

    k = len(combined.classes)
    labels = combined.labels.numpy()
    counts = np.bincount(labels[job.train], minlength=k)
    n_real = int(job.fold.train.size + job.fold.val.size)
    # What the run saw: its training, selection and test faces (positions, labels and pixels), hashed.
    digest = hashlib.sha256()
    for idx in (job.train, job.fold.val, *job.fold.tests.values()):
        digest.update(idx.tobytes() + labels[idx].tobytes() + combined.images[torch.from_numpy(idx)].numpy().tobytes())
    if cache.is_file():
        with np.load(cache) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("inputs_sha256") != digest.hexdigest():
                raise ValueError(f"{cache} was computed on other faces than this experiment's {job.arm} arm, seed "
                                 f"{job.seed}, fold {job.fold.name}: start a new --out")  # fmt: skip
            evals = {name: EvalSet(idx, labels[idx], z[f"prob_{name}"]) for name, idx in job.fold.tests.items()}
    else:
        ccfg = ClassifierConfig.model_validate({**cfg.classifier.model_dump(), "seed": job.seed})
        run = train_classifier(ccfg, combined.subset(job.train), combined.subset(job.fold.val), None,
                               progress=progress)  # fmt: skip
        device = resolve_device(ccfg.device)
        evals = {name: EvalSet(idx, labels[idx], predict_proba(run.net, combined.subset(idx), tta=ccfg.tta,
                                                               device=device))
                 for name, idx in job.fold.tests.items()}  # fmt: skip
        meta = {"inputs_sha256": digest.hexdigest(), "best_epoch": int(run.best_epoch),
                "best_score": float(run.best_score) if math.isfinite(run.best_score) else None}  # fmt: skip
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez_compressed(tmp, meta=json.dumps(meta), **{f"prob_{n}": e.prob for n, e in evals.items()})
        tmp.replace(cache)  # atomic: a killed run never leaves a half-written cache that resume would trust
    return RunResult(job.arm, job.seed, job.fold.name, counts, n_real, evals, meta["best_epoch"], meta["best_score"])


def experiment_results(runs: Sequence[RunResult], *, protocol: str, data: FaceDataset, synthetic: FaceDataset,
                       folds: Sequence[Fold], guard: dict[str, Any], config: dict[str, Any],
                       n_boot: int, primary_metric: str = "macro_f1",
                       min_gain: float = MIN_GAIN) -> dict[str, Any]:  # fmt: skip
    """The ``results.json`` content: :func:`summarize`, :func:`verdict`, per-class changes and bookkeeping."""
    comparisons = COMPARISONS if protocol in ("standard", "kfold") else (("baseline", "synthetic_only"),)
    summary = summarize(runs, data.classes, comparisons=comparisons, n_boot=n_boot, kfold=protocol == "kfold",
                        primary_metric=primary_metric, min_gain=min_gain)  # fmt: skip
    notes = []
    absent = [c for k, c in enumerate(data.classes) if not (synthetic.labels == k).any()]
    if absent and protocol in ("tstr", "trts"):
        notes.append(f"classes absent from the synthetic set: {', '.join(absent)}; the 'present classes' macro "
                     "averages leave them out")  # fmt: skip
    primary = summary["primary_set"]
    changes = {arm: per_class_changes(runs, summary, arm, data.classes) for arm in summary["sets"][primary]["deltas"]}
    # The report's headline figure: the synthetic arm against each alternative (the verdict's two questions).
    versus = {f"{b} vs {a}": per_class_changes(runs, summary, b, data.classes, ref=a) for a, b, _ in QUESTIONS}
    return {
        "protocol": protocol, "split_note": folds[0].note, "classes": list(data.classes),
        "data": {"real": data.source, "n_real": len(data), "synthetic": synthetic.source,
                 "n_synthetic": len(synthetic),
                 "synthetic_per_class": dict(zip(data.classes, synthetic.class_counts().tolist(), strict=True))},
        "seeds": sorted({r.seed for r in runs}), "folds": [f.name for f in folds],
        "leakage_guard": {**guard, "total_dropped": sum(guard["dropped_per_fold"].values())},
        "runs": [{"arm": r.arm, "seed": r.seed, "fold": r.fold, "n_train": int(r.train_counts.sum()),
                  "train_counts": r.train_counts.tolist(), "best_epoch": r.best_epoch, "best_score": r.best_score}
                 for r in runs],
        **summary, "verdict": verdict(summary), "per_class_changes": changes,
        "delta_lines": {arm: per_class_delta_lines(c) for arm, c in changes.items()},
        "per_class_versus": {name: c for name, c in versus.items() if c},
        "notes": notes, "config": config,
    }  # fmt: skip


def run_augmentation_experiment(
    data: FaceDataset, synthetic: FaceDataset, provenance: dict[str, np.ndarray], cfg: ExperimentConfig,
    out_dir: str | Path, *, resume: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run every (arm, seed, fold) of ``cfg`` and write ``results.json``, ``report.md``, ``report.html`` and plots.

    Args:
        data: the real faces (``rows`` must be the row indices the provenance ``source_row`` refers to).
        synthetic: the synthetic faces (``rows`` = their CSV rows, provenance ``synthetic_row``).
        provenance: :func:`feraug.synth.synthetic_set.read_provenance` of the synthetic CSV.
        cfg: the experiment (protocol, seeds, classifier, balance, ...).
        out_dir: output folder; each run's predictions are cached in ``out_dir/predictions``.
        resume: reuse cached predictions of an interrupted experiment with the same configuration; a
            cached run is only reused when the faces it trained, selected and was scored on are the same.
        progress: show the classifier's progress bars.
        log: called with one line per run (e.g. ``click.echo``).

    Returns:
        The ``results.json`` content.
    """
    return _experiment(data, synthetic, provenance, cfg, out_dir, resume=resume, progress=progress, log=log)[0]


def _experiment(
    data: FaceDataset, synthetic: FaceDataset, provenance: dict[str, np.ndarray], cfg: ExperimentConfig,
    out_dir: str | Path, *, resume: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[RunResult]]:  # fmt: skip
    """:func:`run_augmentation_experiment`, also returning the runs (for comparisons across synthetic sets)."""
    from feraug.report.experiment_report import write_report
    from feraug.train.device import resolve_device
    from feraug.train.runinfo import write_run_info

    out = Path(out_dir)
    config = cfg.model_dump(mode="json")
    sources = source_positions(data, synthetic, provenance)
    gens = generators_of(synthetic, provenance)
    folds, jobs, guard = _jobs(cfg, data, synthetic, sources, gens)  # checks the folds and guards before any file
    if (out / "config.yaml").exists():
        if not resume:
            raise FileExistsError(f"{out} already holds an experiment; resume it or pick another --out")
        saved = yaml.safe_load((out / "config.yaml").read_text())
        if type(cfg).model_validate(saved).model_dump(mode="json") != config:  # fields added since: defaults
            raise ValueError(f"{out}/config.yaml differs from this configuration: cannot resume with other settings")
    write_run_info(out, config, 0, resolve_device(cfg.classifier.device))
    combined = concat(data, synthetic)
    runs = []
    for i, job in enumerate(jobs, 1):
        if log:
            log(f"[{i}/{len(jobs)}] arm {job.arm}, seed {job.seed}, fold {job.fold.name}: "
                f"{job.train.size} training faces")  # fmt: skip
        cache = out / "predictions" / f"{job.arm}-seed{job.seed}-{job.fold.name}.npz"
        runs.append(_train_and_predict(job, combined, cfg, cache, progress))

    results = experiment_results(
        runs,
        protocol=cfg.protocol,
        data=data,
        synthetic=synthetic,
        folds=folds,
        guard=guard,
        config=config,
        n_boot=cfg.n_boot,
        primary_metric=cfg.primary_metric,
        min_gain=cfg.min_gain,
    )
    if len(synthetic):
        results["synthetic_faces"] = synthetic_faces_grid(data, synthetic, sources, out / "plots")
    results = _finite_or_none(results)
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False))
    write_report(results, out)
    return results, runs


def _finite_or_none(value: Any) -> Any:
    """``value`` with every NaN/inf float replaced by None (undefined, e.g. an interval over identical per-seed
    differences), so ``results.json`` stays strict JSON."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_set_comparison(
    data: FaceDataset, sets: Sequence[tuple[str, FaceDataset, dict[str, np.ndarray]]], cfg: ExperimentConfig,
    out_dir: str | Path, *, resume: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The augmentation experiment for several synthetic sets (e.g. all faces vs ``feraug select``'s best) on
    identical folds and seeds, and the paired question "did set B's synthetic arm beat set A's?".

    Each set gets its own full experiment in ``out_dir/<name>`` (report included). The baseline arm
    does not depend on the synthetic faces, so it is trained once: its cached predictions are copied
    into every later set's folder, where the usual check (same training, selection and test faces)
    still guards them. ``out_dir/comparison.json`` and ``comparison.md`` hold, for each later set B
    against the first set A, the primary-metric comparison of B's synthetic arm with A's and with
    B's own oversampling arm, across seeds as in :func:`verdict`.
    """
    import shutil

    if cfg.protocol not in ("standard", "kfold"):
        raise ValueError(f"comparing synthetic sets needs the standard or kfold protocol (a baseline shared by "
                         f"every set and a synthetic arm in each), not {cfg.protocol}")  # fmt: skip
    out = Path(out_dir)
    names = [name for name, _, _ in sets]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"a comparison needs at least two synthetic sets with distinct names, got {names}")
    runs_of: dict[str, list[RunResult]] = {}
    results_of: dict[str, dict[str, Any]] = {}
    for i, (name, synthetic, provenance) in enumerate(sets):
        if log:
            log(f"== synthetic set {name!r}: {len(synthetic)} faces")
        sub = out / name
        if i > 0:
            for cached in (out / names[0] / "predictions").glob("baseline-*.npz"):
                target = sub / "predictions" / cached.name
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(cached, target)
        results_of[name], runs_of[name] = _experiment(data, synthetic, provenance, cfg, sub,
                                                      resume=resume or i > 0, progress=progress, log=log)  # fmt: skip
    first = names[0]
    merged = [r for r in runs_of[first] if r.arm == "baseline"]
    for name in names:
        merged += [dataclasses.replace(r, arm=f"{r.arm}:{name}") for r in runs_of[name] if r.arm != "baseline"]
    pairs, questions = [], []
    for name in names[1:]:
        pairs += [(f"synthetic:{first}", f"synthetic:{name}"), (f"oversample:{name}", f"synthetic:{name}")]
        questions += [(f"synthetic:{first}", f"synthetic:{name}",
                       f"Did the {name!r} synthetic faces beat the {first!r} ones?"),
                      (f"oversample:{name}", f"synthetic:{name}",
                       f"Did the {name!r} synthetic faces beat oversampling as many real faces?")]  # fmt: skip
    summary = summarize(merged, data.classes, comparisons=pairs, n_boot=cfg.n_boot, kfold=cfg.protocol == "kfold",
                        primary_metric=cfg.primary_metric, min_gain=cfg.min_gain)  # fmt: skip
    answers = verdict(summary, questions)
    primary = summary["primary_set"]
    table = {arm: {m: s[m] for m in ("accuracy", "macro_f1")} for arm, s in summary["sets"][primary]["arms"].items()}
    comparison = {"sets": {name: {"n_synthetic": len(syn), "folder": str(out / name),
                                  "verdict": results_of[name]["verdict"]} for name, syn, _ in sets},
                  "arms": table, "verdict": answers, "primary_metric": cfg.primary_metric}  # fmt: skip
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2, allow_nan=False))
    lines = [f"# Synthetic sets compared: {', '.join(names)}", "",
             f"Same folds and seeds for every set; mean ± std over runs on {primary}, in %.", "",
             "| arm | accuracy | macro-F1 |", "|---|---:|---:|"]  # fmt: skip
    for arm, s in table.items():
        cells = [f"{100 * s[m]['mean']:.2f} ± {100 * (s[m]['std'] or 0.0):.2f}" for m in ("accuracy", "macro_f1")]
        lines.append(f"| {arm} | {cells[0]} | {cells[1]} |")
    lines += ["", *[f"- {v['sentence']}" for v in answers.values()], "",
              "Each set's own report: " + ", ".join(f"`{name}/report.md`" for name in names) + "."]  # fmt: skip
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
    return comparison
