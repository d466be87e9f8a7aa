"""What a toy face is made of: identity and expression parameters, their ranges, and the pose nuisance bounds.

Expression, identity and nuisance are separate parameter sets (:mod:`feraug.data.toy`), so the
same identity can be rendered under two labels with identical nuisance. Lengths are in units of a
48x48 image (:data:`REF`), whatever the output size; :mod:`feraug.data.toy_drawing` turns the
parameters into pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

REF = 48.0  # geometry is specified in units of a 48x48 image, whatever the output size
MAX_SHIFT = 1.5  # nuisance translation bound, in 48-px units
MAX_ROT_DEG = 6.0  # nuisance rotation bound
MAX_SCALE_DEV = 0.04  # nuisance zoom bound (relative)
EDGE_PX = 1.5  # width of the anti-aliasing ramp at shape edges, in output pixels

# --------------------------------------------------------------------------------------------------------------
# Identity parameters: name -> (low, high) of a uniform draw. Units are 48-px units (face frame: x right,
# y down, origin at the face centre) unless noted. Ranges are chosen so every draw still looks like a face.
# --------------------------------------------------------------------------------------------------------------
IDENTITY_RANGES: dict[str, tuple[float, float]] = {
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
EXPRESSIONS = np.array(
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
EXPRESSION_JITTER = np.array([0.5, 0.35, 0.07, 0.08, 0.55, 0.5, 0.1, 0.08, 0.2, 0.25, 0.1], dtype=np.float32)
_NONNEGATIVE = np.array([n in ("open", "round", "wrinkle", "lip_raise", "teeth") for n in EXPRESSION_PARAMS])
INTENSITY_RANGE = (0.4, 1.15)  # default per-face expression intensity, uniform
INTENSITY_CAP = 1.3  # larger requested intensities are clipped: features must stay inside their render windows
# Bounds of every expression parameter after intensity and quirks: renders clip to them, and the render windows
# are sized from them (so no feature is ever cut off at a window edge).
EXPR_LO = np.minimum(EXPRESSIONS.min(axis=0), 0.0) * INTENSITY_CAP - 2.0 * EXPRESSION_JITTER
EXPR_HI = np.maximum(EXPRESSIONS.max(axis=0), 0.0) * INTENSITY_CAP + 2.0 * EXPRESSION_JITTER
EXPR_LO[_NONNEGATIVE] = 0.0
EXPR_HI[EXPRESSION_PARAMS.index("round")] = 1.0


@dataclass(frozen=True, eq=False)
class ToyIdentity:
    """Who is in the picture: per-face identity parameters, each a ``float32`` array of shape ``[N]``.

    Kept apart from expression and nuisance so one identity can be rendered under several expressions (ground-truth
    pairs) and so identity-disjoint splits are trivial (each face in :func:`make_toy_faces` is its own identity).
    Field meanings and ranges are documented in ``IDENTITY_RANGES``; lengths are in 48-px units.
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
        return cls(**{k: np.full(n, (lo + hi) / 2, dtype=np.float32) for k, (lo, hi) in IDENTITY_RANGES.items()})
