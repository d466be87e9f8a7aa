"""The synthetic-set instrument: KID/FID against hand-computed cases, out-of-fold judging, the quality CLI."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from feraug.cli import main
from feraug.data.dataset import FaceDataset
from feraug.data.degrade import CONTROLS
from feraug.evaluate.instrument import crossfit
from feraug.evaluate.instrument.crossfit import CrossFit, cross_fit, judge_config, stratified_folds
from feraug.evaluate.instrument.judges import build_judges
from feraug.evaluate.instrument.quality import fid, kid, mean_pairwise_distance, measure_quality, nearest_distance

TINY_JUDGE = ["epochs=1", "steps_per_epoch=4", "batch_size=32", "arch_kwargs={stem: 4, fc: 16}"]
TINY_SECOND = ("arch_kwargs={stem: 4, widths: [8, 8, 8]}",)


def test_fid_matches_a_hand_computed_two_dimensional_case() -> None:
    # real: (±1, 0), (0, ±1): mean 0, unbiased covariance (2/3) I. fake = 2 real + (3, 4): mean (3, 4),
    # covariance (8/3) I. FID = |(3,4)|² + Σ_i (√(2/3) − √(8/3))² = 25 + 2 · (2/3) · (1 − 2)² = 25 + 4/3.
    real = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    fake = 2 * real + np.array([3.0, 4.0])
    assert fid(real, fake) == pytest.approx(25 + 4 / 3, rel=1e-9)
    assert fid(real, real) == pytest.approx(0.0, abs=1e-9)


def test_kid_is_centred_on_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(0)
    same = [kid(rng.normal(size=(150, 8)), rng.normal(size=(150, 8)), subsets=20, seed=i)[0] for i in range(20)]
    # Unbiased: the mean over independent pairs lies within 3 standard errors of 0.
    assert abs(np.mean(same)) < 3 * np.std(same, ddof=1) / np.sqrt(len(same))
    assert min(same) < 0 < max(same)  # an unbiased estimator of 0 goes negative too
    x = rng.normal(size=(150, 8))
    # Against itself: far below a real difference, and exactly the hand-computed unbiased MMD² with
    # k(a, b) = (a·b / d + 1)³ when each subset is the whole set: the cross term keeps the diagonal.
    gram = (x @ x.T / 8 + 1) ** 3
    off, diag, m = gram.sum() - np.trace(gram), np.trace(gram), len(x)
    assert kid(x, x, subsets=3, subset_size=m)[0] == pytest.approx(2 * off / (m * (m - 1)) - 2 * (off + diag) / m**2)
    shifted = kid(rng.normal(size=(150, 8)), rng.normal(size=(150, 8)) + 0.5, subsets=20)[0]
    assert shifted > 10 * np.std(same, ddof=1)


def test_kid_is_deterministic_and_leaves_the_global_random_state_alone() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(120, 4)), rng.normal(size=(130, 4))
    torch.manual_seed(5)
    before = torch.get_rng_state()
    assert kid(a, b, seed=3) == kid(a, b, seed=3)
    assert torch.equal(before, torch.get_rng_state())


def test_distance_helpers_on_hand_computed_points() -> None:
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    # pairwise distances 5, 1, √18: the mean over ordered pairs equals the mean over unordered ones
    assert mean_pairwise_distance(pts) == pytest.approx((5 + 1 + np.sqrt(18)) / 3)
    assert nearest_distance(pts, pts).tolist() == [0.0, 0.0, 0.0]
    assert nearest_distance(pts, pts, exclude=np.array([0, 1, 2])).tolist() == pytest.approx([1.0, np.sqrt(18), 1.0])


def test_stratified_folds_spread_every_class_and_name_a_class_too_small() -> None:
    labels = np.array([0] * 10 + [1] * 4)
    folds = stratified_folds(labels, 2, seed=0)
    assert np.bincount(folds[labels == 1]).tolist() == [2, 2]
    with pytest.raises(ValueError, match=r"class label\(s\) \[1\] have \[4\]"):
        stratified_folds(labels, 5, seed=0)


def test_out_of_fold_scores_never_come_from_a_model_that_trained_on_the_face(toy: FaceDataset,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: each fake model records its training rows and stamps its index into the probabilities."""
    trained_on: list[set[int]] = []

    def fake_train(cfg, train, val, run_dir, **kwargs):
        trained_on.append({int(r) for r in train.rows})
        return SimpleNamespace(net=SimpleNamespace(index=len(trained_on) - 1, n_classes=7))

    def fake_proba(net, images, tta=False):
        out = np.zeros((images.shape[0], 7), dtype=np.float32)
        out[:, net.index] = 1.0
        return out

    monkeypatch.setattr(crossfit, "train_classifier", fake_train)
    monkeypatch.setattr(crossfit, "predict_proba", fake_proba)
    pool = toy.subset(np.arange(300))
    cf = cross_fit(pool, judge_config(), k=3, cache_dir=None, progress=False)
    proba = cf.out_of_fold_proba(pool.images, cf.fold_of_rows(pool.rows))
    scorer = proba.argmax(1)
    assert sorted(set(scorer.tolist())) == [0, 1, 2]
    for row, model in zip(pool.rows.tolist(), scorer.tolist(), strict=True):
        assert row not in trained_on[model]
    assert all(len(t) == 200 for t in trained_on)  # each model trained on the other two folds
    outside = cf.out_of_fold_proba(pool.images[:2], np.array([-1, -1]))  # no model saw these: all three average
    assert outside[0, :3].tolist() == pytest.approx([1 / 3] * 3)


