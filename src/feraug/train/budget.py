"""Time budgets: ``--time-budget 45m`` becomes a fixed schedule before the run starts.

A budget is resolved once, when a run starts: a throwaway copy of the run trains for a few seconds
to measure the seconds per step on this machine (and what a checkpoint and a sample grid cost),
then :func:`plan_schedule` picks the schedule that ends inside the budget, *including* its
learning-rate decay, and the resolved numbers are written into the run's ``config.yaml``. So the
progress bar's ETA is the real one from the first step, ``--resume`` continues the same fixed
schedule, and a re-run with that config file repeats the run exactly, whatever the machine's speed.
Stopping at a deadline instead would cut the decay off and make runs depend on timing.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import torch

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"45m"``, ``"1.5h"`` or ``"1h30m"``; positive, or a ValueError naming it."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        s = text.strip().lower()
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smh]?)", s)
        if not s or not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smh]?)", "", s).strip():
            raise ValueError(f"time budget {text!r}: expected e.g. 90s, 45m, 1.5h or 1h30m")
        seconds = sum(float(v) * _UNITS[u or "s"] for v, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"time budget {text!r} must be a positive duration")
    return seconds


@dataclass(frozen=True)
class BudgetPlan:
    """A resolved budget: the measurements it rests on and the schedule it chose."""

    budget_s: float
    elapsed_s: float  # spent before training starts (loading, building, measuring)
    seconds_per_step: float
    checkpoint_s: float
    sample_s: float
    epochs: int
    epochs_decay: int
    steps_per_epoch: int

    @property
    def total_steps(self) -> int:
        return (self.epochs + self.epochs_decay) * self.steps_per_epoch

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_steps": self.total_steps}


def plan_schedule(
    budget_s: float, *, elapsed_s: float, seconds_per_step: float, checkpoint_s: float, sample_s: float,
    epochs: int, epochs_decay: int, full_steps_per_epoch: int, checkpoint_every: int, sample_every: int = 1,
    margin: float = 0.03,
) -> BudgetPlan:  # fmt: skip
    """The longest schedule of the configured shape that ends within ``budget_s``.

    Time left = budget·(1 − margin) − elapsed. A schedule of E = epochs + epochs_decay epochs of n
    steps costs n·E·seconds_per_step, plus a checkpoint at every epoch end and every
    ``checkpoint_every`` steps, plus a sample grid every ``sample_every`` epochs. While n fits in one
    full pass over the data (``full_steps_per_epoch``), the epochs stay and n shrinks; a budget with
    room for more gets more epochs (none longer than a full pass), split between ``epochs`` and
    ``epochs_decay`` in the configured proportion, so the decay keeps its share of the schedule.
    """
    for name, value in (("seconds_per_step", seconds_per_step), ("budget_s", budget_s)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    n_epochs = epochs + epochs_decay
    left = budget_s * (1 - margin) - elapsed_s

    def steps_that_fit(e: int) -> int:
        fixed = e * checkpoint_s + math.ceil(e / sample_every) * sample_s
        return max(0, math.floor((left - fixed) / (seconds_per_step + checkpoint_s / checkpoint_every)))

    total = steps_that_fit(n_epochs)
    if total < n_epochs:
        raise ValueError(
            f"a time budget of {budget_s:.0f} s leaves room for {total} step(s) at {seconds_per_step:.3g} s per step "
            f"({elapsed_s:.0f} s already spent loading and measuring), fewer than the schedule's {n_epochs} epochs: "
            "raise --time-budget or lower --epochs/--epochs-decay"
        )
    if total <= n_epochs * full_steps_per_epoch:
        return BudgetPlan(budget_s, elapsed_s, seconds_per_step, checkpoint_s, sample_s, epochs, epochs_decay,
                          total // n_epochs)  # fmt: skip
    # more than one full pass per configured epoch fits: more epochs (each at most one pass), split between
    # constant and decay in the configured proportion
    # (each extra epoch adds its end-of-epoch costs, so the longest schedule is searched, not computed)
    candidates = range(n_epochs, math.ceil(total / full_steps_per_epoch) + 1)
    n = max(candidates, key=lambda k: k * min(full_steps_per_epoch, steps_that_fit(k) // k))
    e = max(1, round(n * epochs / n_epochs)) if epochs_decay else n
    per_epoch = min(full_steps_per_epoch, steps_that_fit(n) // n)
    return BudgetPlan(budget_s, elapsed_s, seconds_per_step, checkpoint_s, sample_s, e, n - e, per_epoch)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings measure it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
