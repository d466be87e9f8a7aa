"""The built-in toy faces: deterministic, FER2013-balanced, learnable but not trivial, and with exact ground-truth
expression pairs (same identity and nuisance, different expression)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import feraug.data.toy_drawing as toy_drawing
import feraug.data.toy_params as toy_params
from feraug.data.classes import EMOTIONS
from feraug.data.dataset import SPLITS, FaceDataset
from feraug.data.toy import FER2013_PROPORTIONS, ToyFaceGenerator, make_toy_faces, render_pairs
from feraug.data.toy_drawing import expression_mask
from feraug.data.toy_params import ToyIdentity


@pytest.fixture(scope="module")
def faces() -> FaceDataset:
    return make_toy_faces(3000, seed=0)


def test_dataset_contract(faces: FaceDataset) -> None:
    assert faces.images.dtype == torch.uint8 and tuple(faces.images.shape) == (3000, 48, 48)
    assert faces.labels.dtype == torch.int64
    assert faces.rows.tolist() == list(range(3000))
    assert faces.classes == EMOTIONS and faces.source == "toy(n=3000, seed=0)"
    assert faces.splits == SPLITS
    # Faces are not blank and use a good part of the gray range.
    per_face_std = faces.images.float().std(dim=(1, 2))
    assert per_face_std.min() > 8
    # Each face is its own identity: no two images are equal.
    flat = faces.images.reshape(len(faces), -1)
    assert len(torch.unique(flat, dim=0)) == len(faces)


def test_deterministic_per_seed() -> None:
    a, b, c = make_toy_faces(140, seed=4), make_toy_faces(140, seed=4), make_toy_faces(140, seed=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.usage.tolist() == b.usage.tolist()
    assert not torch.equal(a.images, c.images)
    g1, g2 = ToyFaceGenerator(seed=9), ToyFaceGenerator(seed=9)
    first, again = g1.sample_identities(5), g2.sample_identities(5)
    assert all(np.array_equal(getattr(first, k), getattr(again, k)) for k in toy_params.IDENTITY_RANGES)
    assert not np.array_equal(g1.sample_identities(5).face_w, first.face_w)  # the stream moves on


def test_class_counts_follow_fer2013(faces: FaceDataset) -> None:
    assert len(FER2013_PROPORTIONS) == 7 and abs(sum(FER2013_PROPORTIONS) - 1) < 1e-12
    counts = faces.class_counts()
    assert counts.sum() == 3000
    assert EMOTIONS[int(np.argmax(counts))] == "Happy" and EMOTIONS[int(np.argmin(counts))] == "Disgust"
    assert np.abs(counts - np.array(FER2013_PROPORTIONS) * 3000).max() < 1  # largest-remainder rounding


def test_custom_weights_and_minimum_per_class() -> None:
    assert make_toy_faces(700, class_weights=[1.0] * 7).class_counts().tolist() == [100] * 7
    small = make_toy_faces(70, seed=1).class_counts()
    assert small.sum() == 70 and small.min() >= 5
    zero = make_toy_faces(140, class_weights=[0, 1, 1, 1, 1, 1, 1]).class_counts()
    assert zero.sum() == 140 and zero[0] >= 5


def test_splits_are_stratified(faces: FaceDataset) -> None:
    labels = faces.labels.numpy()
    for c in range(7):
        usage = faces.usage[labels == c]
        share = np.array([np.mean(usage == s) for s in SPLITS])
        assert np.abs(share * len(usage) - np.array([0.8, 0.1, 0.1]) * len(usage)).max() < 1
    custom = make_toy_faces(700, seed=2, split_fractions=(0.5, 0.3, 0.2))
    got = np.array([np.mean(custom.usage == s) for s in SPLITS])
    assert np.allclose(got, [0.5, 0.3, 0.2], atol=0.02)


def _ridge_accuracy(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor) -> float:
    """Accuracy of a one-vs-rest ridge classifier on standardized features (closed form, no extra dependency)."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    targets = torch.nn.functional.one_hot(y_train, 7).double() * 2 - 1
    bias = targets.mean(0)
    w = torch.linalg.solve(a.T @ a + 100.0 * torch.eye(a.shape[1], dtype=a.dtype), a.T @ (targets - bias))
    return float(((b @ w + bias).argmax(1) == y_test).double().mean())


def test_learnable_but_not_trivial(faces: FaceDataset) -> None:
    # A linear classifier on 24x24 pixels, 2000 faces to train, 1000 to test: far above chance, far below perfect.
    x = torch.nn.functional.avg_pool2d(faces.images[:, None].double() / 255, 2).reshape(len(faces), -1)
    y = faces.labels
    acc = _ridge_accuracy(x[:2000], y[:2000], x[2000:], y[2000:])
    majority = float(torch.bincount(y[2000:]).max()) / 1000
    assert acc > 0.6 and acc > majority + 0.3, f"accuracy {acc:.3f} (majority {majority:.3f})"
    assert acc < 0.99, f"accuracy {acc:.3f}: the toy task became trivially separable"


