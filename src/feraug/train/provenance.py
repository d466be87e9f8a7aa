"""Which data rows a generator trained on, saved beside its run, so synthetic faces can be traced to them.

A translated face carries its source face's identity, and *every* face a generator makes carries
what the generator learned from its training faces. So an experiment that evaluates a classifier
on a face the generator trained on is contaminated, whichever face was translated. Each run folder
keeps ``training_rows.npy`` (the sorted data rows, a plain int64 array: loading it runs no code)
and its SHA-256 in ``meta.json``; the augmentation experiment reads them to find, per fold, how
many of its test and validation faces each generator saw (:mod:`feraug.evaluate.experiment.arms`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

ROWS_FILE = "training_rows.npy"


def rows_sha256(rows: np.ndarray) -> str:
    """Hash of a sorted int64 row array (its bytes), recorded in ``meta.json``."""
    return hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest()


def write_training_rows(run_dir: Path, rows: np.ndarray) -> str:
    """Write the run's sorted, unique training rows; returns their SHA-256 for ``meta.json``."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    run_dir.mkdir(parents=True, exist_ok=True)
    np.save(run_dir / ROWS_FILE, rows, allow_pickle=False)
    return rows_sha256(rows)


def read_training_rows(run_dir: str | Path) -> np.ndarray | None:
    """The rows a run's generator trained on; None when the run predates this record (or is not here).

    A file whose hash disagrees with ``meta.json`` is an error: the guard must not trust an edited record.
    """
    run_dir = Path(run_dir)
    path = run_dir / ROWS_FILE
    if not path.is_file():
        return None
    rows = np.load(path, allow_pickle=False)
    meta = run_dir / "meta.json"
    expected = json.loads(meta.read_text()).get("training_rows_sha256") if meta.is_file() else None
    if expected is not None and rows_sha256(rows) != expected:
        raise ValueError(f"{path} does not match the hash in {meta}: the generator's training-row record was changed")
    return rows
