"""Pasini et al.'s perceptual loss: its value and gradients, the frozen extractor (no grad, eval mode, no state),
loading from a feraug classifier or a VGG19 state dict with clear errors, and the leakage guard."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from feraug.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from feraug.data import load_dataset, standard_splits
from feraug.evaluate.classifier import load_classifier
from feraug.gan.losses import l1
from feraug.gan.perceptual import FeatureExtractor, perceptual_l1
from feraug.nets.vgg19 import vgg19_features
from feraug.train.feature_extractor import extractor_training_faces, load_feature_extractor, same_source

SIZE = 32
TOY = "toy:300"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(classifier_run_32: Path) -> Path:
    """a classifier run: the shared tiny classifier run (tests/conftest.py)."""
    return classifier_run_32


def sum_extractor() -> FeatureExtractor:
    """φ(x) = sum of each 2x2 face: one conv with an all-ones 2x2 kernel, features computable by hand."""
    conv = nn.Conv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    return FeatureExtractor(conv, {"kind": "test"})


X_HAT = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])
X = torch.zeros(1, 1, 2, 2)


def test_perceptual_l1_by_hand() -> None:
    fx = sum_extractor()
    # pixel term: mean(0.5, 0.5, 1, 0) = 0.5; feature term: |2 - 0| = 2
    assert perceptual_l1(X_HAT, X, fx).item() == pytest.approx(0.5 * 2.0 + 0.5 * 0.5)  # seed's α = β = 0.5
    assert perceptual_l1(X_HAT, X, fx, alpha=0.3, beta=2.0).item() == pytest.approx(0.3 * 2.0 + 2.0 * 0.5)


def test_alpha_or_beta_zero_reduce_to_one_term() -> None:
    g = torch.Generator().manual_seed(0)
    x_hat, x = torch.rand(3, 1, 6, 6, generator=g), torch.rand(3, 1, 6, 6, generator=g)
    fx = sum_extractor()
    assert torch.equal(perceptual_l1(x_hat, x, fx, alpha=0.0, beta=0.7), 0.7 * l1(x_hat, x))
    kernel = torch.ones(1, 1, 2, 2)
    expected = 0.4 * (torch.conv2d(x_hat, kernel) - torch.conv2d(x, kernel)).abs().mean()
    assert torch.allclose(perceptual_l1(x_hat, x, fx, alpha=0.4, beta=0.0), expected)
    with pytest.raises(ValueError, match=">= 0"):
        perceptual_l1(x_hat, x, fx, alpha=-1.0)


class Translator(nn.Module):
    """A one-conv "generator" that holds the extractor the way a model using the loss would."""

    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.extractor = extractor


def test_gradient_reaches_x_hat_not_the_extractor() -> None:
    fx = sum_extractor()
    x_hat = X_HAT.clone().requires_grad_(True)
    perceptual_l1(x_hat, X, fx, alpha=0.5, beta=0.5).backward()
    # d/dx̂ [α·|Σx̂ − Σx| + β·mean|x̂ − x|] = α·sign(2) + β·sign(x̂ − x)/4 per pixel
    assert torch.allclose(x_hat.grad, 0.5 + 0.5 * torch.sign(X_HAT) / 4)
    assert fx.net.weight.grad is None and not fx.net.weight.requires_grad

    model = Translator(fx)
    before = fx.net.weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    assert {id(p) for p in model.parameters()} == {id(model.conv.weight), id(model.conv.bias)}
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 5, 5, generator=g)
    perceptual_l1(model.conv(x), x, model.extractor).backward()
    assert model.conv.weight.grad is not None and model.conv.weight.grad.abs().sum() > 0
    opt.step()
    assert torch.equal(fx.net.weight, before) and fx.net.weight.grad is None


def test_extractor_is_in_no_state_dict_and_stays_in_eval_mode() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.9))
    fx = FeatureExtractor(net, {"kind": "test"})
    model = Translator(fx)
    assert set(model.state_dict()) == {"conv.weight", "conv.bias"}
    assert fx.state_dict() == {} and list(fx.parameters()) == [] and list(fx.buffers()) == []
    model.load_state_dict(Translator(sum_extractor()).state_dict())  # strict: nothing of the extractor is expected
    model.train()
    assert model.training and not fx.training and not any(m.training for m in fx.net.modules())
    x = torch.rand(4, 1, 6, 6)
    assert torch.equal(fx(x), fx(x))  # dropout off, BatchNorm on running statistics
    assert torch.equal(fx.net[1].running_mean, torch.zeros(2))  # not updated by the forward passes
    model.double()  # .to()/.double() reach the hidden network
    assert fx.net[0].weight.dtype == torch.float64


# -- a feraug classifier as φ -------------------------------------------------------------------------


def test_classifier_extractor_default_layer_and_provenance(run: Path) -> None:
    fx = load_feature_extractor(run)
    best = run / "checkpoints" / "best.pt"
    p = fx.provenance
    assert p["kind"] == fx.kind == "feraug-classifier" and p["path"] == str(best) and p["data"] == TOY
    assert p["sha256"] == hashlib.sha256(best.read_bytes()).hexdigest()
    net, _ = load_classifier(run)
    last_conv = max(i for i, m in enumerate(net.trunk) if isinstance(m, nn.Conv2d))
    assert p["layer"] == f"trunk.{last_conv}" and p["layer_index"] == last_conv and p["input_size"] == SIZE
    x = torch.rand(3, 1, SIZE, SIZE) * 2 - 1  # GAN faces: [-1, 1], fed as the classifier's evaluation feeds them
    with torch.no_grad():
        assert torch.allclose(fx(x), net.trunk[: last_conv + 1](x))
        assert fx(x).dim() == 4 and fx(x).shape[-1] > 1  # a spatial map
        assert torch.allclose(load_feature_extractor(run, "features")(x), net.features(x))
        assert torch.allclose(load_feature_extractor(best, 2)(x), net.trunk[:3](x))
    assert load_feature_extractor(run, "trunk.2").provenance["layer"] == "trunk.2"
    assert load_feature_extractor(run, -1).provenance["layer"] == f"trunk.{len(net.trunk) - 1}"
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        load_feature_extractor(run, "conv9")
    with pytest.raises(ValueError, match="out of range"):
        load_feature_extractor(run, 99)
    with pytest.raises(ValueError, match=rf"\[N, 1, {SIZE}, {SIZE}\]"):
        fx(torch.zeros(1, 1, 48, 48))


def test_missing_and_wrong_kind_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "best.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_feature_extractor(missing)
    gan = save_checkpoint({"family": "cyclegan", "arch": {}}, tmp_path / "gan" / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match=r"last\.pt: a feraug 'cyclegan' checkpoint, not an expression"):
        load_feature_extractor(gan)
    with pytest.raises(ValueError, match=r"run folder of a 'cyclegan' model"):
        load_feature_extractor(tmp_path / "gan")
    torch.save({"generator": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: neither a feraug classifier checkpoint nor a VGG19"):
        load_feature_extractor(tmp_path / "other.pt")
    (tmp_path / "faces.csv").write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    with pytest.raises(CheckpointError, match=r"faces\.csv: not a PyTorch weights file"):
        load_feature_extractor(tmp_path / "faces.csv")
    with pytest.raises(CheckpointError, match=r"without checkpoints/best\.pt"):
        load_feature_extractor(tmp_path)


# -- the leakage guard ----------------------------------------------------------------------------------


def test_extractor_training_faces_are_its_standard_splits(run: Path, tmp_path: Path) -> None:
    """The faces φ trained on (they join a GAN run's training_rows.npy, where the generator-overlap guard reads
    them): rebuilt from its config as `feraug train classifier` split them; unknown from the Python API."""
    ds = load_dataset(TOY, size=SIZE)
    splits = standard_splits(ds)
    faces = extractor_training_faces(load_feature_extractor(run))
    assert same_source(faces.source, ds.source) and faces.kind == "feraug-classifier"
    assert np.array_equal(faces.trained, np.sort(ds.rows[splits.train]))
    assert np.array_equal(faces.selected, np.sort(ds.rows[splits.val]))
    record = faces.record()
    assert record["n_trained"] == len(splits.train) and len(record["trained_rows_sha256"]) == 64

    state = load_checkpoint(run / "checkpoints" / "best.pt", family="classifier")
    state["config"]["data"] = None  # as from the Python API, which passes datasets, not a --data spec
    api = save_checkpoint({k: v for k, v in state.items() if k != "format"}, tmp_path / "api.pt")
    unknown = extractor_training_faces(api)
    assert unknown.trained is None and "records no data" in unknown.how


# -- VGG19 ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised VGG19 state dict with torchvision's keys (features, plus a stand-in classifier key)."""
    torch.manual_seed(0)
    state = OrderedDict((f"features.{k}", v) for k, v in vgg19_features().state_dict().items())
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(state, path)
    return path


