"""An augmented dataset a user takes home: real faces plus synthetic ones, in FER2013 CSV or image-folder layout.

Both layouts are the ones feraug (and most FER code) already reads, so the result plugs into any
pipeline without feraug. What a plain CSV or folder cannot say — which faces are synthetic, where
they came from — goes into a JSON record beside it (``<stem>.augment.json`` for a CSV,
``<root>/augment.json`` for a folder). One rule marks the synthetic faces in both layouts: the
output holds the real faces first, then the synthetic ones, so face ``i`` (CSV data row ``i``, image
``<i>.png``) is synthetic when ``i >= counts.real``.

Folders are written as ``root/<split>/<class>/<i>.png`` (``train/`` for the training faces), never
flat: a flat folder has no split, and a tool that carves its own test split from it would put
synthetic faces into that test split.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from feraug.data import _csvformat as kernel
from feraug.data.dataset import FaceDataset
from feraug.data.fer2013 import Fer2013FormatError, _parse_header, _text_chunks, load_fer2013_csv, write_fer2013_csv
from feraug.data.folders import load_image_folder, scan_image_folder, write_image_folder

FORMATS = ("csv", "folder")
RECORD_NAME = "augment.json"


def record_path(out: str | Path, fmt: str) -> Path:
    """Where the JSON record of an augmented dataset at ``out`` lives (beside a CSV, inside a folder)."""
    out = Path(out)
    if fmt == "folder":
        return out / RECORD_NAME
    return out.with_name(out.name.removesuffix(".gz").removesuffix(".csv") + ".augment.json")


def csv_face_size(path: str | Path) -> int:
    """Side length of the faces in a FER2013-layout CSV, from its first data row.

    Why read it: the CSV loader must be told the size (it checks every row against it), and a
    mismatch between two files is clearer as "32x32 vs 48x48" than as a pixel count on line 2.
    """
    path = Path(path)
    head = b""
    for chunk in _text_chunks(path, 1 << 16):  # until the header and the first data row are complete
        head += chunk
        if head.count(b"\n") >= 2:
            break
    lines = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 2)
    if len(lines) < 2 or not lines[1].strip():
        raise Fer2013FormatError(f"{path}: no data rows (expected a header emotion,pixels[,Usage] and data rows)")
    roles = _parse_header(path, lines[0]).tolist()
    fields = lines[1].split(b",")
    if len(fields) != len(roles):
        raise Fer2013FormatError(f"{path}:2: found {len(fields)} columns, expected {len(roles)}")
    n = len(fields[roles.index(kernel.ROLE_PIXELS)].split())
    side = int(np.sqrt(n))
    if side * side != n:
        raise Fer2013FormatError(f"{path}:2: {n} pixel values are no square face")
    return side


def class_counts(faces: FaceDataset) -> dict[str, int]:
    """Faces per class name (every class, zeros included: a table reads the same for every set)."""
    return dict(zip(faces.classes, (int(c) for c in faces.class_counts()), strict=True))


def _atomic_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def write_augmented(real: FaceDataset, synthetic: FaceDataset, out: str | Path, *, fmt: str = "csv",
                    record: dict[str, Any] | None = None, force: bool = False) -> Path:  # fmt: skip
    """Write ``real`` then ``synthetic`` to ``out`` in ``fmt`` with their JSON record; returns the record's path.

    Each face keeps its ``usage``; ``record`` (provenance) is saved with ``counts`` added. An existing
    output is an error unless ``force``. The data land under a temporary name and are renamed into
    place, so an interrupted write never leaves a half dataset that looks whole.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected {' or '.join(FORMATS)}")
    if real.size != synthetic.size:
        raise ValueError(f"real faces are {real.size}x{real.size} but synthetic ones {synthetic.size}x{synthetic.size}")
    out = Path(out)
    rec_path = record_path(out, fmt)
    existing = [p for p in (out, rec_path) if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} exists: pick another --out or pass --force to replace it")
    n_real = len(real)
    combined = FaceDataset(torch.cat([real.images, synthetic.images]), torch.cat([real.labels, synthetic.labels]),
                           np.concatenate([real.usage, synthetic.usage]),
                           np.arange(n_real + len(synthetic), dtype=np.int64), real.classes,
                           f"augmented({real.source} + {synthetic.source})")  # fmt: skip
    full_record = {**(record or {}), "format": fmt, "size": real.size,
                   "counts": {"real": n_real, "synthetic": len(synthetic), "before": class_counts(real),
                              "added": class_counts(synthetic), "after": class_counts(combined)}}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        if out.is_dir():
            raise IsADirectoryError(f"{out} is a folder: a CSV output needs a file name (.csv or .csv.gz)")
        write_fer2013_csv(combined, out)
        _atomic_json(rec_path, full_record)
        return rec_path
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_image_folder(combined, tmp)
        _atomic_json(tmp / RECORD_NAME, full_record)
        if out.exists():  # only with force: the old output goes only once the new one is complete
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rec_path


