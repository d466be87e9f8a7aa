"""The multi-domain expression family: one generator edits a face into any of the seven emotions.

StarGAN (Choi et al. 2018) with the changes the small-data literature argues for: a non-saturating loss with
R1 on real faces and 1:1 updates (StarGAN v2), a modest reconstruction weight (US-GAN), the output as an
edit of the input (a residual skip, or GANimation's attention mask with its L1 and total-variation
regularisers, or a smooth warp of its pixels), optional DiffAugment on everything D sees, and an EMA generator
(kept by the trainer).

Step ``t`` on a batch ``(x, y)`` of real faces and their emotions (all classes' training faces)::

    c ~ uniform over the six emotions other than y   (stream 0 of step t: resume replays it)
    G:  x' = G(x, c),  x'' = G(x', y)
        L_G = adv_G(D_s(x')) + λ_cls·CE(D_c(x'), c) + λ_rec·‖x'' − x‖₁
              [+ λ_mask·mean(A) + λ_tv·TV(A), averaged over the masks of x' and x'' (attention)]
        [+ λ_smooth·roughness(u), averaged over the fields of x' and x'' (warp: x' = x moved along u)]
    D:  L_D = adv_D(D_s(x), D_s(x'.detach())) + λ_cls·CE(D_c(x), y) [+ λ_r1·r1_every·½E‖∇_x D_s(x)‖²]

``D_s`` is D's real/fake head (per-patch scores; R1 takes the gradient of each face's mean score) and
``D_c`` its emotion head. With ``net.d_head: per-emotion`` ``D_s`` has a map per emotion and every face
is scored by its emotion's: ``D_s(x)[y]`` for real faces, ``D_s(x')[c]`` for translations (StarGAN v2's
multi-task discriminator; its authors replaced the emotion head by it: the head alone pushes G only
toward what it reads, a local change; here both can be on, ``lambda_cls: 0`` turns the head off).
The emotion head learns from real faces only, so it never learns what a bad fake looks like; G is pushed
to make faces that a classifier of real faces reads as the target emotion.
It is part of the GAN and never a judge of G's faces (those are the quality module's independent judges).
Targets are class-balanced, so Disgust (436 FER2013 training faces) is asked for as often as Happy.
The generator step comes first, and the discriminator step reuses its fakes (detached): one generator
pass fewer per step than StarGAN's order, as the CycleGAN family does.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from torch import nn

from feraug.config import ExpressionGANConfig
from feraug.data.classes import EMOTIONS
from feraug.gan.losses import AdversarialLoss, l1
from feraug.gan.regularizers import diff_augment
from feraug.models.base import StepContext
from feraug.nets.expression_nets import N_EMOTIONS, ExpressionDiscriminator, ExpressionGenerator, emotion_scores


def domain_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """StarGAN's domain-classification loss: mean cross-entropy ``−log softmax(logits)[label]`` (in float32)."""
    return F.cross_entropy(logits.float(), labels)


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of horizontally and vertically neighbouring pixels (their sum)."""
    return (mask[..., :, 1:] - mask[..., :, :-1]).abs().mean() + (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean()


def field_roughness(field: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring displacements, both axes (pixels per pixel, squared): a
    mean-squared-gradient penalty, zero for a rigid shift. It is no fold detector (a fold is local: two
    neighbours' displacements differ by more than their spacing, 1 pixel), but a field kept smooth on
    average has few places steep enough to fold."""
    across = (field[..., :, 1:] - field[..., :, :-1]).square().mean()
    down = (field[..., 1:, :] - field[..., :-1, :]).square().mean()
    return across + down


def draw_targets(labels: torch.Tensor, generator: torch.Generator, n_classes: int = N_EMOTIONS) -> torch.Tensor:
    """A target emotion per face, uniform over the ``n_classes − 1`` emotions other than its own.

    Drawn on the generator's device from ``generator`` only (the trainer derives it from the run's seed and
    the step), so a resumed run asks for the same emotions; the count drawn depends only on the batch size.
    """
    shift = torch.randint(1, n_classes, labels.shape, generator=generator, device=generator.device)
    return (labels + shift.to(labels.device)) % n_classes


