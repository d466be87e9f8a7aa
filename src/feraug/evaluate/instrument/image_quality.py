"""Image similarity for translations with a ground truth (toy faces render one identity under any expression)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim(x: torch.Tensor, y: torch.Tensor, *, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of ``uint8 [N,H,W]`` images, Gaussian window, valid region.

    ``SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))``, ``C1 = (0.01·255)²``,
    ``C2 = (0.03·255)²``, averaged over window positions.
    """
    if x.shape != y.shape or x.dim() != 3:
        raise ValueError(f"ssim needs two [N,H,W] batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    a, b = x.double().unsqueeze(1), y.double().unsqueeze(1)
    w = _gaussian_window(window, sigma)
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1).float()


def mean_abs_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference in grey levels (0..255)."""
    return (x.float() - y.float()).abs().flatten(1).mean(1)
