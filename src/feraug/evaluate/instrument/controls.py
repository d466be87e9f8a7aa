"""Negative controls for a synthetic set: what "nothing happened to the expression" reads as.

A transfer rate means nothing on its own: a judge may read blur, noise or a grid texture as the
target emotion. So every set is measured beside **controls** — the same faces it was made from
(or, for a sampled set, real faces of another class), degraded by each of
:data:`feraug.data.degrade.CONTROLS` and left as they were — scored by the same judge, face by face,
exactly like the set. A set's headline is its **transfer above control**: its transfer rate minus
the highest control's, with a 95 % interval (paired by source face for a translation; two
independent proportions for a sampled set).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from feraug.core.seeding import SELECT, generator
from feraug.data.augment import to_float, to_uint8
from feraug.data.degrade import CONTROLS, apply_chain

#: The control that changes nothing.
UNTOUCHED = "untouched"
#: Normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054


Chain = tuple[tuple[str, float], ...]


def control_faces(faces: torch.Tensor, seed: int = 0, controls: dict[str, Chain] | None = None,
                  ) -> dict[str, torch.Tensor]:  # fmt: skip
    """``uint8 [N,H,W]`` faces -> ``{control name: uint8 [N,H,W]}``, the untouched faces first.

    Deterministic: control ``i`` draws its noise from a generator seeded by ``(seed, i)``, so the
    same faces and seed give the same controls on every run.
    """
    controls = CONTROLS if controls is None else controls
    out = {UNTOUCHED: faces}
    x = to_float(faces)
    for i, (name, chain) in enumerate(controls.items()):
        out[name] = to_uint8(apply_chain(x, chain, generator(seed, SELECT, 7919, i)))
    return out


def above_control(hits: np.ndarray, control_hits: dict[str, np.ndarray], *, paired: bool) -> dict[str, Any]:
    """Transfer above the highest control, with its 95 % interval.

    Args:
        hits: ``bool [N]``, the judge calls synthetic face ``j`` the target.
        control_hits: per control, ``bool [M]`` the same for its faces; ``M == N`` and face ``j`` of
            each control made from the source of synthetic face ``j`` when ``paired``.
        paired: the interval of the mean paired difference ``hits - control`` (normal approximation,
            sample sd); else of the difference of two independent proportions (Wald).

    Returns:
        ``{"transfer", "control", "control_rate", "above", "ci95": [lo, hi], "controls": {name: rate}}``.
    """
    if not control_hits:
        raise ValueError("above_control needs at least one control")
    hits = np.asarray(hits, dtype=np.float64)
    rates = {name: float(np.mean(h)) for name, h in control_hits.items()}
    worst = max(rates, key=lambda name: rates[name])  # the first of equal rates: dict order
    base = np.asarray(control_hits[worst], dtype=np.float64)
    if paired:
        if base.shape != hits.shape:
            raise ValueError(f"paired controls need one face per synthetic face: {base.shape} vs {hits.shape}")
        d = hits - base
        above = float(d.mean())
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
    else:
        p1, p2 = float(hits.mean()), float(base.mean())
        above = p1 - p2
        se = math.sqrt(p1 * (1 - p1) / len(hits) + p2 * (1 - p2) / len(base))
    return {"transfer": float(hits.mean()), "control": worst, "control_rate": rates[worst], "above": above,
            "ci95": [above - Z95 * se, above + Z95 * se], "controls": rates}  # fmt: skip


def headline(results: dict[str, dict[str, Any]], disagree: float) -> str:
    """One line per judge, then a flag when their above-control figures differ by more than ``disagree``."""
    lines = []
    for name, r in results.items():
        lo, hi = r["ci95"]
        of_real = r.get("of_real")
        real = "" if of_real is None else (f"; real target faces {r['real_target_rate']:.1%}, so the set reaches "
                                           f"{of_real:.0%} of their margin")  # fmt: skip
        lines.append(f"judge {name}: transfer above control {r['above']:+.1%} [95% CI {lo:+.1%}, {hi:+.1%}] "
                     f"(set {r['transfer']:.1%}; highest control '{r['control']}' {r['control_rate']:.1%}{real})")
    values = [r["above"] for r in results.values()]
    if len(values) > 1 and max(values) - min(values) > disagree:
        lines.append(f"FLAG: the judges disagree by {max(values) - min(values):.0%} (more than {disagree:.0%}): "
                     "trust neither figure; look at the faces")  # fmt: skip
    return "\n".join(lines)
