"""Enhanced-CycleGAN RDNB generator: shapes, parameter counts, α = 0 identity, init, registry, gradients."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from feraug.nets.gan_nets import RDNB, DenseBlock, HeadConv2d, RDNBGenerator, ResnetGenerator, init_weights
from feraug.nets.registry import build_gan_net

SMALL = {"ngf": 8, "n_rdnb": 2, "n_dense_blocks": 2, "n_sub_blocks": 3, "growth": 4}


def expected_params(cin: int, cout: int, ngf: int, n_rdnb: int, n_db: int, n_sub: int, g: int, norm: str) -> int:
    """Parameter count from the conv shapes (a k x k conv ``ci -> co`` has ``k²·ci·co`` weights + ``co`` biases).

    Stem, down- and upsamplings have biases only with instance norm; batch norm adds 2 per channel of its 5
    layers (``ngf, 2ngf, 4ngf, 2ngf, ngf``). The head and every dense-block conv have biases. A dense block on
    ``C = 4 ngf`` channels has ``n - 1`` growth convs ``C + i·g -> g`` (i = 0 .. n-2) and one ``C + (n-1)·g -> C``:

        DB = 9g·[(n-1)·C + g·(n-1)(n-2)/2] + (n-1)·g  +  9C·(C + (n-1)·g) + C
    """
    b = norm == "instance"
    c, n = 4 * ngf, n_sub
    stem = 49 * cin * ngf + b * ngf
    down = 9 * ngf * 2 * ngf + b * 2 * ngf + 9 * 2 * ngf * 4 * ngf + b * 4 * ngf
    up = 9 * 4 * ngf * 2 * ngf + b * 2 * ngf + 9 * 2 * ngf * ngf + b * ngf
    head = 49 * ngf * cout + cout
    bn = 2 * (ngf + 2 * ngf + 4 * ngf + 2 * ngf + ngf) if norm == "batch" else 0
    db = 9 * g * ((n - 1) * c + g * (n - 1) * (n - 2) // 2) + (n - 1) * g + 9 * c * (c + (n - 1) * g) + c
    return stem + down + n_rdnb * n_db * db + up + head + bn


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("size", [48, 64])
@pytest.mark.parametrize("output", ["image", "residual"])
def test_rdnb_generator_keeps_shape_and_range(size: int, output: str) -> None:
    torch.manual_seed(0)
    g = RDNBGenerator(**SMALL, output=output)  # type: ignore[arg-type]
    x = torch.rand(3, 1, size, size) * 2 - 1
    y = g(x)
    assert y.shape == (3, 1, size, size)
    assert y.abs().max() <= 1.0
    body_in = g.net[:10](x)  # stem + 2 downsamplings: the RDNBs run at 4 ngf channels and H/4
    assert body_in.shape == (3, 32, size // 4, size // 4)
    assert isinstance(g.net[10], RDNB) and isinstance(g.net[11], RDNB) and isinstance(g.head, HeadConv2d)


@pytest.mark.parametrize(
    ("cin", "cout", "ngf", "n_rdnb", "n_db", "n_sub", "growth", "norm"),
    [
        (1, 1, 64, 3, 3, 5, 32, "instance"),  # the class defaults (paper dense blocks)
        (1, 1, 64, 2, 2, 3, 32, "instance"),  # Pasini et al.'s reduced RDNB
        (1, 1, 8, 1, 3, 5, 4, "batch"),
        (3, 2, 6, 2, 1, 1, 5, "none"),  # a one-conv dense block: C -> C, no growth convs
        (1, 1, 4, 0, 3, 5, 4, "instance"),  # no body at all
    ],
)
def test_parameter_count_matches_the_conv_shapes(
    cin: int, cout: int, ngf: int, n_rdnb: int, n_db: int, n_sub: int, growth: int, norm: str
) -> None:
    g = RDNBGenerator(cin, cout, ngf, n_rdnb, n_db, n_sub, growth, norm=norm)  # type: ignore[arg-type]
    assert n_params(g) == expected_params(cin, cout, ngf, n_rdnb, n_db, n_sub, growth, norm)
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == 3 + n_rdnb * n_db * n_sub + 2 + 1


def test_default_parameter_count_by_hand() -> None:
    # stem 3,200 + down 369,024 + up 368,832 + head 3,137 (as ResnetGenerator's) + 9 dense blocks of
    # 288·(4·256 + 32·6) + 4·32 + 9·256·384 + 256 = 1,235,328
    assert n_params(RDNBGenerator()) == 744_193 + 9 * 1_235_328 == 11_862_145
    assert n_params(ResnetGenerator()) == 7_825_153


def test_dense_block_computes_the_esrgan_formula() -> None:
    torch.manual_seed(0)
    block = DenseBlock(6, 3, 4, res_scale=0.3)
    x = torch.randn(2, 6, 5, 7)
    feats = [x]
    for conv in block.convs[:3]:
        assert conv.out_channels == 3 and conv.padding == (1, 1) and conv.padding_mode == "zeros"
        feats.append(F.leaky_relu(F.conv2d(torch.cat(feats, 1), conv.weight, conv.bias, padding=1), 0.2))
    last = block.convs[3]
    assert (last.in_channels, last.out_channels) == (6 + 3 * 3, 6)
    want = x + 0.3 * F.conv2d(torch.cat(feats, 1), last.weight, last.bias, padding=1)
    torch.testing.assert_close(block(x), want)
    rdnb = RDNB(6, 3, 2, 4, res_scale=0.3)
    torch.testing.assert_close(rdnb(x), x + 0.3 * rdnb.blocks[1](rdnb.blocks[0](x)))


def test_zero_res_scale_makes_every_block_the_identity() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 16, 12, 12)
    assert torch.equal(DenseBlock(16, 4, 3, res_scale=0.0)(x), x)
    assert torch.equal(RDNB(16, 4, 2, 3, res_scale=0.0)(x), x)
    assert not torch.equal(DenseBlock(16, 4, 3, res_scale=0.5)(x), x)
    g = RDNBGenerator(**SMALL, res_scale=0.0)
    init_weights(g)
    for m in g.modules():
        if isinstance(m, DenseBlock | RDNB):
            assert torch.equal(m(x.repeat(1, 2, 1, 1)), x.repeat(1, 2, 1, 1))
    # the whole body vanishes: the generator is its stem, downsamplings, upsamplings and head alone
    bare = nn.Sequential(*(m for m in g.net if not isinstance(m, RDNB)))
    img = torch.rand(2, 1, 48, 48) * 2 - 1
    assert torch.equal(g.net(img), bare(img))


def test_residual_rdnb_generator_starts_as_the_identity() -> None:
    torch.manual_seed(0)
    g = RDNBGenerator(**SMALL, res_scale=0.5, output="residual")
    init_weights(g)
    assert g.head.weight.abs().sum() == 0 and g.head.bias.abs().sum() == 0
    x = torch.rand(2, 1, 48, 48) * 2 - 1
    assert torch.equal(g(x), x)
    g(x).sum().backward()  # the zero head still learns: its gradient is the features, not zero
    assert g.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("output", ["image", "residual"])
def test_build_gan_net_rebuilds_the_generator(output: str) -> None:
    torch.manual_seed(0)
    g = RDNBGenerator(1, 1, 8, 2, 2, 3, 4, 0.5, "instance", output)  # type: ignore[arg-type]
    init_weights(g)
    assert g.arch == {"name": "rdnb-generator", "in_channels": 1, "out_channels": 1, "ngf": 8, "n_rdnb": 2,
                      "n_dense_blocks": 2, "n_sub_blocks": 3, "growth": 4, "res_scale": 0.5, "norm": "instance",
                      "output": output}  # fmt: skip
    with torch.no_grad():
        g.head.weight.normal_(0, 0.02)  # a residual head that is no longer zero
    rebuilt = build_gan_net(dict(g.arch))
    assert type(rebuilt) is RDNBGenerator and rebuilt.arch == g.arch
    assert list(rebuilt.state_dict()) == list(g.state_dict())
    rebuilt.load_state_dict(g.state_dict(), strict=True)
    x = torch.rand(2, 1, 48, 48) * 2 - 1
    assert torch.equal(rebuilt(x), g(x))


def test_arch_records_every_constructor_argument() -> None:
    params = inspect.signature(RDNBGenerator).parameters
    assert set(RDNBGenerator(ngf=4).arch) == {"name", *params}
    res_scale = RDNBGenerator(ngf=4, res_scale=1).arch["res_scale"]
    assert res_scale == 1.0 and type(res_scale) is float  # a checkpoint's arch compares the same either way


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    g = RDNBGenerator(**SMALL, res_scale=0.5)
    init_weights(g)
    x = torch.rand(2, 1, 48, 48) * 2 - 1
    (g(x) - x).square().mean().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_rdnb_generator_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="unknown generator output 'mask'"):
        RDNBGenerator(**SMALL, output="mask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs in_channels == out_channels, got 1 and 3"):
        RDNBGenerator(1, 3, **SMALL, output="residual")
    with pytest.raises(ValueError, match="n_sub_blocks=0"):
        RDNBGenerator(ngf=4, n_sub_blocks=0)
    with pytest.raises(ValueError, match="res_scale >= 0"):
        RDNBGenerator(ngf=4, res_scale=-0.1)
    with pytest.raises(ValueError, match=r"divisible by 4, got \(50, 50\)"):
        RDNBGenerator(**SMALL)(torch.randn(1, 1, 50, 50))


_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_resnet_generator_state_dict_keys_are_unchanged(norm: str) -> None:
    """Existing CycleGAN checkpoints must keep loading: ResnetGenerator's layer indices are frozen."""
    if norm == "instance":
        convs = ["1", "4", "7", "10.body.1", "10.body.5", "11", "14"]
        want = [f"net.{c}.{k}" for c in convs for k in ("weight", "bias")]
    else:  # no conv biases, batch norms after every conv but the head
        layers = [("1", "2"), ("4", "5"), ("7", "8"), ("10.body.1", "10.body.2"), ("10.body.5", "10.body.6"),
                  ("11", "12"), ("14", "15")]  # fmt: skip
        want = [k for c, n in layers for k in [f"net.{c}.weight", *(f"net.{n}.{s}" for s in _BN)]]
    want += ["net.18.weight", "net.18.bias"]
    assert list(ResnetGenerator(ngf=4, n_blocks=1, norm=norm).state_dict()) == want  # type: ignore[arg-type]
