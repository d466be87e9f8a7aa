"""CycleGAN, improved CycleGAN and Wasserstein CycleGAN (seed 000) as one model with options.

Notation (seed 000): domains A (source emotion) and B (target emotion); ``G: A -> B``,
``F: B -> A``; ``D_A`` judges domain A, ``D_B`` judges domain B. One step:

1. Generator phase (every ``n_critic``-th step), with the discriminators frozen::

       [fake_b, idt_b]        = G([a, b])
       [fake_a, idt_a, rec_a] = F([b, a, fake_b])
       rec_b                  = G(fake_a)
       L = L_GAN(D_B(fake_b)) + L_GAN(D_A(fake_a)) + λ_cyc·(cyc(rec_a, a) + cyc(rec_b, b))
           + λ_cyc·λ_idt·(‖idt_b − b‖₁ + ‖idt_a − a‖₁)

   ``cyc`` is the L1 cycle loss, or seed 000's weighted cycle loss with the discriminators'
   features. The reference implementation runs six batch-``B`` generator passes; here every
   pass that does not wait on another shares one batched forward (three passes of 2B, 3B and B
   faces). Instance norm is per sample, so this is exact, and at FER's 48x48 the bigger batches
   are what keeps the CPU's matrix units busy (measured in ``benchmarks/bench_cyclegan_step.py``).
2. Discriminator phase: ``D_B`` on ``[real b; pooled fakes]`` in one pass, ``D_A`` likewise
   (+ gradient penalty for ``wgan-gp``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from feraug.config import CycleGANConfig
from feraug.gan.image_pool import ImagePool
from feraug.gan.losses import AdversarialLoss, gradient_penalty, l1, weighted_cycle_loss
from feraug.models.base import StepContext
from feraug.nets.gan_nets import PatchDiscriminator, ResnetGenerator, init_weights


class CycleGAN:
    """Two generators, two discriminators, their optimizers and image pools."""

    family = "cyclegan"
    ema_names = ("G", "F")

    def __init__(self, cfg: CycleGANConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        n, loss = cfg.net, cfg.loss

        def generator() -> ResnetGenerator:
            return ResnetGenerator(1, 1, n.ngf, n.n_blocks, n.norm, n.output)

        def discriminator() -> PatchDiscriminator:
            return PatchDiscriminator(1, n.ndf, n.n_layers, n.d_norm or n.norm)

        self.networks: dict[str, nn.Module] = {"G": generator(), "F": generator(), "D_A": discriminator(),
                                               "D_B": discriminator()}  # fmt: skip
        for net in self.networks.values():
            init_weights(net)
            net.to(device)
        o = cfg.optim
        g_params = [p for name in ("G", "F") for p in self.networks[name].parameters()]
        d_params = [p for name in ("D_A", "D_B") for p in self.networks[name].parameters()]
        # Fused Adam: one kernel per parameter group instead of ~10 ops per tensor (~7% of a batch-1 step).
        fused = device.type in ("cpu", "cuda")
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "G": torch.optim.Adam(g_params, lr=o.lr_g, betas=(o.beta1, o.beta2), fused=fused),
            "D": torch.optim.Adam(d_params, lr=o.lr_d, betas=(o.beta1, o.beta2), fused=fused),
        }
        self.adv = AdversarialLoss(loss.gan_mode, loss.real_label)
        self.batch_d = (n.d_norm or n.norm) != "batch"  # batch norm would mix real and fake statistics
        self.pools = {"A": ImagePool(o.pool_size), "B": ImagePool(o.pool_size)}

    def arch(self) -> dict[str, Any]:
        """Network architectures; a checkpoint with another arch is refused."""
        return {name: net.arch for name, net in self.networks.items()}

    # -- one step -------------------------------------------------------------------------------

    def _cycle(self, rec: torch.Tensor, real: torch.Tensor, judge: str, gamma: float) -> torch.Tensor:
        """Plain L1 cycle loss, or seed 000's weighted one with ``judge``'s features and realness."""
        if not self.cfg.loss.weighted_cycle:
            return l1(rec, real)
        net = self.networks[judge]
        with torch.no_grad():
            scores, real_features = net.forward_with_features(real)
        return weighted_cycle_loss(rec, real, net.features(rec), real_features, self.adv.realness(scores), gamma)

    def _generator_phase(
        self, a: torch.Tensor, b: torch.Tensor, gamma: float
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Losses (after backward) and the fakes of both directions."""
        nets, loss = self.networks, self.cfg.loss
        n = a.shape[0]
        use_idt = loss.lambda_idt > 0
        out_g = nets["G"](torch.cat([a, b]) if use_idt else a)
        fake_b = out_g[:n]
        out_f = nets["F"](torch.cat([b, a, fake_b]) if use_idt else torch.cat([b, fake_b]))
        fake_a, rec_a = out_f[:n], out_f[-n:]
        rec_b = nets["G"](fake_a)
        losses = {
            "adv_A": self.adv.generator(nets["D_B"](fake_b)),
            "adv_B": self.adv.generator(nets["D_A"](fake_a)),
            "cyc_A": self._cycle(rec_a, a, "D_A", gamma),
            "cyc_B": self._cycle(rec_b, b, "D_B", gamma),
        }
        total = losses["adv_A"] + losses["adv_B"] + loss.lambda_cyc * (losses["cyc_A"] + losses["cyc_B"])
        if use_idt:
            losses["idt_A"] = l1(out_g[n:], b)  # G should leave B faces unchanged
            losses["idt_B"] = l1(out_f[n : 2 * n], a)  # F should leave A faces unchanged
            total = total + loss.lambda_cyc * loss.lambda_idt * (losses["idt_A"] + losses["idt_B"])
        total.backward()
        losses["total"] = total
        return {f"G/{k}": v.detach().float() for k, v in losses.items()}, fake_b.detach(), fake_a.detach()

    def _discriminator_loss(
        self, real: torch.Tensor, fake: torch.Tensor, name: str, pool: str, gen: torch.Generator
    ) -> torch.Tensor:
        """Loss of one discriminator on real faces vs. pooled fakes."""
        net = self.networks[name]
        fake = self.pools[pool].query(fake, gen)
        if self.batch_d:  # one pass over [real; fake]: exact with per-sample norms, and bigger GEMMs
            scores = net(torch.cat([real, fake]))
            loss = self.adv.discriminator(scores[: real.shape[0]], scores[real.shape[0] :])
        else:
            loss = self.adv.discriminator(net(real), net(fake))
        if self.cfg.loss.gan_mode == "wgan-gp":
            loss = loss + self.cfg.loss.lambda_gp * gradient_penalty(net, real, fake, gen)
        return loss

    def _freeze_discriminators(self, frozen: bool) -> None:
        for name in ("D_A", "D_B"):
            self.networks[name].requires_grad_(not frozen)

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One generator update (every ``n_critic`` steps) and one discriminator update."""
        a, b = batch["a"], batch["b"]
        gamma = min(1.0, ctx.progress)
        dtype = ctx.autocast_dtype
        out: dict[str, torch.Tensor] = {}
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            if ctx.step % self.cfg.loss.n_critic == 0:
                self.optimizers["G"].zero_grad(set_to_none=True)
                self._freeze_discriminators(True)
                losses, fake_b, fake_a = self._generator_phase(a, b, gamma)
                self._freeze_discriminators(False)
                self.optimizers["G"].step()
                out |= losses
            else:
                with torch.no_grad():
                    fake_b, fake_a = self.networks["G"](a), self.networks["F"](b)
            self.optimizers["D"].zero_grad(set_to_none=True)
            d_b = self._discriminator_loss(b, fake_b, "D_B", "B", ctx.generators[0])
            d_a = self._discriminator_loss(a, fake_a, "D_A", "A", ctx.generators[1])
            (d_a + d_b).backward()
            self.optimizers["D"].step()
        out |= {"D/A": d_a.detach().float(), "D/B": d_b.detach().float()}
        if self.cfg.loss.weighted_cycle:
            out["gamma"] = torch.tensor(gamma)
        return out

    # -- sampling and state ---------------------------------------------------------------------

    @torch.no_grad()
    def sample_grid_rows(
        self, batch: dict[str, torch.Tensor], networks: dict[str, nn.Module]
    ) -> tuple[list[torch.Tensor], list[str]]:
        """Seed-000 figure layout: real A | fake B | recovered A, then the B -> A twin."""
        src, tgt = self.cfg.data.source, self.cfg.data.target
        g, f = networks["G"], networks["F"]
        fake_b, fake_a = g(batch["a"]), f(batch["b"])
        rows = [batch["a"], fake_b, f(fake_b), batch["b"], fake_a, g(fake_a)]
        labels = [f"real {src}", f"fake {tgt}", f"rec. {src}", f"real {tgt}", f"fake {src}", f"rec. {tgt}"]
        return rows, labels

    def extra_state(self) -> dict[str, Any]:
        """The image pools."""
        return {"pools": {k: p.state_dict() for k, p in self.pools.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the image pools."""
        for k, p in self.pools.items():
            p.load_state_dict(state["pools"][k])