def test_cross_fit_is_cached_and_reloads_the_same_models(toy: FaceDataset, tmp_path: Path) -> None:
    pool = toy.subset(np.arange(400))
    cfg = judge_config(TINY_JUDGE)
    lines: list[str] = []
    first = cross_fit(pool, cfg, k=2, cache_dir=tmp_path, progress=False, log=lines.append)
    second = cross_fit(pool, cfg, k=2, cache_dir=tmp_path, progress=False, log=lines.append)
    assert [line.split(":")[1].split()[0] for line in lines] == ["training", "training", "loaded", "loaded"]
    folds = first.fold_of_rows(pool.rows)
    assert np.array_equal(first.out_of_fold_proba(pool.images, folds), second.out_of_fold_proba(pool.images, folds))


def test_fold_of_rows_maps_rows_and_marks_strangers() -> None:
    cf = CrossFit([], np.array([1, 0, 1]), np.array([10, 30, 20]), None)
    assert cf.fold_of_rows(np.array([20, 10, 99, 30])).tolist() == [1, 1, -1, 0]


def test_quality_puts_an_untranslated_set_at_the_floor(toy: FaceDataset, tmp_path: Path) -> None:
    """Handing the instrument the source faces themselves must read as 'nothing translated'."""
    pool = toy.split("Training") if "Training" in toy.splits else toy
    judges = build_judges(pool, k=2, sets=tuple(TINY_JUDGE), second_sets=TINY_SECOND, cache_dir=None,
                          progress=False)
    neutral = np.flatnonzero(pool.labels.numpy() == 6)[:40]
    syn = FaceDataset(pool.images[torch.from_numpy(neutral)], torch.full((40,), 3), np.full(40, "Training"),
                      np.arange(40), source="copy")  # fmt: skip
    report = measure_quality(syn, pool, judges, target=3, source_rows=pool.rows[neutral], out_dir=tmp_path, seed=0)
    by_set = {r["set"]: r for r in report.rows}
    assert by_set["synthetic"]["ssim_to_source"] == pytest.approx(1.0)
    # Its own sources, judged by the same out-of-fold models, read exactly as the unchanged "translations":
    # the untouched control; so no set of copies is ever above control.
    own = by_set["control: untouched"]
    for j in ("A", "B"):
        assert own[f"transfer_{j}"] == by_set["synthetic"][f"transfer_{j}"]
        assert report.info["above_control"][j]["above"] <= 0.0
    assert own["p_target"] == by_set["synthetic"]["p_target"]
    assert by_set["synthetic"]["l1_to_source"] == 0.0
    assert by_set["control: blur 1 + noise 12"]["l1_to_source"] > 5  # the controls did change the pixels
    assert by_set["real target (held out)"]["ssim_to_source"] < 0.9  # unrelated faces
    assert report.info["source"] == "Neutral" and report.info["target"] == "Happy"
    saved = json.loads((tmp_path / "quality.json").read_text())
    assert [r["set"] for r in saved["rows"]] == [r["set"] for r in report.rows]
    assert len(saved["per_face"]["p_target"]) == 40
    for name in ("grid_p_target.png", "grid_ssim_to_source.png", "grid_nn_pixel.png", "quality.md"):
        assert (tmp_path / name).is_file()


