"""Assemble an augmented dataset from real data and a synthetic set, with the checks that keep it honest.

The real faces are the chosen splits of ``--data`` (by default its training faces); the synthetic set
is a CSV written by ``feraug translate`` / ``sample`` / ``select`` with its provenance. Refused, each
with a message that names the culprit: faces of different sizes; a synthetic class the real faces do
not have; a synthetic set without provenance (nothing would show where its faces came from); and a
synthetic face translated from a validation or test face of ``--data`` — it carries that face's
identity into training, so a classifier trained on the result would be scored on faces it has seen.
Data without split information has no test faces to protect: all of it is written as training data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import feraug
from feraug.core.checkpoint import file_sha256
from feraug.data.augmented import csv_face_size, write_augmented
from feraug.data.dataset import SPLITS, FaceDataset
from feraug.data.folders import scan_image_folder
from feraug.data.load import load_dataset
from feraug.synth.synthetic_set import NO_SOURCE, load_synthetic_set, provenance_path
from feraug.train.runinfo import git_revision


@dataclass(frozen=True)
class AugmentResult:
    """What ``augment`` wrote: the dataset, its JSON record, and that record."""

    out: Path
    record_path: Path
    record: dict[str, Any]


def _same_data(recorded: str, spec: str) -> bool:
    """Whether the data a synthetic set's provenance names is ``spec`` (same toy spec, or the same file)."""
    if recorded == spec:
        return True
    a, b = Path(recorded), Path(spec)
    if a.exists() and b.exists():
        return a.resolve() == b.resolve() or a.samefile(b)
    return False


def _native_size(data: Path) -> tuple[int, int] | None:
    """``(width, height)`` of the faces stored in a CSV or image folder (its first image); None for toy
    faces, drawn at any size. The folder loader would resize silently: a mismatch must be seen first."""
    if data.is_file():
        side = csv_face_size(data)
        return side, side
    if data.is_dir():
        with Image.open(scan_image_folder(data)[0][0]) as im:
            return im.size
    return None


def _check_sources(real: FaceDataset, spec: str, prov: dict[str, np.ndarray], synthetic: Path) -> None:
    """Refuse synthetic faces translated from faces of ``real`` that are not training faces."""
    made = np.flatnonzero(prov["source_row"] != NO_SOURCE)
    if made.size == 0 or not real.splits:
        return
    recorded = sorted(set(prov["data"][made].tolist())) if "data" in prov else []
    if len(recorded) != 1 or not _same_data(recorded[0], spec):
        raise ValueError(f"{synthetic} was translated from faces of {', '.join(recorded) or 'unrecorded data'}, not "
                         f"of {spec}: pass that data as --data so its test faces can be told apart")  # fmt: skip
    position = {int(r): i for i, r in enumerate(real.rows)}
    for i in made:
        row = int(prov["source_row"][i])
        face = f"synthetic row {int(prov['synthetic_row'][i])} of {synthetic} was translated from row {row} of {spec}"
        if row not in position:
            raise ValueError(f"{face}, which {spec} does not hold")
        usage = str(real.usage[position[row]])
        if usage != "Training":
            raise ValueError(f"{face}, a {usage} face: it would carry a held-out face into training")


def _real_faces(full: FaceDataset, data: str, splits: Sequence[str]) -> FaceDataset:
    """The faces of ``splits``; data without split information is all training data (as ``translate`` takes it)."""
    if not full.splits:
        if tuple(splits) != ("Training",):
            raise ValueError(f"{data} has no split information: leave --split out (all its faces are training faces)")
        return FaceDataset(full.images, full.labels, np.full(len(full), "Training", dtype="<U11"), full.rows,
                           full.classes, full.source)  # fmt: skip
    missing = [s for s in splits if s not in full.splits]
    if missing:
        raise ValueError(f"{data} has no {missing[0]} split (splits: {', '.join(full.splits)})")
    return full.subset(np.flatnonzero(np.isin(full.usage, list(splits))))


