"""Evaluation protocols: no face in two roles of a fold, Pasini et al.'s k-fold layout, TSTR/TRTS, the guard itself."""

from __future__ import annotations

import numpy as np
import pytest

from feraug.data import FaceDataset, make_toy_faces
from feraug.evaluate.experiment.protocols import (
    Fold,
    LeakageError,
    check_disjoint,
    check_fold,
    kfold_protocol,
    standard_protocol,
    synthetic_leaks,
    trts_protocol,
    tstr_protocol,
)


@pytest.fixture(scope="module")
def balanced() -> FaceDataset:
    """420 toy faces, 60 per class."""
    return make_toy_faces(n=420, seed=11, class_weights=[1.0] * 7)


def roles(fold: Fold) -> dict[str, set[int]]:
    return {"train": set(fold.train.tolist()), "val": set(fold.val.tolist()),
            **{k: set(v.tolist()) for k, v in fold.tests.items()}}  # fmt: skip


def assert_no_face_in_two_roles(fold: Fold) -> None:
    sets = roles(fold)
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not sets[a] & sets[b], f"{fold.name}: a face is in {a} and {b}"


def test_standard_protocol_uses_usage(toy: FaceDataset) -> None:
    (fold,) = standard_protocol(toy)
    assert (toy.usage[fold.train] == "Training").all()
    assert (toy.usage[fold.val] == "PublicTest").all()
    assert (toy.usage[fold.tests["test"]] == "PrivateTest").all()
    assert "report on PrivateTest" in fold.note
    assert_no_face_in_two_roles(fold)


def test_standard_protocol_without_private_test_says_so(toy: FaceDataset) -> None:
    data = toy.subset(np.flatnonzero(toy.usage != "PrivateTest"))
    (fold,) = standard_protocol(data)
    assert (data.usage[fold.tests["test"]] == "PublicTest").all()
    assert "no PrivateTest split" in fold.note
    assert_no_face_in_two_roles(fold)


def test_kfold_never_puts_a_face_in_train_and_test(balanced: FaceDataset) -> None:
    folds = kfold_protocol(balanced, n_per_class_test=10, repeats=2, folds=5, val_fraction=0.2)
    assert [f.name for f in folds] == [f"r{r}f{f}" for r in range(2) for f in range(5)]
    fixed = folds[0].tests["fixed_test"]
    assert balanced.subset(fixed).class_counts().tolist() == [10] * 7
    rest = np.setdiff1d(np.arange(len(balanced)), fixed)
    for fold in folds:
        assert_no_face_in_two_roles(fold)
        assert np.array_equal(fold.tests["fixed_test"], fixed)  # one fixed test set for every fold
        # train + val + held-out part = everything outside the fixed test set
        assert np.array_equal(np.sort(np.concatenate([fold.train, fold.val, fold.tests["heldout"]])), rest)
        assert abs(fold.val.size - 0.2 * (fold.train.size + fold.val.size)) <= 7
        assert "early-stops" in fold.note and "never on the held-out part" in fold.note
    for r in range(2):  # each repeat's held-out parts partition the rest
        held = np.concatenate([f.tests["heldout"] for f in folds[5 * r : 5 * r + 5]])
        assert np.array_equal(np.sort(held), rest)
        counts = [balanced.subset(f.tests["heldout"]).class_counts() for f in folds[5 * r : 5 * r + 5]]
        assert all(c.tolist() == [10] * 7 for c in counts)  # stratified: 50 per class / 5 folds
    # deterministic, and repeats shuffle differently
    again = kfold_protocol(balanced, n_per_class_test=10, repeats=2, folds=5, val_fraction=0.2)
    assert all(np.array_equal(a.train, b.train) for a, b in zip(folds, again, strict=True))
    assert not np.array_equal(folds[0].tests["heldout"], folds[5].tests["heldout"])


def test_kfold_rejects_classes_too_small_to_stratify(toy: FaceDataset) -> None:
    n_disgust = int(toy.class_counts()[1])
    with pytest.raises(ValueError, match=r"too few faces outside the fixed test set .* 'Disgust'"):
        kfold_protocol(toy, n_per_class_test=n_disgust - 3, folds=10)


def test_check_disjoint_catches_every_kind_of_overlap() -> None:
    a, b = np.array([0, 1, 2]), np.array([3, 4])
    check_disjoint({"train": a, "test": b}, 5)
    with pytest.raises(LeakageError, match=r"1 face.* in both train and test"):
        check_disjoint({"train": a, "test": np.array([2, 3])}, 5)
    with pytest.raises(LeakageError, match="outside"):
        check_disjoint({"train": a, "test": np.array([5])}, 5)
    with pytest.raises(LeakageError, match="repeats"):
        check_disjoint({"train": np.array([0, 0]), "test": b}, 5)
    check_disjoint({"train": np.array([0, 0]), "test": b}, 5, allow_repeats=("train",))
    with pytest.raises(LeakageError):
        check_fold(Fold(0, "bad", a, np.array([2]), {"test": b}, ""), 5)
    assert isinstance(LeakageError("x"), AssertionError)


def test_synthetic_leaks_marks_held_out_sources() -> None:
    sources = np.array([4, 9, 4, 0, 7])
    assert synthetic_leaks(sources, np.array([4, 7])).tolist() == [True, False, True, False, True]


def test_tstr_trains_on_guarded_synthetic_and_tests_on_real(toy: FaceDataset) -> None:
    (std,) = standard_protocol(toy)
    # sources: 3 training faces, 1 validation face, 1 test face
    sources = np.array([*std.train[:3], std.val[0], std.tests["test"][0]])
    (fold,) = tstr_protocol(toy, sources)
    assert fold.train.tolist() == [len(toy), len(toy) + 1, len(toy) + 2]  # the last two are dropped
    assert np.array_equal(fold.tests["test"], std.tests["test"]) and np.array_equal(fold.val, std.val)
    assert "2 dropped" in fold.note
    assert_no_face_in_two_roles(fold)


def test_trts_removes_sources_from_real_training(toy: FaceDataset) -> None:
    (std,) = standard_protocol(toy)
    sources = std.train[[0, 5, 5, 9]]
    (fold,) = trts_protocol(toy, sources)
    assert np.array_equal(fold.train, np.setdiff1d(std.train, sources))
    assert fold.tests["synthetic"].tolist() == [len(toy) + i for i in range(4)]
    assert "minus the 3 source faces" in fold.note
    assert_no_face_in_two_roles(fold)
