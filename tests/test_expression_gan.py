"""The multi-domain expression family (StarGAN-style) on the shared engine, and `feraug translate --to`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from click.testing import CliRunner
from PIL import Image
from torch import nn

from feraug.api import train
from feraug.cli import main
from feraug.config import ConfigError, ExpressionGANConfig, build_config, parse_override
from feraug.core.checkpoint import load_checkpoint
from feraug.core.seeding import STEP, generator
from feraug.data import FaceDataset, load_fer2013_csv, make_toy_faces
from feraug.data.augment import displace, to_float
from feraug.data.classes import EMOTIONS
from feraug.models.base import StepContext
from feraug.models.expression import (
    ExpressionGAN,
    domain_classification_loss,
    draw_targets,
    field_roughness,
    total_variation,
)
from feraug.nets.expression_nets import ExpressionDiscriminator, ExpressionGenerator, emotion_scores, target_maps
from feraug.nets.gan_nets import ResizeConv2d
from feraug.nets.registry import build_gan_net
from feraug.synth.synthetic_set import read_provenance
from feraug.train.families import expression_faces, get_family
from feraug.train.run_folder import last_checkpoint

TINY = ["net.ngf=4", "net.n_blocks=1", "net.ndf=4", "optim.batch_size=4", "train.log_every=2"]
TINY_CLI = [arg for s in ("net.ngf=4", "net.n_blocks=1", "net.ndf=4") for arg in ("--set", s)]


@pytest.fixture(scope="module")
def faces() -> FaceDataset:
    return make_toy_faces(n=400, seed=1)


def config(*sets: str) -> ExpressionGANConfig:
    cfg = build_config(ExpressionGANConfig, preset="expression", family="expression",
                       overrides=[parse_override(s) for s in (*TINY, *sets)])  # fmt: skip
    assert isinstance(cfg, ExpressionGANConfig)
    return cfg


@pytest.mark.parametrize("output", ["residual", "attention"])
def test_shapes_mask_range_and_rebuild_by_name(output: str) -> None:
    torch.manual_seed(0)
    g = ExpressionGenerator(ngf=4, n_blocks=1, output=output)  # type: ignore[arg-type]
    x = torch.rand(3, 1, 48, 48) * 2 - 1
    c = torch.tensor([1, 3, 6])
    fake, mask = g.forward_with_mask(x, c)
    assert fake.shape == (3, 1, 48, 48) and fake.abs().max() <= 1.0
    # the head starts at zero: residual output is the identity, attention 0.95 of it
    assert torch.equal(fake, x) if output == "residual" else torch.allclose(fake, torch.sigmoid(torch.tensor(3.0)) * x)
    nn.init.normal_(g.head.weight, 0.0, 3.0)  # a trained-looking head: masks spread over [0, 1]
    fake, mask = g.forward_with_mask(x, c)
    assert torch.equal(g(x, c), fake) and torch.equal(g(x, F.one_hot(c, 7).float()), fake)
    if output == "residual":
        assert mask is None
    else:
        assert mask is not None and mask.shape == (3, 1, 48, 48)
        assert mask.min() >= 0.0 and mask.max() <= 1.0 and mask.min() < 0.2 and mask.max() > 0.8
        assert torch.allclose(fake, mask * x + (1 - mask) * torch.tanh(g.head(g.body(g.stem(x, c)))[:, :1]))
    assert (g(x, torch.tensor([0, 0, 0])) - g(x, torch.tensor([5, 5, 5]))).abs().mean() > 1e-2  # the target matters
    # the stem: instance norm of StarGAN's conv over [face; constant target maps] (which erases the maps' share),
    # then the maps' share added back, computed without the maps
    maps = target_maps(c, 7, x)
    conv = F.conv2d(F.pad(torch.cat([x, maps], 1), (3, 3, 3, 3), mode="reflect"), g.stem.weight, g.stem.bias)
    share = F.conv2d(F.pad(maps, (3, 3, 3, 3), mode="reflect"), g.stem.weight[:, 1:])
    assert torch.allclose(g.stem(x, c), F.instance_norm(conv) + share, atol=1e-4)
    rebuilt = build_gan_net(g.arch)
    rebuilt.load_state_dict(g.state_dict())
    assert torch.equal(rebuilt(x, c), g(x, c))
    d = ExpressionDiscriminator(ndf=4, d_layers=4, size=48, spectral_norm=True)
    scores, logits = d(x)
    assert scores.shape == (3, 1, 3, 3) and logits.shape == (3, 7)
    assert isinstance(build_gan_net(d.arch), ExpressionDiscriminator)
    with pytest.raises(ValueError, match="divisible by 16"):
        ExpressionDiscriminator(d_layers=4, size=40)
    assert "per_emotion" not in d.arch  # checkpoints of the shared head keep their arch
    d7 = ExpressionDiscriminator(ndf=4, d_layers=4, size=48, per_emotion=True)
    scores, logits = d7(x)
    assert scores.shape == (3, 7, 3, 3) and logits.shape == (3, 7)
    rebuilt_d = build_gan_net(d7.arch)
    rebuilt_d.load_state_dict(d7.state_dict())
    d7.eval(), rebuilt_d.eval()  # spectral norm's power iteration steps in training mode
    assert torch.equal(rebuilt_d(x)[0], d7(x)[0])


def test_warp_output_moves_the_faces_pixels_and_redraws_nothing() -> None:
    torch.manual_seed(0)
    g = ExpressionGenerator(ngf=4, n_blocks=1, output="warp", max_shift=2.5)
    assert not any(isinstance(m, ResizeConv2d) for m in g.modules())  # the field comes from H/4: no decoder
    x = torch.rand(3, 1, 48, 48) * 2 - 1
    c = torch.tensor([1, 3, 6])
    fake, mask = g.forward_with_mask(x, c)
    assert mask is None and fake.shape == x.shape
    assert torch.allclose(fake, x, atol=1e-5)  # a zero head: the identity (float rounding of pixel centres)
    nn.init.normal_(g.head.weight, 0.0, 3.0)
    flow = g.displacement(x, c)
    assert flow.shape == (3, 2, 48, 48) and flow.abs().max() <= 2.5 and flow.abs().max() > 1.0
    fake = g(x, c)
    assert torch.allclose(fake, displace(x, flow))
    # bilinear resampling mixes a face's own neighbouring pixels: no value outside its range, no new texture
    lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    assert (fake >= lo - 1e-6).all() and (fake <= hi + 1e-6).all() and (fake - x).abs().mean() > 1e-2
    assert (g(x, torch.tensor([0, 0, 0])) - g(x, torch.tensor([5, 5, 5]))).abs().mean() > 1e-3  # the target matters
    rebuilt = build_gan_net(g.arch)
    assert rebuilt.arch["max_shift"] == 2.5
    rebuilt.load_state_dict(g.state_dict())
    assert torch.equal(rebuilt(x, c), fake)
    assert "max_shift" not in ExpressionGenerator(ngf=4, n_blocks=1, output="residual").arch  # older arches kept
    with pytest.raises(ValueError, match="only for warp output"):
        ExpressionGenerator(ngf=4, n_blocks=1, output="residual").displacement(x, c)
    with pytest.raises(ValueError, match="max_shift"):
        ExpressionGenerator(output="warp", max_shift=0.0)


def test_field_roughness_is_zero_for_a_shift_and_counts_neighbour_differences() -> None:
    shift = torch.full((2, 2, 6, 5), 2.5)
    assert field_roughness(shift) == 0.0
    field = torch.zeros(1, 2, 4, 4)
    field[0, 0, :, 2:] = 3.0  # the x displacement jumps by 3 between columns 1 and 2, on each of the 4 rows
    # across: 4 of the 2 x 4 x 3 = 24 neighbour pairs differ by 3 (mean 9 x 4 / 24); down: none differ
    assert torch.isclose(field_roughness(field), torch.tensor(9.0 * 4 / 24))


def test_the_warp_step_charges_the_fields_roughness(faces: FaceDataset) -> None:
    batch = {"image": to_float(faces.images[:4]).clone(), "label": faces.labels[:4].clone()}
    logs, heads = [], []
    for weight in (0.0, 100.0):
        torch.manual_seed(0)
        model = ExpressionGAN(config("net.output=warp", f"loss.lambda_smooth={weight}"), torch.device("cpu"))
        head = model.networks["G"].head
        nn.init.normal_(head.weight, 0.0, 0.5)  # a rough field to start from
        gens = tuple(generator(5, STEP, 7, k) for k in range(2))
        logs.append(model.train_step(batch, StepContext(7, 0, 0.0, gens, None)))
        heads.append(head.weight.detach().clone())
    assert logs[0]["G/field_rough"] > 0 and logs[0]["G/field_px"] > 0
    # the same networks and batch: G's total differs by exactly the weighted roughness ...
    assert torch.isclose(logs[1]["G/total"] - logs[0]["G/total"], 100.0 * logs[0]["G/field_rough"], rtol=1e-4)
    assert not torch.allclose(heads[0], heads[1])  # ... and the penalty's gradient reached the field's head


def test_displace_moves_pixels_by_the_flow() -> None:
    x = torch.rand(2, 1, 8, 10) * 2 - 1
    flow = torch.zeros(2, 2, 8, 10)
    assert torch.allclose(displace(x, flow), x, atol=1e-6)
    flow[:, 0] = 1.0  # read one pixel to the right; the last column clamps at the border
    out = displace(x, flow)
    assert torch.allclose(out[..., :-1], x[..., 1:], atol=1e-6) and torch.allclose(out[..., -1], x[..., -1], atol=1e-6)
    flow = torch.zeros(2, 2, 8, 10)
    flow[:, 1] = -2.0  # read two pixels up
    assert torch.allclose(displace(x, flow)[..., 2:, :], x[..., :-2, :], atol=1e-6)
    flow[:, 1] = 0.5  # half way between two rows: their mean
    assert torch.allclose(displace(x, flow)[..., :-1, :], (x[..., :-1, :] + x[..., 1:, :]) / 2, atol=1e-6)


def test_emotion_scores_pick_each_faces_map() -> None:
    scores = torch.arange(2 * 7 * 4, dtype=torch.float32).view(2, 7, 2, 2)
    picked = emotion_scores(scores, torch.tensor([3, 6]))
    assert picked.shape == (2, 1, 2, 2)
    assert torch.equal(picked[0, 0], scores[0, 3]) and torch.equal(picked[1, 0], scores[1, 6])
    shared = torch.randn(2, 1, 2, 2)
    assert emotion_scores(shared, torch.tensor([3, 6])) is shared


@pytest.mark.parametrize("output", ["residual", "attention"])
def test_generator_has_no_transposed_convolution(output: str) -> None:
    """Resize-convolution upsampling (nearest x2 + 3x3 conv): no strided transposed conv, no checkerboard."""
    g = ExpressionGenerator(output=output)  # type: ignore[arg-type]
    kinds = {type(m) for m in g.modules()}
    assert not any(issubclass(k, nn.ConvTranspose2d) for k in kinds)
    ups = [m for m in g.modules() if isinstance(m, ResizeConv2d)]  # its equality to nearest x2 + 3x3: test_gan_nets
    assert len(ups) == 2


@pytest.mark.parametrize("output", ["residual", "attention"])
def test_generator_output_depends_on_the_target_emotion(output: str) -> None:
    """The target code must survive the stem's instance norm (a constant per-channel shift before it is erased)."""
    torch.manual_seed(0)
    g = ExpressionGenerator(ngf=8, n_blocks=1, output=output)  # type: ignore[arg-type]
    with torch.no_grad():
        g.head.weight.normal_()  # not the identity, so the output shows what the body computed
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    faces = [g(x, torch.full((3,), k)) for k in range(7)]
    gaps = [(faces[a] - faces[b]).abs().mean().item() for a in range(7) for b in range(a + 1, 7)]
    assert min(gaps) > 1e-2  # float rounding alone differs by ~1e-6


