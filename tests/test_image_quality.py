"""SSIM and L1 on cases whose value is known by hand."""

from __future__ import annotations

import pytest
import torch

from feraug.evaluate.instrument.image_quality import mean_abs_error, ssim


def test_ssim_of_identical_images_is_one() -> None:
    x = torch.randint(0, 256, (3, 20, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(3))


def test_ssim_of_constant_images_is_the_luminance_term() -> None:
    x, y = torch.full((1, 16, 16), 100, dtype=torch.uint8), torch.full((1, 16, 16), 150, dtype=torch.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 150 + c1) / (100**2 + 150**2 + c1)  # no variance: the contrast term is C2/C2 = 1
    assert ssim(x, y).item() == pytest.approx(expected, rel=1e-6)


def test_ssim_falls_with_noise_and_is_symmetric() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(60, 200, (2, 24, 24), generator=g).to(torch.uint8)
    small = (x.int() + torch.randint(-5, 6, x.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    large = (x.int() + torch.randint(-60, 61, x.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    assert (ssim(x, small) > ssim(x, large)).all()
    assert torch.allclose(ssim(x, large), ssim(large, x))
    with pytest.raises(ValueError, match="one shape"):
        ssim(x, x[:1])


def test_mean_abs_error() -> None:
    assert (
        mean_abs_error(torch.zeros(1, 2, 2, dtype=torch.uint8), torch.full((1, 2, 2), 4, dtype=torch.uint8)).item()
        == 4.0
    )
