"""Degradations that change how a face looks but not which expression it shows.

Two uses, kept apart on purpose:

* **Controls** (:data:`CONTROLS`): fixed, named degradations of a synthetic set's own source faces.
  :mod:`feraug.evaluate.instrument.controls` scores them exactly like the set, so a judge that reads blur,
  noise or a grid texture as an expression shows it on faces whose expression did not change.
* **Judge training** (:func:`degrade_batch`): random degradations drawn from a broader family whose
  parameters never equal a control's (each draw is pushed at least :data:`MARGIN` away from every
  control value of its kind), so a judge that ignores the controls has learned to ignore the kind
  of artefact, not the control's exact settings.

Every kind is one function of ``float [N,1,H,W]`` faces in [-1, 1] (the generators' range), one
strength per image and a ``torch.Generator``: batched tensor ops, no per-image Python, replayable.
The family is open: :func:`register` adds a kind (generators make artefacts nobody listed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom

from feraug.data.augment import displace

#: Grey levels per unit of the [-1, 1] range.
GREY = 2.0 / 255.0
#: A training draw lands at least this fraction of a control's value (at least 0.1) away from it.
MARGIN = 0.15

Apply = Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]


@dataclass(frozen=True)
class Kind:
    """One kind of degradation.

    Attributes:
        name: registry key.
        apply: ``(x, strength [N], generator) -> degraded x``.
        train: ``(low, high)`` range of the strength a judge's augmentation draws from; ``None``: a control
            only, which the judges never see in training (the strictest control: nothing taught them to
            ignore it).
        unit: what the strength means, for tables.
        step: training draws are rounded to multiples of this (kinds whose faces are processed in
            groups of equal strength, such as a blur's kernel, stay a few groups per batch); 0: not rounded.
    """

    name: str
    apply: Apply
    train: tuple[float, float] | None
    unit: str
    step: float = 0.0


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a kind to the family (an error if its name is taken)."""
    if kind.name in KINDS:
        raise ValueError(f"degradation {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind


def blur(x: torch.Tensor, sigma: torch.Tensor, _g: torch.Generator | None = None) -> torch.Tensor:
    """Separable Gaussian blur of each face by its own sigma (pixels; <= 0 leaves it), reflect-padded.

    One grouped convolution per axis for the whole batch: every face gets its own normalized
    kernel, zero-padded to the widest radius in the batch.
    """
    n, c, h, w = x.shape
    s = sigma.to(x.dtype).clamp(min=1e-3)
    radius = max(1, math.ceil(3 * float(sigma.max()))) if n else 1
    radius = min(radius, min(h, w) - 1)
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t.view(1, -1) / s.view(-1, 1)) ** 2)
    k = k / k.sum(1, keepdim=True)  # [n, 2r + 1]
    kernels = k.repeat_interleave(c, 0)
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernels.view(n * c, 1, 1, -1), groups=n * c)
    y = F.conv2d(y, kernels.view(n * c, 1, -1, 1), groups=n * c).view(n, c, h, w)
    return torch.where((sigma > 0).view(-1, 1, 1, 1), y, x)


