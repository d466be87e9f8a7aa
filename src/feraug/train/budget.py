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
HEADROOM = 0.15  # planned epochs stay this much below a full pass: room for OnTime to lengthen them
END_MARGIN = 0.01  # OnTime aims to end this fraction of the budget early (process exit, last writes)


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
    margin: float = 0.03, headroom: float = 0.0,
) -> BudgetPlan:  # fmt: skip
    """The longest schedule of the configured shape that ends within ``budget_s``.

    Time left = budget·(1 − margin) − elapsed. A schedule of E = epochs + epochs_decay epochs of n
    steps costs n·E·seconds_per_step, plus a checkpoint at every epoch end and every
    ``checkpoint_every`` steps, plus a sample grid every ``sample_every`` epochs. While n fits in one
    full pass over the data (``full_steps_per_epoch``), the epochs stay and n shrinks; a budget with
    room for more gets more epochs (none longer than a full pass), split between ``epochs`` and
    ``epochs_decay`` in the configured proportion, so the decay keeps its share of the schedule.
    ``headroom`` keeps epochs that much shorter than a full pass, so that :class:`OnTime` can
    lengthen them if the machine turns out faster than measured.
    """
    full_steps_per_epoch = max(1, math.floor(full_steps_per_epoch * (1 - headroom)))
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


def resize_remaining(
    epoch_steps: list[int], finished: int, *, left_s: float, seconds_per_step: float, epoch_end_s: float,
    full_steps_per_epoch: int,
) -> list[int]:  # fmt: skip
    """``epoch_steps`` with the epochs after the first ``finished`` re-sized to end ``left_s`` from now.

    The R epochs still to come share the S = (left − R·epoch_end_s) / seconds_per_step steps that fit,
    as evenly as whole steps allow (the first S mod R get one more: epochs of a few steps cannot all
    be 4.6 long), each at least 1 and at most ``full_steps_per_epoch`` (two passes over the data, as
    the trainers allow a budgeted epoch). Only epochs that have not
    started change, so what already ran stays what the final list describes: a re-run with it is exact.
    """
    remaining = len(epoch_steps) - finished
    if remaining <= 0:
        return list(epoch_steps)
    fit = math.floor((left_s - remaining * epoch_end_s) / max(seconds_per_step, 1e-9))
    n, extra = divmod(max(fit, remaining), remaining)
    return list(epoch_steps[:finished]) + [min(n + (i < extra), full_steps_per_epoch) for i in range(remaining)]


class OnTime:
    """Keeps a budgeted run on time: at each epoch end it re-sizes the epochs still to come.

    A schedule fixed from a few seconds of measurement is off by the machine's drift (±15-30% on a
    shared 2-core VM, in both directions). So the invocation that resolved a budget also corrects it
    as it goes: from the pace of its recent steps (the last third of its training time, so a
    slowdown shows within minutes) and the cost of its epoch ends (checkpoint, sample grid or
    validation: the median of those seen, the probe's estimate before the first), the epochs not yet
    started are lengthened or shortened so that the run ends at ``deadline``. The trainer writes the
    corrected per-epoch steps into ``config.yaml`` and its checkpoints; a resume or a re-run follows
    them and corrects nothing, so both stay exact.
    """

    def __init__(self, deadline: float, full_steps_per_epoch: int, epoch_end_s: float,
                 reserve_s: float = 0.0) -> None:  # fmt: skip
        self.deadline = deadline  # a time.perf_counter() value
        self.full_steps_per_epoch = full_steps_per_epoch
        self.reserve_s = reserve_s  # work after the last epoch (a classifier command's test pass)
        self._estimate = epoch_end_s
        self._marks: list[tuple[float, int]] = [(0.0, 0)]  # cumulative (training seconds, steps)
        self._end_costs: list[float] = []

    def seconds_per_step(self) -> float:
        """Training seconds per step over the most recent third of the training time so far."""
        total_s, total_steps = self._marks[-1]
        since = next(m for m in reversed(self._marks) if total_s - m[0] >= total_s / 3 or m == self._marks[0])
        return (total_s - since[0]) / max(total_steps - since[1], 1)

    def epoch_end_s(self) -> float:
        """What one epoch end costs: the median of those recorded (the first ones load fonts), else the estimate."""
        ends = sorted(self._end_costs)
        return ends[len(ends) // 2] if ends else self._estimate

    def record_end(self, seconds: float) -> None:
        """Record what an epoch end (checkpoint, grid, validation) took."""
        self._end_costs.append(seconds)

    def epoch_done(self, epoch_steps: list[int], finished: int, *, train_s: float, steps: int,
                   now: float) -> list[int]:  # fmt: skip
        """Record an epoch's training (``steps`` in ``train_s``) and return ``epoch_steps`` with the epochs
        after the first ``finished`` re-sized so that the run ends at the deadline."""
        s, n = self._marks[-1]
        self._marks.append((s + train_s, n + steps))
        return resize_remaining(epoch_steps, finished, left_s=self.deadline - now - self.reserve_s,
                                seconds_per_step=self.seconds_per_step(), epoch_end_s=self.epoch_end_s(),
                                full_steps_per_epoch=self.full_steps_per_epoch)  # fmt: skip
