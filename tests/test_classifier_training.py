"""Classifier training and inference on tiny nets and toy faces: learning, exact resume, checkpoints,
the divergence guard, augmentation, TTA and the two CLI commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from click.testing import CliRunner

import feraug.train.classifier_run as classifier_run
from feraug.cli import main
from feraug.config import ClassifierConfig
from feraug.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from feraug.data import FaceDataset, make_toy_faces, standard_splits
from feraug.data.augment import classifier_augment, ten_crop, to_float
from feraug.evaluate.classifier import evaluate_classifier, load_classifier, predict_proba, train_classifier
from feraug.train.classifier_run import ClassifierRun, lr_factor
from feraug.train.run_folder import TrainingDivergedError, best_checkpoint, last_checkpoint

SIZE = 32  # toy faces at 32x32 keep every run in this file to seconds
TINY: dict[str, Any] = {"arch": "vgg", "arch_kwargs": {"width": 0.125, "fc": 64}, "size": SIZE, "device": "cpu",
                        "batch_size": 32}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny convolutions are dominated by thread hand-offs, and on a busy machine 2 threads run 10x slower.

    Module-scoped (and requested by the module fixtures) so it is in force before they train.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def splits(_one_thread: None) -> tuple[FaceDataset, FaceDataset, FaceDataset]:
    ds = make_toy_faces(n=500, seed=0, size=SIZE)
    return standard_splits(ds).datasets(ds)


def config(**kwargs: Any) -> ClassifierConfig:
    return ClassifierConfig(**{**TINY, **kwargs})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, splits) -> ClassifierRun:
    """8 short epochs without augmentation: enough for the tiny VGG to beat chance clearly."""
    train, val, _ = splits
    cfg = config(epochs=8, lr=1e-3, schedule="constant", augment=False, log_every=5)
    return train_classifier(cfg, train, val, tmp_path_factory.mktemp("run") / "tiny", progress=False)


def test_tiny_training_beats_chance(trained: ClassifierRun, splits) -> None:
    _, val, _ = splits
    majority = np.bincount(val.labels.numpy()).max() / len(val)
    best = trained.history[trained.best_epoch - 1]
    assert best["val_macro_f1"] == trained.best_score == max(h["val_macro_f1"] for h in trained.history)
    assert trained.best_score > 0.2, trained.history  # majority-class guessing scores 1/7 * 2 * 0.25 / 1.25 ≈ 0.06
    assert best["val_accuracy"] > majority + 0.05, (best, majority)
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
    assert not trained.net.training and next(trained.net.parameters()).device.type == "cpu"

    run = trained.run_dir
    assert run is not None and (run / "config.yaml").is_file() and json.loads((run / "meta.json").read_text())
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in log if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == list(range(1, 9)) and epochs == trained.history
    assert {"train_loss", "val_macro_f1", "val_accuracy", "lr", "img_per_s"} <= epochs[0].keys()
    assert any(r["kind"] == "step" and "loss" in r for r in log)
    last = load_checkpoint(last_checkpoint(run), family="classifier")
    assert last["epoch"] == 8 and last["best_epoch"] == trained.best_epoch and last["arch"]["name"] == "vgg"
    assert {"optimizer", "scheduler", "config", "weights"} <= last.keys()


def test_load_classifier_reproduces_predictions(trained: ClassifierRun, splits) -> None:
    _, _, test = splits
    expected = predict_proba(trained.net, test)
    assert trained.run_dir is not None
    for path in (trained.run_dir, best_checkpoint(trained.run_dir)):
        net, info = load_classifier(path)
        assert np.array_equal(predict_proba(net, test), expected)
        assert info["epoch"] == trained.best_epoch and info["score"] == trained.best_score
        assert info["metrics"]["macro_f1"] == trained.best_score and "weights" not in info


def test_evaluate_writes_json_and_plots(trained: ClassifierRun, splits, tmp_path: Path) -> None:
    _, _, test = splits
    metrics = evaluate_classifier(trained.net, test, out_dir=tmp_path, name="test")
    saved = json.loads((tmp_path / "test_metrics.json").read_text())
    assert saved["accuracy"] == metrics["accuracy"] and saved["n"] == len(test) and saved["tta"] is False
    assert (tmp_path / "test_confusion.png").stat().st_size > 0 and (tmp_path / "test_per_class.png").is_file()


def test_tta_probabilities(trained: ClassifierRun, splits) -> None:
    _, _, test = splits
    plain = predict_proba(trained.net, test)
    tta = predict_proba(trained.net, test, tta=True, batch_size=40)  # 4 faces x 10 views per pass
    assert tta.shape == plain.shape == (len(test), 7)
    np.testing.assert_allclose(tta.sum(1), 1.0, atol=1e-5)
    assert not np.allclose(tta, plain)
    as_float = predict_proba(trained.net, to_float(test.images), tta=True)  # generator-style input
    np.testing.assert_allclose(as_float, tta, atol=1e-6)


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_after_interruption_is_bitwise_exact(tmp_path: Path, splits, monkeypatch: pytest.MonkeyPatch,
                                                    ema: float) -> None:  # fmt: skip
    """Cosine schedule, augmentation, dropout and val selection: 2 epochs straight == 1, crash, resume.

    Bitwise: the same process and thread count (1, this module's fixture) redo the same work. With
    ``ema`` the averaged weights (what validation selects) must resume exactly too.
    """
    train, val, _ = splits
    cfg = config(epochs=2, steps_per_epoch=3, lr=3e-3, schedule="cosine", log_every=2, ema=ema)
    straight = train_classifier(cfg, train, val, tmp_path / "straight", progress=False)

    calls = {"n": 0}
    original = classifier_run.ClassifierFit._validate

    def crash_in_epoch_2(self: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(classifier_run.ClassifierFit, "_validate", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(cfg, train, val, tmp_path / "split", progress=False)
    monkeypatch.undo()
    assert load_checkpoint(last_checkpoint(tmp_path / "split"))["epoch"] == 1
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_classifier(cfg, train, val, tmp_path / "split", progress=False)
    resumed = train_classifier(cfg, train, val, tmp_path / "split", resume=True, progress=False)

    a, b = (load_checkpoint(last_checkpoint(tmp_path / name)) for name in ("straight", "split"))
    assert a["weights"].keys() == b["weights"].keys()
    different = [k for k in a["weights"] if not torch.equal(a["weights"][k], b["weights"][k])]
    assert not different, f"resumed weights differ in {different[:5]}"
    if ema:
        assert all(torch.equal(a["ema_weights"][k], b["ema_weights"][k]) for k in a["ema_weights"])
    for pid, state in a["optimizer"]["state"].items():
        assert all(torch.equal(v, b["optimizer"]["state"][pid][k]) for k, v in state.items() if torch.is_tensor(v))
    for x, y in zip(straight.net.state_dict().values(), resumed.net.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    assert [h["val_macro_f1"] for h in straight.history] == [h["val_macro_f1"] for h in resumed.history]
    log = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if r["kind"] == "epoch"] == [1, 2]  # the crashed epoch's lines are gone
    steps = [r["step"] for r in log if r["kind"] == "step"]
    assert steps == sorted(set(steps))


def test_ema_weights_are_the_ones_validated_and_kept(tmp_path: Path, splits) -> None:
    """With ``ema`` the selected weights are the average: best.pt holds last.pt's averaged weights (no val:
    the last epoch is best), they differ from the live weights, and the batch-norm statistics are averaged
    too (an average of the live net's running means, not a copy of them)."""
    train, _, _ = splits
    run = train_classifier(config(epochs=2, steps_per_epoch=4, lr=3e-3, ema=0.9), train, None, tmp_path / "r",
                           progress=False)  # fmt: skip
    last, best = load_checkpoint(last_checkpoint(tmp_path / "r")), load_checkpoint(best_checkpoint(tmp_path / "r"))
    for k, v in best["weights"].items():
        assert torch.equal(v, last["ema_weights"][k].contiguous()), k
        assert torch.equal(run.net.state_dict()[k], v), k
    floats = [k for k, v in last["weights"].items() if v.is_floating_point()]
    assert any("running_mean" in k for k in floats)
    assert all(not torch.equal(last["weights"][k], last["ema_weights"][k]) for k in floats)
    counters = [k for k in last["weights"] if k not in floats]
    assert counters and all(torch.equal(last["weights"][k], last["ema_weights"][k]) for k in counters)


def test_resume_extends_a_finished_run(tmp_path: Path, splits) -> None:
    """With a step-independent schedule, 1 epoch then resume to 2 equals 2 straight (no val: last is best).

    Bitwise for the same reason as above: same process, same thread count.
    """
    train, _, _ = splits
    sets = {"steps_per_epoch": 2, "schedule": "constant"}
    straight = train_classifier(config(epochs=2, **sets), train, None, tmp_path / "a", progress=False)
    train_classifier(config(epochs=1, **sets), train, None, tmp_path / "b", progress=False)
    resumed = train_classifier(config(epochs=2, **sets), train, None, tmp_path / "b", resume=True, progress=False)
    assert resumed.best_epoch == straight.best_epoch == 2 and np.isnan(resumed.best_score)
    for x, y in zip(straight.net.state_dict().values(), resumed.net.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_checkpoint_family_and_arch_are_checked(tmp_path: Path, trained: ClassifierRun, splits) -> None:
    gan = save_checkpoint({"family": "cyclegan", "arch": {}, "networks": {}}, tmp_path / "gan.pt")
    with pytest.raises(CheckpointError, match="'cyclegan' model, expected 'classifier'"):
        load_classifier(gan)
    with pytest.raises(FileNotFoundError, match=r"no checkpoints/best\.pt"):
        load_classifier(tmp_path)
    train, val, _ = splits
    assert trained.run_dir is not None
    other = config(arch_kwargs={"width": 0.25, "fc": 64}, epochs=9)
    with pytest.raises(CheckpointError, match="architecture differs"):
        train_classifier(other, train, val, trained.run_dir, resume=True, progress=False)
    with pytest.raises(ValueError, match="size=48"):
        train_classifier(ClassifierConfig(arch="vgg", device="cpu"), train, val, progress=False)


def test_nan_loss_stops_with_epoch_and_step(tmp_path: Path, splits, monkeypatch: pytest.MonkeyPatch) -> None:
    train, _, _ = splits
    calls = {"n": 0}

    def poisoned(x: torch.Tensor, generator: torch.Generator | None, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1  # one call per training step
        out = classifier_augment(x, generator, **kwargs)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(classifier_run, "classifier_augment", poisoned)
    cfg = config(epochs=3, steps_per_epoch=3, log_every=100)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step 1 of 3 \(global step 4\).*last.pt \(epoch 1\)"):
        train_classifier(cfg, train, None, tmp_path, progress=False)
    state = load_checkpoint(last_checkpoint(tmp_path), family="classifier")
    weights = [v for v in state["weights"].values() if v.is_floating_point()]
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in weights)


def test_sgd_label_smoothing_and_balanced_weights(tmp_path: Path, splits, monkeypatch: pytest.MonkeyPatch) -> None:
    """``optimizer=sgd`` trains with Nesterov SGD; ``label_smoothing`` and ``class_weights=balanced`` reach the loss."""
    train, _, _ = splits
    seen: list[dict[str, Any]] = []
    real = F.cross_entropy

    def spy(logits: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        seen.append(kwargs)
        return real(logits, target, **kwargs)

    monkeypatch.setattr(F, "cross_entropy", spy)
    cfg = config(epochs=1, steps_per_epoch=2, optimizer="sgd", lr=0.01, momentum=0.8, label_smoothing=0.2,
                 class_weights="balanced", augment=False)  # fmt: skip
    train_classifier(cfg, train, None, tmp_path / "run", progress=False)
    counts = np.bincount(train.labels.numpy(), minlength=7).astype(np.float64)
    expected = torch.tensor(counts.sum() / (7 * counts), dtype=torch.float32)  # sklearn's "balanced"
    assert len(seen) == 2
    for kwargs in seen:
        assert kwargs["label_smoothing"] == 0.2
        assert torch.allclose(kwargs["weight"].cpu(), expected)
    opt = load_checkpoint(last_checkpoint(tmp_path / "run"), family="classifier")["optimizer"]
    assert opt["param_groups"][0]["nesterov"] is True and opt["param_groups"][0]["momentum"] == 0.8
    assert all("momentum_buffer" in s for s in opt["state"].values()) and len(opt["state"]) > 0

    seen.clear()  # the defaults: plain cross-entropy
    train_classifier(config(epochs=1, steps_per_epoch=1, augment=False), train, None, progress=False)
    assert seen[0].get("label_smoothing", 0.0) == 0.0 and seen[0].get("weight") is None


def test_balanced_weights_of_a_missing_class_are_zero() -> None:
    data = make_toy_faces(n=70, seed=0, size=SIZE)
    data = data.subset(np.flatnonzero(data.labels.numpy() != 1))  # no Disgust
    weights = classifier_run.balanced_class_weights(data)
    counts = data.class_counts()
    assert weights[1] == 0 and torch.allclose(weights[counts > 0], torch.tensor(len(data) / (6 * counts[counts > 0]),
                                                                                dtype=torch.float32))  # fmt: skip


def test_plateau_schedule_and_early_stopping(tmp_path: Path, splits) -> None:
    """A learning rate too small to change any prediction: val macro-F1 stays flat from epoch 1 on.

    Plateau (patience 0, factor 0.5) halves the lr after the first epoch without improvement (epoch 2), so
    epoch 3 runs at half; early stopping (patience 2) ends the run after epoch 3 instead of 6.
    """
    train, val, _ = splits
    cfg = config(epochs=6, steps_per_epoch=1, lr=1e-7, weight_decay=0.0, schedule="plateau", plateau_patience=0,
                 plateau_factor=0.5, early_stopping_patience=2, augment=False)  # fmt: skip
    run = train_classifier(cfg, train, val, tmp_path / "run", progress=False)
    scores = [h["val_macro_f1"] for h in run.history]
    assert len(scores) == 3 and scores[0] == scores[1] == scores[2], scores
    assert [h["lr"] for h in run.history] == pytest.approx([1e-7, 1e-7, 5e-8], rel=1e-9)
    assert [h["stopped_early"] for h in run.history] == [False, False, True] and run.best_epoch == 1
    last = load_checkpoint(last_checkpoint(tmp_path / "run"), family="classifier")
    assert last["stopped_early"] is True and last["epoch"] == 3
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2.5e-8)  # cut again after epoch 3


def test_classifier_augment_shapes_and_determinism(splits) -> None:
    x = to_float(splits[0].images[:16])
    a = classifier_augment(x, torch.Generator().manual_seed(5))
    b = classifier_augment(x, torch.Generator().manual_seed(5))
    c = classifier_augment(x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1.0 - 1e-5 and a.max() <= 1.0 + 1e-5
    off = classifier_augment(x, None, crop_padding=0, flip=False, max_degrees=0.0, erase_p=0.0)
    assert torch.equal(off, x)
    # without rotation, the shift is exactly a crop of the replicate-padded image
    shifted = classifier_augment(x, torch.Generator().manual_seed(1), crop_padding=2, flip=False, max_degrees=0.0,
                                 erase_p=0.0)  # fmt: skip
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    crops = torch.stack([padded[..., i : i + SIZE, j : j + SIZE] for i in range(5) for j in range(5)])  # [25,N,..]
    err = (crops - shifted.unsqueeze(0)).abs().amax(dim=(2, 3, 4)).min(0).values
    assert err.max() < 1e-5 and not torch.equal(shifted, x)
    erased = classifier_augment(x, torch.Generator().manual_seed(2), crop_padding=0, flip=False, max_degrees=0.0,
                                erase_p=1.0, erase_area=(0.1, 0.1))  # fmt: skip
    frac = (erased != x).float().mean(dim=(1, 2, 3))
    assert ((frac > 0.04) & (frac <= 0.15)).all(), frac


def test_ten_crop_views() -> None:
    x = torch.rand(3, 1, 8, 8)
    views = ten_crop(x, 2)
    assert views.shape == (10, 3, 1, 8, 8)
    assert torch.equal(views[4], x) and torch.equal(views[9], x.flip(-1))
    assert torch.equal(views[0][..., 2:, 2:], x[..., :6, :6])  # top-left: the image shifted down-right


def test_lr_schedules() -> None:
    assert lr_factor("constant", 7, 10) == lr_factor("plateau", 7, 10) == 1.0
    assert lr_factor("cosine", 0, 10) == 1.0 and lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    peak = [lr_factor("onecycle", s, 100) for s in range(100)]
    assert peak[0] == pytest.approx(1 / 25) and max(peak) == pytest.approx(1.0, abs=1e-3) and peak[-1] < 1e-3


def test_cli_train_then_evaluate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "classifier", "--data", "toy:300", "--arch", "vgg", "--out", str(out), "--epochs", "1",
            "--steps-per-epoch", "2", "--batch-size", "16", "--device", "cpu", "--quiet",
            "--set", "arch_kwargs={width: 0.125, fc: 32}", "--set", "size=32"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and "split:" in result.output and "best epoch 1" in result.output
    saved = json.loads((out / "test_metrics.json").read_text())
    n_test = len(standard_splits(make_toy_faces(n=300, size=32)).test)
    assert saved["n"] == n_test and (out / "test_confusion.png").is_file() and (out / "checkpoints/best.pt").is_file()

    result = CliRunner().invoke(main, ["evaluate", "--run", str(out), "--split", "val", "--tta"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and (out / "eval" / "val_tta_metrics.json").is_file()
    assert json.loads((out / "eval" / "val_tta_metrics.json").read_text())["tta"] is True

    result = CliRunner().invoke(main, ["evaluate", "--run", str(tmp_path)])
    assert result.exit_code == 1 and "not a classifier run folder" in result.output
    result = CliRunner().invoke(main, args)  # same --out again
    assert result.exit_code == 1 and "already holds a run" in result.output
