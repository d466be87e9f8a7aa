"""The experiment's arms on one fold, and the guard that keeps a held-out face's identity out of training.

Real faces sit at positions ``0..R-1`` of one dataset and synthetic faces after them
(:func:`concat`); provenance maps each synthetic face to its source's position
(:func:`source_positions`). A synthetic face whose source a fold holds out, or whose generator
trained on a face the fold tests on (:func:`generator_overlap`), never reaches that fold's training
set (:func:`leakage_guard`); :func:`build_arms` draws the synthetic and oversample arms around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from feraug.core.seeding import SELECT, derive_seed
from feraug.data.dataset import FaceDataset
from feraug.evaluate.experiment.protocols import Fold, LeakageError, check_disjoint, synthetic_leaks
from feraug.train.provenance import read_training_rows

ARMS: tuple[str, ...] = ("baseline", "synthetic", "oversample")


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

