"""Noise GANs (Birenbaum's "Fake GAN"): DCGAN, WGAN-GP and a class-conditional GAN as one model with options.

One trainer step is one discriminator (critic) update on a fresh real batch; every ``n_critic``-th
step also updates the generator. So WGAN-GP's five critic updates per generator update each see
their own real faces, as in Gulrajani et al.'s Algorithm 1, and the trainer's schedule, logs,
EMA, checkpoints and time budgets count the same steps for every family.

Step ``t``::

    z ~ N(0, I)  (stream 0 of step t),  y = the real batch's labels (class-conditional only)
    D:  L_D = loss_D(D(x, y), D(G(z, y).detach(), y)) [+ λ_gp · GP(D, x, G(z, y))] [+ λ_cls · CE(C(x), y)]
    G (when t % n_critic == n_critic − 1):  z' ~ N(0, I);
        L_G = loss_G(D(G(z', y), y)) [+ λ_cls · CE(C(G(z', y)), y)]

``C`` is the discriminator's optional auxiliary class head (AC-GAN). It learns from real faces
only, so it never learns what a bad fake looks like; the generator is then pushed to draw faces
that a classifier of real faces assigns to the requested class: the class gets its own gradient
from the first step. With ``λ_ms > 0`` the generator step also adds the mode-seeking term
(:func:`mode_seeking`) on pairs of its faces that share a label. The strong class signal of a
label input made G draw one face per class on FER2013; this term is what keeps z in use.

Labels are the positions of the faces' emotions in ``data.classes``, so a model trained on
``[neutral]`` has one class and a conditional model on all seven has seven.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from torch import nn

from feraug.config import NoiseGANConfig
from feraug.core.seeding import SAMPLE, generator
from feraug.gan.losses import AdversarialLoss, gradient_penalty
from feraug.models.base import StepContext
from feraug.nets.noise_gan_nets import NoiseDiscriminator, NoiseGenerator, init_dcgan


def mode_seeking(fake: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mode-seeking term (Mao et al. 2019, MSGAN): ``1 / (mean|G(z1) − G(z2)| / mean|z1 − z2| + eps)`` over the
    batch's two halves, which share their labels (the generator step pairs them so). Minimizing it
    pushes two noise vectors of one class apart in image space: it fights the per-class collapse where G draws
    one face per class whatever z is."""
    h = fake.shape[0] // 2
    if h == 0:
        raise ValueError("the mode-seeking term (loss.lambda_ms) compares pairs of faces: it needs at least 2 per "
                         "process (under torchrun: optim.batch_size >= 2 x processes)")  # fmt: skip
    ratio = (fake[:h] - fake[h : 2 * h]).abs().mean() / (z[:h] - z[h : 2 * h]).abs().mean()
    return 1.0 / (ratio + eps)


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
            "G": NoiseGenerator(n.z_dim, n.ngf, cfg.data.size, k, label_input=n.label_input),
            "D": NoiseDiscriminator(n.ndf, cfg.data.size, n.d_norm, k, aux_classifier=cfg.loss.lambda_cls > 0),
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
        (d_real, cls_real), d_fake = D.forward_with_logits(real, y), D(fake, y)
        loss_d = self.adv.discriminator(d_real, d_fake)
        out = {"D/loss": loss_d.detach(), "D/real": d_real.mean().detach(), "D/fake": d_fake.mean().detach()}
        if cls_real is not None:
            ce = F.cross_entropy(cls_real, y)
            loss_d = loss_d + loss_cfg.lambda_cls * ce
            out["D/cls"] = ce.detach()
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
            if loss_cfg.lambda_ms > 0 and y is not None:  # pairs (i, h + i) share a label for the mode-seeking term
                y = torch.cat([y[: b // 2], y[: b - b // 2]])
            fake = G(z, y)
            score, cls_fake = D.forward_with_logits(fake, y)
            loss_g = self.adv.generator(score)
            out["G/adv"] = loss_g.detach()
            if loss_cfg.lambda_ms > 0:
                ms = mode_seeking(fake, z)
                loss_g = loss_g + loss_cfg.lambda_ms * ms
                out["G/ms"] = ms.detach()
            D.requires_grad_(True)
            if cls_fake is not None:
                ce = F.cross_entropy(cls_fake, y)
                loss_g = loss_g + loss_cfg.lambda_cls * ce
                out["G/cls"] = ce.detach()
            self.optimizers["G"].zero_grad(set_to_none=True)
            loss_g.backward()
            self.optimizers["G"].step()
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
