"""Train / validation / test splits, decided once and identically for every experiment arm.

Three protocols:

* :func:`standard_splits` — FER2013's own ``Usage`` column: Training / PublicTest (selection) /
  PrivateTest (report). A file without PrivateTest (like the shared copy) reports on PublicTest
  and selects on a stratified hold-out of Training; the returned note says so.
* the same function on data without ``Usage``: a deterministic stratified split.
* :func:`holdout_per_class` — Pasini et al.'s protocol: N faces per class held out as the test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feraug.data.dataset import FaceDataset


@dataclass(frozen=True)
class Splits:
    """Index arrays into one dataset, plus a sentence on how they were made (for reports)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    note: str

    def datasets(self, data: FaceDataset) -> tuple[FaceDataset, FaceDataset, FaceDataset]:
        """The three splits as datasets."""
        return data.subset(self.train), data.subset(self.val), data.subset(self.test)


def _check_stratifiable(data: FaceDataset, index: np.ndarray, parts: int, what: str) -> None:
    counts = np.bincount(data.labels.numpy()[index], minlength=len(data.classes))
    for name, count in zip(data.classes, counts, strict=True):
        if 0 < count < parts:
            raise ValueError(f"class {name!r} has {count} image(s) in {what}: too few to stratify into {parts} parts")


def _stratified(
    data: FaceDataset, index: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must lie strictly between 0 and 1, got {fraction}")
    _check_stratifiable(data, index, 2, what)
    from sklearn.model_selection import train_test_split  # sklearn costs ~2 s to import: only when used

    keep, held = train_test_split(
        index, test_size=fraction, random_state=seed, stratify=data.labels.numpy()[index], shuffle=True
    )
    return np.sort(keep), np.sort(held)


def standard_splits(
    data: FaceDataset, *, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> Splits:
    """Splits from ``Usage`` when present, else a deterministic stratified split.

    ``val_fraction`` is used when the validation split must be carved out of Training;
    ``test_fraction`` only when the data has no ``Usage`` at all.
    """
    usage = data.usage
    present = data.splits
    if "Training" in present:
        train = np.flatnonzero(usage == "Training")
        if "PrivateTest" in present:
            test = np.flatnonzero(usage == "PrivateTest")
            if "PublicTest" in present:
                return Splits(
                    train,
                    np.flatnonzero(usage == "PublicTest"),
                    test,
                    "FER2013 standard: train on Training, select on PublicTest, report on PrivateTest",
                )
            train, val = _stratified(data, train, val_fraction, seed, "Training")
            return Splits(
                train,
                val,
                test,
                f"no PublicTest split: selecting on a stratified {val_fraction:.0%} of "
                "Training, reporting on PrivateTest",
            )
        if "PublicTest" in present:
            train, val = _stratified(data, train, val_fraction, seed, "Training")
            return Splits(
                train,
                val,
                np.flatnonzero(usage == "PublicTest"),
                f"no PrivateTest split: selecting on a stratified {val_fraction:.0%} of Training, "
                "reporting on PublicTest",
            )
        raise ValueError(f"{data.source}: has a Training split but no PublicTest or PrivateTest to test on")
    if present:
        raise ValueError(f"{data.source}: Usage column has {list(present)} but no Training rows")
    everything = np.arange(len(data))
    rest, test = _stratified(data, everything, test_fraction, seed, "the dataset")
    train, val = _stratified(data, rest, val_fraction / (1.0 - test_fraction), seed + 1, "the dataset")
    return Splits(
        train,
        val,
        test,
        f"no Usage column: deterministic stratified split (seed {seed}), "
        f"{1 - val_fraction - test_fraction:.0%} train / {val_fraction:.0%} val / {test_fraction:.0%} test",
    )


def holdout_per_class(data: FaceDataset, n_per_class: int = 100, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pasini et al.'s test set: ``n_per_class`` random faces of every class; returns ``(rest, test)``.

    A class with no more than ``n_per_class`` faces is an error (nothing would be left to train on).
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    labels = data.labels.numpy()
    counts = np.bincount(labels, minlength=len(data.classes))
    short = [f"{name!r} ({count})" for name, count in zip(data.classes, counts, strict=True) if count <= n_per_class]
    if short:
        raise ValueError(
            f"cannot hold out {n_per_class} images per class and still train on every class; "
            f"too few images in class {', '.join(short)}"
        )
    rng = np.random.default_rng(seed)
    test = [rng.choice(np.flatnonzero(labels == k), size=n_per_class, replace=False) for k in range(len(counts))]
    held = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(data)), held), held
