"""CycleGAN, improved CycleGAN and Wasserstein CycleGAN (seed 000) as one model with options.

Notation (seed 000): domains A (source emotion) and B (target emotion); ``G: A -> B``,
``F: B -> A``; ``D_A`` judges domain A, ``D_B`` judges domain B. One step:

1. Generator phase (every ``n_critic``-th step), two independent streams::

       stream A:  [fake_b, idt_b] = G([a, b]);  rec_a = F(fake_b)
                  L_A = L_GAN(D_B(fake_b)) + λ_cyc·cyc(rec_a, a) + λ_cyc·λ_idt·‖idt_b − b‖₁
       stream B:  the mirror image with F, G, D_A.

   ``cyc`` is the L1 cycle loss, or seed 000's weighted cycle loss with ``D_A``'s features.
   The translation and the identity term of a generator share one batched forward (instance
   norm is per sample, so this is exact). The discriminators are frozen (``requires_grad``
   off) during this phase, as in the reference, so no work is spent on their gradients. Each
   stream calls ``backward()``; every generator parameter then receives exactly one gradient
   from each stream, and since floating-point addition is commutative (``g_A + g_B == g_B +
   g_A`` bitwise), the two-thread result does not depend on which stream finishes first.
2. Discriminator phase: ``D_B`` on real b vs. pooled fakes, ``D_A`` likewise (+ gradient
   penalty for ``wgan-gp``), again as two streams.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from feraug.config import CycleGANConfig
from feraug.gan.image_pool import ImagePool
from feraug.gan.losses import AdversarialLoss, gradient_penalty, l1, weighted_cycle_loss
from feraug.models.base import StepContext, Streams
from feraug.nets.gan_nets import PatchDiscriminator, ResnetGenerator, init_weights


class CycleGAN:
    """Two generators, two discriminators, their optimizers and image pools."""

    family = "cyclegan"
    ema_names = ("G", "F")

    def __init__(self, cfg: CycleGANConfig, device: torch.device, streams: int = 1) -> None:
        self.cfg = cfg
        self.device = device
        n, loss = cfg.net, cfg.loss

        def generator() -> ResnetGenerator:
            return ResnetGenerator(1, 1, n.ngf, n.n_blocks, n.norm)

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
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "G": torch.optim.Adam(g_params, lr=o.lr_g, betas=(o.beta1, o.beta2)),
            "D": torch.optim.Adam(d_params, lr=o.lr_d, betas=(o.beta1, o.beta2)),
        }
        self.adv = AdversarialLoss(loss.gan_mode, loss.real_label)
        self.pools = {"A": ImagePool(o.pool_size), "B": ImagePool(o.pool_size)}
        self.streams = Streams(streams, device.type)

    def arch(self) -> dict[str, Any]:
        """Network architectures; a checkpoint with another arch is refused."""
        return {name: net.arch for name, net in self.networks.items()}

    # -- one step -------------------------------------------------------------------------------

    def _generator_stream(
        self, src: torch.Tensor, other: torch.Tensor, forward: str, backward: str, judge: str, src_judge: str,
        gamma: float,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:  # fmt: skip
        """Losses and fakes of one cycle direction (src -> other domain -> src), after its backward."""
        nets, loss = self.networks, self.cfg.loss
        n = src.shape[0]
        use_idt = loss.lambda_idt > 0
        out = nets[forward](torch.cat([src, other]) if use_idt else src)
        fake = out[:n]
        rec = nets[backward](fake)
        adv = self.adv.generator(nets[judge](fake))
        if loss.weighted_cycle:
            with torch.no_grad():
                scores, real_features = nets[src_judge].forward_with_features(src)
            cyc = weighted_cycle_loss(
                rec, src, nets[src_judge].features(rec), real_features, self.adv.realness(scores), gamma
            )
        else:
            cyc = l1(rec, src)
        total = adv + loss.lambda_cyc * cyc
        losses = {"adv": adv, "cyc": cyc}
        if use_idt:
            idt = l1(out[n:], other)
            total = total + loss.lambda_cyc * loss.lambda_idt * idt
            losses["idt"] = idt
        total.backward()
        losses["total"] = total
        return {k: v.detach().float() for k, v in losses.items()}, fake.detach()

    def _discriminator_stream(
        self, real: torch.Tensor, fake: torch.Tensor, name: str, pool: str, gen: torch.Generator
    ) -> torch.Tensor:
        """Loss (after backward) of one discriminator on real faces vs. pooled fakes."""
        net = self.networks[name]
        fake = self.pools[pool].query(fake, gen)
        loss = self.adv.discriminator(net(real), net(fake))
        if self.cfg.loss.gan_mode == "wgan-gp":
            loss = loss + self.cfg.loss.lambda_gp * gradient_penalty(net, real, fake, gen)
        loss.backward()
        return loss.detach().float()

    def _freeze_discriminators(self, frozen: bool) -> None:
        for name in ("D_A", "D_B"):
            self.networks[name].requires_grad_(not frozen)

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One generator update (every ``n_critic`` steps) and one discriminator update."""
        a, b = batch["a"], batch["b"]
        gamma = min(1.0, ctx.progress)
        dtype = ctx.autocast_dtype
        out: dict[str, torch.Tensor] = {}
        if ctx.step % self.cfg.loss.n_critic == 0:
            self.optimizers["G"].zero_grad(set_to_none=True)
            self._freeze_discriminators(True)
            (loss_a, fake_b), (loss_b, fake_a) = self.streams.run(
                lambda: self._generator_stream(a, b, "G", "F", "D_B", "D_A", gamma),
                lambda: self._generator_stream(b, a, "F", "G", "D_A", "D_B", gamma),
                dtype,
            )
            self._freeze_discriminators(False)
            self.optimizers["G"].step()
            out |= {f"G/{k}_A": v for k, v in loss_a.items()} | {f"G/{k}_B": v for k, v in loss_b.items()}
        else:
            with torch.no_grad():
                fake_b, fake_a = self.streams.run(lambda: self.networks["G"](a), lambda: self.networks["F"](b), dtype)
        self.optimizers["D"].zero_grad(set_to_none=True)
        d_b, d_a = self.streams.run(
            lambda: self._discriminator_stream(b, fake_b, "D_B", "B", ctx.generators[0]),
            lambda: self._discriminator_stream(a, fake_a, "D_A", "A", ctx.generators[1]),
            dtype,
        )
        self.optimizers["D"].step()
        out |= {"D/A": d_a, "D/B": d_b}
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
