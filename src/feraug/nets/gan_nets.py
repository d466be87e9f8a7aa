"""CycleGAN networks: the ResNet generator and the PatchGAN discriminator / critic.

Architecture after Zhu et al. 2017 ("Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", appendix 7.2), as used by both seeds:

* generator ``c7s1-ngf, d2ngf, d4ngf, R4ngf x n_blocks, u2ngf, ungf, c7s1-out`` + tanh; at 48x48
  the residual blocks run at 12x12. With ``output="residual"`` (residual image learning, Shen & Liu
  2017) the last layer predicts a *change* added to the input, ``clamp(input + Δ, -1, 1)``: an
  expression edit then only has to draw what differs, and identity, pose and even sensor noise
  pass through pixel for pixel instead of being re-synthesized through the 12x12 bottleneck.
* Enhanced-CycleGAN generator (Zhang et al. 2020, Pasini et al.): the same stem, down- and upsamplings
  and head around a body of ``n_rdnb`` residual-in-residual dense blocks (RDNB, ESRGAN's RRDB,
  Wang et al. 2018) instead of the residual blocks, see :class:`RDNBGenerator`.
* PatchGAN ``C64-C128-C256-C512`` (``n_layers`` stride-2/1 stages) ending in a 1-channel map of
  per-patch scores; at 48x48 with ``n_layers=3`` each of its 4x4 outputs sees a 70x70-style patch
  clipped to the image. The same network is the Wasserstein *critic* (no sigmoid is ever applied
  inside; the loss decides what the raw score means), and :meth:`PatchDiscriminator.features`
  exposes its last feature layer for Birenbaum's weighted cycle loss.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from torch import nn

Norm = Literal["instance", "batch", "none"]
Output = Literal["image", "residual"]


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm without affine or running statistics, as ``F.instance_norm(x, eps=eps)`` computes it.

    On CPU it runs as group norm with one group per channel, the same function: PyTorch's instance norm
    reshapes to a ``[1, N*C, H, W]`` batch norm whose CPU kernel is ~2x slower, forward and backward, at the
    generators' sizes (1.13 vs 0.72 ms at 16x256x12x12, 4.4 vs 2.6 ms at 16x64x48x48; 2 threads). Other
    devices keep the library instance norm (under CUDA autocast group norm would run in float32).
    """
    if x.device.type == "cpu":
        return F.group_norm(x, x.shape[1], eps=eps)
    return F.instance_norm(x, eps=eps)