def r1_penalty(scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``½ E_x ‖∇_x s(x)‖²`` with ``s(x)`` the face's mean patch score;
    ``real`` must require grad and ``scores`` depend on it. ``create_graph`` so the penalty trains D."""
    (grad,) = torch.autograd.grad(scores.float().flatten(1).mean(1).sum(), real, create_graph=True)
    return 0.5 * grad.float().square().flatten(1).sum(1).mean()


class ExpressionGAN:
    """Generator ``G(x, c)``, discriminator ``D -> (scores, emotion logits)``, their optimizers and the step."""

    family = "expression"
    ema_names = ("G",)

    def __init__(self, cfg: ExpressionGANConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        n, o = cfg.net, cfg.optim
        self.networks: dict[str, nn.Module] = {
            "G": ExpressionGenerator(n.ngf, n.n_blocks, n.output, max_shift=n.max_shift),
            "D": ExpressionDiscriminator(n.ndf, n.d_layers, cfg.data.size, n.spectral_norm,
                                         per_emotion=n.d_head == "per-emotion"),
        }
        for net in self.networks.values():
            net.to(device)
        fused = device.type in ("cpu", "cuda")
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            name: torch.optim.Adam(self.networks[name].parameters(), lr=lr, betas=(o.beta1, o.beta2), fused=fused)
            for name, lr in (("G", o.lr_g), ("D", o.lr_d))
        }
        self.adv = AdversarialLoss(cfg.loss.gan_mode)

    def arch(self) -> dict[str, Any]:
        """Network architectures; a checkpoint with another arch is refused."""
        return {name: net.arch for name, net in self.networks.items()}

    def _view(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """What D sees of ``x``: DiffAugment when configured (stream 1 of the step), else ``x``."""
        ops = self.cfg.loss.diffaugment
        return diff_augment(x, ops, ctx.generators[1]) if ops else x

    def _mask_terms(self, masks: list[torch.Tensor], out: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = self.cfg.loss
        mean = sum(m.float().mean() for m in masks) / len(masks)
        tv = sum(total_variation(m.float()) for m in masks) / len(masks)
        out["G/mask"], out["G/mask_tv"] = mean.detach(), tv.detach()
        return loss.lambda_mask * mean + loss.lambda_tv * tv

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One generator and one discriminator update; see the module docstring."""
        G, D = self.networks["G"], self.networks["D"]  # noqa: N806 - the papers' names
        x, y = batch["image"], batch["label"]
        loss = self.cfg.loss
        c = draw_targets(y, ctx.generators[0])
        dtype = ctx.autocast_dtype
        out: dict[str, torch.Tensor] = {}
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            # generator step, D frozen
            D.requires_grad_(False)
            edit_terms: torch.Tensor | float = 0.0  # what the output's own regularisers charge
            if G.output == "warp":
                fake, field = G.forward_with_field(x, c)
                rec, rec_field = G.forward_with_field(fake, y)
                rough = (field_roughness(field) + field_roughness(rec_field)) / 2
                edit_terms = loss.lambda_smooth * rough
                out["G/field_rough"], out["G/field_px"] = rough.detach(), field.detach().norm(dim=1).mean()
            else:
                fake, mask = G.forward_with_mask(x, c)
                rec, rec_mask = G.forward_with_mask(fake, y)
                if mask is not None and rec_mask is not None:
                    edit_terms = self._mask_terms([mask, rec_mask], out)
            scores, logits = D(self._view(fake, ctx))
            scores = emotion_scores(scores, c)
            adv, cls, cyc = self.adv.generator(scores), domain_classification_loss(logits, c), l1(rec, x)
            total = adv + loss.lambda_cls * cls + loss.lambda_rec * cyc + edit_terms
            self.optimizers["G"].zero_grad(set_to_none=True)
            total.backward()
            self.optimizers["G"].step()
            D.requires_grad_(True)
            out |= {"G/adv": adv.detach(), "G/cls": cls.detach(), "G/rec": cyc.detach(), "G/total": total.detach(),
                    "G/cls_acc": (logits.detach().argmax(1) == c).float().mean()}  # fmt: skip
            # discriminator step on real faces and the generator's faces (one pass: D has no batch statistics)
            b = x.shape[0]
            r1_due = loss.lambda_r1 > 0 and ctx.step % loss.r1_every == 0
            real = x.detach().requires_grad_(r1_due)
            seen = self._view(torch.cat([real, fake.detach()]), ctx)
            if r1_due:  # R1's double backward then runs through the real half only, not through 2B faces
                (sr, lr), (sf, lf) = D(seen[:b]), D(seen[b:])
                sr, sf = emotion_scores(sr, y), emotion_scores(sf, c)
                scores, logits = torch.cat([sr, sf]), torch.cat([lr, lf])
            else:
                scores, logits = D(seen)
                scores = emotion_scores(scores, torch.cat([y, c]))
            adv_d = self.adv.discriminator(scores[:b], scores[b:])
            cls_d = domain_classification_loss(logits[:b], y)
            total_d = adv_d + loss.lambda_cls * cls_d
            if r1_due:
                r1 = r1_penalty(sr, real)
                total_d = total_d + loss.lambda_r1 * loss.r1_every * r1
                out["D/r1"] = r1.detach()
            self.optimizers["D"].zero_grad(set_to_none=True)
            total_d.backward()
            self.optimizers["D"].step()
        s = scores.detach().float().flatten(1).mean(1)
        out |= {"D/loss": total_d.detach(), "D/adv": adv_d.detach(), "D/cls": cls_d.detach(),
                "D/cls_acc": (logits[:b].detach().argmax(1) == y).float().mean(),
                "D/gap": s[:b].mean() - s[b:].mean()}  # fmt: skip
        return {k: v.float() for k, v in out.items()}  # bf16 under autocast: the trainer sums them

    @torch.no_grad()
    def sample_grid_rows(self, batch: dict[str, torch.Tensor],
                         networks: dict[str, nn.Module]) -> tuple[list[torch.Tensor], list[str]]:  # fmt: skip
        """Eight fixed real faces (one of each emotion first), then each into every emotion; under each row what
        changed: with attention output ``1 − A`` (white: redrawn, black: the input kept), with warp output how
        far each pixel moved (white: ``max_shift`` pixels along both axes, i.e. √2·max_shift; black: not at
        all)."""
        G = networks["G"]  # noqa: N806
        x, y = batch["image"], batch["label"]
        first = [int(torch.nonzero(y == k)[0]) for k in range(N_EMOTIONS) if bool((y == k).any())]
        rest = [i for i in range(len(y)) if i not in first]
        x = x[torch.tensor((first + rest)[:8], device=x.device)]
        rows, names = [x], ["real"]
        for k, name in enumerate(EMOTIONS):
            c = torch.full((x.shape[0],), k, device=x.device, dtype=torch.long)
            if G.output == "warp":
                (fake, field), mask = G.forward_with_field(x, c), None
            else:
                fake, mask = G.forward_with_mask(x, c)
            rows.append(fake)
            names.append(f"-> {name.lower()}")
            if mask is not None:
                rows.append(1.0 - 2.0 * mask)
                names.append("  changed")
            elif G.output == "warp":
                moved = field.norm(dim=1, keepdim=True) / (G.max_shift * 2**0.5)
                rows.append(2.0 * moved.clamp(0, 1) - 1.0)
                names.append("  moved")
        return rows, names

    def extra_state(self) -> dict[str, Any]:
        """No state beyond networks and optimizers: every step's targets and augmentation derive from seeds."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see :meth:`extra_state`)."""