def _provenance_summary(prov: dict[str, np.ndarray]) -> dict[str, Any]:
    """The per-face provenance, compactly: columns with one value once, the others as lists."""
    constant = {k: v[0].item() for k, v in prov.items() if len(set(v.tolist())) == 1}
    varying = {k: v.tolist() for k, v in prov.items() if k not in constant}
    return {"constant": constant, "columns": varying}


def _seeds(prov: dict[str, np.ndarray], synthetic: Path) -> dict[str, Any]:
    """The seeds on record for the synthetic set: its generator runs' training seeds and a selection's seed."""
    runs = {}
    for run in sorted(set(prov.get("run", np.array([], dtype=str)).tolist())):
        meta = Path(run) / "meta.json"
        runs[run] = json.loads(meta.read_text()).get("seed") if meta.is_file() else None
    select = synthetic.with_name(synthetic.name.removesuffix(".gz").removesuffix(".csv") + ".select.json")
    return {"generator_runs": runs, "select": json.loads(select.read_text()).get("seed") if select.is_file() else None}


def augment(data: str, synthetic: str | Path, out: str | Path, *, provenance: str | Path | None = None,
            splits: Sequence[str] = ("Training",), fmt: str = "csv", force: bool = False,
            cache_dir: bool = True) -> AugmentResult:  # fmt: skip
    """Write the ``splits`` faces of ``data`` plus the synthetic set ``synthetic`` to ``out`` (see the module doc).

    Real faces keep their split; synthetic faces are training faces. The JSON record beside the
    output holds the sources (paths and SHA-256), the synthetic set's provenance, seeds on record,
    feraug's version and git revision, and the faces per class before and after.
    """
    synthetic = Path(synthetic)
    if not synthetic.is_file():
        raise FileNotFoundError(f"synthetic set not found: {synthetic} (a CSV of translate, sample or select)")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}: expected one of {', '.join(SPLITS)}")
    size = csv_face_size(synthetic)
    real_file = Path(data)
    if (real_size := _native_size(real_file)) not in (None, (size, size)):
        raise ValueError(f"{synthetic} holds {size}x{size} faces but {data} holds {real_size[0]}x{real_size[1]} ones")
    full = load_dataset(data, size=size, cache_dir=cache_dir)
    syn, prov = load_synthetic_set(synthetic, provenance=provenance, size=size, cache_dir=cache_dir)
    if prov is None:
        raise FileNotFoundError(f"{synthetic} has no provenance beside it ({provenance_path(synthetic).name}): "
                                "nothing would show what its faces were made from; pass --provenance")  # fmt: skip
    if not np.array_equal(prov["label"], syn.labels.numpy()):
        raise ValueError(f"{synthetic}: its labels disagree with its provenance's 'label' column")
    real = _real_faces(full, data, splits)
    present = real.class_counts() > 0
    absent = [syn.classes[k] for k in np.unique(syn.labels.numpy()) if not present[k]]
    if absent:
        raise ValueError(f"{synthetic} adds {absent[0]} faces but the chosen faces of {data} have no {absent[0]} "
                         "class: the result would hold a class of synthetic faces only")  # fmt: skip
    _check_sources(full, data, prov, synthetic)
    syn = FaceDataset(syn.images, syn.labels, np.full(len(syn), "Training", dtype="<U11"), syn.rows, syn.classes,
                      syn.source)  # fmt: skip
    prov_file = Path(provenance) if provenance is not None else provenance_path(synthetic)
    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "feraug_version": feraug.__version__,
        "git_revision": git_revision(),
        "data": {"spec": str(data), "splits": list(splits) if full.splits else [],
                 "sha256": file_sha256(real_file) if real_file.is_file() else None,
                 "real_source_rows": real.rows.tolist()},
        "synthetic": {"path": str(synthetic), "sha256": file_sha256(synthetic), "provenance_path": str(prov_file),
                      "provenance_sha256": file_sha256(prov_file), "provenance": _provenance_summary(prov)},
        "seed": _seeds(prov, synthetic),
    }  # fmt: skip
    rec_path = write_augmented(real, syn, out, fmt=fmt, record=record, force=force)
    return AugmentResult(Path(out), rec_path, json.loads(rec_path.read_text()))