class InstanceNorm2d(nn.Module):
    """:func:`instance_norm` as a layer; like ``nn.InstanceNorm2d(affine=False)`` it has no state."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x)


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """Instance norm (no affine, no running stats: CycleGAN's default), batch norm, or identity."""
    if kind == "instance":
        return InstanceNorm2d()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: expected instance, batch or none")


class StemConv2d(nn.Conv2d):
    """Stride-1, unpadded conv for few input channels, run on CPU as one im2col GEMM.

    oneDNN's direct kernels are ~2x slower than ``unfold`` + ``matmul`` for the generator's 7x7 stem on a
    1-channel face (the im2col matrix is only ``49 x H*W``). Same parameters as :class:`torch.nn.Conv2d`, so
    checkpoints are interchangeable; other devices use the library convolution.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        n, _, h, w = x.shape
        kh, kw = self.kernel_size
        y = torch.matmul(self.weight.reshape(self.out_channels, -1), F.unfold(x, self.kernel_size))
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1)
        return y.view(n, self.out_channels, h - kh + 1, w - kw + 1)


class HeadConv2d(nn.Conv2d):
    """Stride-1, unpadded conv to few output channels, run on CPU as a GEMM plus a ``fold``.

    oneDNN runs the generator's ``64 -> 1`` 7x7 output conv (and its backward) at a few GFLOP/s. Here every
    kernel tap ``t`` is a 1x1 projection ``z_t = W_t · x`` (one ``k² x C`` GEMM over all pixels) and the output
    is ``y[p] = Σ_t z_t[p + t]``, which :func:`torch.nn.functional.fold` computes when the taps are flipped.
    Measured ~2.5x faster forward + backward than the library conv at batch 1-3.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        co = self.out_channels
        # taps in reverse order: fold scatters block l to l + t, the conv gathers p + t into p
        proj = self.weight.permute(2, 3, 0, 1).flip(0, 1).reshape(kh * kw * co, c)
        z = torch.matmul(proj, x.reshape(n, c, h * w))  # [N, k²·C_out, H·W], tap-major like fold wants
        z = z.view(n, kh * kw, co, h * w).transpose(1, 2).reshape(n, co * kh * kw, h * w)
        y = F.fold(z, (h + kh - 1, w + kw - 1), self.kernel_size)[:, :, kh - 1 : h, kw - 1 : w]
        return y + self.bias.view(1, -1, 1, 1) if self.bias is not None else y


class ResizeConv2d(nn.Conv2d):
    """Nearest x2 upsampling, reflection padding of 1 and a 3x3 conv, computed at the low resolution.

    A resize-convolution (no checkerboard: every output pixel gets the same taps; Odena et al. 2016)
    done literally convolves a 4x larger map in which each pixel is repeated, so 9 taps per output
    pixel read only 4 distinct inputs. Here the four output phases ``(a, b)`` (row and column
    parity) are 2x2 convolutions of the input padded by replication (the upsampled map's reflected
    border repeats the edge pixel), each with the 3x3 kernel's taps summed where they read the same
    input pixel; one conv computes all four, and the phases are interleaved. Same parameters and the
    same function as the literal form (tested), 2.25x fewer multiply-adds.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 3, bias=bias)
        # _TAPS[a, i, r]: which of the 3x3 kernel's rows r land on phase a's tap i (columns alike)
        self.register_buffer("_taps", torch.tensor([[[1.0, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]]),
                             persistent=False)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        co = self.out_channels
        taps = self._taps.to(self.weight.dtype)
        kernels = torch.einsum("air,ocrs,bjs->abocij", taps, self.weight, taps).reshape(4 * co, -1, 2, 2)
        bias = self.bias.repeat(4) if self.bias is not None else None
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels, bias).contiguous()  # [N, 4·C_out, H+1, W+1]
        # out[n, c, i, a, j, b] = y[n, (a, b, c), i + a, j + b]: phase (a, b) sits a rows and b columns further on,
        # so all four are one strided view of y (one copy forward, one scatter backward, instead of four slices)
        s_c, s_row = (h + 1) * (w + 1), w + 1
        phases = y.as_strided((n, co, h, 2, w, 2), (4 * co * s_c, s_c, s_row, 2 * co * s_c + s_row, 1, co * s_c + 1))
        return phases.reshape(n, co, 2 * h, 2 * w)  # [N, C, H, 2, W, 2] -> [N, C, 2H, 2W]


class ResidualBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)`` with reflection padding (no dropout, as in the seeds)."""

    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        bias = norm == "instance"
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _check_generator(in_channels: int, out_channels: int, output: Output) -> None:
    if output not in ("image", "residual"):
        raise ValueError(f"unknown generator output {output!r}: expected image or residual")
    if output == "residual" and in_channels != out_channels:
        raise ValueError(f"residual output adds to the input: needs in_channels == out_channels, "
                         f"got {in_channels} and {out_channels}")  # fmt: skip


def _encoder_layers(in_channels: int, ngf: int, norm: Norm) -> list[nn.Module]:
    """``c7s1-ngf, d2ngf, d4ngf``: the 7x7 stem and 2 stride-2 downsamplings to ``4 ngf`` channels at H/4."""
    bias = norm == "instance"
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3),
        StemConv2d(in_channels, ngf, 7, bias=bias),
        norm_layer(norm, ngf),
        nn.ReLU(inplace=True),
    ]
    for mult in (1, 2):
        layers += [
            nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
            norm_layer(norm, ngf * mult * 2),
            nn.ReLU(inplace=True),
        ]
    return layers


