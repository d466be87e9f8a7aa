"""Regularizers against an overfitting discriminator: Pasini et al.'s three fixes, DiffAugment and ADA.

Why: the minority domain (FER2013 Disgust, ~436 training faces) is small enough for its
discriminator to memorize. Its loss then collapses towards 0, it separates real from fake with
no uncertainty, and the generator's adversarial gradient turns into noise. Pasini et al. tried

* one-sided label flipping (:func:`flipped_discriminator_loss`, p = 1%),
* instance noise (:func:`instance_noise_sigma`, :func:`add_instance_noise`, σ₀ = 0.1 or 0.05, linear decay),
* alternate training (:func:`d_update_due`, G:D = 10:1 or 5:1 after a warm-up);

and the later literature on GANs trained on little data adds differentiable augmentation of
everything the discriminator sees (DiffAugment, Zhao et al. 2020: :func:`diff_augment`) and
its adaptive strength (ADA, Karras et al. 2020: :class:`AdaptiveAugment`). :func:`score_gap` is
the number to watch: it grows as the discriminator overfits.

Randomness: every draw comes from an explicit ``torch.Generator`` (the trainer derives one per
step and stream from the run's seed) and never from the global RNG, so a resumed run replays the
same numbers. Numbers are drawn on the generator's device, and how many are drawn depends only on
batch sizes and settings, never on image content, so the stream stays aligned whatever D sees.
Nothing here syncs the host with the device except :class:`AdaptiveAugment` once per interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom

FLIP_MODES: tuple[str, ...] = ("lsgan", "bce")

# -- 1. label flipping -------------------------------------------------------------------------


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {p}")


def flip_targets(n: int, value: float, flipped: float, p: float, generator: torch.Generator) -> torch.Tensor:
    """Per-sample targets: ``value``, each independently replaced by ``flipped`` with probability ``p``.

    Returns float32 ``[n]`` on the generator's device; always draws ``n`` uniforms (also at ``p = 0``,
    so the stream consumed does not depend on ``p``). ``flip_targets(n, r, 0, p, g)`` flips real
    targets to the fake value; ``flip_targets(n, 0, r, p, g)`` is the symmetric flip of fake targets.
    """
    _check_probability("flip probability", p)
    flip = torch.rand(n, generator=generator, device=generator.device) < p
    return torch.where(flip, float(flipped), float(value)).float()


def _side_targets(
    scores: torch.Tensor, value: float, flipped: float, p: float, generator: torch.Generator | None
) -> float | torch.Tensor:
    """The target of one side of the D loss: the plain scalar when nothing flips (no draws, and the
    exact arithmetic of :class:`~feraug.gan.losses.AdversarialLoss`), else per-sample targets shaped
    ``[N, 1, ...]`` so that a whole patch map flips together."""
    if p == 0.0:
        return value
    if generator is None:
        raise ValueError("label flipping draws random numbers: pass an explicit torch.Generator")
    targets = flip_targets(scores.shape[0], value, flipped, p, generator).to(scores.device)
    return targets.view(-1, *([1] * (scores.dim() - 1)))


def flipped_discriminator_loss(
    mode: str,
    real_scores: torch.Tensor,
    fake_scores: torch.Tensor,
    real_label: float,
    p: float,
    generator: torch.Generator | None,
    p_fake: float = 0.0,
) -> torch.Tensor:
    """Discriminator loss of :class:`~feraug.gan.losses.AdversarialLoss` with noisy labels (Pasini et al.).

    Each real sample's target ``real_label`` is flipped to the fake target 0 with probability ``p``
    (Pasini et al.: 0.01), per sample: a flipped sample's whole patch map gets target 0. With
    ``p_fake > 0`` each fake sample's target 0 is likewise flipped to ``real_label`` (off by default:
    Pasini et al.'s smoothing is one-sided, and telling D that some fakes are real also feeds G).

    * ``lsgan``: ``½E[(D(real) − t_real)²] + ½E[(D(fake) − t_fake)²]``; with soft labels the expected
      real target becomes ``(1 − p)·r``, so flipping and smoothing add up (0.9 and 1% → 0.891).
    * ``bce``: the same targets in binary cross-entropy on logits.
    * ``wgan-gp``: refused; a critic estimates a distance and has no labels to flip.

    ``real_scores`` / ``fake_scores`` may be patch maps ``[N, 1, h, w]`` or per-sample ``[N]``.
    With ``p = p_fake = 0`` nothing is drawn and the result equals ``AdversarialLoss(mode,
    real_label).discriminator`` bit for bit, so a run with flipping off is unchanged. Draw order:
    real flips (``N_real`` uniforms), then fake flips (``N_fake``), each only if its probability is > 0.
    """
    if mode == "wgan-gp":
        raise ValueError("label flipping has no meaning for a wgan-gp critic (it has no labels); use lsgan or bce")
    if mode not in FLIP_MODES:
        raise ValueError(f"unknown gan mode {mode!r} for label flipping: expected one of {', '.join(FLIP_MODES)}")
    _check_probability("flip probability p", p)
    _check_probability("flip probability p_fake", p_fake)
    t_real = _side_targets(real_scores, real_label, 0.0, p, generator)
    t_fake = _side_targets(fake_scores, 0.0, real_label, p_fake, generator)
    if mode == "lsgan":
        return 0.5 * ((real_scores - t_real).square().mean() + (fake_scores - t_fake).square().mean())

    def bce(scores: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
        full = torch.full_like(scores, target) if isinstance(target, float) else target.to(scores.dtype)
        return F.binary_cross_entropy_with_logits(scores, full.expand_as(scores))

    return 0.5 * (bce(real_scores, t_real) + bce(fake_scores, t_fake))


# -- 2. instance noise -------------------------------------------------------------------------


def instance_noise_sigma(sigma0: float, progress: float, end: float = 1.0) -> float:
    """σ of instance noise at training ``progress`` ∈ [0, 1]: σ₀ decaying linearly to 0 at ``end``.

    Pasini et al. used σ₀ = 0.1 and 0.05 (images in [-1, 1]) decaying over the whole run (``end = 1``);
    an earlier ``end`` lets the last part of training run on clean inputs. 0 from ``end`` on (also
    past 1, where a time-budget probe may train), σ₀ before 0.
    """
    if sigma0 < 0.0:
        raise ValueError(f"sigma0 must be >= 0, got {sigma0}")
    if not 0.0 < end <= 1.0:
        raise ValueError(f"end must lie in (0, 1], got {end}")
    return sigma0 * max(0.0, 1.0 - max(progress, 0.0) / end)


def add_instance_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """``x + σ·ε``, ε ~ N(0, 1) per element (Sønderby et al. 2016; Pasini et al.'s instance noise).

    Why it helps: real and fake distributions of a small data set barely overlap, so D can separate
    them perfectly; blurring both with the same noise makes them overlap and keeps D's gradient
    informative. Not clamped to [-1, 1]: clamping would skew the noise on saturated pixels.
    ε is drawn in float32 on the generator's device whatever ``x``'s dtype (the stream does not
    depend on autocast). At ``σ = 0`` returns ``x`` itself and draws nothing.
    """
    if sigma < 0.0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0.0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=torch.float32)
    return x + sigma * noise.to(device=x.device, dtype=x.dtype)


# -- 3. alternate training ---------------------------------------------------------------------


def d_update_due(step: int, epoch: int, start_epoch: int, every: int) -> bool:
    """Whether the (minority) discriminator trains at global ``step`` (Pasini et al.'s alternate training).

    Before ``start_epoch`` it trains every step, so it first learns to discriminate at all; from
    then on only on steps with ``step % every == 0`` (G:D = ``every``:1; Pasini et al.: 10 and 5), giving
    the generator time to catch up with a D that overfits its few real faces. A function of the
    step and its epoch only (no counter to checkpoint), so resume is exact. ``every = 1`` is off.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    return epoch < start_epoch or step % every == 0


# -- 4. DiffAugment ----------------------------------------------------------------------------

AUGMENT_OPS: tuple[str, ...] = ("translation", "cutout", "brightness", "contrast")
POLICY_ALIASES: dict[str, tuple[str, ...]] = {"color": ("brightness", "contrast")}
TRANSLATION_RATIO = 1 / 8  # DiffAugment's: shifts of up to ⌊side/8 + ½⌋ pixels (6 at 48x48)
CUTOUT_RATIO = 1 / 2  # DiffAugment's: a square of ⌊side/2 + ½⌋ pixels (24 at 48x48)
FILL = 0.0  # what translation pads with and cutout writes: mid-gray in [-1, 1] (see diff_augment)
_UNIFORMS = {"translation": 2, "cutout": 2, "brightness": 1, "contrast": 1}


def expand_policy(policy: Sequence[str] | str) -> tuple[str, ...]:
    """Op names in application order; ``"color"`` → brightness, contrast (saturation is a no-op on
    one channel). A string is DiffAugment's comma-separated form (``"color,translation,cutout"``)."""
    names = [s.strip() for s in policy.split(",")] if isinstance(policy, str) else list(policy)
    names = [s for s in names if s]
    bad = [s for s in names if s not in AUGMENT_OPS and s not in POLICY_ALIASES]
    if bad:
        valid = ", ".join((*AUGMENT_OPS, *POLICY_ALIASES))
        raise ValueError(f"unknown DiffAugment op(s) {', '.join(map(repr, bad))}: valid ops are {valid}")
    return tuple(op for s in names for op in POLICY_ALIASES.get(s, (s,)))


@dataclass(frozen=True)
class OpParams:
    """One op's draws for a batch: which samples it applies to, and its uniforms in [0, 1).

    Uniforms rather than pixel shifts, so the same draws fit any image size (they become integers
    in :func:`apply_augment`).
    """

    name: str
    applied: torch.Tensor  # [n] bool
    uniforms: torch.Tensor  # [n, k] float32


@dataclass(frozen=True)
class AugmentParams:
    """Everything random about one DiffAugment call on a batch of ``n`` images: draw once with
    :func:`draw_params`, apply with :func:`apply_augment` to as many batches of ``n`` as wanted."""

    n: int
    ops: tuple[OpParams, ...]


def draw_params(n: int, policy: Sequence[str] | str, generator: torch.Generator, p: float = 1.0) -> AugmentParams:
    """Draw the augmentation of ``n`` images: each op of ``policy`` applies to each sample with probability ``p``.

    Fixed order and shapes: for each op in policy order, ``n`` uniforms for the apply decision, then
    ``n·k`` for its parameters. They depend on ``n`` and the policy only (not on ``p``, not on the
    images), so generators in the same state give the same transform, and a changing ADA ``p``
    never shifts the stream.
    """
    if n < 0:
        raise ValueError(f"batch size must be >= 0, got {n}")
    _check_probability("augment probability p", p)
    ops = []
    for name in expand_policy(policy):
        applied = torch.rand(n, generator=generator, device=generator.device) < p
        uniforms = torch.rand(n, _UNIFORMS[name], generator=generator, device=generator.device)
        ops.append(OpParams(name, applied, uniforms))
    return AugmentParams(n, tuple(ops))


def _integers(u: torch.Tensor, k: int) -> torch.Tensor:
    """Uniforms in [0, 1) → integers 0..k-1 (clamped: float rounding may reach k)."""
    return (u * k).floor().long().clamp(0, k - 1)


def _brightness(x: torch.Tensor, applied: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    delta = (u[:, 0] - 0.5).to(x.dtype).view(-1, 1, 1, 1)  # U(-0.5, 0.5)
    return torch.where(applied.view(-1, 1, 1, 1), x + delta, x)


def _contrast(x: torch.Tensor, applied: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    factor = (u[:, 0] + 0.5).to(x.dtype).view(-1, 1, 1, 1)  # U(0.5, 1.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return torch.where(applied.view(-1, 1, 1, 1), (x - mean) * factor + mean, x)


def _translation(x: torch.Tensor, applied: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Shift each image by integer (dy, dx), |d| ≤ side/8, filling with :data:`FILL`.

    A gather from the padded image: exact copies of pixel values, differentiable w.r.t. ``x``, and
    each output pixel reads a distinct source, so the backward scatter is deterministic on CUDA too
    (``grid_sample``'s is not).
    """
    n, c, h, w = x.shape
    sh, sw = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = torch.where(applied, _integers(u[:, 0], 2 * sh + 1) - sh, 0)
    dx = torch.where(applied, _integers(u[:, 1], 2 * sw + 1) - sw, 0)
    padded = F.pad(x, (sw, sw, sh, sh), value=FILL)
    rows = torch.arange(h, device=x.device) + sh - dy[:, None]  # [n, h]: out[y] = in[y − dy]
    cols = torch.arange(w, device=x.device) + sw - dx[:, None]  # [n, w]
    index = (rows[:, :, None] * (w + 2 * sw) + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, index).view(n, c, h, w)


def _cutout(x: torch.Tensor, applied: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Set a square of half the side to :data:`FILL`; its centre is uniform over the image, so the
    square may be clipped by the border (as in DiffAugment)."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = _integers(u[:, 0], h + 1 - ch % 2) - ch // 2
    left = _integers(u[:, 1], w + 1 - cw % 2) - cw // 2
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (ys >= top[:, None]) & (ys < top[:, None] + ch)  # [n, h]
    in_cols = (xs >= left[:, None]) & (xs < left[:, None] + cw)  # [n, w]
    hole = in_rows[:, None, :, None] & in_cols[:, None, None, :] & applied.view(n, 1, 1, 1)
    return x.masked_fill(hole, FILL)


_APPLY = {"translation": _translation, "cutout": _cutout, "brightness": _brightness, "contrast": _contrast}


def apply_augment(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Apply drawn ``params`` to ``x`` ``[n, C, H, W]``; the same params on the same input give the same output.

    Draws live on the generator's device and move to ``x``'s here. A sample an op does not apply
    to passes through that op unchanged, bit for bit (so ``p = 0`` is the identity).
    """
    if x.dim() != 4:
        raise ValueError(f"DiffAugment expects images [N, C, H, W], got shape {tuple(x.shape)}")
    if x.shape[0] != params.n:
        raise ValueError(f"params were drawn for {params.n} images, got a batch of {x.shape[0]}")
    for op in params.ops:
        x = _APPLY[op.name](x, op.applied.to(x.device), op.uniforms.to(x.device))
    return x


def diff_augment(
    x: torch.Tensor, policy: Sequence[str] | str, generator: torch.Generator, p: float = 1.0
) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) for grayscale faces in [-1, 1]: differentiable w.r.t. ``x``.

    Why: with few real faces D memorizes them; augmenting *everything* D sees (reals, and fakes in
    both the D and the G update) stops that without leaking the augmentation into G's outputs, which
    is what augmenting the reals alone would do. Ops, applied in ``policy`` order, each to each
    sample with probability ``p`` (1 is plain DiffAugment; ADA sets it):

    * ``translation``: integer shift by up to 1/8 of the side (±6 px at 48), zero padded;
    * ``cutout``: a square of half the side (24 px) set to 0;
    * ``brightness``: add U(-0.5, 0.5); ``contrast``: scale the deviation from the image mean by
      U(0.5, 1.5); ``color`` is both.

    "Zero" is 0 in [-1, 1], i.e. mid-gray, as in DiffAugment's reference code (which works on
    [-1, 1] images and zero-pads / multiplies by a 0/1 mask): padding and cutout then share one
    "no content" level, and the paper's ratios and ranges keep their tested meaning. Outputs may
    leave [-1, 1] (brightness, contrast) and are deliberately not clamped: clamping kills gradients.

    Equivalent to ``apply_augment(x, draw_params(len(x), policy, generator, p))``; to give a real and
    a fake batch of equal size the same transform, draw once and apply to both. (DiffAugment itself
    draws independently for reals and fakes; one call on ``torch.cat([real, fake])`` does that.)
    """
    return apply_augment(x, draw_params(x.shape[0], policy, generator, p))


# -- 5. ADA ------------------------------------------------------------------------------------


def ada_center(mode: str, real_label: float = 1.0, fake_scores: torch.Tensor | None = None) -> float | torch.Tensor:
    """The score of an undecided discriminator: what :meth:`AdaptiveAugment.observe` takes signs against.

    ADA's heuristic ``r_t = E[sign(D(real))]`` assumes logits, where an undecided D outputs 0. For
    our other objectives the centre moves (the optimum for indistinguishable data is the mean target,
    ``r/2``):

    * ``bce``: ``logit(r/2)`` (0 for hard labels, ≈ −0.2 for r = 0.9);
    * ``lsgan``: ``r/2``. With centre 0, an LSGAN D that cannot tell real from fake (scores ≈ r/2 > 0)
      would read as overfitting (r_t ≈ 1) and drive p to 1;
    * ``wgan-gp``: a critic's scores have no fixed origin (its loss is unchanged by adding a constant
      and nothing anchors it), so the raw sign is meaningless; the centre is the batch's mean fake
      score, and r_t becomes how consistently reals outscore the average fake, which an overfitting
      critic drives to 1 like the logit sign. Pass ``fake_scores``.
    """
    if mode == "bce":
        q = real_label / 2.0
        return math.log(q / (1.0 - q))
    if mode == "lsgan":
        return real_label / 2.0
    if mode == "wgan-gp":
        if fake_scores is None:
            raise ValueError("wgan-gp critic scores have no fixed centre: pass fake_scores (their mean is the centre)")
        return fake_scores.detach().float().mean()
    raise ValueError(f"unknown gan mode {mode!r}: expected one of lsgan, bce, wgan-gp")


class AdaptiveAugment:
    """Adaptive discriminator augmentation (Karras et al. 2020): the ``p`` of :func:`diff_augment`, steered.

    D's overfitting is measured by ``r_t = E[sign(D(real) − centre)]`` over the real images D scored
    (a patch map is averaged per sample first): 0 when D cannot tell, 1 when it is sure of every real.
    Every ``interval`` observations ``p += sign(r_t − target) · images / speed_images``, clamped to
    [0, 1], where ``images`` is the number of real images observed in that interval, so p moves by at
    most 1 per ``speed_images`` images, whatever the batch size.

    Defaults: ``target = 0.6`` and ``interval = 4`` are the paper's. ``speed_images`` is 20k, not the
    paper's 500k: StyleGAN2-ADA trains on millions of images, but a CycleGAN run here sees only
    ~10–50k faces per domain, over which 500k would move p by 0.02–0.1 at most, i.e. not adapt at
    all; with 20k, p can cross its whole range within one short run. With batch size 1 the r_t of 4
    images is coarse (steps of ½); the sign update averages that out, but an ``interval`` of 16+ gives
    a steadier p at the same speed.
    """

    def __init__(self, target: float = 0.6, interval: int = 4, speed_images: float = 20_000, p: float = 0.0) -> None:
        if not -1.0 <= target <= 1.0:
            raise ValueError(f"target must lie in [-1, 1] (r_t is a mean of signs), got {target}")
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        if speed_images <= 0:
            raise ValueError(f"speed_images must be > 0, got {speed_images}")
        _check_probability("initial p", p)
        self.target = target
        self.interval = interval
        self.speed_images = speed_images
        self.p = float(p)
        self.last_rt: float | None = None  # r_t of the last completed interval, for logging
        self._sign_sum: float | torch.Tensor = 0.0  # a device tensor between updates: no per-step sync
        self._images = 0
        self._observations = 0

    def observe(self, real_scores: torch.Tensor, center: float | torch.Tensor = 0.0) -> float:
        """Record D's scores of one batch of (augmented) real images; returns p (updated if an interval ended).

        ``real_scores``: ``[N]`` or patch maps ``[N, 1, h, w]``; ``center``: see :func:`ada_center`
        (0 is right for BCE logits with hard labels only).
        """
        scores = real_scores.detach().float()
        per_sample = scores.flatten(1).mean(1) if scores.dim() > 1 else scores
        signs = torch.sign(per_sample - center)
        return self.accumulate(signs.sum(), real_scores.shape[0])

    def accumulate(self, sign_sum: float | torch.Tensor, images: int) -> float:
        """Add a precomputed sum of signs over ``images`` real images (e.g. all-reduced across
        processes, so every process steers the same p); returns p."""
        if isinstance(sign_sum, torch.Tensor):
            sign_sum = sign_sum.detach().float()
        self._sign_sum = self._sign_sum + sign_sum
        self._images += int(images)
        self._observations += 1
        if self._observations >= self.interval:
            self._update()
        return self.p

    def _update(self) -> None:
        images = self._images
        if images > 0:
            rt = float(self._sign_sum) / images  # the one host sync, once per interval
            direction = (rt > self.target) - (rt < self.target)
            self.p = min(1.0, max(0.0, self.p + direction * images / self.speed_images))
            self.last_rt = rt
        self._sign_sum, self._images, self._observations = 0.0, 0, 0

    def state_dict(self) -> dict[str, float | int | None]:
        """p, the accumulators of the running interval and the last r_t, as plain Python numbers
        (checkpoints are loaded with ``weights_only=True``)."""
        return {
            "p": self.p,
            "sign_sum": float(self._sign_sum),
            "images": self._images,
            "observations": self._observations,
            "last_rt": self.last_rt,
        }

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        """Restore :meth:`state_dict`; the settings (target, interval, speed) stay this run's."""
        self.p = float(state["p"])  # type: ignore[arg-type]
        self._sign_sum = float(state["sign_sum"])  # type: ignore[arg-type]
        self._images = int(state["images"])  # type: ignore[arg-type]
        self._observations = int(state["observations"])  # type: ignore[arg-type]
        last = state["last_rt"]
        self.last_rt = None if last is None else float(last)


# -- 6. logging --------------------------------------------------------------------------------


def score_gap(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``mean D(real) − mean D(fake)``, detached float32: how far apart D holds the two distributions.

    A gap that keeps growing while G's losses do not improve is the overfitting these regularizers
    fight; log it per discriminator (it needs no host sync).
    """
    return (real_scores.detach().float().mean() - fake_scores.detach().float().mean()).detach()
