"""CycleGAN networks: shapes at 48x48 and 64x64, features, init, bad arguments."""

from __future__ import annotations

import pytest
import torch

from feraug.nets.gan_nets import (
    HeadConv2d,
    PatchDiscriminator,
    ResizeConv2d,
    ResnetGenerator,
    StemConv2d,
    init_weights,
    instance_norm,
    norm_layer,
)


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


def test_residual_generator_starts_as_the_identity() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=8, n_blocks=2, output="residual")
    init_weights(g)
    x = torch.rand(2, 1, 48, 48) * 2 - 1
    assert torch.equal(g(x), x)
    g(x).sum().backward()  # the zero head still learns: its gradient is the features, not zero
    assert g.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("cls", "cin", "cout"), [(StemConv2d, 1, 16), (StemConv2d, 3, 5), (HeadConv2d, 16, 1),
                                                  (HeadConv2d, 8, 3)])  # fmt: skip
@pytest.mark.parametrize("bias", [True, False])
def test_cpu_fast_convs_equal_the_library_conv(cls: type[torch.nn.Conv2d], cin: int, cout: int, bias: bool) -> None:
    torch.manual_seed(0)
    fast = cls(cin, cout, 7, bias=bias)
    ref = torch.nn.Conv2d(cin, cout, 7, bias=bias)
    ref.load_state_dict(fast.state_dict())  # same parameters, so checkpoints are interchangeable
    x = torch.randn(2, cin, 20, 17, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = fast(x), ref(x_ref)
    assert y.shape == y_ref.shape == (2, cout, 14, 11)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-4, atol=2e-4)
    if bias:
        torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=1e-4, atol=2e-4)


@pytest.mark.parametrize(("shape", "cout", "bias"), [((2, 5, 6, 7), 3, True), ((1, 8, 12, 12), 4, False),
                                                    ((1, 2, 1, 3), 2, True)])  # fmt: skip
def test_resize_conv_equals_nearest_upsampling_reflection_pad_and_a_3x3_conv(
        shape: tuple[int, int, int, int], cout: int, bias: bool) -> None:  # fmt: skip
    torch.manual_seed(0)
    fast = ResizeConv2d(shape[1], cout, bias=bias).double()
    literal = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode="nearest"), torch.nn.ReflectionPad2d(1),
                                  torch.nn.Conv2d(shape[1], cout, 3, bias=bias)).double()  # fmt: skip
    literal[2].load_state_dict(fast.state_dict())  # the same parameters, so checkpoints are interchangeable
    x = torch.randn(*shape, dtype=torch.double, requires_grad=True)
    y, y_ref = fast(x), literal(x)
    assert y.shape == (shape[0], cout, 2 * shape[2], 2 * shape[3])
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)  # float64: the rounding floor is ~1e-14
    g = torch.randn_like(y)
    got = torch.autograd.grad((y * g).sum(), [x, *fast.parameters()])
    want = torch.autograd.grad((y_ref * g).sum(), [x, *literal[2].parameters()])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(2, 5, 6, 7), (1, 3, 1, 4), (3, 2, 12, 12)])
def test_instance_norm_equals_the_library_instance_norm(shape: tuple[int, int, int, int]) -> None:
    torch.manual_seed(0)
    x = (torch.randn(*shape, dtype=torch.double) * 3 + 1).requires_grad_()
    g = torch.randn(*shape, dtype=torch.double)
    y, y_ref = instance_norm(x), torch.nn.functional.instance_norm(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)  # float64: the same function
    got, want = (torch.autograd.grad((v * g).sum(), x)[0] for v in (y, y_ref))
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    layer = norm_layer("instance", shape[1])
    assert dict(layer.state_dict()) == {}  # no state, as nn.InstanceNorm2d(affine=False): checkpoints unchanged
    torch.testing.assert_close(layer(x), y_ref, rtol=1e-10, atol=1e-10)


def test_residual_generator_adds_a_change_to_its_input() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=8, n_blocks=1, output="residual")
    assert g.arch["output"] == "residual"
    x = torch.rand(2, 1, 48, 48) * 1.6 - 0.8
    y = g(x)
    assert y.shape == (2, 1, 48, 48) and y.abs().max() <= 1.0
    torch.testing.assert_close(y, (x + g.net(x)).clamp(-1, 1))
    head = g.net[-1]
    with torch.no_grad():  # no predicted change: the input passes through pixel for pixel, noise included
        head.weight.zero_()
        head.bias.zero_()
    assert torch.equal(g(x), x)
    with torch.no_grad():  # a large change saturates at the valid range
        head.bias.fill_(5.0)
    assert torch.equal(g(x), torch.ones_like(x))


def test_generator_output_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown generator output 'mask'"):
        ResnetGenerator(ngf=4, n_blocks=1, output="mask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs in_channels == out_channels, got 1 and 3"):
        ResnetGenerator(1, 3, ngf=4, n_blocks=1, output="residual")