def test_generator_refuses_checkpoints_of_the_generator_that_ignored_its_target() -> None:
    g = ExpressionGenerator(ngf=4, n_blocks=1, output="residual")
    old = {f"body.{int(k.split('.')[1]) + 1}.{k.split('.', 2)[2]}" if k.startswith("body.") else k: v
           for k, v in g.state_dict().items()}  # fmt: skip  (the stem's norm was body.0: every index one later)
    with pytest.raises(ValueError, match="ignored the target emotion"):
        ExpressionGenerator(ngf=4, n_blocks=1, output="residual").load_state_dict(old)


def test_domain_classification_loss_on_hand_computed_logits() -> None:
    logits = torch.log(torch.tensor([[1.0, 2, 1, 1, 1, 1, 2], [1.0, 1, 1, 1, 1, 1, 1]]))
    # softmax rows: [1,2,1,1,1,1,2]/9 and uniform 1/7
    assert math.isclose(float(domain_classification_loss(logits, torch.tensor([1, 0]))),
                        (math.log(9 / 2) + math.log(7)) / 2, rel_tol=1e-6)  # fmt: skip
    assert math.isclose(float(domain_classification_loss(logits[:1], torch.tensor([0]))), math.log(9), rel_tol=1e-6)
    mask = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    assert math.isclose(float(total_variation(mask)), 0.5 + 0.5)  # one jump in each of 2 row pairs / 2 col pairs