def _decoder_layers(ngf: int, out_channels: int, norm: Norm) -> list[nn.Module]:
    """``u2ngf, ungf, c7s1-out``: 2 stride-2 upsamplings from ``4 ngf`` channels and the 7x7 head (last)."""
    bias = norm == "instance"
    layers: list[nn.Module] = []
    for mult in (4, 2):
        layers += [
            nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
            norm_layer(norm, ngf * mult // 2),
            nn.ReLU(inplace=True),
        ]
    return [*layers, nn.ReflectionPad2d(3), HeadConv2d(ngf, out_channels, 7)]


class TranslationGenerator(nn.Module):
    """Base of the image-to-image generators: ``self.net`` runs stem, downsamplings, body, upsamplings, head.

    Input and output are ``float [N, C, H, W]`` in [-1, 1]; H and W must be multiples of 4. The output is
    ``tanh`` of the head (``output="image"``) or ``clamp(input + head, -1, 1)`` (``output="residual"``).
    """

    net: nn.Sequential
    output: Output

    @property
    def head(self) -> HeadConv2d:
        """The output conv (zero-initialised for residual output, see :func:`init_weights`)."""
        return self.net[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"generator input must have H and W divisible by 4, got {tuple(x.shape[-2:])}")
        h = self.net(x)
        if self.output == "image":
            return torch.tanh(h)
        return (x + h).clamp(-1.0, 1.0)


class ResnetGenerator(TranslationGenerator):
    """Image-to-image generator: 2 stride-2 downsamplings, ``n_blocks`` residual blocks, 2 upsamplings.

    Input and output are ``float [N, C, H, W]`` in [-1, 1]; H and W must be multiples of 4.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, ngf: int = 64, n_blocks: int = 6,
                 norm: Norm = "instance", output: Output = "image") -> None:  # fmt: skip
        super().__init__()
        if n_blocks < 0 or ngf < 1:
            raise ValueError(f"need ngf >= 1 and n_blocks >= 0, got ngf={ngf}, n_blocks={n_blocks}")
        _check_generator(in_channels, out_channels, output)
        self.arch = {"in_channels": in_channels, "out_channels": out_channels, "ngf": ngf, "n_blocks": n_blocks,
                     "norm": norm, "output": output}  # fmt: skip
        self.output = output
        layers = _encoder_layers(in_channels, ngf, norm)
        layers += [ResidualBlock(ngf * 4, norm) for _ in range(n_blocks)]
        layers += _decoder_layers(ngf, out_channels, norm)
        self.net = nn.Sequential(*layers)


class DenseBlock(nn.Module):
    """ESRGAN's residual dense block: ``x + res_scale · conv_n(cat(x, o_1, ..., o_{n-1}))``.

    Sub-block ``i < n`` is ``o_i = lrelu_0.2(conv_i(cat(x, o_1, ..., o_{i-1})))`` with ``growth`` output
    channels; the last conv maps all of them back to ``channels`` without activation. Every conv is 3x3 with
    bias and *zero* padding, as in ESRGAN's RRDB: reflection padding (:class:`ResidualBlock`'s) costs an
    ``F.pad`` copy and its backward for every conv on a dense input that keeps growing, ~1.2x the time of a
    3-conv block at 128 channels, 12x12, batch 4 on CPU.
    """

    def __init__(self, channels: int, growth: int, n_sub_blocks: int, res_scale: float) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth if i < n_sub_blocks - 1 else channels, 3, padding=1)
            for i in range(n_sub_blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs[:-1]:
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2, inplace=True))
        return x + self.res_scale * self.convs[-1](torch.cat(features, 1))


class RDNB(nn.Module):
    """Residual-in-residual dense block: ``x + res_scale · DB_n(... DB_1(x))`` (ESRGAN's RRDB)."""

    def __init__(self, channels: int, growth: int, n_dense_blocks: int, n_sub_blocks: int, res_scale: float) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.blocks = nn.Sequential(
            *(DenseBlock(channels, growth, n_sub_blocks, res_scale) for _ in range(n_dense_blocks))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.blocks(x)


class RDNBGenerator(TranslationGenerator):
    """Enhanced-CycleGAN generator: :class:`ResnetGenerator` with ``n_rdnb`` :class:`RDNB` as its body.

    Stem, downsamplings, upsamplings, head, ``norm`` and ``output`` are exactly :class:`ResnetGenerator`'s;
    the ``n_rdnb`` blocks run at ``4 ngf`` channels and H/4 x W/4 (12x12 for 48x48 faces). Zhang et al. 2020
    use 3 dense blocks of 5 sub-blocks per RDNB; Pasini et al. could only afford 2 and 3 and tuned the residual
    scaling ``res_scale`` (α) over 0.3 / 0.5 / 0.7 (best 0.5); ESRGAN's α is 0.2. With α = 0 every dense
    block and every RDNB is the identity.

    No normalisation inside the RDNBs (``norm`` only applies to stem, down- and upsamplings), as in ESRGAN:
    Wang et al. removed batch norm from the RRDB because it produced artifacts and hurt generalisation when
    training and test statistics differ, and an instance norm would rescale every growth slice of the dense
    concatenation to unit contrast. The residual scaling keeps the deep branches near the identity instead,
    and the body's input is already normalised by the last downsampling.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, ngf: int = 64, n_rdnb: int = 3,
                 n_dense_blocks: int = 3, n_sub_blocks: int = 5, growth: int = 32, res_scale: float = 0.2,
                 norm: Norm = "instance", output: Output = "image") -> None:  # fmt: skip
        super().__init__()
        if ngf < 1 or n_rdnb < 0 or n_dense_blocks < 1 or n_sub_blocks < 1 or growth < 1:
            raise ValueError(f"need ngf, n_dense_blocks, n_sub_blocks, growth >= 1 and n_rdnb >= 0, got ngf={ngf}, "
                             f"n_rdnb={n_rdnb}, n_dense_blocks={n_dense_blocks}, n_sub_blocks={n_sub_blocks}, "
                             f"growth={growth}")  # fmt: skip
        if not res_scale >= 0.0:
            raise ValueError(f"need res_scale >= 0, got {res_scale}")
        _check_generator(in_channels, out_channels, output)
        res_scale = float(res_scale)
        self.arch = {"name": "rdnb-generator", "in_channels": in_channels, "out_channels": out_channels, "ngf": ngf,
                     "n_rdnb": n_rdnb, "n_dense_blocks": n_dense_blocks, "n_sub_blocks": n_sub_blocks,
                     "growth": growth, "res_scale": res_scale, "norm": norm, "output": output}  # fmt: skip
        self.output = output
        layers = _encoder_layers(in_channels, ngf, norm)
        layers += [RDNB(ngf * 4, growth, n_dense_blocks, n_sub_blocks, res_scale) for _ in range(n_rdnb)]
        layers += _decoder_layers(ngf, out_channels, norm)
        self.net = nn.Sequential(*layers)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator / Wasserstein critic returning a map of raw per-patch scores."""

    def __init__(self, in_channels: int = 1, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.arch = {"in_channels": in_channels, "ndf": ndf, "n_layers": n_layers, "norm": norm}
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=bias), norm_layer(norm, out),
                       nn.LeakyReLU(0.2, True)]  # fmt: skip
            ch = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, 4, stride=1, padding=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature layer ``f_D(x)`` (input of the scoring conv), used by the weighted cycle loss."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and features from one pass (the weighted cycle loss needs both for real images)."""
        f = self.body(x)
        return self.head(f), f


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """CycleGAN-paper init: conv weights ~ N(0, 0.02), biases 0, norm scales ~ N(1, 0.02).

    A residual-output generator's last conv starts at zero, so the generator starts as the exact identity.
    With the paper init its first change would be noise of std ~0.5 over the whole face, which the cycle and
    identity losses then spend hundreds of steps removing (zero-initialising the last layer of a residual
    branch is the usual remedy, as in Goyal et al. 2017 and ControlNet).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, TranslationGenerator) and m.output == "residual":
            nn.init.zeros_(m.head.weight)
            if m.head.bias is not None:
                nn.init.zeros_(m.head.bias)