@pytest.mark.parametrize("target", [e for e in EMOTIONS if e != "Neutral"])
def test_pairs_differ_only_in_expression_regions(target: str) -> None:
    src, tgt = render_pairs(150, "neutral", target, seed=2)
    assert src.shape == tgt.shape == (150, 48, 48) and src.dtype == tgt.dtype == torch.uint8
    energy = (src.float() - tgt.float()) ** 2
    assert (energy.sum(dim=(1, 2)) > 0).all(), "every identity must change expression"
    mask = torch.from_numpy(expression_mask(48))
    share = float(energy[:, mask].sum() / energy.sum())
    assert share >= 0.8, f"only {share:.3f} of the neutral->{target} difference lies in the expression regions"


def test_expression_mask_is_a_region_not_the_image() -> None:
    mask = expression_mask(48)
    assert mask.dtype == bool and mask.shape == (48, 48)
    assert 0.15 < mask.mean() < 0.5
    assert not mask[:4].any() and not mask[:, :4].any() and not mask[:, -4:].any()  # hair/background corners
    assert expression_mask(96).shape == (96, 96)


def test_same_identity_nuisance_and_label_render_identically() -> None:
    g = ToyFaceGenerator(seed=3)
    ident = g.sample_identities(49)
    labels = torch.arange(49) % 7
    a = g.render(ident, labels, nuisance_seed=11)
    assert torch.equal(a, g.render(ident, labels.numpy(), nuisance_seed=11))
    assert torch.equal(a, g.render(ident, [EMOTIONS[i].lower() for i in labels.tolist()], nuisance_seed=11))
    assert not torch.equal(a, g.render(ident, labels, nuisance_seed=12))
    same_src, same_tgt = render_pairs(20, "happy", 3, seed=1)
    assert torch.equal(same_src, same_tgt)
    # Intensity 0 is the neutral face, whatever the label.
    zero = np.zeros(49, dtype=np.float32)
    assert torch.equal(g.render(ident, labels, intensity=zero, nuisance_seed=5),
                       g.render(ident, "neutral", intensity=zero, nuisance_seed=5))  # fmt: skip


def test_render_windows_never_clip_features(monkeypatch: pytest.MonkeyPatch) -> None:
    # Features are drawn only inside fixed windows (for speed); at the strongest allowed intensity, drawing them over
    # the whole image must give the same picture.
    g = ToyFaceGenerator(seed=7)
    ident = g.sample_identities(700)
    labels = np.arange(700) % 7
    for intensity in (toy_params.INTENSITY_CAP, 0.0):
        windowed = g.render(ident, labels, intensity=intensity, nuisance_seed=1)
        with monkeypatch.context() as m:
            m.setattr(toy_drawing, "render_windows", lambda size: dict.fromkeys(("ears", "eyes", "nose", "mouth"),
                                                                          (0, size, 0, size)))  # fmt: skip
            full = g.render(ident, labels, intensity=intensity, nuisance_seed=1)
        assert (windowed.int() - full.int()).abs().max() <= 1


def test_other_sizes_and_identity_helpers() -> None:
    for size in (32, 64):
        ds = make_toy_faces(14, seed=1, size=size)
        assert tuple(ds.images.shape) == (14, size, size) and ds.size == size
        assert ds.images.float().std() > 8
    mean = ToyIdentity.mean(3)
    assert len(mean) == 3 and len(mean.subset([0, 2])) == 2
    assert ToyFaceGenerator(size=40).render(mean, "surprise", nuisance_seed=0).shape == (3, 40, 40)


def test_render_leaves_torch_threads_alone() -> None:
    before = torch.get_num_threads()
    make_toy_faces(14)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: make_toy_faces(6), "6"),
        (lambda: make_toy_faces(100, class_weights=[1.0] * 6), "got 6"),
        (lambda: make_toy_faces(100, class_weights=[1, 1, -1, 1, 1, 1, 1]), "-1"),
        (lambda: make_toy_faces(100, class_weights=[0.0] * 7), "not all zero"),
        (lambda: make_toy_faces(100, split_fractions=(0.5, 0.5, 0.5)), "(0.5, 0.5, 0.5)"),
        (lambda: make_toy_faces(100, split_fractions=(1.2, -0.1, -0.1)), "-0.1"),
        (lambda: make_toy_faces(100, size=8), "8"),
        (lambda: render_pairs(0, "neutral", "happy"), "0"),
        (lambda: render_pairs(5, "neutral", "grumpy"), "grumpy"),
        (lambda: render_pairs(5, 9, "happy"), "9"),
        (lambda: ToyFaceGenerator().sample_identities(-2), "-2"),
        (lambda: ToyFaceGenerator(size=12), "12"),
        (lambda: ToyFaceGenerator().render(ToyIdentity.mean(2), [0, 7]), "7"),
        (lambda: ToyFaceGenerator().render(ToyIdentity.mean(2), [0, 1, 2]), "[2]"),
        (lambda: ToyFaceGenerator().render(ToyIdentity.mean(2), 0, intensity=-0.5), "-0.5"),
        (lambda: ToyFaceGenerator().render(ToyIdentity.mean(2), 0, intensity=[1.0, 1.0, 1.0]), "[2]"),
    ],
)
def test_bad_arguments_name_the_value(call: object, needle: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        call()  # type: ignore[operator]
    assert needle in str(info.value), str(info.value)
