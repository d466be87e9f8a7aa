"""Networks of the noise GANs (Birenbaum's "Fake GAN"): DCGAN generator and discriminator / critic.

One generator and one discriminator serve three families:

* **DCGAN** (Radford et al. 2016, as Birenbaum describes it): ``z`` (100-d) is projected to a
  ``4·ngf x 6 x 6`` map, then three stride-2 transposed convolutions with batch norm and ReLU
  grow it to ``1 x 48 x 48`` with tanh out; the discriminator mirrors it with stride-2
  convolutions, batch norm and LeakyReLU(0.2), ending in one logit (the loss applies the sigmoid).
* **WGAN-GP** (Gulrajani et al. 2017): the same discriminator without batch norm (``d_norm="none"``
  or ``"layer"``): batch norm makes each critic score depend on the rest of the batch, which the
  per-sample gradient penalty assumes it does not.
* **class-conditional GAN**: with ``n_classes > 0`` the generator conditions every batch norm on
  the class (conditional batch norm: a per-class scale and shift, de Vries et al. 2017); the
  discriminator adds the projection term ``<embed(y), φ(x)>`` to its score (Miyato & Koyama 2018),
  which lets one network judge all seven emotions, and can carry an auxiliary class head (AC-GAN,
  Odena et al. 2017) whose cross-entropy teaches the class faster than the projection alone.
  With ``label_input=True`` the generator also reads ``[z, embed(y)]``: the strongest class
  signal, and on FER2013 the cause of a per-class collapse (G ignored z and drew one face per
  class, ``benchmarks/cdcgan_collapse_probe.py``) unless the model's mode-seeking term is on.
  Without it the class enters through the batch norms alone, which keeps z alive but teaches the
  class slowly.

Both networks carry ``arch`` (their constructor arguments) so a checkpoint rebuilds them by name.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

DNorm = Literal["batch", "layer", "none"]


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine, then a per-class scale and shift (identity at init)."""

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(n_classes, channels)
        self.shift = nn.Embedding(n_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.scale(y)[:, :, None, None] + self.shift(y)[:, :, None, None]


class _GenBlock(nn.Module):
    """Transposed conv (x2 upsampling), (conditional) batch norm, ReLU."""

    def __init__(self, c_in: int, c_out: int, n_classes: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
        self.norm = ConditionalBatchNorm2d(c_out, n_classes) if n_classes else nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        x = self.conv(x)
        x = self.norm(x, y) if isinstance(self.norm, ConditionalBatchNorm2d) else self.norm(x)
        return torch.relu(x)


class NoiseGenerator(nn.Module):
    """``z [B, z_dim]`` (+ class ``y [B]``) -> faces ``[B, 1, size, size]`` in [-1, 1]."""

    def __init__(self, z_dim: int = 100, ngf: int = 64, size: int = 48, n_classes: int = 0,
                 label_input: bool = True) -> None:  # fmt: skip
        super().__init__()
        if size % 8:
            raise ValueError(f"the noise generator needs a size divisible by 8 (three x2 upsamplings), got {size}")
        self.arch: dict[str, Any] = {"name": "dcgan-generator", "z_dim": z_dim, "ngf": ngf, "size": size,
                                     "n_classes": n_classes}  # fmt: skip
        if n_classes and not label_input:  # recorded only when off: older arches (no key) rebuild as they were
            self.arch["label_input"] = False
        self.z_dim, self.n_classes, self.base = z_dim, n_classes, size // 8
        c0 = 4 * ngf
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes and label_input else None
        self.project = nn.Linear(z_dim * (2 if self.embed is not None else 1), c0 * self.base * self.base, bias=False)
        self.norm0 = ConditionalBatchNorm2d(c0, n_classes) if n_classes else nn.BatchNorm2d(c0)
        self.blocks = nn.ModuleList([_GenBlock(c0, 2 * ngf, n_classes), _GenBlock(2 * ngf, ngf, n_classes)])
        self.out = nn.ConvTranspose2d(ngf, 1, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes and y is None:
            raise ValueError("this generator is class-conditional: pass the class labels y")
        h = torch.cat([z, self.embed(y)], 1) if self.embed is not None else z
        x = self.project(h).view(z.shape[0], -1, self.base, self.base)
        x = self.norm0(x, y) if isinstance(self.norm0, ConditionalBatchNorm2d) else self.norm0(x)
        x = torch.relu(x)
        for block in self.blocks:
            x = block(x, y)
        return torch.tanh(self.out(x))


def _d_norm(kind: DNorm, channels: int, side: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per-sample: allowed in a WGAN-GP critic
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown discriminator norm {kind!r}: expected batch, layer or none")


class NoiseDiscriminator(nn.Module):
    """Faces ``[B, 1, size, size]`` (+ class ``y``) -> one raw score per face ``[B]``."""

    def __init__(self, ndf: int = 64, size: int = 48, norm: DNorm = "batch", n_classes: int = 0,
                 aux_classifier: bool = False) -> None:  # fmt: skip
        super().__init__()
        if size % 8:
            raise ValueError(f"the noise discriminator needs a size divisible by 8, got {size}")
        if aux_classifier and n_classes < 2:
            raise ValueError(f"an auxiliary class head needs at least 2 classes, got n_classes={n_classes}")
        self.arch: dict[str, Any] = {"name": "dcgan-discriminator", "ndf": ndf, "size": size, "norm": norm,
                                     "n_classes": n_classes}  # fmt: skip
        if aux_classifier:  # recorded only when on: older arches (no key) rebuild as they were
            self.arch["aux_classifier"] = True
        layers: list[nn.Module] = [nn.Conv2d(1, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c, side = ndf, size // 2
        for _ in range(2):  # DCGAN: no norm on the first layer
            side //= 2
            layers += [nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=norm == "none"), _d_norm(norm, 2 * c, side),
                       nn.LeakyReLU(0.2)]  # fmt: skip
            c *= 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.features_dim = c * side * side
        self.score = nn.Linear(self.features_dim, 1)
        self.embed = nn.Embedding(n_classes, self.features_dim) if n_classes else None
        self.classify = nn.Linear(self.features_dim, n_classes) if aux_classifier else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_logits(x, y)[0]

    def forward_with_logits(self, x: torch.Tensor, y: torch.Tensor | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """Scores ``[B]`` and, with an auxiliary class head, its class logits ``[B, n_classes]`` (else None)."""
        h = self.body(x)
        out = self.score(h).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is class-conditional: pass the class labels y")
            out = out + (self.embed(y) * h).sum(1)  # the projection term
        return out, self.classify(h) if self.classify is not None else None


def init_dcgan(module: nn.Module) -> None:
    """DCGAN's init: conv weights N(0, 0.02), batch-norm scales N(1, 0.02); conditional scales stay at 1."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, NoiseDiscriminator) and m.embed is not None:
            nn.init.normal_(m.embed.weight, 0.0, 0.02)  # the projection term starts as small as the score
