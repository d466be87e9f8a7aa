"""CycleGAN networks: the ResNet generator and the PatchGAN discriminator / critic.

Architecture after Zhu et al. 2017 ("Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", appendix 7.2), as used by both seeds:

* generator ``c7s1-ngf, d2ngf, d4ngf, R4ngf x n_blocks, u2ngf, ungf, c7s1-out`` + tanh; at 48x48
  the residual blocks run at 12x12.
* PatchGAN ``C64-C128-C256-C512`` (``n_layers`` stride-2/1 stages) ending in a 1-channel map of
  per-patch scores; at 48x48 with ``n_layers=3`` each of its 4x4 outputs sees a 70x70-style patch
  clipped to the image. The same network is the Wasserstein *critic* (no sigmoid is ever applied
  inside; the loss decides what the raw score means), and :meth:`PatchDiscriminator.features`
  exposes its last feature layer for seed 000's weighted cycle loss.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Norm = Literal["instance", "batch", "none"]


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """Instance norm (no affine, no running stats: CycleGAN's default), batch norm, or identity."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: expected instance, batch or none")


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


class ResnetGenerator(nn.Module):
    """Image-to-image generator: 2 stride-2 downsamplings, ``n_blocks`` residual blocks, 2 upsamplings.

    Input and output are ``float [N, C, H, W]`` in [-1, 1]; H and W must be multiples of 4.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, ngf: int = 64, n_blocks: int = 6,
                 norm: Norm = "instance") -> None:  # fmt: skip
        super().__init__()
        if n_blocks < 0 or ngf < 1:
            raise ValueError(f"need ngf >= 1 and n_blocks >= 0, got ngf={ngf}, n_blocks={n_blocks}")
        self.arch = {"in_channels": in_channels, "out_channels": out_channels, "ngf": ngf, "n_blocks": n_blocks,
                     "norm": norm}  # fmt: skip
        bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(inplace=True),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, ngf * mult * 2),
                nn.ReLU(inplace=True),
            ]
        layers += [ResidualBlock(ngf * 4, norm) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                norm_layer(norm, ngf * mult // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"generator input must have H and W divisible by 4, got {tuple(x.shape[-2:])}")
        return self.net(x)


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
    """CycleGAN-paper init: conv weights ~ N(0, 0.02), biases 0, norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
