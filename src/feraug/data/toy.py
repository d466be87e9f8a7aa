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
differ only in the expression regions (see :func:`feraug.data.toy_drawing.expression_mask`), which is what
expression-transfer augmenters need for supervised checks.

The parameters live in :mod:`feraug.data.toy_params`, the drawing in :mod:`feraug.data.toy_drawing`; here
they are sampled and rendered in chunks, and :func:`make_toy_faces` makes a dataset of them. A 3000-face set
takes about half a second on one CPU core.
"""


from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import fields

import numpy as np
import torch

from feraug.data.classes import EMOTIONS, emotion_index
from feraug.data.dataset import SPLITS, FaceDataset
from feraug.data.toy_drawing import draw_faces
from feraug.data.toy_params import (
    EDGE_PX,
    EXPR_HI,
    EXPR_LO,
    EXPRESSION_JITTER,
    EXPRESSION_PARAMS,
    EXPRESSIONS,
    IDENTITY_RANGES,
    INTENSITY_CAP,
    INTENSITY_RANGE,
    MAX_ROT_DEG,
    MAX_SCALE_DEV,
    MAX_SHIFT,
    REF,
    ToyIdentity,
)

__all__ = ["FER2013_PROPORTIONS", "ToyFaceGenerator", "make_toy_faces", "render_pairs"]

_FER2013_TRAIN_COUNTS = (3995, 436, 4097, 7215, 4830, 3171, 4965)
#: Class shares of the FER2013 ``Training`` split, FER2013 label order; the default class balance of the toy set,
#: so imbalance-handling code (Disgust is ~1.5 %) is exercised the same way as on the real data.
FER2013_PROPORTIONS: tuple[float, ...] = tuple(c / sum(_FER2013_TRAIN_COUNTS) for c in _FER2013_TRAIN_COUNTS)

_CHUNK = 256  # images per vectorized pass: temporaries (chunk * size^2 floats) stay cache-sized, memory stays flat


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
        c = (torch.arange(self.size, dtype=torch.float32) + 0.5) * (REF / self.size) - REF / 2
        self._gy, self._gx = torch.meshgrid(c, c, indexing="ij")
        self._soft = EDGE_PX * REF / self.size  # anti-aliasing ramp width, in 48-px units

    def sample_identities(self, n: int) -> ToyIdentity:
        """Draw ``n`` random identities from this generator's stream."""
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        u = self._rng.random((len(IDENTITY_RANGES), int(n)), dtype=np.float32)
        return ToyIdentity(
            **{name: lo + (hi - lo) * u[i] for i, (name, (lo, hi)) in enumerate(IDENTITY_RANGES.items())}
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
        quirk = rng.standard_normal((n, len(EXPRESSION_PARAMS)), dtype=np.float32) * EXPRESSION_JITTER
        inten_draw = rng.uniform(*INTENSITY_RANGE, size=n).astype(np.float32)
        nuis = {
            "dx": rng.uniform(-MAX_SHIFT, MAX_SHIFT, n),
            "dy": rng.uniform(-MAX_SHIFT, MAX_SHIFT, n),
            "rot": np.deg2rad(rng.uniform(-MAX_ROT_DEG, MAX_ROT_DEG, n)),
            "zoom": rng.uniform(1 - MAX_SCALE_DEV, 1 + MAX_SCALE_DEV, n),
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
        expr = np.clip(EXPRESSIONS[lab] * np.minimum(inten, INTENSITY_CAP)[:, None] + quirk, EXPR_LO, EXPR_HI)

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
            out[sl] = draw_faces(ident, ex, nu, (self._gy, self._gx), self._soft, noise)


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