def read_record(path: str | Path) -> tuple[Path, str, dict[str, Any]]:
    """``(data path, format, record)`` for an augmented dataset given as its CSV, its folder or its record."""
    path = Path(path)
    if path.is_dir():
        data, fmt = path, "folder"
    elif path.name == RECORD_NAME:
        data, fmt = path.parent, "folder"
    elif path.name.endswith(".augment.json"):
        stem = path.name.removesuffix(".augment.json")
        data = next((p for p in (path.with_name(f"{stem}.csv"), path.with_name(f"{stem}.csv.gz")) if p.exists()),
                    path.with_name(f"{stem}.csv"))  # fmt: skip
        fmt = "csv"
    else:
        data, fmt = path, "csv"
    rec = record_path(data, fmt)
    if not rec.is_file():
        raise FileNotFoundError(f"{rec} not found: {path} is not an augmented dataset written by `feraug augment`")
    if not data.exists():
        raise FileNotFoundError(f"{data} not found (its record {rec} is there)")
    return data, fmt, json.loads(rec.read_text())


class AugmentedFaces(Dataset):
    """A dataset written by ``feraug augment``, in memory: ``(image, label)`` items and which are synthetic.

    The whole CSV or folder is decoded once into one ``uint8`` tensor (through feraug's loaders and
    their cache), so indexing never touches a file; faces come in the written order, real ones first.
    Items are ``(image [1,H,W], label)``: ``uint8`` by default, ``float32`` in [0, 1] with
    ``dtype=torch.float32`` (the ``ToTensor`` convention), then ``transform`` if given.

    Attributes:
        images: ``uint8 [N, H, W]``; labels: ``int64 [N]`` (FER2013 order, :attr:`classes`).
        synthetic: ``bool [N]``, True for the synthetic faces; usage: ``[N]`` split names.
        record: the JSON record (provenance, counts).
    """

    def __init__(self, path: str | Path, *, split: str | None = None, dtype: torch.dtype = torch.uint8,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 cache_dir: str | Path | bool | None = True) -> None:  # fmt: skip
        if dtype not in (torch.uint8, torch.float32):
            raise ValueError(f"dtype must be torch.uint8 or torch.float32, got {dtype}")
        data, fmt, self.record = read_record(path)
        size, n_real = int(self.record["size"]), int(self.record["counts"]["real"])
        if fmt == "folder":  # the loader lists files by split and class; their names give the written order
            faces = load_image_folder(data, size=size, cache_dir=cache_dir)
            index = np.array([int(f.stem) for f, _, _ in scan_image_folder(data)], dtype=np.int64)
            order = np.argsort(index, kind="stable")
            faces, index = faces.subset(order), index[order]
        else:
            faces = load_fer2013_csv(data, size=size, cache_dir=cache_dir)
            index = faces.rows
        expected = n_real + int(self.record["counts"]["synthetic"])
        if len(faces) != expected:
            raise ValueError(f"{data} holds {len(faces)} faces but its record counts {expected}: it was changed")
        keep = np.flatnonzero(faces.usage == split) if split is not None else np.arange(len(faces))
        if keep.size == 0:
            raise KeyError(f"{data} has no {split!r} faces (splits: {sorted(set(faces.usage.tolist()))})")
        t = torch.from_numpy(keep)
        self.images, self.labels, self.usage = faces.images[t], faces.labels[t], faces.usage[keep]
        self.synthetic = torch.from_numpy(index[keep] >= n_real)
        self.classes, self.dtype, self.transform = faces.classes, dtype, transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.images[i].unsqueeze(0)
        if self.dtype == torch.float32:
            x = x.float().div_(255.0)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[i])
