"""How a toy face is drawn: anti-aliased shapes composited layer by layer, and where each feature can be.

Rendering is fully vectorized in torch: every shape is an anti-aliased coverage mask (a clamped
linear ramp of an approximate signed distance) evaluated on a batched coordinate grid and
composited layer by layer; small features are evaluated only inside fixed windows
(:func:`render_windows`) that contain them for every identity, expression and pose, which saves
work and guarantees that an expression change cannot touch pixels outside its windows.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from feraug.data.toy_params import (
    EDGE_PX,
    EXPR_HI,
    EXPR_LO,
    EXPRESSION_PARAMS,
    EXPRESSIONS,
    IDENTITY_RANGES,
    INTENSITY_RANGE,
    MAX_ROT_DEG,
    MAX_SCALE_DEV,
    MAX_SHIFT,
    REF,
)


def draw_faces(
    p: dict[str, torch.Tensor],
    e: dict[str, torch.Tensor],
    nu: dict[str, torch.Tensor],
    grid: tuple[torch.Tensor, torch.Tensor],
    soft: float,
    noise: np.random.Generator,
) -> torch.Tensor:
    """Faces ``uint8 [B, size, size]``; ``p``/``e``/``nu`` map identity/expression/nuisance names to ``[B]``
    tensors, ``grid`` holds the pixel centres (``y``, ``x``, 48-px units, origin at the image centre) and
    ``soft`` the anti-aliasing ramp width.

    Background, hair and head cover the whole image; ears, brows+eyes, nose and mouth are evaluated only inside
    fixed windows (:func:`render_windows`) that contain them for every identity, expression and pose. That
    saves work, and guarantees that an expression change cannot touch pixels outside its windows.
    """
    p = {name: v[:, None, None] for name, v in p.items()}
    e = {name: v[:, None, None] for name, v in e.items()}
    nu = {name: v[:, None, None] for name, v in nu.items()}
    b = p["face_w"].shape[0]
    k = -1.0 / soft
    gy, gx = grid
    size = gx.shape[-1]
    gx, gy = gx[None], gy[None]

    # Nuisance pose: map image coordinates back into the face frame (inverse shift, rotation, zoom).
    dx, dy = nu["dx"], nu["dy"]
    cr, sr = torch.cos(nu["rot"]) / nu["zoom"], torch.sin(nu["rot"]) / nu["zoom"]
    x = torch.addcmul(torch.addcmul(-(cr * dx + sr * dy), cr, gx), sr, gy)  # cr (gx-dx) + sr (gy-dy)
    y = torch.addcmul(torch.addcmul(sr * dx - cr * dy - p["face_cy"], cr, gy), -sr, gx)  # cr (gy-dy) - sr (gx-dx)
    ax = x.abs()  # mirrored coordinate: symmetric features are drawn once

    img = p["background"].expand(b, size, size).clone()
    # Neck down to the image edge, so the head does not float.
    over(img, cover(torch.maximum(ax - 0.45 * p["face_w"], -y), k), p["skin"] * 0.8)
    # Back hair: an enlarged head ellipse, cut off at hair_side.
    back, _ = ellipse(x, y, p["face_w"] + p["hair_vol"], p["face_h"] + p["hair_vol"], y0=-0.8)
    hair = torch.minimum(p["hair"], 0.7 * p["skin"])
    over(img, cover(torch.maximum(back, y - p["hair_side"]), k), hair)
    win = render_windows(size)
    r0, r1, c0, c1 = win["ears"]
    ear, _ = ellipse(ax[:, r0:r1, c0:c1] - p["face_w"], y[:, r0:r1, c0:c1], 1.6, 2.8, y0=p["eye_y"] + 1.0)
    over(img[:, r0:r1, c0:c1], cover(ear, k), p["skin"] * 0.9)
    # Head: narrower jaw below the centre, shaded towards its rim, with a soft outline.
    jaw = torch.clamp(y / p["face_h"], 0.0, 1.0)
    jaw = 1.0 - p["chin_taper"] * jaw * jaw
    head_sd, r2 = ellipse(x / jaw, y, p["face_w"], p["face_h"])
    head = cover(head_sd, k)
    r2 = torch.clamp(r2, max=1.0)
    over(img, head, p["skin"] * (1.0 - 0.12 * r2 * r2))
    over(img, cover(head_sd.abs() - 0.35, k) * 0.55, p["skin"] * 0.45)
    # Fringe: hair covers the head above a (tilted, curved) hairline.
    xr = x / p["face_w"]
    hairline = torch.addcmul(2.0 * p["hair_part"] * xr - p["face_h"] + p["hair_top"], p["hair_curve"], xr * xr)
    over(img, head * cover(y - hairline, k), hair)

    for name, draw in (("eyes", draw_eyes), ("nose", draw_nose), ("mouth", draw_mouth)):
        r0, r1, c0, c1 = win[name]
        draw(img[:, r0:r1, c0:c1], x[:, r0:r1, c0:c1], y[:, r0:r1, c0:c1], p, e, k)

    # Lighting gradient across the image, mild blur, sensor noise.
    light = p["light_strength"] / 24.0
    lx, ly = torch.cos(p["light_angle"]) * light, torch.sin(p["light_angle"]) * light
    img = img * torch.addcmul(lx * gx + 1.0, ly, gy)
    img = img.lerp_(blur(img), nu["blur"])
    img = torch.addcmul(img, nu["noise"], torch.from_numpy(noise.random(img.shape, dtype=np.float32)) - 0.5)
    return torch.clamp(img * 255.0 + 0.5, 0.0, 255.0).to(torch.uint8)


def blur(img: torch.Tensor) -> torch.Tensor:
    """Separable 3x3 binomial blur (sigma ~0.7 px, edges replicated); callers blend it in per image."""
    pad = torch.nn.functional.pad(img[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    h = torch.add(pad[:, :, :-2], pad[:, :, 2:]).mul_(0.25).add_(pad[:, :, 1:-1], alpha=0.5)
    return torch.add(h[:, :-2], h[:, 2:]).mul_(0.25).add_(h[:, 1:-1], alpha=0.5)



def cover(d: torch.Tensor, k: float) -> torch.Tensor:
    """Anti-aliased coverage of the region ``d < 0`` for an approximate signed distance ``d``; ``k = -1/ramp width``.

    A linear ramp (pixel-area coverage of a straight edge, widened a little for a soft cartoon look): cheaper than a
    sigmoid and exactly zero beyond half the ramp, which is what lets features be drawn in tight windows."""
    return d.mul(k).add_(0.5).clamp_(0.0, 1.0)


def over(img: torch.Tensor, alpha: torch.Tensor, color: torch.Tensor | float) -> None:
    """Composite (in place) a layer of gray level ``color`` with coverage ``alpha`` over ``img``."""
    img.lerp_(color.expand_as(img) if isinstance(color, torch.Tensor) else torch.tensor(color), alpha)


def ellipse(
    x: torch.Tensor, y: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float, y0: torch.Tensor | float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cheap signed distance to the ellipse ``(x/a)^2 + ((y-y0)/b)^2 = 1`` for near-round shapes (head, hair, ears),
    and the normalized squared radius. First order in ``r^2`` with the mean radius as scale: exact enough at the
    edge, where anti-aliasing needs it (the window test in ``tests/test_toy.py`` checks nothing leaks further)."""
    xa = x / a
    yb = torch.addcmul(torch.as_tensor(-y0 / b), y, torch.as_tensor(1.0 / b))
    r2 = torch.addcmul(xa * xa, yb, yb)
    return (r2 - 1.0).mul_((a + b) * 0.25), r2


