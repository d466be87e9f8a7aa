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


def displace(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``x`` ``[N, C, H, W]`` resampled at each pixel plus ``flow`` ``[N, 2, H, W]`` (x then y, in pixels):
    output pixel ``(i, j)`` reads input ``(i + flow_y, j + flow_x)`` bilinearly, clamped at the border.
    A zero flow returns ``x`` (up to float rounding of the pixel centres)."""
    _, _, h, w = x.shape
    ys = (2 * torch.arange(h, device=x.device, dtype=x.dtype) + 1) / h - 1  # pixel centres, align_corners=False
    xs = (2 * torch.arange(w, device=x.device, dtype=x.dtype) + 1) / w - 1
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [H, W, 2] as (x, y)
    scale = torch.tensor([2.0 / w, 2.0 / h], device=x.device, dtype=x.dtype)
    grid = base + flow.permute(0, 2, 3, 1).to(x.dtype) * scale
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


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


def classifier_augment(
    x: torch.Tensor,
    generator: torch.Generator | None,
    *,
    crop_padding: int = 4,
    flip: bool = True,
    max_degrees: float = 10.0,
    erase_p: float = 0.5,
    erase_area: tuple[float, float] = (0.02, 0.2),
    erase_ratio: tuple[float, float] = (0.3, 3.3),
) -> torch.Tensor:
    """A classifier's train-time augmentation of ``float [N,C,H,W]``: crop, flip, rotation, erasing.

    * Random crop with padding, horizontal flip and rotation are one per-image affine warp (one
      ``grid_sample`` for the batch) with border padding: a shift by an integer number of pixels
      in ``[-crop_padding, crop_padding]`` is exactly a crop of the replicate-padded image, and
      border (not zero) fill keeps black frames from becoming a cue. Rotation interpolates
      bilinearly; without rotation the shift/flip are exact up to float rounding.
    * Random erasing (Zhong et al. 2017) replaces, with probability ``erase_p`` per image, a
      rectangle covering ``erase_area`` of the image with aspect ratio log-uniform in
      ``erase_ratio`` by 0 (mid-gray in the [-1, 1] range), built as a mask from broadcast index
      comparisons — no per-image loop.

    Every draw comes from ``generator`` (on ``x``'s device), so a fixed generator state gives the
    same output, and a training step seeded by its position replays exactly on resume.
    """
    n, _, h, w = x.shape
    dev = x.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, device=dev, generator=generator) * (hi - lo) + lo

    if crop_padding or flip or max_degrees:
        angle = uniform(-max_degrees, max_degrees) * (math.pi / 180.0)
        sign = torch.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0) if flip else torch.ones(n, device=dev)
        # integer pixel shifts, in normalized coordinates (align_corners=False: a pixel is 2/size wide)
        span = 2 * crop_padding + 1
        dx = torch.randint(0, span, (n,), device=dev, generator=generator).float().sub_(crop_padding) * (2.0 / w)
        dy = torch.randint(0, span, (n,), device=dev, generator=generator).float().sub_(crop_padding) * (2.0 / h)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos * sign, -sin, dx], 1), torch.stack([sin * sign, cos, dy], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if erase_p > 0:
        area = uniform(*erase_area) * (h * w)
        log_ratio = uniform(math.log(erase_ratio[0]), math.log(erase_ratio[1]))
        eh = torch.sqrt(area * torch.exp(log_ratio)).round_().clamp_(1, h)
        ew = torch.sqrt(area / torch.exp(log_ratio)).round_().clamp_(1, w)
        top = (uniform(0.0, 1.0) * (h - eh + 1)).floor_()
        left = (uniform(0.0, 1.0) * (w - ew + 1)).floor_()
        on = uniform(0.0, 1.0) < erase_p
        rows = torch.arange(h, device=dev, dtype=x.dtype).view(1, h, 1)
        cols = torch.arange(w, device=dev, dtype=x.dtype).view(1, 1, w)
        box = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
               & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)) & on.view(n, 1, 1))  # fmt: skip
        x = x.masked_fill(box.unsqueeze(1), 0.0)
    return x


def ten_crop(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Ten views of ``float [N,C,H,W]`` for test-time augmentation: ``[10, N, C, H, W]``.

    The four corner crops and the center crop, each ``H x W``, of the image replicate-padded by
    ``padding`` pixels, then the five again horizontally flipped. A corner crop is the image
    shifted by ``padding`` pixels both ways, i.e. its ``(H - padding) x (W - padding)`` corner
    region framed by border pixels; the center crop is the image itself. These are exactly the
    views random crop with padding produces in training, at the classifier's input size (no
    resizing, so no interpolation blur and no zoom the network never saw).
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    h, w = x.shape[-2:]
    p = padding
    padded = F.pad(x, (p, p, p, p), mode="replicate") if p else x
    offsets = ((0, 0), (0, 2 * p), (2 * p, 0), (2 * p, 2 * p), (p, p))
    crops = [padded[..., top : top + h, left : left + w] for top, left in offsets]
    return torch.stack([*crops, *(c.flip(-1) for c in crops)])
