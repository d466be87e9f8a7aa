"""Procedural "toy faces": a built-in FER-like dataset that needs no download.

Why it exists: every feraug component (loaders, augmenters, trainers, evaluators) must be testable and
demonstrable offline, in seconds, on a CPU. Real FER2013 cannot ship with the package, so this module draws
48x48 grayscale cartoon faces whose seven FER2013 expressions are carried by facial geometry (mouth
curvature / opening / width, brow angle and height, eye opening, nose wrinkle), on top of identity variation
(face shape, eye spacing, skin tone, hair, background, lighting) and nuisance (noise, blur, small shifts and
rotations). Expression intensity varies per face, so classes overlap somewhat: a classifier can learn the
task, but not perfectly -- a little like real FER.

Because expression, identity and nuisance are separate parameter sets, the same identity can be rendered
under two labels with identical nuisance: :func:`render_pairs` gives ground-truth (source, target) pairs that
differ only in the expression regions (see :func:`expression_mask`), which is what expression-transfer
augmenters need for supervised checks.

Rendering is fully vectorized in torch: every shape is an anti-aliased coverage mask (a clamped linear ramp of an
approximate signed distance) evaluated on a batched coordinate grid and composited layer by layer; small features
are evaluated only inside fixed windows, and work is chunked so memory stays small. A 3000-face set takes about half
a second on one CPU core.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from feraug.data.classes import EMOTIONS, emotion_index
from feraug.data.dataset import SPLITS, FaceDataset

__all__ = [
    "EXPRESSION_PARAMS",
    "FER2013_PROPORTIONS",
    "ToyFaceGenerator",
    "ToyIdentity",
    "expression_mask",
    "make_toy_faces",
    "render_pairs",
]

_FER2013_TRAIN_COUNTS = (3995, 436, 4097, 7215, 4830, 3171, 4965)
#: Class shares of the FER2013 ``Training`` split, FER2013 label order; the default class balance of the toy set,
#: so imbalance-handling code (Disgust is ~1.5 %) is exercised the same way as on the real data.
FER2013_PROPORTIONS: tuple[float, ...] = tuple(c / sum(_FER2013_TRAIN_COUNTS) for c in _FER2013_TRAIN_COUNTS)

_REF = 48.0  # geometry is specified in units of a 48x48 image, whatever the output size
_CHUNK = 256  # images per vectorized pass: temporaries (chunk * size^2 floats) stay cache-sized, memory stays flat
_MAX_SHIFT = 1.5  # nuisance translation bound, in 48-px units
_MAX_ROT_DEG = 6.0  # nuisance rotation bound
_MAX_SCALE_DEV = 0.04  # nuisance zoom bound (relative)
_EDGE_PX = 1.5  # width of the anti-aliasing ramp at shape edges, in output pixels

# --------------------------------------------------------------------------------------------------------------
# Identity parameters: name -> (low, high) of a uniform draw. Units are 48-px units (face frame: x right,
# y down, origin at the face centre) unless noted. Ranges are chosen so every draw still looks like a face.
# --------------------------------------------------------------------------------------------------------------
_IDENTITY_RANGES: dict[str, tuple[float, float]] = {
    "face_w": (13.0, 16.0),  # half-width of the head
    "face_h": (16.5, 19.5),  # half-height of the head
    "chin_taper": (0.05, 0.3),  # how much narrower the jaw is than the temples (relative)
    "face_cy": (1.0, 2.5),  # vertical offset of the face centre below the image centre
    "eye_dx": (5.3, 7.0),  # half the distance between the eye centres
    "eye_y": (-3.8, -2.6),  # eye centre height relative to the face centre
    "eye_w": (2.3, 3.0),  # eye half-width
    "eye_ratio": (0.5, 0.65),  # eye half-height / half-width when neutral
    "pupil": (0.45, 0.6),  # pupil radius / eye half-width
    "brow_gap": (3.0, 3.8),  # brow centre height above the eye centre
    "brow_len": (2.6, 3.4),  # brow half-length
    "brow_thick": (0.5, 0.8),  # brow half-thickness
    "brow_arch": (0.2, 0.8),  # how much the brow bows upwards in the middle
    "nose_y": (3.0, 4.2),  # nostril height relative to the face centre
    "nose_w": (1.0, 1.5),  # half the distance between nostrils
    "mouth_y": (8.3, 9.8),  # mouth centre height relative to the face centre
    "mouth_w": (4.3, 5.8),  # mouth half-width when neutral
    "lip_thick": (0.45, 0.65),  # half-thickness of the closed-lips line
    "skin": (0.48, 0.85),  # skin gray level (0 black, 1 white)
    "hair": (0.03, 0.4),  # hair gray level (rendered at most 0.7 x skin, so hair always reads as hair)
    "hair_top": (2.5, 7.0),  # hairline depth below the top of the head
    "hair_vol": (0.3, 3.0),  # hair volume around the head
    "hair_side": (-5.0, 9.0),  # how far down the sides the hair reaches (relative to the face centre)
    "hair_part": (-1.5, 1.5),  # fringe tilt (side parting)
    "hair_curve": (-1.0, 4.0),  # fringe shape: how much the hairline rises towards the temples
    "background": (0.08, 0.95),  # background gray level
    "light_angle": (0.0, 2.0 * math.pi),  # lighting gradient direction (radians)
    "light_strength": (0.0, 0.3),  # lighting gradient strength (relative brightness change across the image)
}

#: Expression parameters, in the order of the columns of the expression tables below. All are offsets from
#: the neutral face (which is all zeros), in 48-px units unless noted:
#: ``curve`` mouth-corner lift (+ smile / - frown), ``open`` mouth opening, ``width`` relative change of mouth
#: width, ``round`` how oval (vs lens-shaped) the open mouth is (0..1), ``brow_in`` inner brow-end raise (+ worried,
#: - V-shaped anger), ``brow_h`` whole-brow raise, ``eye_open`` relative change of eye opening, ``wrinkle`` nose
#: wrinkle strength (0..1), ``lip_raise`` upper-lip raise, ``skew`` one-sided mouth tilt, ``teeth`` visible teeth
#: (0..1).
EXPRESSION_PARAMS: tuple[str, ...] = (
    "curve", "open", "width", "round", "brow_in", "brow_h", "eye_open", "wrinkle", "lip_raise", "skew", "teeth",
)  # fmt: skip

# Prototype (full-intensity) expression per class, FER2013 label order. Chosen from FACS-style descriptions of
# the basic emotions, exaggerated enough to survive 48x48 rendering.
_EXPRESSIONS = np.array(
    [
        # curve  open  width round brow_in brow_h eye_open wrinkle lip_raise skew teeth
        [-0.9, 0.0, -0.28, 0.0, -2.4, -1.3, -0.38, 0.35, 0.0, 0.0, 0.0],  # Angry: V brows, narrow eyes, tight mouth
        [-1.3, 0.5, -0.05, 0.0, -1.2, -1.0, -0.3, 1.0, 1.4, 1.3, 0.7],  # Disgust: nose wrinkle, raised lip, sneer
        [-0.7, 1.8, 0.22, 0.0, 2.1, 1.6, 0.5, 0.0, 0.0, 0.0, 0.6],  # Fear: wide eyes, worried brows, stretched mouth
        [3.0, 2.0, 0.28, 0.0, 0.0, 0.3, -0.3, 0.0, 0.0, 0.0, 1.0],  # Happy: smile, slightly narrowed eyes
        [-2.4, 0.0, -0.08, 0.0, 2.4, 0.2, -0.18, 0.0, 0.0, 0.0, 0.0],  # Sad: frown, inner brows up
        [0.0, 5.0, -0.38, 1.0, 0.6, 3.0, 0.6, 0.0, 0.0, 0.0, 0.0],  # Surprise: round open mouth, high brows
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # Neutral
    ],
    dtype=np.float32,
)
# Per-face idiosyncratic deviation (std) of each expression parameter: makes weak expressions resemble neutral
# (and each other), so classes overlap like in real FER. Signed parameters get symmetric noise; the magnitude-like
# ones (open, round, wrinkle, lip_raise, teeth) are clipped at 0 after adding it.
_EXPRESSION_JITTER = np.array([0.5, 0.35, 0.07, 0.08, 0.55, 0.5, 0.1, 0.08, 0.2, 0.25, 0.1], dtype=np.float32)
_NONNEGATIVE = np.array([n in ("open", "round", "wrinkle", "lip_raise", "teeth") for n in EXPRESSION_PARAMS])
_INTENSITY_RANGE = (0.4, 1.15)  # default per-face expression intensity, uniform
_INTENSITY_CAP = 1.3  # larger requested intensities are clipped: features must stay inside their render windows
# Bounds of every expression parameter after intensity and quirks: renders clip to them, and the render windows
# are sized from them (so no feature is ever cut off at a window edge).
_EXPR_LO = np.minimum(_EXPRESSIONS.min(axis=0), 0.0) * _INTENSITY_CAP - 2.0 * _EXPRESSION_JITTER
_EXPR_HI = np.maximum(_EXPRESSIONS.max(axis=0), 0.0) * _INTENSITY_CAP + 2.0 * _EXPRESSION_JITTER
_EXPR_LO[_NONNEGATIVE] = 0.0
_EXPR_HI[EXPRESSION_PARAMS.index("round")] = 1.0


@dataclass(frozen=True, eq=False)
class ToyIdentity:
    """Who is in the picture: per-face identity parameters, each a ``float32`` array of shape ``[N]``.

    Kept apart from expression and nuisance so one identity can be rendered under several expressions (ground-truth
    pairs) and so identity-disjoint splits are trivial (each face in :func:`make_toy_faces` is its own identity).
    Field meanings and ranges are documented in ``_IDENTITY_RANGES``; lengths are in 48-px units.
    """

    face_w: np.ndarray
    face_h: np.ndarray
    chin_taper: np.ndarray
    face_cy: np.ndarray
    eye_dx: np.ndarray
    eye_y: np.ndarray
    eye_w: np.ndarray
    eye_ratio: np.ndarray
    pupil: np.ndarray
    brow_gap: np.ndarray
    brow_len: np.ndarray
    brow_thick: np.ndarray
    brow_arch: np.ndarray
    nose_y: np.ndarray
    nose_w: np.ndarray
    mouth_y: np.ndarray
    mouth_w: np.ndarray
    lip_thick: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    hair_top: np.ndarray
    hair_vol: np.ndarray
    hair_side: np.ndarray
    hair_part: np.ndarray
    hair_curve: np.ndarray
    background: np.ndarray
    light_angle: np.ndarray
    light_strength: np.ndarray

    def __post_init__(self) -> None:
        lengths = {f.name: np.shape(getattr(self, f.name)) for f in fields(self)}
        shapes = set(lengths.values())
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"ToyIdentity fields must all be 1-D arrays of one length, got shapes {lengths}")

    def __len__(self) -> int:
        return int(np.shape(self.face_w)[0])

    def subset(self, index: Sequence[int] | np.ndarray) -> ToyIdentity:
        """The identities at ``index``: lets callers re-render chosen faces without resampling anything."""
        idx = np.asarray(index, dtype=np.int64)
        return ToyIdentity(**{f.name: np.asarray(getattr(self, f.name))[idx] for f in fields(self)})

    @classmethod
    def mean(cls, n: int = 1) -> ToyIdentity:
        """``n`` copies of the average identity (centre of every range): a reference face for masks and demos."""
        return cls(**{k: np.full(n, (lo + hi) / 2, dtype=np.float32) for k, (lo, hi) in _IDENTITY_RANGES.items()})


def _labels_array(labels: torch.Tensor | np.ndarray | Sequence[int | str] | int | str, n: int) -> np.ndarray:
    """Normalize labels (tensor, array, list of names/ints, or one label broadcast to all faces) to int64 [n]."""
    if isinstance(labels, (int, np.integer, str)):
        return np.full(n, emotion_index(labels if isinstance(labels, str) else int(labels)), dtype=np.int64)
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"labels must have shape [{n}] to match the identities, got {arr.shape}")
    if arr.dtype.kind in "USO":
        return np.array([emotion_index(x if isinstance(x, str) else int(x)) for x in arr.tolist()], dtype=np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"labels must be integers 0..{len(EMOTIONS) - 1} or emotion names, got dtype {arr.dtype}")
    bad = arr[(arr < 0) | (arr >= len(EMOTIONS))]
    if bad.size:
        raise ValueError(f"label {int(bad[0])!r} out of range: labels are 0..{len(EMOTIONS) - 1}")
    return arr.astype(np.int64)


class ToyFaceGenerator:
    """Samples identities and renders them under any expression.

    Identity draws come from one numpy stream seeded by ``seed`` (deterministic given call order); nuisance
    (shift, rotation, noise, blur) and per-face expression intensity come from ``nuisance_seed`` at render time,
    so re-rendering the same identities with the same ``nuisance_seed`` under other labels gives exact
    ground-truth pairs.
    """

    def __init__(self, seed: int = 0, size: int = 48) -> None:
        if not isinstance(size, (int, np.integer)) or size < 16:
            raise ValueError(f"size must be an integer >= 16, got {size!r}")
        self.seed = int(seed)
        self.size = int(size)
        self._rng = np.random.default_rng(self.seed)
        # Pixel-centre coordinates in 48-px units, origin at the image centre.
        c = (torch.arange(self.size, dtype=torch.float32) + 0.5) * (_REF / self.size) - _REF / 2
        self._gy, self._gx = torch.meshgrid(c, c, indexing="ij")
        self._soft = _EDGE_PX * _REF / self.size  # anti-aliasing ramp width, in 48-px units

    def sample_identities(self, n: int) -> ToyIdentity:
        """Draw ``n`` random identities from this generator's stream."""
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        u = self._rng.random((len(_IDENTITY_RANGES), int(n)), dtype=np.float32)
        return ToyIdentity(
            **{name: lo + (hi - lo) * u[i] for i, (name, (lo, hi)) in enumerate(_IDENTITY_RANGES.items())}
        )

    def render(
        self,
        identity: ToyIdentity,
        labels: torch.Tensor | np.ndarray | Sequence[int | str] | int | str,
        *,
        intensity: np.ndarray | float | None = None,
        nuisance_seed: int | None = None,
    ) -> torch.Tensor:
        """Render ``identity`` with expression ``labels``; returns ``uint8 [N, size, size]``.

        Args:
            identity: ``N`` identities (from :meth:`sample_identities`).
            labels: ``[N]`` class indices or emotion names (or one label for all faces).
            intensity: per-face expression strength (``1`` = prototype, ``0`` = neutral); drawn from
                ``nuisance_seed`` when ``None``.
            nuisance_seed: seeds shift/rotation/zoom, noise, blur, intensity and the per-face expression quirks.
                ``None`` draws one from the generator's stream. Same identity + same seed + different labels = a pair
                that differs only through the expression.
        """
        n = len(identity)
        lab = _labels_array(labels, n)
        if nuisance_seed is None:
            nuisance_seed = int(self._rng.integers(0, 2**63 - 1))
        rng = np.random.default_rng([int(nuisance_seed) & (2**63 - 1), 0x70F])
        # Draw everything per face up front (order fixed), so results do not depend on chunking.
        quirk = rng.standard_normal((n, len(EXPRESSION_PARAMS)), dtype=np.float32) * _EXPRESSION_JITTER
        inten_draw = rng.uniform(*_INTENSITY_RANGE, size=n).astype(np.float32)
        nuis = {
            "dx": rng.uniform(-_MAX_SHIFT, _MAX_SHIFT, n),
            "dy": rng.uniform(-_MAX_SHIFT, _MAX_SHIFT, n),
            "rot": np.deg2rad(rng.uniform(-_MAX_ROT_DEG, _MAX_ROT_DEG, n)),
            "zoom": rng.uniform(1 - _MAX_SCALE_DEV, 1 + _MAX_SCALE_DEV, n),
            "noise": rng.uniform(0.03, 0.12, n),  # amplitude of uniform pixel noise (std = amplitude / sqrt(12))
            "blur": rng.uniform(0.1, 0.8, n),
        }
        noise_seed = int(rng.integers(0, 2**62))
        if intensity is None:
            inten = inten_draw
        else:
            inten = np.asarray(intensity, dtype=np.float32)
            if inten.ndim == 0:
                inten = np.full(n, inten, dtype=np.float32)
            elif inten.shape != (n,):
                raise ValueError(f"intensity must be one number or have shape [{n}], got shape {list(inten.shape)}")
            if not np.all(np.isfinite(inten)) or np.any(inten < 0):
                raise ValueError(f"intensity must be finite and >= 0, got {np.asarray(intensity)!r}")
        expr = np.clip(_EXPRESSIONS[lab] * np.minimum(inten, _INTENSITY_CAP)[:, None] + quirk, _EXPR_LO, _EXPR_HI)

        out = torch.empty((n, self.size, self.size), dtype=torch.uint8)
        noise = np.random.default_rng(noise_seed)
        with _single_threaded():
            self._render_all(out, identity, expr, nuis, noise)
        return out

    def _render_all(
        self,
        out: torch.Tensor,
        identity: ToyIdentity,
        expr: np.ndarray,
        nuis: dict[str, np.ndarray],
        noise: np.random.Generator,
    ) -> None:
        """Fill ``out`` chunk by chunk: chunking keeps temporaries cache-sized and memory flat for any ``n``."""
        n = len(identity)
        for start in range(0, n, _CHUNK):
            sl = slice(start, min(n, start + _CHUNK))
            ident = {f.name: torch.from_numpy(np.asarray(getattr(identity, f.name)[sl], dtype=np.float32))
                     for f in fields(identity)}  # fmt: skip
            ex = {k: torch.from_numpy(np.ascontiguousarray(expr[sl, i])) for i, k in enumerate(EXPRESSION_PARAMS)}
            nu = {k: torch.from_numpy(v[sl].astype(np.float32)) for k, v in nuis.items()}
            out[sl] = self._render_chunk(ident, ex, nu, noise)

    def _render_chunk(
        self,
        p: dict[str, torch.Tensor],
        e: dict[str, torch.Tensor],
        nu: dict[str, torch.Tensor],
        noise: np.random.Generator,
    ) -> torch.Tensor:
        """Render one chunk; ``p``/``e``/``nu`` map identity/expression/nuisance names to ``[B]`` tensors.

        Background, hair and head cover the whole image; ears, brows+eyes, nose and mouth are evaluated only inside
        fixed windows (:func:`_render_windows`) that contain them for every identity, expression and pose. That
        saves work, and guarantees that an expression change cannot touch pixels outside its windows.
        """
        p = {name: v[:, None, None] for name, v in p.items()}
        e = {name: v[:, None, None] for name, v in e.items()}
        nu = {name: v[:, None, None] for name, v in nu.items()}
        b = p["face_w"].shape[0]
        k = -1.0 / self._soft
        gx, gy = self._gx[None], self._gy[None]

        # Nuisance pose: map image coordinates back into the face frame (inverse shift, rotation, zoom).
        dx, dy = nu["dx"], nu["dy"]
        cr, sr = torch.cos(nu["rot"]) / nu["zoom"], torch.sin(nu["rot"]) / nu["zoom"]
        x = torch.addcmul(torch.addcmul(-(cr * dx + sr * dy), cr, gx), sr, gy)  # cr (gx-dx) + sr (gy-dy)
        y = torch.addcmul(torch.addcmul(sr * dx - cr * dy - p["face_cy"], cr, gy), -sr, gx)  # cr (gy-dy) - sr (gx-dx)
        ax = x.abs()  # mirrored coordinate: symmetric features are drawn once

        img = p["background"].expand(b, self.size, self.size).clone()
        # Neck down to the image edge, so the head does not float.
        _over(img, _cover(torch.maximum(ax - 0.45 * p["face_w"], -y), k), p["skin"] * 0.8)
        # Back hair: an enlarged head ellipse, cut off at hair_side.
        back, _ = _ellipse(x, y, p["face_w"] + p["hair_vol"], p["face_h"] + p["hair_vol"], y0=-0.8)
        hair = torch.minimum(p["hair"], 0.7 * p["skin"])
        _over(img, _cover(torch.maximum(back, y - p["hair_side"]), k), hair)
        win = _render_windows(self.size)
        r0, r1, c0, c1 = win["ears"]
        ear, _ = _ellipse(ax[:, r0:r1, c0:c1] - p["face_w"], y[:, r0:r1, c0:c1], 1.6, 2.8, y0=p["eye_y"] + 1.0)
        _over(img[:, r0:r1, c0:c1], _cover(ear, k), p["skin"] * 0.9)
        # Head: narrower jaw below the centre, shaded towards its rim, with a soft outline.
        jaw = torch.clamp(y / p["face_h"], 0.0, 1.0)
        jaw = 1.0 - p["chin_taper"] * jaw * jaw
        head_sd, r2 = _ellipse(x / jaw, y, p["face_w"], p["face_h"])
        head = _cover(head_sd, k)
        r2 = torch.clamp(r2, max=1.0)
        _over(img, head, p["skin"] * (1.0 - 0.12 * r2 * r2))
        _over(img, _cover(head_sd.abs() - 0.35, k) * 0.55, p["skin"] * 0.45)
        # Fringe: hair covers the head above a (tilted, curved) hairline.
        xr = x / p["face_w"]
        hairline = torch.addcmul(2.0 * p["hair_part"] * xr - p["face_h"] + p["hair_top"], p["hair_curve"], xr * xr)
        _over(img, head * _cover(y - hairline, k), hair)

        for name, draw in (("eyes", _draw_eyes), ("nose", _draw_nose), ("mouth", _draw_mouth)):
            r0, r1, c0, c1 = win[name]
            draw(img[:, r0:r1, c0:c1], x[:, r0:r1, c0:c1], y[:, r0:r1, c0:c1], p, e, k)

        # Lighting gradient across the image, mild blur, sensor noise.
        light = p["light_strength"] / 24.0
        lx, ly = torch.cos(p["light_angle"]) * light, torch.sin(p["light_angle"]) * light
        img = img * torch.addcmul(lx * gx + 1.0, ly, gy)
        img = img.lerp_(_blur(img), nu["blur"])
        img = torch.addcmul(img, nu["noise"], torch.from_numpy(noise.random(img.shape, dtype=np.float32)) - 0.5)
        return torch.clamp(img * 255.0 + 0.5, 0.0, 255.0).to(torch.uint8)


