"""CycleGAN, improved CycleGAN and Wasserstein CycleGAN (Birenbaum) as one model with options.

Notation (Birenbaum): domains A (source emotion) and B (target emotion); ``G: A -> B``,
``F: B -> A``; ``D_A`` judges domain A, ``D_B`` judges domain B. One step:

1. Generator phase (every ``n_critic``-th step), with the discriminators frozen::

       [fake_b, idt_b]        = G([a, b])
       [fake_a, idt_a, rec_a] = F([b, a, fake_b])
       rec_b                  = G(fake_a)
       L = L_GAN(D_B(fake_b)) + L_GAN(D_A(fake_a)) + λ_cyc·(cyc(rec_a, a) + cyc(rec_b, b))
           + λ_cyc·λ_idt·(‖idt_b − b‖₁ + ‖idt_a − a‖₁)

   ``cyc`` is the L1 cycle loss, or Birenbaum's weighted cycle loss with the discriminators'
   features. The reference implementation runs six batch-``B`` generator passes; here every
   pass that does not wait on another shares one batched forward (three passes of 2B, 3B and B
   faces). Instance norm is per sample, so this is exact, and at FER's 48x48 the bigger batches
   are what keeps the CPU's matrix units busy (measured in ``benchmarks/bench_cyclegan_step.py``).
2. Discriminator phase: ``D_B`` on ``[real b; pooled fakes]`` in one pass, ``D_A`` likewise
   (+ gradient penalty for ``wgan-gp``).

Pasini et al.'s Enhanced CycleGAN is options of the same model: the RDNB generator body
(``net.generator: rdnb``), the perceptual cycle and identity loss ``α·‖φ(x̂) − φ(x)‖₁ + β·‖x̂ − x‖₁``
(``loss.perceptual``: a frozen classifier φ, not a trained network of the run) and the
minority-discriminator regularizers of ``regularize`` (:mod:`feraug.gan.regularizers`). A
regularized discriminator sees every input through ``view`` = DiffAugment (probability ``p``,
steered by ADA when on) then instance noise, in its own update *and* in the generator's
adversarial term, so the augmentation does not leak into the generator's faces; its real labels
may be flipped; from ``alternate_from_epoch`` on it updates once every ``alternate_every``
steps. Its random draws come from the stream of its domain (the pool's stream, drawn only when a
regularizer is on), so runs with every regularizer off are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from feraug.config import CycleGANConfig
from feraug.core.checkpoint import CheckpointError
from feraug.gan.image_pool import ImagePool
from feraug.gan.losses import AdversarialLoss, gradient_penalty, l1, weighted_cycle_loss
from feraug.gan.perceptual import FeatureExtractor, perceptual_l1
from feraug.gan.regularizers import (
    AdaptiveAugment,
    ada_center,
    add_instance_noise,
    d_update_due,
    diff_augment,
    flipped_discriminator_loss,
    instance_noise_sigma,
    score_gap,
)
from feraug.models.base import StepContext
from feraug.nets.gan_nets import PatchDiscriminator, RDNBGenerator, ResnetGenerator, TranslationGenerator, init_weights

#: Which image pool, random stream and regularizer settings belong to each discriminator.
_DOMAIN = {"D_A": "A", "D_B": "B"}


class CycleGAN:
    """Two generators, two discriminators, their optimizers and image pools."""

    family = "cyclegan"
    ema_names = ("G", "F")

    def __init__(self, cfg: CycleGANConfig, device: torch.device, perceptual: FeatureExtractor | None = None,
                 ) -> None:  # fmt: skip
        """``perceptual``: the frozen φ of the perceptual loss, required when ``loss.perceptual_alpha > 0``."""
        self.cfg = cfg
        self.device = device
        n, loss = cfg.net, cfg.loss

        def generator() -> TranslationGenerator:
            if n.generator == "rdnb":
                return RDNBGenerator(1, 1, n.ngf, n.n_rdnb, n.n_dense_blocks, n.n_sub_blocks, n.growth, n.res_scale,
                                     n.norm, n.output)  # fmt: skip
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
        r = cfg.regularize
        self.regularized = tuple(name for name, domain in _DOMAIN.items() if r.applies_to(domain))
        self.ada = {name: AdaptiveAugment(r.ada_target, r.ada_interval, r.ada_speed_images)
                    for name in self.regularized if r.ada}  # fmt: skip
        # processes of a torchrun group, for ADA's all-reduce (the trainer joins the group before models are built)
        self.world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        if loss.perceptual_alpha > 0 and perceptual is None:
            raise ValueError(f"loss.perceptual_alpha={loss.perceptual_alpha:g} weighs a perceptual term: pass the "
                             "frozen φ (feraug.train.feature_extractor.load_feature_extractor)")  # fmt: skip
        # frozen, outside networks: not checkpointed, broadcast or arch-checked; α = 0 leaves the pixel L1 alone
        self.perceptual = perceptual.to(device) if perceptual is not None and loss.perceptual_alpha > 0 else None

    def arch(self) -> dict[str, Any]:
        """Network architectures; a checkpoint with another arch is refused."""
        return {name: net.arch for name, net in self.networks.items()}

    # -- one step -------------------------------------------------------------------------------

    def _reconstruction(self, out: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """L1, or Pasini et al.'s perceptual loss α·‖φ(out) − φ(real)‖₁ + β·‖out − real‖₁ when φ is configured
        (φ is loaded when α > 0; the config refuses α > 0 without φ)."""
        if self.perceptual is None:
            return l1(out, real)
        loss = self.cfg.loss
        return perceptual_l1(out, real, self.perceptual, loss.perceptual_alpha, loss.perceptual_beta)

    def _cycle(self, rec: torch.Tensor, real: torch.Tensor, judge: str, gamma: float) -> torch.Tensor:
        """L1 (or perceptual) cycle loss, or Birenbaum's weighted one with ``judge``'s features and realness."""
        if not self.cfg.loss.weighted_cycle:
            return self._reconstruction(rec, real)
        net = self.networks[judge]
        with torch.no_grad():
            scores, real_features = net.forward_with_features(real)
        return weighted_cycle_loss(rec, real, net.features(rec), real_features, self.adv.realness(scores), gamma)

    def _view(self, x: torch.Tensor, name: str, ctx: StepContext) -> torch.Tensor:
        """What discriminator ``name`` sees of ``x``: DiffAugment (probability ADA's p, else 1) then instance
        noise when it is regularized, else ``x`` itself. Draws from the stream of its domain."""
        if name not in self.regularized:
            return x
        r = self.cfg.regularize
        gen = ctx.generators[0 if name == "D_B" else 1]
        if r.diffaugment:
            x = diff_augment(x, r.diffaugment, gen, self.ada[name].p if name in self.ada else 1.0)
        if r.noise_sigma > 0:
            x = add_instance_noise(x, instance_noise_sigma(r.noise_sigma, ctx.progress, r.noise_end), gen)
        return x

    def _generator_phase(
        self, a: torch.Tensor, b: torch.Tensor, gamma: float, ctx: StepContext
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
            "adv_A": self.adv.generator(nets["D_B"](self._view(fake_b, "D_B", ctx))),
            "adv_B": self.adv.generator(nets["D_A"](self._view(fake_a, "D_A", ctx))),
            "cyc_A": self._cycle(rec_a, a, "D_A", gamma),
            "cyc_B": self._cycle(rec_b, b, "D_B", gamma),
        }
        total = losses["adv_A"] + losses["adv_B"] + loss.lambda_cyc * (losses["cyc_A"] + losses["cyc_B"])
        if use_idt:
            losses["idt_A"] = self._reconstruction(out_g[n:], b)  # G should leave B faces unchanged
            losses["idt_B"] = self._reconstruction(out_f[n : 2 * n], a)  # F should leave A faces unchanged
            total = total + loss.lambda_cyc * loss.lambda_idt * (losses["idt_A"] + losses["idt_B"])
        total.backward()
        losses["total"] = total
        return {f"G/{k}": v.detach().float() for k, v in losses.items()}, fake_b.detach(), fake_a.detach()

    def _discriminator_loss(
        self, real: torch.Tensor, fake: torch.Tensor, name: str, ctx: StepContext, out: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Loss of one discriminator on real faces vs. pooled fakes (through its regularizers, if any)."""
        net, domain = self.networks[name], _DOMAIN[name]
        gen = ctx.generators[0 if domain == "B" else 1]
        fake = self.pools[domain].query(fake, gen)
        n = real.shape[0]
        if self.batch_d:  # one pass over [real; fake]: exact with per-sample norms, and bigger GEMMs
            seen = self._view(torch.cat([real, fake]), name, ctx)
            real_seen, fake_seen = seen[:n], seen[n:]
            scores = net(seen)
            real_scores, fake_scores = scores[:n], scores[n:]
        else:
            real_seen, fake_seen = self._view(real, name, ctx), self._view(fake, name, ctx)
            real_scores, fake_scores = net(real_seen), net(fake_seen)
        r, mode = self.cfg.regularize, self.cfg.loss.gan_mode
        if name in self.regularized and (r.flip_p > 0 or r.flip_fake_p > 0):
            loss = flipped_discriminator_loss(mode, real_scores, fake_scores, self.cfg.loss.real_label, r.flip_p, gen,
                                              p_fake=r.flip_fake_p)  # fmt: skip
        else:
            loss = self.adv.discriminator(real_scores, fake_scores)
        out[f"{name}/gap"] = score_gap(real_scores, fake_scores)
        if name in self.ada:
            self._observe(name, real_scores, fake_scores, out)
        if mode == "wgan-gp":  # on what the critic sees: the Lipschitz constraint belongs where it scores faces
            loss = loss + self.cfg.loss.lambda_gp * gradient_penalty(net, real_seen, fake_seen, gen)
        return loss

    def _observe(self, name: str, real_scores: torch.Tensor, fake_scores: torch.Tensor,
                 out: dict[str, torch.Tensor]) -> None:  # fmt: skip
        """Feed ADA the scores of the (augmented) real faces; under torchrun the sums of every process."""
        ada, mode = self.ada[name], self.cfg.loss.gan_mode
        center = ada_center(mode, self.cfg.loss.real_label, fake_scores if mode == "wgan-gp" else None)
        if self.world > 1:  # every process steers the same p from the global batch
            signs = torch.sign(real_scores.detach().float().flatten(1).mean(1) - center).sum()
            torch.distributed.all_reduce(signs)
            ada.accumulate(signs, real_scores.shape[0] * self.world)
        else:
            ada.observe(real_scores, center)
        out[f"{name}/ada_p"] = torch.tensor(ada.p)
        if ada.last_rt is not None:
            out[f"{name}/ada_rt"] = torch.tensor(ada.last_rt)

    def _d_due(self, name: str, ctx: StepContext) -> bool:
        """Whether discriminator ``name`` updates at this step (alternate training slows a regularized one)."""
        r = self.cfg.regularize
        if name not in self.regularized or r.alternate_from_epoch is None:
            return True
        return d_update_due(ctx.step, ctx.epoch, r.alternate_from_epoch, r.alternate_every)

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
                losses, fake_b, fake_a = self._generator_phase(a, b, gamma, ctx)
                self._freeze_discriminators(False)
                self.optimizers["G"].step()
                out |= losses
            else:
                with torch.no_grad():
                    fake_b, fake_a = self.networks["G"](a), self.networks["F"](b)
            self.optimizers["D"].zero_grad(set_to_none=True)
            total = None
            for name, real, fake in (("D_B", b, fake_b), ("D_A", a, fake_a)):
                due = self._d_due(name, ctx)
                if name in self.regularized and self.cfg.regularize.alternate_from_epoch is not None:
                    out[f"{name}/updated"] = torch.tensor(float(due))
                if not due:  # its parameters get no gradient, so Adam leaves them as they are
                    continue
                loss = self._discriminator_loss(real, fake, name, ctx, out)
                out[f"D/{_DOMAIN[name]}"] = loss.detach().float()
                total = loss if total is None else total + loss
            if total is not None:
                total.backward()
                self.optimizers["D"].step()
        if self.cfg.loss.weighted_cycle:
            out["gamma"] = torch.tensor(gamma)
        if self.cfg.regularize.noise_sigma > 0:
            r = self.cfg.regularize
            out["noise_sigma"] = torch.tensor(instance_noise_sigma(r.noise_sigma, ctx.progress, r.noise_end))
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
        """The image pools and ADA's augmentation probabilities."""
        state: dict[str, Any] = {"pools": {k: p.state_dict() for k, p in self.pools.items()}}
        if self.ada:
            state["ada"] = {name: ada.state_dict() for name, ada in self.ada.items()}
        if self.perceptual is not None:  # a resume must use the same φ, or it is not the same run
            state["perceptual_sha256"] = self.perceptual.provenance["sha256"]
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the image pools and ADA's state."""
        for k, p in self.pools.items():
            p.load_state_dict(state["pools"][k])
        for name, ada in self.ada.items():
            if name not in state.get("ada", {}):
                raise CheckpointError(f"the checkpoint has no ADA state for {name}: it was written without "
                                      "regularize.ada on that discriminator; resume with the run's own regularize "
                                      "settings")  # fmt: skip
            ada.load_state_dict(state["ada"][name])
        if self.perceptual is not None and state.get("perceptual_sha256") != self.perceptual.provenance["sha256"]:
            raise CheckpointError(f"loss.perceptual: {self.perceptual.provenance['path']} is not the file this run "
                                  "trained with (its SHA-256 differs from the checkpoint's): a resume with another "
                                  "φ would not continue the same run")  # fmt: skip
