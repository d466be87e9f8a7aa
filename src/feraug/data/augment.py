"""Train-time augmentation as batched tensor ops on the training device.

No per-image Python and no PIL in the loop: one ``affine_grid``/``grid_sample`` call jitters a
whole batch, with randomness drawn from an explicit generator (so a resumed run replays it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom


def to_float(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [N,H,W]`` -> ``float [N,1,H,W]`` in [-1, 1] (the generators' tanh range)."""
    return images.unsqueeze(1).float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``float [N,1,H,W]`` in [-1, 1] -> ``uint8 [N,H,W]`` (rounded, clamped)."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8).squeeze(1)


def flip_affine(
    x: torch.Tensor,
    generator: torch.Generator | None,
    *,
    max_shift: float = 0.06,
    max_degrees: float = 8.0,
    scale: tuple[float, float] = (0.95, 1.05),
) -> torch.Tensor:
    """Random horizontal flip, shift (fraction of size), rotation and zoom per image; border padding."""
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, device=x.device, generator=generator) * (hi - lo) + lo

    angle = uniform(-max_degrees, max_degrees) * (math.pi / 180.0)
    zoom = uniform(*scale)
    flip = torch.where(torch.rand(n, device=x.device, generator=generator) < 0.5, -1.0, 1.0)
    tx, ty = uniform(-max_shift, max_shift) * 2.0, uniform(-max_shift, max_shift) * 2.0
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
