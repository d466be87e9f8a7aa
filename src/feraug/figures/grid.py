"""Labelled image grids (PIL only: no plotting stack needed to look at faces)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from feraug.data.dataset import FaceDataset


def labelled_grid(
    rows: Sequence[torch.Tensor | np.ndarray],
    row_labels: Sequence[str],
    *,
    scale: int = 2,
    pad: int = 2,
    label_width: int = 80,
    header: Sequence[str] | None = None,
) -> Image.Image:
    """One row of faces per entry of ``rows`` (each ``uint8 [k, H, W]``), a text label on the left.

    ``header`` optionally names the columns (e.g. ``real A | fake B | recovered A``).
    """
    if len(rows) != len(row_labels):
        raise ValueError(f"{len(rows)} rows but {len(row_labels)} labels")
    arrays = [np.asarray(r, dtype=np.uint8) for r in rows]
    h, w = next((a.shape[1:] for a in arrays if a.size), (48, 48))
    cols = max((a.shape[0] for a in arrays), default=0)
    cell_h, cell_w = h * scale + pad, w * scale + pad
    top = 14 if header else 0
    canvas = Image.new("L", (label_width + cols * cell_w + pad, top + len(arrays) * cell_h + pad), color=255)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for c, text in enumerate(header or ()):
        draw.text((label_width + c * cell_w + pad, 1), text, fill=0, font=font)
    for r, (faces, text) in enumerate(zip(arrays, row_labels, strict=True)):
        y = top + r * cell_h + pad
        draw.text((4, y + cell_h // 2 - 6), text, fill=0, font=font)
        for c, face in enumerate(faces):
            tile = Image.fromarray(face).resize((w * scale, h * scale), Image.Resampling.NEAREST)
            canvas.paste(tile, (label_width + c * cell_w + pad, y))
    return canvas


def class_grid(data: FaceDataset, *, per_class: int = 8, seed: int = 0, scale: int = 2) -> Image.Image:
    """``per_class`` random faces of every class (classes with none show an empty row)."""
    rng = np.random.default_rng(seed)
    labels = data.labels.numpy()
    rows, names = [], []
    for label, name in enumerate(data.classes):
        members = np.flatnonzero(labels == label)
        pick = np.sort(rng.choice(members, size=min(per_class, members.size), replace=False))
        rows.append(data.images[torch.from_numpy(pick)].numpy())
        names.append(f"{name} ({members.size})")
    return labelled_grid(rows, names, scale=scale, label_width=110)


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Save ``image``, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
