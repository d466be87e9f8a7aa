"""GAN losses on hand-computed tensors: LSGAN (soft labels), BCE, WGAN, gradient penalty, weighted cycle."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from feraug.gan.image_pool import ImagePool
from feraug.gan.losses import AdversarialLoss, gradient_penalty, l1, weighted_cycle_loss

T = torch.tensor


def test_lsgan_with_soft_real_label() -> None:
    loss = AdversarialLoss("lsgan", real_label=0.9)
    # ½[(0.5 − 0.9)² + 0.2²] = ½(0.16 + 0.04) = 0.1
    assert loss.discriminator(T([0.5]), T([0.2])).item() == pytest.approx(0.1)
    # generator targets stay hard: (0.2 − 1)² = 0.64
    assert loss.generator(T([0.2])).item() == pytest.approx(0.64)


def test_bce_matches_log_sigmoid() -> None:
    loss = AdversarialLoss("bce")
    r, f = 1.5, -0.5
    expected_d = 0.5 * (-math.log(1 / (1 + math.exp(-r))) - math.log(1 - 1 / (1 + math.exp(-f))))
    assert loss.discriminator(T([r]), T([f])).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.generator(T([f])).item() == pytest.approx(-math.log(1 / (1 + math.exp(-f))), rel=1e-6)


def test_wasserstein_losses() -> None:
    loss = AdversarialLoss("wgan-gp")
    assert loss.discriminator(T([3.0, 1.0]), T([0.5, -0.5])).item() == pytest.approx(0.0 - 2.0)
    assert loss.generator(T([0.5, -1.5])).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="soft real labels"):
        AdversarialLoss("wgan-gp", real_label=0.9)
    with pytest.raises(ValueError, match="unknown gan mode 'hinge'"):
        AdversarialLoss("hinge")  # type: ignore[arg-type]


def test_realness_weights() -> None:
    assert AdversarialLoss("lsgan").realness(T([[[[1.4]]], [[[0.25]]], [[[-0.3]]]])).tolist() == [1.0, 0.25, 0.0]
    assert AdversarialLoss("wgan-gp").realness(T([[[[0.0]]]])).item() == pytest.approx(0.5)


class LinearCritic(nn.Module):
    """C(x) = Σ w·x: its gradient is w everywhere, so the penalty is (‖w‖₂ − 1)² exactly."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_on_a_linear_critic() -> None:
    critic = LinearCritic(torch.full((1, 4, 4), 0.1))  # ‖w‖ = 0.1·√16 = 0.4
    gp = gradient_penalty(critic, torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4), torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((0.4 - 1.0) ** 2)
    gp.backward()  # the penalty trains the critic: d/dw (‖w‖−1)² = 2(‖w‖−1)·w/‖w‖
    assert torch.allclose(critic.w.grad, torch.full((1, 4, 4), 2 * (0.4 - 1.0) * 0.1 / 0.4))


def test_weighted_cycle_loss_at_gamma_0_half_and_1() -> None:
    rec, real = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)  # pixel L1 = 1 per face
    f_rec, f_real = torch.zeros(2, 3), torch.full((2, 3), 2.0)  # feature L1 = 2 per face
    weight = T([0.5, 1.0])  # D_A(a) per face
    assert weighted_cycle_loss(rec, real, f_rec, f_real, weight, 0.0).item() == pytest.approx((0.5 * 1 + 1.0 * 1) / 2)
    assert weighted_cycle_loss(rec, real, f_rec, f_real, weight, 1.0).item() == pytest.approx((0.5 * 2 + 1.0 * 2) / 2)
    assert weighted_cycle_loss(rec, real, f_rec, f_real, weight, 0.5).item() == pytest.approx((0.5 * 1.5 + 1.5) / 2)
    with pytest.raises(ValueError, match="gamma must lie in"):
        weighted_cycle_loss(rec, real, f_rec, f_real, weight, 1.5)


def test_weighted_cycle_gradient_reaches_only_the_reconstruction() -> None:
    rec = torch.zeros(1, 1, 2, 2, requires_grad=True)
    f_real = torch.ones(1, 3, requires_grad=True)
    weight = torch.ones(1, requires_grad=True)
    weighted_cycle_loss(rec, torch.ones(1, 1, 2, 2), rec.flatten(1)[:, :3] * 2, f_real, weight, 0.5).backward()
    assert rec.grad is not None and f_real.grad is None and weight.grad is None


def test_l1() -> None:
    assert l1(T([1.0, -1.0]), T([0.0, 1.0])).item() == pytest.approx(1.5)


def test_image_pool_fills_then_swaps_deterministically() -> None:
    pool = ImagePool(3)
    first = torch.arange(2.0).view(2, 1)
    assert torch.equal(pool.query(first), first) and pool.count == 2
    nxt = torch.tensor([[10.0], [11.0]])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    out = pool.query(nxt, g1)
    assert pool.count == 3 and out[0].item() == 10.0  # the slot still free takes the first image as is
    replay = ImagePool(3)
    replay.load_state_dict({"size": 3, "count": 2, "images": torch.tensor([[0.0], [1.0], [0.0]])})
    assert torch.equal(replay.query(nxt, g2), out)
    queries = [torch.tensor([[100.0 + i]]) for i in range(200)]
    answers = [pool.query(q, torch.Generator().manual_seed(i)) for i, q in enumerate(queries)]
    swapped = sum(not torch.equal(q, a) for q, a in zip(queries, answers, strict=True)) / len(queries)
    assert 0.35 < swapped < 0.65  # about half the queries get a stored image back


def test_image_pool_disabled_and_bad_state() -> None:
    x = torch.randn(4, 1, 2, 2)
    assert torch.equal(ImagePool(0).query(x), x)
    with pytest.raises(ValueError, match="checkpoint image pool has size 50, this run uses 3"):
        ImagePool(3).load_state_dict({"size": 50, "count": 0, "images": None})
