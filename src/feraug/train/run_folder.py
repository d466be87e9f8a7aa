"""What every training run keeps in its folder, GAN or classifier, written and read one way.

Both trainers write ``config.yaml`` and ``meta.json`` (:mod:`feraug.train.runinfo`), a
``metrics.jsonl`` log of JSON lines that each carry their ``step``, and ``checkpoints/last.pt``
(a classifier also ``checkpoints/best.pt``). A resumed run continues from ``last.pt`` and first
drops the log lines the interrupted run wrote after it, so the log reads as if the run had never
stopped. A loss that becomes NaN/inf (or, for a GAN, explodes) stops either trainer with
:class:`TrainingDivergedError` before anything else is written, so ``last.pt`` stays the last good state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The run's log: one JSON object per line, each with the ``step`` it was written at.
METRICS_FILE = "metrics.jsonl"


class TrainingDivergedError(FloatingPointError):
    """A loss became NaN/inf or exceeded ``max_loss``; the message names it and the last good checkpoint."""


def last_checkpoint(run_dir: Path) -> Path:
    """Where a run keeps the state to resume from."""
    return run_dir / "checkpoints" / "last.pt"


def best_checkpoint(run_dir: Path) -> Path:
    """Where a classifier run keeps its selected weights."""
    return run_dir / "checkpoints" / "best.pt"


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Add one line to the run's log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / METRICS_FILE).open("a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop the log lines written after ``step``: those of an interrupted run past the checkpoint being resumed."""
    path = run_dir / METRICS_FILE
    if path.exists():
        kept = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        path.write_text("".join(f"{ln}\n" for ln in kept))
