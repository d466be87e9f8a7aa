"""The shared trainer on tiny CycleGANs: learning, exact resume, the divergence guard, checkpoint checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from feraug.api import train_cyclegan
from feraug.config import CycleGANConfig, build_config, parse_override
from feraug.core.checkpoint import CheckpointError, load_checkpoint
from feraug.data import FaceDataset, load_fer2013_csv, make_toy_faces
from feraug.gan.losses import AdversarialLoss
from feraug.models.base import StepContext
from feraug.models.cyclegan import CycleGAN
from feraug.synth.synthetic_set import read_provenance
from feraug.synth.translate import translate
from feraug.train.run_folder import TrainingDivergedError, last_checkpoint

TINY = ["net.ngf=8", "net.n_blocks=1", "net.ndf=8", "train.log_every=2", "optim.pool_size=4"]


@pytest.fixture(scope="module")
def faces() -> FaceDataset:
    return make_toy_faces(n=400, seed=1)


def config(preset: str, *sets: str) -> CycleGANConfig:
    cfg = build_config(preset=preset, overrides=[parse_override(s) for s in (*TINY, *sets)])
    assert isinstance(cfg, CycleGANConfig)
    return cfg


def state_tensors(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(last_checkpoint(run))
    out = {}
    for group in ("networks", "ema"):
        for net, sd in state[group].items():
            out.update({f"{group}.{net}.{k}": v for k, v in sd.items()})
    for name, opt in state["optimizers"].items():
        for pid, s in opt["state"].items():
            out.update({f"opt.{name}.{pid}.{k}": v for k, v in s.items() if torch.is_tensor(v)})
    for name, pool in state["extra"]["pools"].items():
        out[f"pool.{name}"] = pool["images"]
    return out


@pytest.mark.parametrize("preset", ["cyclegan-improved", "wcyclegan"])
def test_resume_is_bitwise_exact(tmp_path: Path, faces: FaceDataset, preset: str) -> None:
    """Stopped at step 3 and resumed == straight, bit for bit.

    Bitwise is the right claim here because one process with one thread count redoes the same work in
    the same order; across thread counts, processes or machines only noise-floor bounds hold
    (see tests/test_distributed.py).
    """
    sets = ["optim.epochs=1", "optim.epochs_decay=1", "train.steps_per_epoch=3", "train.ema_decay=0.9",
            "loss.n_critic=2"]  # fmt: skip
    straight = tmp_path / "straight"
    train_cyclegan(config(preset, *sets), straight, data=faces, progress=False)

    split = tmp_path / "split"
    train_cyclegan(config(preset, *sets), split, data=faces, progress=False, stop_at=3)  # the same run, interrupted
    assert load_checkpoint(last_checkpoint(split))["step"] == 3
    with pytest.raises(ValueError, match="stop_at must be a step >= 1, got 0"):
        train_cyclegan(config(preset, *sets), split, resume=True, data=faces, progress=False, stop_at=0)
    train_cyclegan(config(preset, *sets), split, resume=True, data=faces, progress=False)

    a, b = state_tensors(straight), state_tensors(split)
    assert a.keys() == b.keys() and len(a) > 20
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    steps = [json.loads(line)["step"] for line in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # no duplicated log lines after resume


@pytest.mark.parametrize("how", ["stop", "crash"])
def test_resume_mid_epoch_is_bitwise_exact(
    tmp_path: Path, faces: FaceDataset, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Interrupted inside an epoch, resumed there: equals the uninterrupted run bitwise.

    3 steps per epoch, 6 in all (the second epoch decays the learning rate). ``stop``: ``--stop-at-step 4``
    checkpoints at step 4, one step into epoch 2. ``crash``: checkpoints every 2 steps and dies inside step 5
    like a killed process (no final save), so the resume starts from the mid-epoch checkpoint of step 4.
    Bitwise for the same reason as above: one process, one thread count.
    """
    sets = ["optim.epochs=1", "optim.epochs_decay=1", "train.steps_per_epoch=3", "train.ema_decay=0.9",
            "optim.augment=true", f"train.checkpoint_every={2 if how == 'crash' else 1000}"]  # fmt: skip
    straight = tmp_path / "straight"
    train_cyclegan(config("cyclegan-improved", *sets), straight, data=faces, progress=False)

    split = tmp_path / "split"
    if how == "stop":
        train_cyclegan(config("cyclegan-improved", *sets), split, data=faces, progress=False, stop_at=4)
    else:
        real = CycleGAN.train_step

        def killed_in_step_5(self: CycleGAN, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict:
            if ctx.step == 4:  # 0-based: the fifth step
                raise KeyboardInterrupt
            return real(self, batch, ctx)

        monkeypatch.setattr(CycleGAN, "train_step", killed_in_step_5)
        with pytest.raises(KeyboardInterrupt):
            train_cyclegan(config("cyclegan-improved", *sets), split, data=faces, progress=False)
        monkeypatch.undo()
    assert load_checkpoint(last_checkpoint(split))["step"] == 4  # mid-epoch: 4 = one step into epoch 2 of 3 steps
    train_cyclegan(config("cyclegan-improved", *sets), split, resume=True, data=faces, progress=False)

    a, b = state_tensors(straight), state_tensors(split)
    assert a.keys() == b.keys() and len(a) > 20
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    logs = [[json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()] for run in (split, straight)]
    steps = [r["step"] for r in logs[0]]
    assert steps == sorted(set(steps)) and steps[-1] == 6
    assert logs[0][-1]["lr"] == logs[1][-1]["lr"] and logs[0][-1]["G/total"] == logs[1][-1]["G/total"]


def test_cycle_loss_falls_on_toy_faces(tmp_path: Path, faces: FaceDataset) -> None:
    cfg = config("cyclegan", "optim.epochs=12", "optim.epochs_decay=0", "train.steps_per_epoch=10",
                 "optim.batch_size=4", "optim.lr_g=1e-3", "train.log_every=10")  # fmt: skip
    train_cyclegan(cfg, tmp_path, data=faces, progress=False)
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    cyc = [(r["G/cyc_A"] + r["G/cyc_B"]) / 2 for r in log]
    assert len(cyc) == 12
    assert np.mean(cyc[-3:]) < 0.75 * np.mean(cyc[:2]), cyc
    assert (tmp_path / "samples" / "epoch_012.png").is_file()
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["seed"] == 0 and "torch" in meta["versions"] and "git_revision" in meta
    assert (tmp_path / "config.yaml").read_text().startswith("preset: cyclegan\n")


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, faces: FaceDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    sets = ["optim.epochs=2", "optim.epochs_decay=0", "train.steps_per_epoch=2"]
    cfg1 = config("cyclegan", "optim.epochs=1", *sets[1:])
    train_cyclegan(cfg1, tmp_path, data=faces, progress=False)
    before = last_checkpoint(tmp_path).read_bytes()
    real = AdversarialLoss.generator
    monkeypatch.setattr(AdversarialLoss, "generator", lambda self, s: real(self, s) * float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"G/adv_A=nan.*last good checkpoint .*last\.pt \(step 2\)"):
        train_cyclegan(config("cyclegan", *sets), tmp_path, resume=True, data=faces, progress=False)
    assert last_checkpoint(tmp_path).read_bytes() == before


def test_exploding_loss_is_caught(tmp_path: Path, faces: FaceDataset) -> None:
    cfg = config("cyclegan", "optim.epochs=1", "optim.epochs_decay=0", "train.steps_per_epoch=2", "train.max_loss=1e-3")
    with pytest.raises(TrainingDivergedError, match=r"above max_loss=0\.001; no checkpoint was written yet"):
        train_cyclegan(cfg, tmp_path, data=faces, progress=False)
    assert not last_checkpoint(tmp_path).exists()


def test_checkpoint_of_another_model_is_refused(tmp_path: Path, faces: FaceDataset) -> None:
    sets = ["optim.epochs=1", "optim.epochs_decay=0", "train.steps_per_epoch=1"]
    train_cyclegan(config("cyclegan", *sets), tmp_path, data=faces, progress=False)
    with pytest.raises(CheckpointError, match=r"architecture differs in \['F', 'G'\]"):
        train_cyclegan(config("cyclegan", *sets, "net.ngf=16"), tmp_path, resume=True, data=faces, progress=False)
    with pytest.raises(CheckpointError, match="checkpoint of a 'cyclegan' model, expected 'dcgan'"):
        load_checkpoint(last_checkpoint(tmp_path), family="dcgan")
    junk = tmp_path / "junk.pt"
    torch.save({"weights": 1}, junk)
    with pytest.raises(CheckpointError, match="not a feraug checkpoint"):
        load_checkpoint(junk)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_cyclegan(config("cyclegan", *sets), tmp_path, data=faces, progress=False)


@pytest.mark.parametrize("output", ["image", "residual"])
def test_translate_writes_fer2013_rows_with_provenance(tmp_path: Path, faces: FaceDataset, output: str) -> None:
    run = tmp_path / "run"
    sets = ["optim.epochs=1", "optim.epochs_decay=0", "train.steps_per_epoch=2", "train.ema_decay=0.5",
            f"net.output={output}"]  # fmt: skip
    train_cyclegan(config("cyclegan", *sets), run, data=faces, progress=False)
    result = translate(run, 12, "neutral", tmp_path / "syn.csv.gz", seed=3, data=faces)
    assert result.direction == "neutral->happy"
    syn = load_fer2013_csv(result.csv, cache_dir=False)
    assert len(syn) == 12 and set(syn.labels.tolist()) == {3} and syn.usage.tolist() == ["Training"] * 12
    prov = read_provenance(result.provenance)
    training_neutral = faces.rows[(faces.usage == "Training") & (faces.labels.numpy() == 6)]
    assert set(prov["source_row"].tolist()) <= set(training_neutral.tolist())
    assert len(set(prov["source_row"].tolist())) == 12
    assert set(prov["weights"].tolist()) == {"ema"} and len(prov["checkpoint_sha256"][0]) == 64
    assert result.grid.is_file()
    again = translate(run, 12, "neutral", tmp_path / "again.csv", seed=3, data=faces)
    assert torch.equal(load_fer2013_csv(again.csv, cache_dir=False).images, syn.images)  # seeded
    back = translate(run, 5, "Happy", tmp_path / "back.csv", data=faces)
    assert back.direction == "happy->neutral"
    with pytest.raises(ValueError, match="translates Neutral <-> Happy; cannot translate from 'sad'"):
        translate(run, 5, "sad", tmp_path / "x.csv", data=faces)
