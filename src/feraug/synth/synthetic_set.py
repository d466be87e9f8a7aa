"""A synthetic set on disk: a FER2013-format CSV of faces and, beside it, the provenance of every face.

Translations (:mod:`feraug.synth.translate`) and samples (:mod:`feraug.synth.sample`) write the same
provenance columns, so every consumer (the augmentation experiment's leakage guard, ``quality``,
``select``, ``augment``) reads both the same way. A sampled face has no source face, written as
``source_row = -1`` and ``source_label = -1`` (:data:`NO_SOURCE`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from feraug.data.dataset import FaceDataset
from feraug.data.load import load_dataset

PROVENANCE_FIELDS = ("synthetic_row", "source_row", "source_label", "label", "direction", "checkpoint_sha256",
                     "weights", "run", "step", "data")  # fmt: skip

#: ``source_row`` of a face that was sampled from noise rather than made from a real face.
NO_SOURCE = -1


def provenance_path(csv_path: Path) -> Path:
    """``synthetic.csv`` -> ``synthetic.provenance.csv``."""
    name = csv_path.name.removesuffix(".gz").removesuffix(".csv")
    return csv_path.with_name(f"{name}.provenance.csv")


def write_provenance(csv_path: Path, rows: Iterable[Sequence[object]]) -> Path:
    """The provenance file of ``csv_path``: a header of :data:`PROVENANCE_FIELDS`, then one row per face."""
    path = provenance_path(csv_path)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(PROVENANCE_FIELDS)
        w.writerows(rows)
    return path


def read_provenance(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a provenance CSV (``source_row`` etc. as int64 arrays, text columns as str arrays)."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: empty provenance file")
    missing = [c for c in ("synthetic_row", "source_row", "label") if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: provenance file lacks columns {missing}")
    ints = {"synthetic_row", "source_row", "source_label", "label", "step"}
    return {k: np.array([r[k] for r in rows], dtype=np.int64 if k in ints else str) for k in rows[0]}


def load_synthetic_set(
    path: str | Path, *, provenance: str | Path | None = None, size: int = 48, cache_dir: bool = True
) -> tuple[FaceDataset, dict[str, np.ndarray] | None]:
    """A synthetic CSV and its provenance columns (``provenance`` or the file beside it; None when absent)."""
    path = Path(path)
    faces = load_dataset(path, size=size, cache_dir=cache_dir)
    prov_file = Path(provenance) if provenance is not None else provenance_path(path)
    if not prov_file.is_file():
        if provenance is not None:
            raise FileNotFoundError(f"provenance file not found: {prov_file}")
        return faces, None
    prov = read_provenance(prov_file)
    if len(prov["synthetic_row"]) != len(faces) or not np.array_equal(np.sort(prov["synthetic_row"]), faces.rows):
        raise ValueError(f"{prov_file} does not describe {path}: {len(prov['synthetic_row'])} provenance rows for "
                         f"{len(faces)} faces (or different row numbers)")  # fmt: skip
    order = np.argsort(prov["synthetic_row"])  # provenance columns in the CSV's row order
    return faces, {k: v[order] for k, v in prov.items()}
