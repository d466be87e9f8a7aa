"""Evaluation protocols: which real faces train, select (early-stop) and score each run.

Every protocol returns a list of :class:`Fold` objects — index arrays into one dataset plus a
sentence for the report — and every fold is checked by :func:`check_fold`: no face may be in
two of its roles (train, validation, any test set). All arms of an experiment are run on the
same folds, so their scores are paired.

* :func:`standard_protocol` — FER2013's ``Usage`` split via :func:`feraug.data.splits.standard_splits`.
* :func:`kfold_protocol` — Pasini et al.'s protocol: a fixed per-class hold-out test set plus repeated
  stratified k-fold cross-validation on the rest.
* :func:`tstr_protocol` / :func:`trts_protocol` — train on synthetic and test on real, and the reverse
  (Birenbaum's future work), over the real faces followed by the synthetic ones.

Why the k-fold protocol early-stops on a slice of the training folds: the held-out fold is the
performance estimate of that fold; choosing the epoch on it too would make the estimate
optimistic (selection on the test data, e.g. Cawley & Talbot 2010, JMLR 11:2079-2107). So each
fold trains on a stratified (1 − val_fraction) of its k − 1 training parts, selects on the rest
of them, and is scored on the held-out part (the cross-validated estimate the corrected
resampled t-test needs) and on the fixed test set (a common test set for every fold, which a
paired bootstrap over test images can pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from feraug.data.dataset import FaceDataset
from feraug.data.splits import holdout_per_class, standard_splits


class LeakageError(AssertionError):
    """A face (or a synthetic face's source) would be in training and in a held-out set of one fold."""


@dataclass(frozen=True)
class Fold:
    """One train / select / score assignment of faces, as positions in one dataset.

    Attributes:
        index: the fold's number in its protocol (seeds per-fold random choices).
        name: short label for files and tables, e.g. ``"standard"`` or ``"r1f7"`` (repeat 1, fold 7).
        train: positions of the faces to train on.
        val: positions of the faces early stopping selects on.
        tests: evaluation sets, name -> positions; the first one is the protocol's primary estimate.
        note: how the fold was made, for reports.
    """

    index: int
    name: str
    train: np.ndarray
    val: np.ndarray
    tests: dict[str, np.ndarray]
    note: str

    def held_out(self) -> np.ndarray:
        """Every position the fold must not train on: validation and all test sets."""
        return np.unique(np.concatenate([self.val, *self.tests.values()]))


def check_disjoint(sets: dict[str, np.ndarray], n: int | None = None, *, allow_repeats: tuple[str, ...] = ()) -> None:
    """Raise :class:`LeakageError` when two named index sets share a position.

    Also rejects positions outside ``0..n-1`` and repeated positions within a set (except in the
    sets named in ``allow_repeats``: an oversampled training set repeats faces on purpose).
    """
    for name, idx in sets.items():
        if idx.ndim != 1:
            raise LeakageError(f"{name}: expected a 1-D index array, got shape {idx.shape}")
        if n is not None and idx.size and (idx.min() < 0 or idx.max() >= n):
            raise LeakageError(f"{name}: positions outside 0..{n - 1}")
        if name not in allow_repeats and np.unique(idx).size != idx.size:
            raise LeakageError(f"{name}: repeats positions")
    for (a, ia), (b, ib) in combinations(sets.items(), 2):
        shared = np.intersect1d(ia, ib)
        if shared.size:
            raise LeakageError(f"{shared.size} face(s) in both {a} and {b} (e.g. position {int(shared[0])})")


def check_fold(fold: Fold, n: int) -> None:
    """Assert that ``fold``'s train, validation and test sets are disjoint and inside ``0..n-1``."""
    check_disjoint({"train": fold.train, "val": fold.val, **fold.tests}, n)


def standard_protocol(data: FaceDataset, *, val_fraction: float = 0.1) -> list[Fold]:
    """One fold from ``Usage``: Training / PublicTest (select) / PrivateTest (score), or the fallbacks
    of :func:`~feraug.data.splits.standard_splits` (its note says which was used)."""
    s = standard_splits(data, val_fraction=val_fraction)
    fold = Fold(0, "standard", s.train, s.val, {"test": s.test}, s.note)
    check_fold(fold, len(data))
    return [fold]


def kfold_protocol(
    data: FaceDataset, *, n_per_class_test: int = 100, repeats: int = 3, folds: int = 10,
    val_fraction: float = 0.1, seed: int = 0,
) -> list[Fold]:  # fmt: skip
    """Pasini et al.: ``n_per_class_test`` faces per class as a fixed test set, repeated stratified k-fold on the rest.

    Fold ``r·folds + f`` trains on a stratified ``1 − val_fraction`` of the k − 1 training parts,
    early-stops on the remaining ``val_fraction`` of them, and is scored on ``"heldout"`` (the
    held-out part, the cross-validated estimate) and ``"fixed_test"`` (the same faces for every fold).
    Splits are a function of ``seed`` only, so every arm and every training seed sees the same folds.
    """
    from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split  # ~2 s import: only when used

    if folds < 2 or repeats < 1:
        raise ValueError(f"need folds >= 2 and repeats >= 1, got folds={folds}, repeats={repeats}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    rest, fixed = holdout_per_class(data, n_per_class_test, seed=seed)
    labels = data.labels.numpy()
    counts = np.bincount(labels[rest], minlength=len(data.classes))
    # Each class needs a face in every held-out part and, in the training parts, >= 2 to split off a validation face.
    short = [f"{name!r} ({c})" for name, c in zip(data.classes, counts, strict=True) if c < max(folds, 3)]
    if short:
        raise ValueError(f"too few faces outside the fixed test set for stratified {folds}-fold CV in class "
                         f"{', '.join(short)}")  # fmt: skip
    rskf = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    out = []
    for j, (tr, te) in enumerate(rskf.split(rest, labels[rest])):
        train, val = train_test_split(rest[tr], test_size=val_fraction, random_state=seed + j,
                                      stratify=labels[rest[tr]], shuffle=True)  # fmt: skip
        note = (f"Pasini et al. protocol: {n_per_class_test} faces per class held out once as the fixed test set "
                f"({fixed.size} faces); {repeats}x repeated stratified {folds}-fold CV on the other {rest.size}: "
                f"each fold trains on {1 - val_fraction:.0%} of its {folds - 1} training parts, early-stops on the "
                f"other {val_fraction:.0%} of them (never on the held-out part), and is scored on the held-out "
                "part and on the fixed test set")  # fmt: skip
        fold = Fold(j, f"r{j // folds}f{j % folds}", np.sort(train), np.sort(val),
                    {"heldout": np.sort(rest[te]), "fixed_test": fixed}, note)  # fmt: skip
        check_fold(fold, len(data))
        out.append(fold)
    return out


def synthetic_leaks(sources: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Mask of synthetic faces whose source face (a position in the real data) is held out.

    A translated face keeps its source's identity, pose and lighting; training on it while its
    source is scored (or selects the epoch) is the same leak as training on the source itself.
    """
    return np.isin(sources, held_out)


def tstr_protocol(real: FaceDataset, sources: np.ndarray, *, val_fraction: float = 0.1) -> list[Fold]:
    """Train on synthetic, test on real: positions index ``real`` followed by the synthetic faces.

    Trains on every synthetic face whose source is neither in the real validation nor the real
    test split (see :func:`synthetic_leaks`), early-stops on the real validation split (real but
    never scored) and is scored on the real test split, both from :func:`standard_protocol`.
    """
    (std,) = standard_protocol(real, val_fraction=val_fraction)
    keep = ~synthetic_leaks(sources, std.held_out())
    fold = Fold(0, "tstr", len(real) + np.flatnonzero(keep), std.val, {"test": std.tests["test"]},
                f"train on synthetic, test on real: {int(keep.sum())} synthetic faces train "
                f"({int((~keep).sum())} dropped: their source is in the real validation or test split); "
                f"selection and test splits: {std.note}")  # fmt: skip
    check_fold(fold, len(real) + len(sources))
    return [fold]


def trts_protocol(real: FaceDataset, sources: np.ndarray, *, val_fraction: float = 0.1) -> list[Fold]:
    """Train on real, test on synthetic (and on the real test split, for reference).

    The real training split minus the source faces of the synthetic set trains (a classifier
    that saw a source face would be scored on its own translated identity); the real validation
    split selects; ``"synthetic"`` (all synthetic faces) and ``"test"`` (real test split) score.
    """
    (std,) = standard_protocol(real, val_fraction=val_fraction)
    train = np.setdiff1d(std.train, sources)
    fold = Fold(0, "trts", train, std.val,
                {"synthetic": len(real) + np.arange(len(sources)), "test": std.tests["test"]},
                f"train on real, test on synthetic: the real training split minus the {std.train.size - train.size} "
                f"source faces of the synthetic set trains; {std.note}")  # fmt: skip
    check_fold(fold, len(real) + len(sources))
    return [fold]