def test_vgg19_extractor(vgg_file: Path) -> None:
    fx = load_feature_extractor(vgg_file)
    p = fx.provenance
    assert (p["kind"], p["layer"], p["layer_index"]) == ("vgg19", "conv5_4", 34)  # the seed's last conv layer
    assert p["sha256"] == hashlib.sha256(vgg_file.read_bytes()).hexdigest()
    x = torch.rand(2, 1, 48, 48) * 2 - 1
    with torch.no_grad():
        assert fx(x).shape == (2, 512, 3, 3)  # 48x48 needs no resize
        rgb = ((x + 1) / 2).repeat(1, 3, 1, 1)
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        assert torch.allclose(fx.net[0](x), (rgb - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
        relu44 = load_feature_extractor(vgg_file, "relu4_4")
        assert relu44.provenance["layer_index"] == 26 and relu44(x).shape == (2, 512, 6, 6)
        assert load_feature_extractor(vgg_file, "pool5")(torch.zeros(1, 1, 16, 16)).shape == (1, 512, 1, 1)  # upsized
    faces = extractor_training_faces(fx)
    assert faces.kind == "vgg19" and faces.trained is None


def test_vgg19_state_dict_must_match(tmp_path: Path) -> None:
    state = {k: v for k, v in vgg19_features().state_dict().items() if k != "34.bias"}
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(CheckpointError, match=r"short\.pth: not a VGG19 state dict"):
        load_feature_extractor(tmp_path / "short.pth")


def test_vgg19_matches_torchvision(vgg_file: Path) -> None:
    tv = pytest.importorskip("torchvision", reason="torchvision is optional (feraug builds VGG19 in plain torch); "
                             "this cross-check of the layer layout against its VGG19 runs only where it is installed")
    ref = tv.models.vgg19(weights=None)
    state = torch.load(vgg_file, weights_only=True)
    ref.features.load_state_dict({k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")})
    fx = load_feature_extractor(vgg_file)
    x = torch.rand(2, 1, 48, 48) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(fx(x), ref.features[:35].eval()(fx.net[0](x)), atol=1e-5)
