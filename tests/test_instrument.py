"""The hardened instrument: degradations, negative controls, transfer above control, prior correction, the guard."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from feraug.core.checkpoint import file_sha256
from feraug.data import make_toy_faces
from feraug.data.augment import to_float
from feraug.data.degrade import (
    CONTROLS,
    GREY,
    KINDS,
    _away_from_controls,
    _gap,
    control_values,
    degrade_batch,
    fine_warp,
    streaks,
    warp,
)
from feraug.evaluate.instrument.controls import UNTOUCHED, above_control, control_faces, headline
from feraug.evaluate.instrument.crossfit import CrossFit, judge_config
from feraug.evaluate.instrument.judges import (
    JUDGE_SETS,
    SECOND_ARCH,
    SECOND_SETS,
    Judge,
    fit_prior_correction,
    training_signal_conflict,
)
from feraug.nets.classifiers import build_classifier


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return make_toy_faces(n=200, seed=0).images[:24]


def test_controls_are_deterministic_and_change_pixels_not_shapes(faces: torch.Tensor) -> None:
    a, b = control_faces(faces, seed=3), control_faces(faces, seed=3)
    assert list(a) == [UNTOUCHED, *CONTROLS]
    assert all(torch.equal(a[k], b[k]) for k in a)  # same faces, same seed: the same controls
    assert torch.equal(a[UNTOUCHED], faces)
    for name in CONTROLS:
        assert a[name].dtype == torch.uint8 and a[name].shape == faces.shape
        assert (a[name].float() - faces.float()).abs().mean() > 1.0, name  # every control changes the faces
    other = control_faces(faces, seed=4)
    assert not torch.equal(other["noise 12"], a["noise 12"])  # the noise comes from the seed...
    assert torch.equal(other["blur 0.8"], a["blur 0.8"])  # ... a blur has none


def test_training_degradations_replay_and_keep_away_from_the_controls(faces: torch.Tensor) -> None:
    x = to_float(faces)
    one = degrade_batch(x, 0.7, torch.Generator().manual_seed(1))
    assert torch.equal(one, degrade_batch(x, 0.7, torch.Generator().manual_seed(1)))
    assert not torch.equal(one, x) and one.abs().max() <= 1.0
    assert torch.equal(degrade_batch(x, 0.0, torch.Generator().manual_seed(1)), x)
    for kind in KINDS:
        if KINDS[kind].train is None:  # a control-only kind: never drawn in training
            continue
        lo, hi = KINDS[kind].train
        pushed = _away_from_controls(torch.linspace(lo, hi, 2001, dtype=torch.float64), kind)
        for c in control_values(kind):
            assert ((pushed - c).abs() >= _gap(c) - 1e-9).all(), (kind, c)  # no draw near any control value


def test_streaks_shift_whole_rows_and_columns_and_are_never_trained_on(faces: torch.Tensor) -> None:
    x = torch.zeros(3, 1, 12, 10)
    d = streaks(x, torch.full((3,), 12.0), torch.Generator().manual_seed(0))
    assert torch.equal(d, streaks(x, torch.full((3,), 12.0), torch.Generator().manual_seed(0)))
    # a sum of a per-row and a per-column offset: every 2x2 "interaction" vanishes
    inter = d - d[..., :1] - d[..., :1, :] + d[..., :1, :1]
    assert inter.abs().max() < 1e-6 and d.std() > 0.5 * 12 * GREY
    assert KINDS["streaks"].train is None and any(k == "streaks" for c in CONTROLS.values() for k, _ in c)
    # control-only kinds leave the training draws as they were: same stream with or without them
    x = to_float(faces)
    saved = KINDS.pop("streaks")
    try:
        without = degrade_batch(x, 0.7, torch.Generator().manual_seed(1))
    finally:
        KINDS["streaks"] = saved
    assert torch.equal(without, degrade_batch(x, 0.7, torch.Generator().manual_seed(1)))


def test_warp_control_moves_pixels_by_a_smooth_field_of_the_stated_size(faces: torch.Tensor) -> None:
    x = to_float(faces[:6])
    d = warp(x, torch.full((6,), 2.0), torch.Generator().manual_seed(0))
    assert torch.equal(d, warp(x, torch.full((6,), 2.0), torch.Generator().manual_seed(0)))
    lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    assert (d >= lo - 1e-6).all() and (d <= hi + 1e-6).all()  # pixels moved, none redrawn
    # on a horizontal ramp (0.01 per pixel) the change is 0.01 x the horizontal displacement, away from the border
    ramp = (torch.arange(48.0) * 0.01 - 0.24).view(1, 1, 1, 48).expand(64, 1, 48, 48).contiguous()
    moved = (warp(ramp, torch.full((64,), 2.0), torch.Generator().manual_seed(1)) - ramp)[..., 8:-8, 8:-8] / 0.01
    assert 1.35 < float(moved.std()) < 1.8 and float(moved.abs().max()) < 12  # bicubic: ~0.78 x sd per axis
    assert KINDS["warp"].train is None and "warp 2" in CONTROLS
    # the fine warp: one value per 4x4 pixels, rough enough to fold the face (neighbours swap places)
    f = fine_warp(ramp, torch.full((64,), 2.0), torch.Generator().manual_seed(1)) - ramp
    field = f[..., 8:-8, 8:-8] / 0.01
    assert 1.1 < float(field.std()) < 1.55  # bilinear from one value per 4x4 pixels: ~0.66 x sd per axis
    assert bool(((field[..., 1:] - field[..., :-1]) < -1).any())  # somewhere a fold: neighbours swap places
    assert KINDS["fine_warp"].train is None and "fine warp 2" in CONTROLS


def test_above_control_paired_on_a_hand_computed_case() -> None:
    hits = np.array([1, 1, 1, 0], dtype=bool)
    controls = {"a": np.array([0, 0, 1, 0], dtype=bool), "b": np.array([1, 0, 0, 0], dtype=bool),
                "c": np.array([0, 0, 0, 0], dtype=bool)}  # fmt: skip
    r = above_control(hits, controls, paired=True)
    # a and b both read 0.25: the first listed is the highest control. Differences vs a: [1, 1, 0, 0].
    assert r["control"] == "a" and r["control_rate"] == 0.25 and r["transfer"] == 0.75
    assert r["above"] == pytest.approx(0.5)
    se = math.sqrt(1 / 3) / 2  # sample sd of [1, 1, 0, 0] is sqrt(1/3); over sqrt(4)
    assert r["ci95"] == pytest.approx([0.5 - 1.959964 * se, 0.5 + 1.959964 * se], abs=1e-6)
    assert r["controls"] == {"a": 0.25, "b": 0.25, "c": 0.0}


def test_above_control_unpaired_on_a_hand_computed_case() -> None:
    hits = np.array([1] * 6 + [0] * 4, dtype=bool)  # 0.6 of 10
    r = above_control(hits, {"x": np.array([1] * 2 + [0] * 18, dtype=bool)}, paired=False)  # 0.1 of 20
    se = math.sqrt(0.6 * 0.4 / 10 + 0.1 * 0.9 / 20)
    assert r["above"] == pytest.approx(0.5) and r["ci95"] == pytest.approx([0.5 - 1.959964 * se, 0.5 + 1.959964 * se])
    with pytest.raises(ValueError, match="one face per synthetic face"):
        above_control(hits, {"x": np.zeros(20, dtype=bool)}, paired=True)


def test_headline_flags_judges_that_disagree() -> None:
    r = {"transfer": 0.5, "control": "blur 0.8", "control_rate": 0.1, "above": 0.4, "ci95": [0.3, 0.5]}
    calm = headline({"A": r, "B": {**r, "above": 0.35}}, 0.15)
    assert "judge A: transfer above control +40.0%" in calm and "FLAG" not in calm
    assert "FLAG: the judges disagree by 25%" in headline({"A": r, "B": {**r, "above": 0.15}}, 0.15)


def test_prior_correction_lets_an_under_predicted_class_be_predicted() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [500, 40, 460])
    proba = np.full((len(labels), 3), 0.05)
    proba[np.arange(len(labels)), labels] = 0.5
    proba[labels == 1, 0] = 0.6  # the rare class always loses to class 0 by a fixed margin
    proba[labels == 1, 1] = 0.35
    proba += rng.uniform(0, 0.01, proba.shape)
    proba /= proba.sum(1, keepdims=True)
    assert (proba.argmax(1) == 1).sum() == 0
    bias = fit_prior_correction(proba, labels)
    pred = (np.log(proba) + bias).argmax(1)
    assert (pred == labels).mean() == 1.0 and abs(bias.mean()) < 1e-12


def test_balanced_objective_maximises_mean_recall_and_names_an_unknown_objective() -> None:
    labels = np.repeat([0, 1], [90, 10])
    proba = np.where(np.arange(100)[:, None] % 2 == 0, [0.7, 0.3], [0.6, 0.4])  # class 1 never the argmax
    proba[90:] = [0.55, 0.45]  # ... but its faces sit closest to the boundary
    bias = fit_prior_correction(proba, labels, objective="balanced")
    pred = (np.log(proba) + bias).argmax(1)
    assert (pred[labels == 1] == 1).all() and (pred[labels == 0] == 0).all()
    with pytest.raises(ValueError, match="unknown prior-correction objective 'accuracy'"):
        fit_prior_correction(proba, labels, objective="accuracy")


def test_for_target_pins_the_false_alarm_rate_on_the_source_emotion() -> None:
    # 100 source faces (label 0) whose target margin is known: face i misses target 2 by (i + 1) / 100 in logit
    n = 100
    logit = np.zeros((n + 20, 3))
    logit[:n, 0] = np.arange(1, n + 1) / 100
    logit[n:, 2] = 1.0  # 20 target faces, clearly target
    proba = np.exp(logit) / np.exp(logit).sum(1, keepdims=True)
    labels = np.r_[np.zeros(n, np.int64), np.full(20, 2)]
    judge = Judge("A", CrossFit([build_classifier("fast", n_classes=3)], np.zeros(1, np.int64),
                                np.zeros(1, np.int64), None),
                  np.zeros(3), "FER2013", "fast", {"accuracy": 0.0, "recall": [0.0] * 3}, proba, labels)  # fmt: skip
    pinned = judge.for_target(2, 0, alpha=0.05)
    pred = (np.log(proba) + pinned.bias).argmax(1)
    assert (pred[:n] == 2).sum() == 5  # exactly alpha of the source faces called the target
    assert pinned.oof["operating_point"]["false_alarm"] == pytest.approx(0.05)
    assert pinned.bias[2] == pytest.approx(0.055)  # halfway between the 5th and 6th margin: no ties
    assert pinned.bias[[0, 1]].tolist() == [0.0, 0.0]
    assert pinned.oof["recall"][2] == 1.0
    assert judge.for_target(2, 2) is judge and judge.for_target(2, 1) is judge  # no source faces: unchanged
    assert replace(judge, oof_proba=None).for_target(2, 0).bias.tolist() == [0.0, 0.0, 0.0]
    tied = replace(judge, oof_proba=np.tile(proba[:1], (n + 20, 1)))  # every source face at the same margin
    assert tied.for_target(2, 0, alpha=0.05).oof["operating_point"]["false_alarm"] == 0.0  # a tie is not split
    with pytest.raises(ValueError, match="false-alarm rate must be in"):
        judge.for_target(2, 0, alpha=1.0)


def test_judges_train_the_cpu_classifier_recipe_without_class_weights() -> None:
    a = judge_config(JUDGE_SETS)
    assert (a.preset, a.arch, a.arch_kwargs["work_size"], a.ema) == ("classifier-fast-cpu", "fast", 40, 0.998)
    assert a.epochs == 36
    assert a.steps_per_epoch is None and not a.tta  # full passes over the fold; judges score many sets
    assert a.class_weights == "none" and a.augmentation.degrade_p == 0.5
    b = judge_config((*JUDGE_SETS, *SECOND_SETS, f"arch={SECOND_ARCH}"))
    assert (b.arch, b.arch_kwargs, b.epochs, b.ema) == ("resnet", {}, 24, 0.998)  # the fast net's arguments dropped


def test_a_judge_that_trained_the_generator_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "judge"
    ckpt = folder / "fold0" / "checkpoints" / "best.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"weights of judge A, model 0")
    judge = Judge("A", CrossFit([build_classifier("fast")], np.zeros(1, np.int64), np.zeros(1, np.int64), folder),
                  np.zeros(7), "FER2013", "fast")  # fmt: skip
    run = tmp_path / "gan"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"perceptual": {"path": "/elsewhere/phi.pt", "sha256": "0" * 64}}))
    assert training_signal_conflict([judge], [run]) is None
    (run / "meta.json").write_text(json.dumps({"perceptual": {"path": "/elsewhere/phi.pt",
                                                              "sha256": file_sha256(ckpt)}}))  # fmt: skip
    assert "is the classifier generator run" in training_signal_conflict([judge], [run])
    (run / "meta.json").write_text(json.dumps({"perceptual": {"path": str(ckpt.parent), "sha256": "1" * 64}}))
    assert "a loss is never the judge of its own generator" in training_signal_conflict([judge], [run])


def test_resnet_judge_has_the_classifier_interface() -> None:
    net = build_classifier("resnet")
    x = torch.zeros(3, 1, 48, 48)
    assert net(x).shape == (3, 7) and net.features(x).shape == (3, net.feature_dim)
    assert net.arch["name"] == "resnet"
