"""Adversarial, cycle and identity losses, the gradient penalty and Birenbaum's weighted cycle loss.

Conventions: discriminators return raw scores (no sigmoid inside the network); each loss mode
interprets them. ``D_A`` judges domain A (so it scores ``F(b)`` and real ``a``), ``D_B`` judges B.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from torch import nn

GanMode = Literal["lsgan", "bce", "wgan-gp"]
GAN_MODES: tuple[str, ...] = ("lsgan", "bce", "wgan-gp")


class AdversarialLoss:
    """The discriminator and generator sides of one GAN objective.

    * ``lsgan`` (Mao et al. 2017; Birenbaum): ``L_D = ½E[(D(real) − r)²] + ½E[D(fake)²]``,
      ``L_G = E[(D(G(x)) − 1)²]``, with ``r`` the (soft) real label, 0.9 in the improved preset.
    * ``bce``: the same with binary cross-entropy on logits (the original GAN).
    * ``wgan-gp`` (Gulrajani et al. 2017; Birenbaum's Wasserstein CycleGAN): ``L_D = E[C(fake)] −
      E[C(real)]`` (+ :func:`gradient_penalty`, added by the caller), ``L_G = −E[C(G(x))]``.
    """

    def __init__(self, mode: GanMode = "lsgan", real_label: float = 1.0) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"unknown gan mode {mode!r}: expected one of {', '.join(GAN_MODES)}")
        if mode == "wgan-gp" and real_label != 1.0:
            raise ValueError("soft real labels have no meaning for wgan-gp critics; set real_label to 1.0")
        self.mode = mode
        self.real_label = real_label

    def discriminator(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """Loss of the discriminator (critic) on a real and a fake batch."""
        if self.mode == "lsgan":
            return 0.5 * ((real_scores - self.real_label).square().mean() + fake_scores.square().mean())
        if self.mode == "bce":
            real = F.binary_cross_entropy_with_logits(real_scores, torch.full_like(real_scores, self.real_label))
            fake = F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
            return 0.5 * (real + fake)
        return fake_scores.mean() - real_scores.mean()

    def generator(self, fake_scores: torch.Tensor) -> torch.Tensor:
        """Loss of the generator whose output got ``fake_scores`` (targets are hard 1s)."""
        if self.mode == "lsgan":
            return (fake_scores - 1.0).square().mean()
        if self.mode == "bce":
            return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))
        return -fake_scores.mean()

    def realness(self, scores: torch.Tensor) -> torch.Tensor:
        """Per-sample probability-like ``D(a)`` in [0, 1]: the weight of the weighted cycle loss.

        LSGAN scores regress to 0 (fake) / 1 (real), so their patch mean is clamped into [0, 1];
        BCE logits and Wasserstein scores go through a sigmoid.
        """
        mean = scores.flatten(1).mean(1)
        return mean.clamp(0.0, 1.0) if self.mode == "lsgan" else torch.sigmoid(mean)


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """WGAN-GP penalty ``E_x̂[(‖∇_x̂ C(x̂)‖₂ − 1)²]`` at ``x̂ = ε·real + (1−ε)·fake``, ε ~ U[0, 1] per sample.

    Multiply by λ (10 in Gulrajani et al.) outside. ``create_graph=True`` so the penalty trains the critic.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator)
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).square().mean()


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute error: the cycle (``‖F(G(a)) − a‖₁``) and identity losses of CycleGAN."""
    return (a - b).abs().mean()


def weighted_cycle_loss(
    recovered: torch.Tensor,
    real: torch.Tensor,
    recovered_features: torch.Tensor,
    real_features: torch.Tensor,
    weight: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """Birenbaum's improved cycle loss for one direction.

    ``E_a[ D_A(a) · ( γ·‖f_DA(F(G(a))) − f_DA(a)‖₁ + (1−γ)·‖F(G(a)) − a‖₁ ) ]``

    where ``f_DA`` is the last feature layer of ``D_A``, ``D_A(a)`` its per-sample realness of the
    real face (``weight``, treated as a constant: the generator must not learn by fooling it here),
    and γ rises linearly from 0 to 1 over training, moving the constraint from pixels to features.
    Norms are means over elements, as for the plain L1 cycle loss.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    pixel = (recovered - real).abs().flatten(1).mean(1)
    feature = (recovered_features - real_features.detach()).abs().flatten(1).mean(1)
    return (weight.detach() * (gamma * feature + (1.0 - gamma) * pixel)).mean()