def _blur(img: torch.Tensor) -> torch.Tensor:
    """Separable 3x3 binomial blur (sigma ~0.7 px, edges replicated); callers blend it in per image."""
    pad = torch.nn.functional.pad(img[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    h = torch.add(pad[:, :, :-2], pad[:, :, 2:]).mul_(0.25).add_(pad[:, :, 1:-1], alpha=0.5)
    return torch.add(h[:, :-2], h[:, 2:]).mul_(0.25).add_(h[:, 1:-1], alpha=0.5)


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """Run torch single-threaded inside the block, restoring the caller's setting afterwards.

    Rendering is hundreds of small, memory-bound elementwise ops: a second intra-op thread buys ~1.3x on an idle
    2-core machine, but OpenMP spin-waiting makes it 5-10x *slower* as soon as other processes share the cores
    (measured while a test suite ran next to it). One thread is the predictable choice.
    """
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cover(d: torch.Tensor, k: float) -> torch.Tensor:
    """Anti-aliased coverage of the region ``d < 0`` for an approximate signed distance ``d``; ``k = -1/ramp width``.

    A linear ramp (pixel-area coverage of a straight edge, widened a little for a soft cartoon look): cheaper than a
    sigmoid and exactly zero beyond half the ramp, which is what lets features be drawn in tight windows."""
    return d.mul(k).add_(0.5).clamp_(0.0, 1.0)


def _over(img: torch.Tensor, alpha: torch.Tensor, color: torch.Tensor | float) -> None:
    """Composite (in place) a layer of gray level ``color`` with coverage ``alpha`` over ``img``."""
    img.lerp_(color.expand_as(img) if isinstance(color, torch.Tensor) else torch.tensor(color), alpha)


def _ellipse(
    x: torch.Tensor, y: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float, y0: torch.Tensor | float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cheap signed distance to the ellipse ``(x/a)^2 + ((y-y0)/b)^2 = 1`` for near-round shapes (head, hair, ears),
    and the normalized squared radius. First order in ``r^2`` with the mean radius as scale: exact enough at the
    edge, where anti-aliasing needs it (the window test in ``tests/test_toy.py`` checks nothing leaks further)."""
    xa = x / a
    yb = torch.addcmul(torch.as_tensor(-y0 / b), y, torch.as_tensor(1.0 / b))
    r2 = torch.addcmul(xa * xa, yb, yb)
    return (r2 - 1.0).mul_((a + b) * 0.25), r2


def _ellipse_exact(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """First-order signed distance to an ellipse, accurate near the edge even for very flat ones (narrowed eyes).

    Far from the edge it underestimates; callers bound it from below with the enclosing circle's distance."""
    ia, ib = 1.0 / a, 1.0 / b
    xa, yb = x * ia, y * ib
    f = torch.addcmul(xa * xa, yb, yb) - 1.0
    gx, gy = xa * ia, yb * ib
    return f * torch.rsqrt(torch.addcmul(gx * gx, gy, gy) + 1e-6) * 0.5


_Params = dict[str, torch.Tensor]


def _draw_eyes(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: _Params, e: _Params, k: float) -> None:
    """Brows and eyes into their window ``img`` (a view of the image, edited in place)."""
    ax = x.abs()
    # Brows: thick tapering segments; brow_in moves the inner ends, brow_h the whole brow.
    brow_col = torch.minimum(p["hair"] + 0.08, p["skin"] * 0.5)
    y_in = p["eye_y"] - p["brow_gap"] - e["brow_h"] - e["brow_in"]
    dxs, dys = 2.0 * p["brow_len"], 1.45 * e["brow_in"]
    inv = 1.0 / (dxs * dxs + dys * dys)
    u, v = ax - (p["eye_dx"] - p["brow_len"]), y - y_in
    t = torch.clamp(torch.addcmul(u * (dxs * inv), v, dys * inv), 0.0, 1.0)
    v = torch.addcmul(v, t * (4.0 * p["brow_arch"]), 1.0 - t)  # arch: the middle bows upwards
    du, dv = torch.addcmul(u, t, -dxs), torch.addcmul(v, t, -dys)
    dist = torch.sqrt(torch.addcmul(du * du, dv, dv))
    _over(img, _cover(torch.addcmul(dist - p["brow_thick"], t, 0.35 * p["brow_thick"]), k), brow_col)

    # Eyes: dark lid rim, light sclera, pupil clipped to the sclera; eye_open scales the height.
    ea = p["eye_w"]
    eb = torch.clamp(p["eye_w"] * p["eye_ratio"] * (1.0 + e["eye_open"]), min=0.25)
    ex, ey = ax - p["eye_dx"], y - p["eye_y"]
    rr = torch.sqrt(torch.addcmul(ex * ex, ey, ey))
    sd = torch.maximum(_ellipse_exact(ex, ey, ea, eb), rr - ea)  # the circle bound fixes the far field
    _over(img, _cover(sd - 0.5, k), 0.12)
    sclera = _cover(sd, k)
    _over(img, sclera, 0.88)
    _over(img, _cover(rr - p["pupil"] * ea, k) * sclera, 0.08)


def _draw_nose(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: _Params, e: _Params, k: float) -> None:
    """Nostrils (raised and flared by the wrinkle), a faint bridge shadow and the disgust wrinkles across the bridge."""
    ax = x.abs()
    wr = e["wrinkle"]
    ny = p["nose_y"] - 0.7 * wr
    nx, nyd = ax - p["nose_w"] * (1.0 + 0.25 * wr), (y - ny) * 1.4
    _over(img, _cover(torch.sqrt(torch.addcmul(nx * nx, nyd, nyd)) - 0.6, k), p["skin"] * 0.35)
    bridge = torch.maximum((x - 0.9).abs() - 0.3, torch.maximum(p["eye_y"] + 2.0 - y, y - ny + 1.0))
    _over(img, _cover(bridge, k) * 0.3, p["skin"] * 0.5)
    wy = y - torch.addcmul(p["eye_y"] + 1.2, x, x, value=0.12)
    lines = torch.maximum(torch.minimum(wy.abs(), (wy - 1.3).abs()) - 0.3, ax - 2.0)
    _over(img, _cover(lines, k) * (torch.clamp(wr, 0.0, 1.0) * 0.8), p["skin"] * 0.4)


def _draw_mouth(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: _Params, e: _Params, k: float) -> None:
    """Mouth: a curved, possibly skewed lip line; open mouths add a lens- to oval-shaped dark hole with teeth."""
    mw = p["mouth_w"] * torch.clamp(1.0 + e["width"], min=0.3)
    xn = x / mw
    xn2 = xn * xn
    inside_w = _cover(x.abs() - mw, k)
    yc = torch.addcmul(p["mouth_y"] - 0.3 * e["lip_raise"] + 0.3 * e["curve"] - 0.5 * e["skew"] * xn, -e["curve"], xn2)
    slope = torch.addcmul(-0.5 * e["skew"], -2.0 * e["curve"], xn) / mw
    prof = torch.clamp(1.0 - xn2, min=0.0)
    prof = torch.lerp(prof, torch.sqrt(prof), e["round"])  # lens (parabolic lips) -> oval (round "O" mouth)
    upper = yc - (0.45 * e["open"] + e["lip_raise"]) * prof
    lower = yc + (0.55 * e["open"]) * prof
    gap = torch.clamp((lower - upper) * 0.5, 0.0, 1.0)  # a closed mouth has no hole
    hole = _cover(upper - y, k) * _cover(y - lower, k) * inside_w * gap
    line = _cover((y - yc).abs() * torch.rsqrt(torch.addcmul(torch.ones_like(slope), slope, slope)) - p["lip_thick"], k)
    _over(img, torch.maximum(hole, line * inside_w), 0.1)
    teeth = hole * _cover(y - torch.lerp(upper, lower, 0.45), k) * (torch.clamp(e["teeth"], 0.0, 1.0) * 0.9)
    _over(img, teeth, 0.85)


def _feature_boxes(
    ident: dict[str, tuple[float, float]], lo: dict[str, float], hi: dict[str, float]
) -> dict[str, tuple[float, float, float, float]]:
    """Face-frame boxes ``(x0, x1, y0, y1)`` holding each windowed feature, for identity parameters in ``ident``
    (``(low, high)`` each) and expression parameters in ``[lo, hi]``. Mirrors the drawing code above: change one,
    change both (``tests/test_toy.py`` renders extreme faces and checks nothing is cut off)."""
    r = ident
    boxes = {}
    ear_x = r["face_w"][1] + 1.6
    boxes["ears"] = (-ear_x, ear_x, r["eye_y"][0] + 1.0 - 2.8, r["eye_y"][1] + 1.0 + 2.8)
    # Brows and eyes.
    eb = r["eye_w"][1] * r["eye_ratio"][1] * (1.0 + hi["eye_open"]) + 0.5
    x1 = max(r["eye_dx"][1] + r["brow_len"][1] + r["brow_thick"][1], r["eye_dx"][1] + r["eye_w"][1] + 0.5)
    base_top = r["eye_y"][0] - r["brow_gap"][1] - hi["brow_h"]
    base_bot = r["eye_y"][1] - r["brow_gap"][0] - lo["brow_h"]
    brow_top = base_top + min(-hi["brow_in"], 0.45 * lo["brow_in"], 0.0) - r["brow_thick"][1] - r["brow_arch"][1]
    brow_bot = base_bot + max(-lo["brow_in"], 0.45 * hi["brow_in"], 0.0) + r["brow_thick"][1]
    boxes["eyes"] = (-x1, x1, min(brow_top, r["eye_y"][0] - eb), max(brow_bot, r["eye_y"][1] + eb))
    # Nose: nostrils, bridge, wrinkles.
    nx = max(r["nose_w"][1] * (1.0 + 0.25 * hi["wrinkle"]) + 0.6, 2.3)
    boxes["nose"] = (-nx, nx, r["eye_y"][0] + 0.9, r["nose_y"][1] + 0.6 / 1.4)
    # Mouth.
    mw = r["mouth_w"][1] * (1.0 + hi["width"])
    skew = max(abs(lo["skew"]), abs(hi["skew"]))
    slope = (2.0 * max(hi["curve"], -lo["curve"]) + 0.5 * skew) / (r["mouth_w"][0] * max(1.0 + lo["width"], 0.3))
    line = r["lip_thick"][1] * math.sqrt(1.0 + slope * slope)
    yc_top = r["mouth_y"][0] - 0.3 * hi["lip_raise"] + min(-0.7 * hi["curve"], 0.3 * lo["curve"], 0.0) - 0.5 * skew
    yc_bot = r["mouth_y"][1] + max(0.3 * hi["curve"], -0.7 * lo["curve"], 0.0) + 0.5 * skew
    m0 = yc_top - max(0.45 * hi["open"] + hi["lip_raise"], line)
    m1 = yc_bot + max(0.55 * hi["open"], line)
    boxes["mouth"] = (-mw, mw, m0, m1)
    return boxes


def _expr_bounds(scale: float = 1.0) -> tuple[dict[str, float], dict[str, float]]:
    """Expression-parameter bounds as dicts (the render clip bounds, or prototype extremes times ``scale``)."""
    if scale == 1.0:
        lo, hi = _EXPR_LO, _EXPR_HI
    else:
        lo, hi = np.minimum(_EXPRESSIONS.min(axis=0), 0.0) * scale, np.maximum(_EXPRESSIONS.max(axis=0), 0.0) * scale
    names = EXPRESSION_PARAMS
    return dict(zip(names, lo.tolist(), strict=True)), dict(zip(names, hi.tolist(), strict=True))


@functools.lru_cache(maxsize=8)
def _render_windows(size: int) -> dict[str, tuple[int, int, int, int]]:
    """Pixel windows ``(row0, row1, col0, col1)`` containing ears, brows+eyes, nose and mouth of every face.

    The face-frame boxes over the full identity and (clipped) expression ranges are pushed through every pose the
    nuisance can produce (face offset, rotation, zoom, shift), plus the anti-aliasing tail.
    """
    out = {}
    for name, (x0, x1, y0, y1) in _feature_boxes(_IDENTITY_RANGES, *_expr_bounds()).items():
        cy0, cy1 = _IDENTITY_RANGES["face_cy"]
        px = np.array([x0, x1, x0, x1])
        py = np.array([y0 + cy0, y0 + cy0, y1 + cy1, y1 + cy1])
        xs, ys = [], []
        for ang in np.deg2rad(np.linspace(-_MAX_ROT_DEG, _MAX_ROT_DEG, 25)):
            for zoom in (1 - _MAX_SCALE_DEV, 1 + _MAX_SCALE_DEV):
                xs.append(zoom * (math.cos(ang) * px - math.sin(ang) * py))
                ys.append(zoom * (math.sin(ang) * px + math.cos(ang) * py))
        pad = _MAX_SHIFT + 0.5 * _EDGE_PX * _REF / size + 0.05  # coverage is exactly 0 beyond half a ramp
        rows = _pixel_range(float(np.min(ys)) - pad, float(np.max(ys)) + pad, size)
        out[name] = rows + _pixel_range(float(np.min(xs)) - pad, float(np.max(xs)) + pad, size)
    return out


def _pixel_range(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Half-open index range of the pixels whose centres lie in ``[lo, hi]`` (48-px units, origin at centre)."""
    scale = size / _REF
    start = max(0, math.ceil((lo + _REF / 2) * scale - 0.5))
    stop = min(size, math.floor((hi + _REF / 2) * scale - 0.5) + 1)
    return start, stop


def expression_mask(size: int = 48, margin: float = 3.0) -> np.ndarray:
    """Where expressions change the *average* face: ``bool [size, size]``, True over brows+eyes, nose and mouth.

    The boxes that the mean identity's brows, eyes, nose wrinkle and mouth occupy over the prototype expression range
    (at the top default intensity), grown by ``margin`` (48-px units) for pose nuisance and blur. Individual faces
    vary around it, so this is a region holding *most* of an expression change (the tests require >= 80 % of the
    difference energy of ground-truth pairs), not a hard bound.
    """
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    mean = {name: ((lo + hi) / 2,) * 2 for name, (lo, hi) in _IDENTITY_RANGES.items()}
    cy = mean["face_cy"][0]
    c = (np.arange(size) + 0.5) * (_REF / size) - _REF / 2
    yy, xx = np.meshgrid(c, c, indexing="ij")
    mask = np.zeros((size, size), dtype=bool)
    for name, (x0, x1, y0, y1) in _feature_boxes(mean, *_expr_bounds(_INTENSITY_RANGE[1])).items():
        if name != "ears":
            mask |= (xx >= x0 - margin) & (xx <= x1 + margin) & (yy >= y0 + cy - margin) & (yy <= y1 + cy + margin)
    return mask


def render_pairs(
    n: int, source: int | str, target: int | str, seed: int = 0, size: int = 48
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` identities rendered as ``source`` and as ``target`` expression (``uint8 [n, size, size]`` each).

    Both renders share identity, pose, noise, blur and expression intensity, so they differ only through the
    expression: ground truth for expression-transfer augmenters.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    src, tgt = emotion_index(source), emotion_index(target)
    gen = ToyFaceGenerator(seed, size)
    ident = gen.sample_identities(n)
    nseed = int(gen._rng.integers(0, 2**63 - 1))
    return gen.render(ident, src, nuisance_seed=nseed), gen.render(ident, tgt, nuisance_seed=nseed)


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total`` and proportional to ``weights`` (Hamilton / largest-remainder rounding)."""
    w = weights / weights.sum()
    raw = w * total
    counts = np.floor(raw).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def _class_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Per-class counts for ``n`` faces: largest-remainder shares, then every class topped up to a small minimum."""
    counts = _largest_remainder(n, weights)
    floor = min(5, n // len(weights))  # "a few" faces, even for a class with a tiny (or zero) weight
    while (counts < floor).any():
        i = int(np.argmin(counts))
        counts[i] += 1
        counts[int(np.argmax(counts))] -= 1
    return counts


def make_toy_faces(
    n: int = 3000,
    seed: int = 0,
    size: int = 48,
    class_weights: Sequence[float] | None = None,
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> FaceDataset:
    """A ready-made toy FER dataset: ``n`` distinct identities, one face each.

    Deterministic per ``(n, seed, size, class_weights, split_fractions)``. Class counts follow ``class_weights``
    (default :data:`FER2013_PROPORTIONS`; every class gets at least a few faces, exact counts via largest-remainder
    rounding). The ``usage`` column assigns ``'Training'`` / ``'PublicTest'`` / ``'PrivateTest'`` stratified per
    class in ``split_fractions``. ``rows = np.arange(n)``; ``source = f"toy(n={n}, seed={seed})"``.
    """
    k = len(EMOTIONS)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < k:
        raise ValueError(f"n must be an integer >= {k} (one face per class at least), got {n!r}")
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    weights = np.asarray(FER2013_PROPORTIONS if class_weights is None else class_weights, dtype=np.float64)
    if weights.shape != (k,):
        got = np.ravel(weights).tolist()
        raise ValueError(f"class_weights must have {k} entries (one per emotion), got {len(got)}: {got!r}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"class_weights must be finite, >= 0 and not all zero, got {weights.tolist()!r}")
    fr = np.asarray(split_fractions, dtype=np.float64)
    if fr.shape != (len(SPLITS),) or not np.all(np.isfinite(fr)) or np.any(fr < 0) or abs(fr.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"split_fractions must be {len(SPLITS)} non-negative numbers summing to 1, got {tuple(split_fractions)!r}"
        )

    counts = _class_counts(int(n), weights)
    gen = ToyFaceGenerator(seed, size)
    ident = gen.sample_identities(int(n))
    order_rng = np.random.default_rng([int(seed) & (2**63 - 1), 0x5E7])
    labels = order_rng.permutation(np.repeat(np.arange(k), counts))
    usage = np.empty(n, dtype=object)
    for c in range(k):
        idx = order_rng.permutation(np.flatnonzero(labels == c))
        per_split = _largest_remainder(len(idx), fr) if len(idx) else np.zeros(len(SPLITS), dtype=np.int64)
        usage[idx] = np.repeat(np.array(SPLITS, dtype=object), per_split)
    nseed = int(gen._rng.integers(0, 2**63 - 1))
    images = gen.render(ident, labels, nuisance_seed=nseed)
    return FaceDataset(
        images=images,
        labels=torch.from_numpy(labels.astype(np.int64)),
        usage=usage.astype(str),
        rows=np.arange(n, dtype=np.int64),
        classes=EMOTIONS,
        source=f"toy(n={n}, seed={seed})",
    )