class FixedLogitsD(nn.Module):
    """A discriminator whose emotion head always says ``logits``; its score depends on the face (for R1)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.w * x.mean((1, 2, 3)).view(-1, 1, 1, 1), self.logits.expand(x.shape[0], -1) + 0 * self.w


def test_the_step_uses_the_class_head_on_real_labels_and_on_balanced_targets() -> None:
    """D's head is scored on the real faces' labels, G on the targets it was asked for (never the face's own)."""
    model = ExpressionGAN(config("net.output=attention"), torch.device("cpu"))  # the mask terms are logged too
    p = torch.tensor([1.0, 2, 1, 1, 1, 1, 2]) / 9
    stub = FixedLogitsD(p.log())
    model.networks["D"] = stub
    model.optimizers["D"] = torch.optim.Adam(stub.parameters())
    y = torch.tensor([1, 6, 0, 3])
    gens = tuple(generator(5, STEP, 7, k) for k in range(2))
    out = model.train_step({"image": torch.rand(4, 1, 48, 48) * 2 - 1, "label": y},
                           StepContext(7, 0, 0.0, gens, None))  # fmt: skip
    assert math.isclose(float(out["D/cls"]), float(-p[y].log().mean()), rel_tol=1e-6)
    c = draw_targets(y, generator(5, STEP, 7, 0))
    assert not (c == y).any()
    assert math.isclose(float(out["G/cls"]), float(-p[c].log().mean()), rel_tol=1e-6)
    assert {"G/adv", "G/rec", "G/mask", "G/mask_tv", "D/r1", "D/gap"} <= set(out)
    assert all(v.device.type == "cpu" and v.dim() == 0 for v in out.values())


class PerEmotionD(nn.Module):
    """A per-emotion discriminator whose map for emotion k scores a face ``w·(k + (k + 1)·mean(x))``: each map
    has its own value and its own gradient (so R1 shows which map it took)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = torch.arange(7, dtype=x.dtype).view(1, 7, 1, 1)
        return self.w * (k + (k + 1) * x.mean((1, 2, 3)).view(-1, 1, 1, 1)), torch.zeros(x.shape[0], 7) + 0 * self.w


@pytest.mark.parametrize("r1_every", [1, 2])  # step 7: R1 due (separate real/fake passes) or not (one pass)
def test_a_per_emotion_d_scores_reals_by_their_label_and_translations_by_their_target(r1_every: int) -> None:
    model = ExpressionGAN(config("net.d_head=per-emotion", "loss.lambda_rec=0", f"loss.r1_every={r1_every}"),
                          torch.device("cpu"))  # fmt: skip
    stub = PerEmotionD()
    model.networks["D"] = stub
    model.optimizers["D"] = torch.optim.SGD(stub.parameters(), lr=0.0)
    model.optimizers["G"] = torch.optim.SGD(model.networks["G"].parameters(), lr=0.0)  # G stays the identity
    a = torch.tensor([0.1, -0.2, 0.3, 0.0])  # each face a different constant: the pairing of face and emotion shows
    x, y = a.view(4, 1, 1, 1).expand(4, 1, 48, 48).clone(), torch.tensor([1, 6, 0, 3])
    gens = tuple(generator(5, STEP, 7, k) for k in range(2))
    out = model.train_step({"image": x, "label": y}, StepContext(7, 0, 0.0, gens, None))
    c = draw_targets(y, generator(5, STEP, 7, 0)).float()
    real, fake = y + (y + 1) * a, c + (c + 1) * a  # the identity G's translation is the face itself
    assert math.isclose(float(out["G/adv"]), float(F.softplus(-fake).mean()), rel_tol=1e-5)
    assert math.isclose(float(out["D/adv"]), float(0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())),
                        rel_tol=1e-5)  # fmt: skip
    assert math.isclose(float(out["D/gap"]), float(real.mean() - fake.mean()), rel_tol=1e-5)
    if r1_every == 1:  # ½‖∇_x s‖² with ∂s/∂pixel = (y + 1) / 48², over 48² pixels, averaged over faces
        assert math.isclose(float(out["D/r1"]), float((0.5 * (y + 1.0) ** 2 / 48**2).mean()), rel_tol=1e-5)
    else:
        assert "D/r1" not in out


def test_targets_are_uniform_over_the_other_six_emotions_and_replayable() -> None:
    y = torch.arange(7).repeat(6000)
    c = draw_targets(y, generator(0, STEP, 3, 0))
    assert not (c == y).any()
    for k in range(7):
        freq = torch.bincount(c[y == k], minlength=7).float() / 6000
        others = torch.cat([freq[:k], freq[k + 1 :]])
        assert (others - 1 / 6).abs().max() < 0.03
    assert torch.equal(c, draw_targets(y, generator(0, STEP, 3, 0)))


def test_config_and_data_errors_name_the_problem(faces: FaceDataset) -> None:
    with pytest.raises(ConfigError, match=r"data.size=40 is not divisible by 2\*\*net.d_layers=16"):
        config("data.size=40")
    with pytest.raises(ConfigError, match="unknown DiffAugment op"):
        config("loss.diffaugment=[zoom]")
    with pytest.raises(ConfigError, match="gan_mode"):
        config("loss.gan_mode=wgan-gp")
    no_disgust = faces.subset(np.flatnonzero(faces.labels.numpy() != 1))
    with pytest.raises(ValueError, match="no Disgust faces in the Training split"):
        expression_faces(config(), no_disgust)
    assert get_family("expression").config is ExpressionGANConfig
    assert len(expression_faces(config(), faces)["faces"]) == int((faces.usage == "Training").sum())


def state_tensors(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(last_checkpoint(run), family="expression")
    out = {}
    for group in ("networks", "ema"):
        for net, sd in state[group].items():
            out.update({f"{group}.{net}.{k}": v for k, v in sd.items()})
    for name, opt in state["optimizers"].items():
        for pid, s in opt["state"].items():
            out.update({f"opt.{name}.{pid}.{k}": v for k, v in s.items() if torch.is_tensor(v)})
    return out


@pytest.mark.parametrize(
    "sets",
    [["net.output=attention", "loss.diffaugment=[translation, cutout]", "loss.r1_every=2", "optim.augment=true"],
     ["net.output=residual", "loss.gan_mode=lsgan", "net.spectral_norm=false", "data.balanced=true",
      "net.d_head=per-emotion"],
     ["net.output=warp", "net.max_shift=2"]],
    ids=["attention", "residual", "warp"],
)  # fmt: skip
def test_stop_at_step_and_resume_equals_an_uninterrupted_run_bitwise(
    tmp_path: Path, faces: FaceDataset, sets: list[str], one_thread: None
) -> None:
    """Networks (spectral-norm vectors included), EMA and both optimizers' states, bit for bit."""
    sets = [*sets, "optim.epochs=1", "optim.epochs_decay=1", "train.steps_per_epoch=3", "train.ema_decay=0.9"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(config(*sets), straight, data=faces, progress=False)
    train(config(*sets), split, data=faces, progress=False, stop_at=4)
    assert load_checkpoint(last_checkpoint(split))["step"] == 4
    train(config(*sets), split, resume=True, data=faces, progress=False)
    a, b = state_tensors(straight), state_tensors(split)
    assert a.keys() == b.keys() and any(k.startswith("ema.G.") for k in a) and any(k.startswith("opt.D.") for k in a)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    log = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 6 and all(np.isfinite(r["D/loss"]) and np.isfinite(r["G/total"]) for r in log)
    assert (straight / "metrics.jsonl").read_text() != "" and (straight / "training_rows.npy").is_file()
    # grid: a real row, then each emotion (and under it what changed, with attention; how far pixels moved, warp)
    rows = 1 + 7 * (1 if "net.output=residual" in sets else 2)
    assert Image.open(straight / "samples" / "latest.png").height == rows * (48 * 2 + 2) + 2


def test_translate_to_every_emotion_from_the_cli(tmp_path: Path, one_thread: None) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    r = runner.invoke(main, ["train", "expression", "--data", "toy:600", *TINY_CLI, "--batch-size", "4", "--epochs",
                             "1", "--epochs-decay", "0", "--steps-per-epoch", "2", "--set", "train.ema_decay=0.5",
                             "--set", "net.output=attention", "--out", str(run), "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    data = make_toy_faces(n=600, seed=0)  # what toy:600 loads
    training = data.usage == "Training"
    sha = None
    for source, targets in (("neutral", [e for e in EMOTIONS if e != "Neutral"]), ("disgust", ["Neutral"])):
        for target in targets:
            out = tmp_path / f"{source}_{target}.csv"
            r = runner.invoke(main, ["translate", "--run", str(run), "--n", "4", "--from", source, "--to",
                                     target.lower(), "--out", str(out)])  # fmt: skip
            assert r.exit_code == 0, r.output
            syn = load_fer2013_csv(out, cache_dir=False)
            k = EMOTIONS.index(target)
            assert len(syn) == 4 and set(syn.labels.tolist()) == {k}
            prov = read_provenance(out.with_name(f"{source}_{target}.provenance.csv"))
            s = EMOTIONS.index(source.capitalize())
            own = data.rows[training & (data.labels.numpy() == s)]
            assert set(prov["source_row"].tolist()) <= set(own.tolist()) and len(set(prov["source_row"])) == 4
            assert set(prov["direction"]) == {f"{source}->{target.lower()}"} and set(prov["weights"]) == {"ema"}
            assert (prov["source_label"] == s).all() and (prov["label"] == k).all()
            sha = sha or prov["checkpoint_sha256"][0]
            assert set(prov["checkpoint_sha256"]) == {sha} and len(sha) == 64
            grid = Image.open(out.with_suffix(".png"))
            assert grid.height == 3 * (48 * 2 + 2) + 2  # source, translation, what changed
    r = runner.invoke(main, ["translate", "--run", str(run), "--n", "4", "--from", "neutral", "--out", str(out)])
    assert r.exit_code != 0 and "name the target emotion (--to)" in r.output
    r = runner.invoke(main, ["translate", "--run", str(run), "--n", "4", "--from", "sad", "--to", "sadness",
                             "--out", str(out)])  # fmt: skip
    assert r.exit_code != 0 and "source and target are both 'Sad'" in r.output


def test_translate_to_on_a_cyclegan_run_must_be_its_implied_target(tmp_path: Path, one_thread: None) -> None:
    runner = CliRunner()
    run = tmp_path / "cyc"
    r = runner.invoke(main, ["train", "cyclegan", "--data", "toy:300", "--source", "neutral", "--target", "disgust",
                             *TINY_CLI, "--epochs", "1", "--epochs-decay", "0", "--steps-per-epoch", "1", "--out",
                             str(run), "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = tmp_path / "d.csv"
    for to in ([], ["--to", "disgusted"]):
        r = runner.invoke(main, ["translate", "--run", str(run), "--n", "3", "--from", "neutral", *to,
                                 "--out", str(out)])  # fmt: skip
        assert r.exit_code == 0, r.output
        assert set(read_provenance(out.with_name("d.provenance.csv"))["direction"]) == {"neutral->disgust"}
        assert Image.open(out.with_suffix(".png")).height == 2 * (48 * 2 + 2) + 2  # no mask row
    r = runner.invoke(main, ["translate", "--run", str(run), "--n", "3", "--from", "neutral", "--to", "happy", "--out",
                             str(out)])  # fmt: skip
    assert r.exit_code != 0 and "from Neutral it translates to Disgust, not Happy" in r.output