def ellipse_exact(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """First-order signed distance to an ellipse, accurate near the edge even for very flat ones (narrowed eyes).

    Far from the edge it underestimates; callers bound it from below with the enclosing circle's distance."""
    ia, ib = 1.0 / a, 1.0 / b
    xa, yb = x * ia, y * ib
    f = torch.addcmul(xa * xa, yb, yb) - 1.0
    gx, gy = xa * ia, yb * ib
    return f * torch.rsqrt(torch.addcmul(gx * gx, gy, gy) + 1e-6) * 0.5


Params = dict[str, torch.Tensor]


def draw_eyes(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: Params, e: Params, k: float) -> None:
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
    over(img, cover(torch.addcmul(dist - p["brow_thick"], t, 0.35 * p["brow_thick"]), k), brow_col)

    # Eyes: dark lid rim, light sclera, pupil clipped to the sclera; eye_open scales the height.
    ea = p["eye_w"]
    eb = torch.clamp(p["eye_w"] * p["eye_ratio"] * (1.0 + e["eye_open"]), min=0.25)
    ex, ey = ax - p["eye_dx"], y - p["eye_y"]
    rr = torch.sqrt(torch.addcmul(ex * ex, ey, ey))
    sd = torch.maximum(ellipse_exact(ex, ey, ea, eb), rr - ea)  # the circle bound fixes the far field
    over(img, cover(sd - 0.5, k), 0.12)
    sclera = cover(sd, k)
    over(img, sclera, 0.88)
    over(img, cover(rr - p["pupil"] * ea, k) * sclera, 0.08)


def draw_nose(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: Params, e: Params, k: float) -> None:
    """Nostrils (raised and flared by the wrinkle), a faint bridge shadow and the disgust wrinkles across the bridge."""
    ax = x.abs()
    wr = e["wrinkle"]
    ny = p["nose_y"] - 0.7 * wr
    nx, nyd = ax - p["nose_w"] * (1.0 + 0.25 * wr), (y - ny) * 1.4
    over(img, cover(torch.sqrt(torch.addcmul(nx * nx, nyd, nyd)) - 0.6, k), p["skin"] * 0.35)
    bridge = torch.maximum((x - 0.9).abs() - 0.3, torch.maximum(p["eye_y"] + 2.0 - y, y - ny + 1.0))
    over(img, cover(bridge, k) * 0.3, p["skin"] * 0.5)
    wy = y - torch.addcmul(p["eye_y"] + 1.2, x, x, value=0.12)
    lines = torch.maximum(torch.minimum(wy.abs(), (wy - 1.3).abs()) - 0.3, ax - 2.0)
    over(img, cover(lines, k) * (torch.clamp(wr, 0.0, 1.0) * 0.8), p["skin"] * 0.4)


def draw_mouth(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: Params, e: Params, k: float) -> None:
    """Mouth: a curved, possibly skewed lip line; open mouths add a lens- to oval-shaped dark hole with teeth."""
    mw = p["mouth_w"] * torch.clamp(1.0 + e["width"], min=0.3)
    xn = x / mw
    xn2 = xn * xn
    inside_w = cover(x.abs() - mw, k)
    yc = torch.addcmul(p["mouth_y"] - 0.3 * e["lip_raise"] + 0.3 * e["curve"] - 0.5 * e["skew"] * xn, -e["curve"], xn2)
    slope = torch.addcmul(-0.5 * e["skew"], -2.0 * e["curve"], xn) / mw
    prof = torch.clamp(1.0 - xn2, min=0.0)
    prof = torch.lerp(prof, torch.sqrt(prof), e["round"])  # lens (parabolic lips) -> oval (round "O" mouth)
    upper = yc - (0.45 * e["open"] + e["lip_raise"]) * prof
    lower = yc + (0.55 * e["open"]) * prof
    gap = torch.clamp((lower - upper) * 0.5, 0.0, 1.0)  # a closed mouth has no hole
    hole = cover(upper - y, k) * cover(y - lower, k) * inside_w * gap
    line = cover((y - yc).abs() * torch.rsqrt(torch.addcmul(torch.ones_like(slope), slope, slope)) - p["lip_thick"], k)
    over(img, torch.maximum(hole, line * inside_w), 0.1)
    teeth = hole * cover(y - torch.lerp(upper, lower, 0.45), k) * (torch.clamp(e["teeth"], 0.0, 1.0) * 0.9)
    over(img, teeth, 0.85)


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
        lo, hi = EXPR_LO, EXPR_HI
    else:
        lo, hi = np.minimum(EXPRESSIONS.min(axis=0), 0.0) * scale, np.maximum(EXPRESSIONS.max(axis=0), 0.0) * scale
    names = EXPRESSION_PARAMS
    return dict(zip(names, lo.tolist(), strict=True)), dict(zip(names, hi.tolist(), strict=True))


@functools.lru_cache(maxsize=8)
def render_windows(size: int) -> dict[str, tuple[int, int, int, int]]:
    """Pixel windows ``(row0, row1, col0, col1)`` containing ears, brows+eyes, nose and mouth of every face.

    The face-frame boxes over the full identity and (clipped) expression ranges are pushed through every pose the
    nuisance can produce (face offset, rotation, zoom, shift), plus the anti-aliasing tail.
    """
    out = {}
    for name, (x0, x1, y0, y1) in _feature_boxes(IDENTITY_RANGES, *_expr_bounds()).items():
        cy0, cy1 = IDENTITY_RANGES["face_cy"]
        px = np.array([x0, x1, x0, x1])
        py = np.array([y0 + cy0, y0 + cy0, y1 + cy1, y1 + cy1])
        xs, ys = [], []
        for ang in np.deg2rad(np.linspace(-MAX_ROT_DEG, MAX_ROT_DEG, 25)):
            for zoom in (1 - MAX_SCALE_DEV, 1 + MAX_SCALE_DEV):
                xs.append(zoom * (math.cos(ang) * px - math.sin(ang) * py))
                ys.append(zoom * (math.sin(ang) * px + math.cos(ang) * py))
        pad = MAX_SHIFT + 0.5 * EDGE_PX * REF / size + 0.05  # coverage is exactly 0 beyond half a ramp
        rows = _pixel_range(float(np.min(ys)) - pad, float(np.max(ys)) + pad, size)
        out[name] = rows + _pixel_range(float(np.min(xs)) - pad, float(np.max(xs)) + pad, size)
    return out


def _pixel_range(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Half-open index range of the pixels whose centres lie in ``[lo, hi]`` (48-px units, origin at centre)."""
    scale = size / REF
    start = max(0, math.ceil((lo + REF / 2) * scale - 0.5))
    stop = min(size, math.floor((hi + REF / 2) * scale - 0.5) + 1)
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
    mean = {name: ((lo + hi) / 2,) * 2 for name, (lo, hi) in IDENTITY_RANGES.items()}
    cy = mean["face_cy"][0]
    c = (np.arange(size) + 0.5) * (REF / size) - REF / 2
    yy, xx = np.meshgrid(c, c, indexing="ij")
    mask = np.zeros((size, size), dtype=bool)
    for name, (x0, x1, y0, y1) in _feature_boxes(mean, *_expr_bounds(INTENSITY_RANGE[1])).items():
        if name != "ears":
            mask |= (xx >= x0 - margin) & (xx <= x1 + margin) & (yy >= y0 + cy - margin) & (yy <= y1 + cy + margin)
    return mask
