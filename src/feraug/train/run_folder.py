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


def check_start(run_dir: Path | None, *, resume: bool, time_budget: float | None) -> None:
    """Refuse, before any work, a start that would lose or misread a run: one rule for both trainers.

    A fresh start into a folder that holds a run would overwrite its checkpoints; a resume needs
    ``last.pt``; a time budget is resolved once, when a run starts (into its ``config.yaml``), so a
    resume continues that fixed schedule instead of re-resolving it.
    """
    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run folder of the run to continue")
        if not last_checkpoint(run_dir).is_file():
            raise FileNotFoundError(f"nothing to resume: {last_checkpoint(run_dir)} does not exist")
        if time_budget is not None:
            raise ValueError("a time budget is resolved once, when a run starts (into its config.yaml); "
                             "resume continues that fixed schedule: drop the time budget (--time-budget)")  # fmt: skip
    elif run_dir is not None and last_checkpoint(run_dir).exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it (--resume) or pick another output folder")


def diverged(where: str, culprits: str, kept: str) -> TrainingDivergedError:
    """The error both trainers raise: what went non-finite (or exploded), where, and what is still intact."""
    return TrainingDivergedError(f"training diverged at {where}: {culprits}; {kept}. Lower the learning rate(s), "
                                 "or resume (--resume) after changing them.")  # fmt: skip


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
