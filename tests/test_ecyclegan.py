"""Pasini et al.'s Enhanced CycleGAN and the minority-discriminator regularizers as options of the CycleGAN family:
the four presets train, resume exactly and translate; every regularizer shows in the logs and does what it says."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from feraug.api import train
from feraug.cli import main
from feraug.config import ConfigError, CycleGANConfig, build_config, parse_override
from feraug.core.checkpoint import load_checkpoint
from feraug.data import load_fer2013_csv
from feraug.models.base import StepContext
from feraug.models.cyclegan import CycleGAN
from feraug.nets.gan_nets import RDNBGenerator
from feraug.train.feature_extractor import perceptual_records
from feraug.train.provenance import read_training_rows
from feraug.train.run_folder import last_checkpoint

SIZE = 32
TOY = "toy:300"
TINY = ["net.ngf=8", "net.n_blocks=1", "net.n_rdnb=1", "net.growth=4", "net.ndf=8", "train.log_every=1",
        "optim.pool_size=4", f"data.size={SIZE}", f"data.data={TOY}", "data.max_per_domain=24"]  # fmt: skip
PRESETS = ["ecyclegan", "ecyclegan-wgangp", "ecyclegan-diffaug", "cyclegan-diffaug"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def phi(classifier_run_32: Path) -> Path:
    """φ: the shared tiny classifier run (tests/conftest.py)."""
    return classifier_run_32


def config(preset: str, *sets: str, phi: Path | None = None) -> CycleGANConfig:
    extra = [f"loss.perceptual={phi}"] if phi is not None and preset.startswith("ecyclegan") else []
    cfg = build_config(preset=preset, overrides=[parse_override(s) for s in (*TINY, *extra, *sets)])
    assert isinstance(cfg, CycleGANConfig)
    return cfg


def state_tensors(run: Path) -> tuple[dict[str, torch.Tensor], dict]:
    state = load_checkpoint(last_checkpoint(run))
    out = {}
    for group in ("networks", "ema"):
        for net, sd in state[group].items():
            out.update({f"{group}.{net}.{k}": v for k, v in sd.items()})
    for name, opt in state["optimizers"].items():
        for pid, s in opt["state"].items():
            out.update({f"opt.{name}.{pid}.{k}": v for k, v in s.items() if torch.is_tensor(v)})
    return out, state["extra"].get("ada", {})


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_train_resume_exactly_and_translate(tmp_path: Path, phi: Path, preset: str) -> None:
    """Stopped at step 3 and resumed == straight, bit for bit (networks, EMA, optimizers, ADA's p); then the
    run translates from the CLI like any CycleGAN run."""
    sets = ["optim.epochs=1", "optim.epochs_decay=1", "train.steps_per_epoch=3", "train.ema_decay=0.9",
            "regularize.ada_interval=1", "regularize.ada_speed_images=8"]  # fmt: skip
    if preset == "ecyclegan-wgangp":
        sets.append("loss.n_critic=2")
    cfg = config(preset, *sets, phi=phi)
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(cfg, straight, progress=False)
    train(cfg, split, progress=False, stop_at=3)
    train(cfg, split, resume=True, progress=False)
    (a, ada_a), (b, ada_b) = state_tensors(straight), state_tensors(split)
    assert a.keys() == b.keys() and len(a) > 20
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    assert ada_a == ada_b
    if cfg.regularize.ada:
        assert set(ada_a) == {"D_B"} and ada_a["D_B"]["observations"] == 0  # interval 1: p updated every step
        assert ada_a["D_B"]["p"] * 8 == pytest.approx(round(ada_a["D_B"]["p"] * 8))  # moves in steps of 1/8
    if cfg.net.generator == "rdnb":
        g = load_checkpoint(last_checkpoint(straight))["arch"]["G"]
        assert g["name"] == "rdnb-generator" and g["res_scale"] == 0.5 and g["n_dense_blocks"] == 2
    assert (straight / "curves.png").is_file()
    out = tmp_path / "syn.csv"
    result = CliRunner().invoke(main, ["translate", "--run", str(split), "--n", "6", "--from", "neutral", "--out",
                                       str(out), "--seed", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    syn = load_fer2013_csv(out, size=SIZE, cache_dir=False)
    assert len(syn) == 6 and set(syn.labels.tolist()) == {3}


def test_every_regularizer_shows_in_the_logs(tmp_path: Path) -> None:
    """Flip, instance noise, alternate training, DiffAugment + ADA on D_B: each leaves its trace per step."""
    run = tmp_path / "run"
    sets = ["optim.epochs=2", "optim.epochs_decay=0", "train.steps_per_epoch=4", "regularize.flip_p=0.5",
            "regularize.noise_sigma=0.1", "regularize.alternate_from_epoch=1", "regularize.alternate_every=2",
            "regularize.diffaugment=[translation, cutout, color]", "regularize.ada=true",
            "regularize.ada_interval=1", "regularize.ada_speed_images=4"]  # fmt: skip
    train(config("cyclegan", *sets), run, progress=False)
    lines = records(run)
    assert [r["step"] for r in lines] == list(range(1, 9))
    # alternate training: every step in epoch 0, then steps 4 and 6 of steps 4..7 (step % 2 == 0)
    assert [r["D_B/updated"] for r in lines] == [1, 1, 1, 1, 1, 0, 1, 0]
    assert all(("D/B" in r) == bool(r["D_B/updated"]) for r in lines) and all("D/A" in r for r in lines)
    # instance noise: σ₀ · (1 − progress), progress = step / 8 at each step (logged after the step)
    assert [r["noise_sigma"] for r in lines] == pytest.approx([0.1 * (1 - s / 8) for s in range(8)])
    # ADA: p moves by images / speed = 1 / 4 per D_B update, within [0, 1]
    p = [r["D_B/ada_p"] for r in lines if r["D_B/updated"]]
    assert all(0 <= v <= 1 and (v * 4) == pytest.approx(round(v * 4)) for v in p)
    assert all("D_B/gap" in r for r in lines if r["D_B/updated"]) and all("D_A/gap" in r for r in lines)
    assert not any(k.startswith("D_A/ada") for r in lines for k in r)  # only the minority D is regularized
    assert (run / "curves.png").is_file()


def test_alternate_training_leaves_the_minority_d_alone_on_its_off_steps(tmp_path: Path) -> None:
    cfg = config("cyclegan", "regularize.alternate_from_epoch=1", "regularize.alternate_every=3")
    torch.manual_seed(0)
    model = CycleGAN(cfg, torch.device("cpu"))
    x = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    updates = 0
    for step in range(10):
        ctx = StepContext(step, 0 if step < 4 else 1, step / 10, (torch.Generator().manual_seed(step),
                          torch.Generator().manual_seed(100 + step)), None)  # fmt: skip
        before = {k: v.clone() for k, v in model.networks["D_B"].state_dict().items()}
        before_a = {k: v.clone() for k, v in model.networks["D_A"].state_dict().items()}
        model.train_step({"a": x, "b": x.flip(-1)}, ctx)
        moved = any(not torch.equal(before[k], v) for k, v in model.networks["D_B"].state_dict().items())
        assert moved == (step < 4 or step % 3 == 0), step
        assert any(not torch.equal(before_a[k], v) for k, v in model.networks["D_A"].state_dict().items())
        updates += moved
    assert updates == 4 + 2  # steps 0-3, then 6 and 9


def test_perceptual_loss_records_phi_and_the_faces_it_learned_from(tmp_path: Path, phi: Path) -> None:
    """φ is not a network of the run (not in the checkpoint), but its file's SHA-256 and layer are in meta.json,
    and the faces φ trained on join training_rows.npy, where the experiment's generator-overlap guard reads them."""
    run = tmp_path / "run"
    cfg = config("ecyclegan", "optim.epochs=1", "optim.epochs_decay=0", "train.steps_per_epoch=1", phi=phi)
    train(cfg, run, progress=False)
    meta = json.loads((run / "meta.json").read_text())
    best = phi / "checkpoints" / "best.pt"
    assert meta["perceptual"]["sha256"] == hashlib.sha256(best.read_bytes()).hexdigest()
    assert meta["perceptual"]["kind"] == "feraug-classifier" and meta["perceptual"]["faces"]["in_training_rows"]
    state = load_checkpoint(last_checkpoint(run))
    assert set(state["networks"]) == {"G", "F", "D_A", "D_B"}
    rows = read_training_rows(run)
    assert rows is not None and meta["perceptual"]["faces"]["n_trained"] > 0
    assert len(rows) > 2 * 24  # more than the 2 x 24 translation faces: φ's training faces too
    with pytest.raises(ConfigError, match=r"set loss\.perceptual=PATH"):
        config("ecyclegan")
    plain = CycleGAN(config("cyclegan", f"loss.perceptual={phi}"), torch.device("cpu"))  # α = 0: φ not loaded
    assert plain.perceptual is None and perceptual_records(plain.perceptual, "x") == ({}, [])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(config("ecyclegan", f"loss.perceptual={tmp_path / 'nowhere'}"), tmp_path / "x", progress=False)


def test_regularizer_config_errors_name_the_culprit() -> None:
    with pytest.raises(ConfigError, match="unknown DiffAugment op"):
        config("cyclegan", "regularize.diffaugment=[rotate]")
    with pytest.raises(ConfigError, match="ada steers the probability"):
        config("cyclegan", "regularize.ada=true")
    with pytest.raises(ConfigError, match="flip_fake_p flip labels, which a wgan-gp critic"):
        config("wcyclegan", "regularize.flip_p=0.01")


def test_rdnb_generator_is_built_from_the_config() -> None:
    cfg = config("cyclegan", "net.generator=rdnb", "net.n_dense_blocks=2", "net.n_sub_blocks=3",
                 "net.res_scale=0.3")  # fmt: skip
    model = CycleGAN(cfg, torch.device("cpu"))
    g = model.networks["G"]
    assert isinstance(g, RDNBGenerator) and g.arch["n_sub_blocks"] == 3 and g.arch["res_scale"] == 0.3
    assert np.isfinite(g(torch.zeros(1, 1, SIZE, SIZE)).detach().numpy()).all()


def test_critic_with_diffaugment_and_noise_trains(tmp_path: Path) -> None:
    """WGAN-GP with the view on: the gradient penalty is taken on what the critic sees; losses stay finite."""
    sets = ["optim.epochs=1", "optim.epochs_decay=0", "train.steps_per_epoch=3", "loss.n_critic=2",
            "regularize.diffaugment=[translation, cutout]", "regularize.noise_sigma=0.1", "regularize.domains=both",
            "regularize.ada=true"]  # fmt: skip
    train(config("wcyclegan", *sets), tmp_path / "run", progress=False)
    lines = records(tmp_path / "run")
    assert all(np.isfinite(v) for r in lines for v in r.values() if isinstance(v, float))
    assert {"D_A/ada_p", "D_B/ada_p", "D_A/gap", "D_B/gap"} <= set(lines[-1])


def test_resume_refuses_another_phi_or_missing_ada_state(tmp_path: Path, phi: Path) -> None:
    import shutil

    from feraug.core.checkpoint import CheckpointError, save_checkpoint

    run = tmp_path / "run"
    sets = ["optim.epochs=1", "optim.epochs_decay=1", "train.steps_per_epoch=2"]
    train(config("ecyclegan", *sets, phi=phi), run, progress=False, stop_at=1)
    other = tmp_path / "phi2"
    shutil.copytree(phi, other)
    best = other / "checkpoints" / "best.pt"
    state = load_checkpoint(best, family="classifier")
    first = next(iter(state["weights"]))
    state["weights"][first] = state["weights"][first] + 1.0  # another φ at the same kind of path
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, best)
    with pytest.raises(CheckpointError, match="not the file this run trained with"):
        train(config("ecyclegan", *sets, phi=other), run, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="no ADA state for D_B"):
        train(config("ecyclegan-diffaug", *sets, phi=phi), run, resume=True, progress=False)
