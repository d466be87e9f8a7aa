"""One entry point from a user's ``--data`` argument to a :class:`FaceDataset`.

``--data`` may be a FER2013 CSV (``.csv`` / ``.csv.gz``), an image folder, or the built-in toy
faces spelled ``toy`` or ``toy:N`` (N faces, default 3,000; ``toy:N:SEED`` picks the seed).
"""

from __future__ import annotations

from pathlib import Path

from feraug.data.dataset import FaceDataset
from feraug.data.fer2013 import load_fer2013_csv
from feraug.data.folders import load_image_folder
from feraug.data.toy import make_toy_faces

TOY_DEFAULT_N = 3000


def parse_toy_spec(spec: str) -> tuple[int, int] | None:
    """``(n, seed)`` for ``toy``, ``toy:N`` or ``toy:N:SEED``; ``None`` for anything else."""
    parts = spec.split(":")
    if parts[0] != "toy" or len(parts) > 3:
        return None
    try:
        n = int(parts[1]) if len(parts) > 1 else TOY_DEFAULT_N
        seed = int(parts[2]) if len(parts) > 2 else 0
    except ValueError as e:
        raise ValueError(f"bad toy dataset spec {spec!r}: expected toy, toy:N or toy:N:SEED") from e
    return n, seed


def load_dataset(
    spec: str | Path,
    *,
    size: int = 48,
    skip_bad_rows: bool = False,
    cache_dir: str | Path | bool | None = True,
) -> FaceDataset:
    """Load ``spec`` (CSV file, image folder, or ``toy[:N[:SEED]]``) into memory."""
    path = Path(spec)
    if not path.exists() and (toy := parse_toy_spec(str(spec))) is not None:
        n, seed = toy
        return make_toy_faces(n=n, seed=seed, size=size)
    if path.is_dir():
        return load_image_folder(path, size=size, cache_dir=cache_dir)
    if path.is_file():
        return load_fer2013_csv(path, size=size, skip_bad_rows=skip_bad_rows, cache_dir=cache_dir)
    raise FileNotFoundError(f"dataset not found: {spec} (expected a FER2013 CSV, an image folder, or toy[:N[:SEED]])")