def test_quality_cli_on_a_translated_toy_set(tmp_path: Path) -> None:
    runner = CliRunner()
    gan = tmp_path / "gan"
    r = runner.invoke(main, ["train", "cyclegan", "--data", "toy:900", "--source", "neutral", "--target", "happy",
                             "--set", "net.ngf=8", "--set", "net.n_blocks=1", "--epochs", "1", "--epochs-decay", "0",
                             "--steps-per-epoch", "2", "--out", str(gan), "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    syn = tmp_path / "syn.csv"
    r = runner.invoke(main, ["translate", "--run", str(gan), "--n", "30", "--from", "neutral", "--out", str(syn)])
    assert r.exit_code == 0, r.output
    args = ["quality", "--synthetic", str(syn), "--judge-cache", str(tmp_path / "jc"), "--quiet"]
    for s in TINY_JUDGE:
        args += ["--judge-set", s]
    r = runner.invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "Neutral -> Happy: 30 synthetic faces" in r.output
    assert "real source (untranslated)" in r.output and "control: blur 1 + noise 12" in r.output
    assert "judge A: transfer above control" in r.output and "judge B: transfer above control" in r.output
    md = (tmp_path / "syn.quality" / "quality.md").read_text()
    assert md.splitlines()[2].startswith("Transfer above control") and "out of fold accuracy" in md
    r = runner.invoke(main, [*args, "--target", "disgusted-ish"])
    assert r.exit_code != 0 and "unknown emotion 'disgusted-ish'" in r.output


def test_memorization_shows_a_generator_that_copies_its_training_faces(toy: FaceDataset, tmp_path: Path) -> None:
    """A 'sampled' set that is a copy of training Happy faces reads 0; real held-out faces do not."""
    pool = toy.split("Training") if "Training" in toy.splits else toy
    judges = build_judges(pool, k=2, sets=tuple(TINY_JUDGE), second_sets=TINY_SECOND, cache_dir=None,
                          progress=False)
    happy = np.flatnonzero(pool.labels.numpy() == 3)[:30]
    copies = FaceDataset(pool.images[torch.from_numpy(happy)], torch.full((30,), 3), np.full(30, "Training"),
                         np.arange(30), source="copies")  # fmt: skip
    generator_rows = pool.rows[pool.labels.numpy() == 3]  # it "trained" on the Happy faces
    report = measure_quality(copies, pool, judges, target=3, out_dir=tmp_path, seed=0, generator_rows=generator_rows)
    assert set(report.info["above_control"]["A"]["controls"]) == {"untouched", *CONTROLS}  # real faces, degraded
    m = report.info["memorization"]
    assert m["reference_faces"] == len(generator_rows)
    assert m["synthetic_pixel"]["median"] == 0.0 and m["real_pixel"]["min"] > 1.0  # a real face is nobody's copy
    assert (tmp_path / "memorization.png").is_file() and (tmp_path / "closest_pairs.png").is_file()
    assert "Memorization: distance to the nearest of the generator's" in (tmp_path / "quality.md").read_text()