def noise(x: torch.Tensor, sd: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """Gaussian pixel noise of ``sd`` grey levels."""
    n = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    return (x + n * (sd * GREY).view(-1, 1, 1, 1)).clamp(-1, 1)


def down_up(x: torch.Tensor, factor: torch.Tensor, _g: torch.Generator | None = None) -> torch.Tensor:
    """Bilinear down-sampling by ``factor`` and back: the softness of a low-resolution generator."""
    out = x.clone()
    h, w = x.shape[-2:]
    for f in torch.unique(factor).tolist():
        if f <= 1:
            continue
        rows = torch.nonzero(factor == f).flatten()
        small = F.interpolate(x[rows], size=(max(2, round(h / f)), max(2, round(w / f))), mode="bilinear",
                              antialias=True, align_corners=False)  # fmt: skip
        out[rows] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def _periodic(x: torch.Tensor, amplitude: torch.Tensor, period: int, g: torch.Generator | None,
              random_phase: bool) -> torch.Tensor:  # fmt: skip
    """A lattice texture of ``period`` pixels (what stacked stride-2 transposed convolutions print)."""
    h, w = x.shape[-2:]
    n = x.shape[0]
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    if random_phase:
        oy = torch.randint(0, period, (n, 1, 1), generator=g, device=x.device)
        ox = torch.randint(0, period, (n, 1, 1), generator=g, device=x.device)
    else:
        oy = ox = torch.zeros((n, 1, 1), dtype=torch.long, device=x.device)
    half = 0.0 if period == 2 else 0.5  # off the zeros of the cosine (period 4 would be 0 on half the pixels)
    cy = torch.cos(2 * math.pi * (ys + oy + half) / period)
    cx = torch.cos(2 * math.pi * (xs + ox + half) / period)
    pattern = (cy * cx).to(x.dtype).unsqueeze(1)  # a checkerboard at period 2, a dot lattice above
    return (x + pattern * (amplitude * GREY).view(-1, 1, 1, 1)).clamp(-1, 1)


def checkerboard(x: torch.Tensor, amplitude: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Period-2 checkerboard of ``amplitude`` grey levels (one stride-2 transposed convolution)."""
    return _periodic(x, amplitude, 2, g, random_phase=False)


def grid4(x: torch.Tensor, amplitude: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Period-4 lattice of ``amplitude`` grey levels (two stacked stride-2 up-samplings)."""
    return _periodic(x, amplitude, 4, g, random_phase=False)


def lattice(x: torch.Tensor, amplitude: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """Lattice of a random period in 3, 5, 6 or 8 and a random phase (training only: no control uses these)."""
    out = x.clone()
    periods = torch.tensor([3, 5, 6, 8], device=x.device)
    which = periods[torch.randint(0, 4, (x.shape[0],), generator=g, device=x.device)]
    for p in torch.unique(which).tolist():
        rows = torch.nonzero(which == p).flatten()
        out[rows] = _periodic(x[rows], amplitude[rows], int(p), g, random_phase=True)
    return out


def blotches(x: torch.Tensor, amplitude: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """Smooth low-frequency blotches: 4x4 random values up-sampled bicubically, ``amplitude`` grey levels (sd)."""
    h, w = x.shape[-2:]
    field = torch.randn((x.shape[0], 1, 4, 4), generator=g, device=x.device, dtype=x.dtype)
    smooth = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
    return (x + smooth * (amplitude * GREY).view(-1, 1, 1, 1)).clamp(-1, 1)


def streaks(x: torch.Tensor, amplitude: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """Random horizontal and vertical 1-pixel streaks: each row and each column of a face shifted by its own
    Gaussian offset, ``amplitude`` grey levels (sd of a pixel's total), the plaid of ridges a generator's
    transposed or strided layers can leave across a face."""
    n, _, h, w = x.shape
    rows = torch.randn((n, 1, h, 1), generator=g, device=x.device, dtype=x.dtype)
    cols = torch.randn((n, 1, 1, w), generator=g, device=x.device, dtype=x.dtype)
    return (x + (rows + cols) / math.sqrt(2) * (amplitude * GREY).view(-1, 1, 1, 1)).clamp(-1, 1)


def warp(x: torch.Tensor, sd: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """A random smooth warp: each pixel moved by a displacement field of 4x4 random values per axis,
    up-sampled bicubically, ``sd`` pixels (the sd of those values: interpolated, a pixel's displacement
    spreads ~0.78 x ``sd`` per axis); bilinear resampling, border clamped. It moves mouth, eyes and brows at
    random: a change of shape that is no expression, the control for generators that warp."""
    n, _, h, w = x.shape
    field = torch.randn((n, 2, 4, 4), generator=g, device=x.device, dtype=x.dtype)
    field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
    return displace(x, field * sd.view(-1, 1, 1, 1))


def fine_warp(x: torch.Tensor, sd: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """A random warp on a field of one value per 4x4 pixels, up-sampled bilinearly (the resolution of the
    expression family's warp head), ``sd`` pixels (of those values; a pixel's displacement spreads
    ~0.66 x ``sd`` per axis after the interpolation): neighbouring values can differ by more than their
    spacing, so the face folds over itself into smears and stretched features, what a warping
    generator does when nothing keeps its field smooth."""
    n, _, h, w = x.shape
    field = torch.randn((n, 2, max(1, h // 4), max(1, w // 4)), generator=g, device=x.device, dtype=x.dtype)
    field = F.interpolate(field, size=(h, w), mode="bilinear", align_corners=False)
    return displace(x, field * sd.view(-1, 1, 1, 1))


def brightness(x: torch.Tensor, shift: torch.Tensor, _g: torch.Generator | None = None) -> torch.Tensor:
    """Add ``shift`` grey levels."""
    return (x + (shift * GREY).view(-1, 1, 1, 1)).clamp(-1, 1)


def contrast(x: torch.Tensor, factor: torch.Tensor, _g: torch.Generator | None = None) -> torch.Tensor:
    """Scale each face's deviations from its own mean by ``factor``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * factor.view(-1, 1, 1, 1) + mean).clamp(-1, 1)


for _kind in (
    Kind("blur", blur, (0.4, 2.4), "Gaussian sigma, pixels", step=0.1),
    Kind("noise", noise, (3.0, 24.0), "sd, grey levels"),
    Kind("down_up", down_up, (1.5, 4.0), "down-sampling factor", step=0.25),
    Kind("checkerboard", checkerboard, (3.0, 16.0), "amplitude, grey levels"),
    Kind("grid4", grid4, (3.0, 16.0), "amplitude, grey levels"),
    Kind("lattice", lattice, (3.0, 16.0), "amplitude, grey levels"),
    Kind("blotches", blotches, (4.0, 30.0), "sd, grey levels"),
    Kind("brightness", brightness, (-40.0, 40.0), "shift, grey levels"),
    Kind("contrast", contrast, (0.5, 1.6), "factor"),
    Kind("streaks", streaks, None, "sd, grey levels"),
    Kind("warp", warp, None, "sd of the field's 4x4 values, pixels"),
    Kind("fine_warp", fine_warp, None, "sd of the field's values (one per 4x4 pixels), pixels"),
):
    register(_kind)

#: The named controls: each a chain of ``(kind, strength)`` applied in order. Strengths sit inside the
#: training ranges, and training draws keep :data:`MARGIN` away from them; streaks and warps are never trained on.
CONTROLS: dict[str, tuple[tuple[str, float], ...]] = {
    "blur 0.8": (("blur", 0.8),),
    "blur 1.6": (("blur", 1.6),),
    "noise 12": (("noise", 12.0),),
    "down-up x2": (("down_up", 2.0),),
    "down-up x3": (("down_up", 3.0),),
    "checkerboard 8": (("checkerboard", 8.0),),
    "grid-4 10": (("grid4", 10.0),),
    "blotches 15": (("blotches", 15.0),),
    "brightness -25": (("brightness", -25.0),),
    "contrast 0.7": (("contrast", 0.7),),
    "blur 1 + noise 12": (("blur", 1.0), ("noise", 12.0)),
    "blur 1 + grid-4 8": (("blur", 1.0), ("grid4", 8.0)),
    "down-up x2 + blotches 12 + noise 6": (("down_up", 2.0), ("blotches", 12.0), ("noise", 6.0)),
    "streaks 12": (("streaks", 12.0),),
    "streaks 8 + blotches 15 + grid-4 8": (("streaks", 8.0), ("blotches", 15.0), ("grid4", 8.0)),
    "warp 1": (("warp", 1.0),),
    "warp 2": (("warp", 2.0),),
    "fine warp 1": (("fine_warp", 1.0),),
    "fine warp 2": (("fine_warp", 2.0),),
    "fine warp 4": (("fine_warp", 4.0),),
}


def control_values(kind: str) -> list[float]:
    """Every strength the controls use for ``kind``."""
    return sorted({s for chain in CONTROLS.values() for k, s in chain if k == kind})


def apply_chain(x: torch.Tensor, chain: tuple[tuple[str, float], ...], g: torch.Generator | None) -> torch.Tensor:
    """Apply a control's chain to every face of ``x`` (float [N,1,H,W] in [-1, 1])."""
    for kind, strength in chain:
        if kind not in KINDS:
            raise ValueError(f"unknown degradation {kind!r}; known: {', '.join(KINDS)}")
        x = KINDS[kind].apply(x, torch.full((x.shape[0],), float(strength), device=x.device, dtype=x.dtype), g)
    return x


def _gap(value: float) -> float:
    return MARGIN * max(abs(value), 0.1)


def _away_from_controls(s: torch.Tensor, kind: str) -> torch.Tensor:
    """Move each strength out of every control value's neighbourhood ``value ± MARGIN x |value|``.

    Overlapping neighbourhoods are merged first, so a strength pushed out of one never lands in
    another; it goes to the nearer edge of the merged interval.
    """
    spans: list[list[float]] = []
    for c in control_values(kind):
        lo, hi = c - _gap(c), c + _gap(c)
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    for lo, hi in spans:
        inside = (s > lo) & (s < hi)
        s = torch.where(inside, torch.where(s - lo < hi - s, s.new_tensor(lo), s.new_tensor(hi)), s)
    return s


def degrade_batch(x: torch.Tensor, p: float, g: torch.Generator | None, *, max_kinds: int = 2) -> torch.Tensor:
    """A judge's train-time degradation: each face, with probability ``p``, gets 1..``max_kinds`` random kinds.

    Strengths are drawn uniformly from each kind's training range and kept away from every
    control value (:data:`MARGIN`); the order of kinds is the registry's, control-only kinds (no training
    range) are never drawn. Deterministic given ``g``.
    """
    if p <= 0:
        return x
    n = x.shape[0]
    x = x.clone()
    on = torch.rand(n, generator=g, device=x.device) < p
    count = torch.randint(1, max_kinds + 1, (n,), generator=g, device=x.device)
    kinds = [kind for kind in KINDS.values() if kind.train is not None]
    scores = torch.rand((n, len(kinds)), generator=g, device=x.device)
    rank = scores.argsort(dim=1).argsort(dim=1)  # a random ordering of the kinds per face
    chosen = (rank < count.view(-1, 1)) & on.view(-1, 1)
    for j, kind in enumerate(kinds):
        lo, hi = kind.train
        strength = torch.rand(n, generator=g, device=x.device, dtype=x.dtype) * (hi - lo) + lo
        if kind.step:
            strength = (strength / kind.step).round() * kind.step
        strength = _away_from_controls(strength, kind.name)
        rows = torch.nonzero(chosen[:, j]).flatten()
        if rows.numel():
            x[rows] = kind.apply(x[rows], strength[rows], g)
    return x
