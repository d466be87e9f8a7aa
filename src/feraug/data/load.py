"""One entry point from a user's ``--data`` argument to a :class:`FaceDataset`.

``--data`` may be a FER2013 CSV (``.csv`` / ``.csv.gz``), an image folder, or the built-in toy
faces spelled ``toy`` or ``toy:N`` (N faces, default 3,000; ``toy:N:SEED`` picks the seed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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


def without_filtered_rows(data: FaceDataset, report: str | Path) -> FaceDataset:
    """``data`` minus the rows a ``feraug filter`` report (``.filter.json``) dropped, source rows kept.

    Keeping the original row numbers (rather than training on the filtered CSV, whose rows are
    renumbered) is what lets translations of a filtered-data GAN carry provenance that the
    augmentation experiment can match against the original file.
    """
    path = Path(report)
    if not path.is_file():
        raise FileNotFoundError(f"filter report not found: {path} (the .filter.json `feraug filter` writes)")
    try:
        record = json.loads(path.read_text())
        dropped = np.asarray(record["dropped_rows"], dtype=np.int64)
        made_for = str(record["data"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a feraug filter report (needs 'data' and 'dropped_rows')") from e
    if Path(made_for).resolve() != Path(data.source).resolve() and made_for != data.source:
        raise ValueError(f"{path} filtered {made_for}, not {data.source}: its rows would drop the wrong faces")
    unknown = np.setdiff1d(dropped, data.rows)
    if unknown.size:
        raise ValueError(f"{path} drops rows absent from {data.source} (e.g. {int(unknown[0])})")
    kept = data.subset(np.flatnonzero(~np.isin(data.rows, dropped)))
    return kept.with_note(f"{dropped.size} rows dropped by {path} ({record.get('method', '?')} filter)")
