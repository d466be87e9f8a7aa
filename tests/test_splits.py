"""Splits: FER2013 Usage protocol (with and without PrivateTest), stratified fallback, Pasini et al.'s hold-out."""

from __future__ import annotations

import numpy as np
import pytest

from feraug.data import FaceDataset, holdout_per_class, make_toy_faces, standard_splits


def assert_partition(n: int, *parts: np.ndarray) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == len(set(joined.tolist())), "a face is in two splits"
    assert set(joined.tolist()) <= set(range(n))


def test_usage_with_private_test_is_the_standard_protocol(toy: FaceDataset) -> None:
    s = standard_splits(toy)
    assert (toy.usage[s.train] == "Training").all()
    assert (toy.usage[s.val] == "PublicTest").all()
    assert (toy.usage[s.test] == "PrivateTest").all()
    assert "report on PrivateTest" in s.note
    assert_partition(len(toy), s.train, s.val, s.test)


def test_without_private_test_reports_on_public_and_says_so(toy: FaceDataset) -> None:
    data = toy.subset(np.flatnonzero(toy.usage != "PrivateTest"))
    s = standard_splits(data, val_fraction=0.2, seed=1)
    assert (data.usage[s.test] == "PublicTest").all()
    assert (data.usage[s.train] == "Training").all() and (data.usage[s.val] == "Training").all()
    assert "no PrivateTest split" in s.note and "reporting on PublicTest" in s.note
    n_training = int((data.usage == "Training").sum())
    assert abs(len(s.val) - 0.2 * n_training) <= 7
    assert_partition(len(data), s.train, s.val, s.test)
    assert np.array_equal(standard_splits(data, val_fraction=0.2, seed=1).val, s.val)  # deterministic


def test_no_usage_gives_deterministic_stratified_split() -> None:
    data = make_toy_faces(n=1400, seed=5, class_weights=[1.0] * 7)
    data = type(data)(data.images, data.labels, np.full(len(data), ""), data.rows)
    s = standard_splits(data, val_fraction=0.1, test_fraction=0.2, seed=4)
    assert_partition(len(data), s.train, s.val, s.test)
    assert len(s.train) + len(s.val) + len(s.test) == len(data)
    test_counts = data.subset(s.test).class_counts()
    assert test_counts.min() >= 39 and test_counts.max() <= 41  # stratified: 20% of 200 per class
    assert np.array_equal(standard_splits(data, val_fraction=0.1, test_fraction=0.2, seed=4).test, s.test)
    assert not np.array_equal(standard_splits(data, val_fraction=0.1, test_fraction=0.2, seed=5).test, s.test)


def test_holdout_per_class(toy: FaceDataset) -> None:
    rest, test = holdout_per_class(toy, 5, seed=0)
    assert toy.subset(test).class_counts().tolist() == [5] * 7
    assert_partition(len(toy), rest, test)
    assert len(rest) + len(test) == len(toy)


def test_holdout_larger_than_a_class_names_it(toy: FaceDataset) -> None:
    n_disgust = int(toy.class_counts()[1])
    with pytest.raises(ValueError, match=rf"cannot hold out 20 .* too few images in class 'Disgust' \({n_disgust}\)$"):
        holdout_per_class(toy, 20)


def test_too_small_class_to_stratify_is_named(toy: FaceDataset) -> None:
    labels = toy.labels.numpy()
    keep = np.concatenate([np.flatnonzero(labels != 1), np.flatnonzero(labels == 1)[:1]])
    data = toy.subset(keep)
    data = type(data)(data.images, data.labels, np.full(len(data), ""), data.rows)
    with pytest.raises(ValueError, match=r"class 'Disgust' has 1 image\(s\)"):
        standard_splits(data)
