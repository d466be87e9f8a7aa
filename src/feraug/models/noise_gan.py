"""Noise GANs (seed 000's "Fake GAN"): DCGAN, WGAN-GP and a class-conditional GAN as one model with options.

One trainer step is one discriminator (critic) update on a fresh real batch; every ``n_critic``-th
step also updates the generator. So WGAN-GP's five critic updates per generator update each see
their own real faces, as in Gulrajani et al.'s Algorithm 1, and the trainer's schedule, logs,
EMA, checkpoints and time budgets count the same steps for every family.

Step ``t``::

    z ~ N(0, I)  (stream 0 of step t),  y = the real batch's labels (class-conditional only)
    D:  L_D = loss_D(D(x, y), D(G(z, y).detach(), y)) [+ λ_gp · GP(D, x, G(z, y))]
    G (when t % n_critic == n_critic − 1):  z' ~ N(0, I);  L_G = loss_G(D(G(z', y), y))

Labels are the positions of the faces' emotions in ``data.classes``, so a model trained on
``[neutral]`` has one class and a conditional model on all seven has seven.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from feraug.config import NoiseGANConfig
from feraug.gan.losses import AdversarialLoss, gradient_penalty
from feraug.models.base import StepContext
from feraug.nets.noise_gan_nets import NoiseDiscriminator, NoiseGenerator, init_dcgan
from feraug.train.seeding import SAMPLE, generator


class NoiseGAN:
    """Generator ``G: (z, y) -> face`` and discriminator ``D``, their optimizers and the step above."""

    family = "dcgan"
    ema_names = ("G",)

    def __init__(self, cfg: NoiseGANConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        n, o = cfg.net, cfg.optim
        k = len(cfg.data.classes) if n.conditional else 0
        self.networks: dict[str, nn.Module] = {
            "G": NoiseGenerator(n.z_dim, n.ngf, cfg.data.size, k),
            "D": NoiseDiscriminator(n.ndf, cfg.data.size, n.d_norm, k),
        }
        for net in self.networks.values():
            init_dcgan(net)
            net.to(device)
        fused = device.type in ("cpu", "cuda")
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "G": torch.optim.Adam(self.networks["G"].parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2), fused=fused),
            "D": torch.optim.Adam(self.networks["D"].parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2), fused=fused),
        }
        self.adv = AdversarialLoss(cfg.loss.gan_mode, cfg.loss.real_label)

    def arch(self) -> dict[str, Any]:
        """Network architectures; a checkpoint with another arch is refused."""
        return {name: net.arch for name, net in self.networks.items()}

    def _labels(self, y: torch.Tensor) -> torch.Tensor | None:
        return y if self.cfg.net.conditional else None

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One discriminator update, and a generator update every ``n_critic``-th step; see the module docstring."""
        G, D = self.networks["G"], self.networks["D"]  # noqa: N806 - the papers' names
        real, y = batch["image"], self._labels(batch["label"])
        b, loss_cfg = real.shape[0], self.cfg.loss
        z = torch.randn(b, self.cfg.net.z_dim, device=self.device, generator=ctx.generators[0])
        with torch.no_grad():
            fake = G(z, y)
        d_real, d_fake = D(real, y), D(fake, y)
        loss_d = self.adv.discriminator(d_real, d_fake)
        out = {"D/loss": loss_d.detach(), "D/real": d_real.mean().detach(), "D/fake": d_fake.mean().detach()}
        if loss_cfg.gan_mode == "wgan-gp":
            penalty = gradient_penalty(lambda x: D(x, y), real, fake, generator=ctx.generators[1])
            loss_d = loss_d + loss_cfg.lambda_gp * penalty
            out["D/gp"] = penalty.detach()
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["D"].step()
        if ctx.step % loss_cfg.n_critic == loss_cfg.n_critic - 1:
            z = torch.randn(b, self.cfg.net.z_dim, device=self.device, generator=ctx.generators[0])
            D.requires_grad_(False)
            loss_g = self.adv.generator(D(G(z, y), y))
            D.requires_grad_(True)
            self.optimizers["G"].zero_grad(set_to_none=True)
            loss_g.backward()
            self.optimizers["G"].step()
            out["G/adv"] = loss_g.detach()
        return out

    def fixed_z(self, n: int) -> torch.Tensor:
        """The same ``n`` latent vectors for every sample grid of a run (seeded by the run's seed)."""
        g = generator(self.cfg.train.seed, SAMPLE, n)
        return torch.randn(n, self.cfg.net.z_dim, generator=g).to(self.device)

    @torch.no_grad()
    def sample_grid_rows(self, batch: dict[str, torch.Tensor],
                         networks: dict[str, nn.Module]) -> tuple[list[torch.Tensor], list[str]]:  # fmt: skip
        """Real faces per class, then per class the generator's faces from the run's fixed ``z``."""
        G = networks["G"]  # noqa: N806
        classes = self.cfg.data.classes
        n = 8
        z = self.fixed_z(n)
        rows, names = [], []
        for k, name in enumerate(classes):
            rows.append(batch["image"][batch["label"] == k][:n])
            names.append(f"real {name}")
        if self.cfg.net.conditional:
            for k, name in enumerate(classes):
                rows.append(G(z, torch.full((n,), k, device=self.device, dtype=torch.long)))
                names.append(f"fake {name}")
        else:
            rows += [G(z), G(self.fixed_z(2 * n)[n:])]
            names += [f"fake {'/'.join(classes)}", "fake (more z)"]
        return rows, names

    def extra_state(self) -> dict[str, Any]:
        """No state beyond networks and optimizers: fixed z and every step's noise derive from seeds."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see :meth:`extra_state`)."""
