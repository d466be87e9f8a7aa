"""CycleGAN networks: shapes at 48x48 and 64x64, features, init, bad arguments."""

from __future__ import annotations

import pytest
import torch

from feraug.nets.gan_nets import PatchDiscriminator, ResnetGenerator, init_weights


@pytest.mark.parametrize("size", [48, 64])
def test_generator_keeps_shape_and_range(size: int) -> None:
    g = ResnetGenerator(ngf=8, n_blocks=2)
    y = g(torch.randn(3, 1, size, size))
    assert y.shape == (3, 1, size, size)
    assert y.abs().max() <= 1.0


def test_default_generator_matches_cyclegan_resnet_6blocks() -> None:
    g = ResnetGenerator()  # ngf 64, 6 blocks, 1 channel in/out
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert len(convs) == 3 + 2 * 6 + 2 + 1
    stem, down = 1 * 64 * 49 + 64, (64 * 128 * 9 + 128) + (128 * 256 * 9 + 256)
    blocks = 6 * 2 * (256 * 256 * 9 + 256)
    up, head = (256 * 128 * 9 + 128) + (128 * 64 * 9 + 64), 64 * 1 * 49 + 1
    assert sum(p.numel() for p in g.parameters()) == stem + down + blocks + up + head == 7_825_153


@pytest.mark.parametrize(("size", "patch"), [(48, 4), (64, 6)])
def test_patch_discriminator_scores_and_features(size: int, patch: int) -> None:
    d = PatchDiscriminator(ndf=8, n_layers=3)
    x = torch.randn(2, 1, size, size)
    scores, feats = d.forward_with_features(x)
    assert scores.shape == (2, 1, patch, patch)
    assert feats.shape == (2, 64, patch + 1, patch + 1)
    assert torch.equal(d(x), scores) and torch.equal(d.features(x), feats)


def test_generator_rejects_sizes_not_divisible_by_4() -> None:
    with pytest.raises(ValueError, match=r"divisible by 4, got \(50, 50\)"):
        ResnetGenerator(ngf=4, n_blocks=1)(torch.randn(1, 1, 50, 50))


def test_init_weights_follows_the_paper() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=32, n_blocks=2)
    init_weights(g)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
