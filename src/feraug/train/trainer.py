"""The one training loop every feraug GAN runs on.

The model says what a step computes (:class:`feraug.models.base.GANModel`); this loop owns the
rest: the step schedule and learning-rate decay, per-step random generators, an EMA of the
generators, loss accounting without per-step host syncs, JSONL (+ TensorBoard) logs, a progress
bar, sample grids, atomic checkpoints, exact resume and a guard against NaN/inf or exploding
losses that stops before a bad state can overwrite the last good checkpoint. Under torchrun it
runs data-parallel (:mod:`feraug.train.distributed`): gradients averaged before every optimizer
step, losses averaged over processes at each log flush, files written by rank 0 only.

Run folder layout::

    config.yaml  meta.json  metrics.jsonl  curves.png  checkpoints/last.pt  samples/epoch_001.png  tb/
"""

from __future__ import annotations

import bisect
import copy
import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from feraug.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from feraug.core.seeding import STEP, generator
from feraug.data.augment import to_uint8
from feraug.figures.grid import labelled_grid, save_image
from feraug.figures.plots import plot_training_curves
from feraug.models.base import GANModel, StepContext
from feraug.train.budget import OnTime, synchronize
from feraug.train.distributed import (
    DistInfo,
    any_true,
    barrier,
    broadcast_parameters,
    gather_to_main,
    max_over,
    mean_and_any,
    sync_optimizers,
)
from feraug.train.run_folder import (
    METRICS_FILE,
    append_metrics,
    diverged,
    last_checkpoint,
    truncate_metrics,
)
from feraug.train.runinfo import write_config
from feraug.train.sampler import DomainSampler


@dataclass(frozen=True)
class Schedule:
    """Steps and learning-rate decay: constant for ``epochs``, then linear to 0 over ``epochs_decay``.

    Epochs usually have ``steps_per_epoch`` steps each; a time budget may give each its own length
    (``epoch_steps``, see :class:`feraug.train.budget.OnTime`). Where a step is in the run is then
    counted in epochs, so lengthening epochs still to come changes nothing that already ran.
    """

    epochs: int
    epochs_decay: int
    steps_per_epoch: int
    epoch_steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.epoch_steps:
            object.__setattr__(self, "epoch_steps", (self.steps_per_epoch,) * self.total_epochs)
        elif len(self.epoch_steps) != self.total_epochs or min(self.epoch_steps) < 1:
            raise ValueError(f"train.epoch_steps must hold {self.total_epochs} positive step counts (epochs + "
                             f"epochs_decay), got {list(self.epoch_steps)}")  # fmt: skip
        starts = tuple(itertools.accumulate(self.epoch_steps, initial=0))
        object.__setattr__(self, "_starts", starts)
        object.__setattr__(self, "_ends", frozenset(starts[1:]))

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

    @property
    def total_steps(self) -> int:
        return self._starts[-1]  # type: ignore[attr-defined]

    def locate(self, step: int) -> tuple[int, int]:
        """(epoch, index within it) of global ``step``. Past the end (only a time budget's throwaway probe
        trains there) the run goes on in further epochs as long as its last one."""
        if step >= self.total_steps:
            epoch, index = divmod(step - self.total_steps, self.epoch_steps[-1])
            return self.total_epochs + epoch, index
        epoch = bisect.bisect_right(self._starts, step) - 1  # type: ignore[attr-defined]
        return epoch, step - self._starts[epoch]  # type: ignore[attr-defined]

    def ends_epoch(self, step: int) -> bool:
        """Whether ``step`` steps complete an epoch."""
        return step in self._ends  # type: ignore[attr-defined]

    def progress(self, step: int) -> float:
        """Fraction of the run done before ``step``, counted in epochs (``step / total_steps`` when uniform)."""
        epoch, index = self.locate(step)
        n = self.epoch_steps[min(epoch, self.total_epochs - 1)]
        return (epoch * n + index) / (self.total_epochs * n)

    def lr_factor(self, epoch: int) -> float:
        """CycleGAN's linear policy: 1 for the first ``epochs``, then down to ``1/(decay+1)`` in the last."""
        return 1.0 - max(0, epoch + 1 - self.epochs) / (self.epochs_decay + 1)


#: Logged values that are not losses: the divergence guard checks them for NaN/inf, not against max_loss.
DIAGNOSTICS = ("gamma", "noise_sigma")
DIAGNOSTIC_SUFFIXES = ("/gap", "/ada_p", "/ada_rt", "/updated")


class Trainer:
    """Drive ``model`` over ``sampler`` for ``schedule`` steps, writing everything to ``run_dir``."""

    def __init__(
        self,
        model: GANModel,
        sampler: DomainSampler,
        schedule: Schedule,
        run_dir: Path,
        *,
        seed: int,
        device: torch.device,
        autocast_dtype: torch.dtype | None = None,
        ema_decay: float = 0.0,
        log_every: int = 50,
        checkpoint_every: int = 1000,
        sample_every: int = 1,
        max_loss: float = 1e4,
        config: dict[str, Any] | None = None,
        progress: bool = True,
        dist: DistInfo | None = None,
    ) -> None:
        self.model = model
        self.dist = dist or DistInfo()
        broadcast_parameters(model.networks, self.dist)
        sync_optimizers(model.optimizers, self.dist)
        self.sampler = sampler
        self.schedule = schedule
        self.run_dir = run_dir
        self.seed = seed
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.log_every = log_every
        self.checkpoint_every = checkpoint_every
        self.sample_every = sample_every
        self.max_loss = max_loss
        self.config = config or {}
        self.progress = progress and self.dist.is_main
        self.base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in model.optimizers.items()}
        self.ema_decay = ema_decay
        self.ema: dict[str, nn.Module] = {}
        if ema_decay > 0:
            for name in model.ema_names:
                self.ema[name] = copy.deepcopy(model.networks[name]).requires_grad_(False)
        self.step = 0
        self.last_good: tuple[Path, int] | None = None
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._bad = torch.zeros((), dtype=torch.bool, device=device)
        self._window_start = (0, time.perf_counter())
        self._tb: Any = None
        self.budget: Any = None  # the resolved time budget (feraug.train.budget.BudgetPlan), when one was given
        self.on_time: OnTime | None = None  # keeps a budgeted run on time (the invocation that resolved it)
        self.training_rows: Any = None  # data rows of the faces it trains on (feraug.train.provenance)
        self.run_records: dict[str, Any] = {}  # what the model adds to meta.json (e.g. a frozen φ's SHA-256)

    # -- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, EMA, optimizers, model extras, position."""
        return {
            "family": self.model.family,
            "arch": self.model.arch(),
            "config": self.config,
            "step": self.step,
            "epoch": self.schedule.locate(self.step)[0],
            "networks": {k: v.state_dict() for k, v in self.model.networks.items()},
            "ema": {k: v.state_dict() for k, v in self.ema.items()},
            "optimizers": {k: v.state_dict() for k, v in self.model.optimizers.items()},
            "extra": self.model.extra_state(),
            "rng": {"torch": torch.get_rng_state()},
            "world": self.dist.world,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (checked against this model's family and architecture)."""
        for k, v in self.model.networks.items():
            v.load_state_dict(state["networks"][k])
        for k, v in self.ema.items():
            if k in state["ema"]:
                v.load_state_dict(state["ema"][k])
            else:  # EMA switched on at resume: start it from the current weights
                v.load_state_dict(self.model.networks[k].state_dict())
        for k, v in self.model.optimizers.items():
            v.load_state_dict(state["optimizers"][k])
        self.model.load_extra_state(state["extra_ranks"][self.dist.rank] if self.dist.world > 1 else state["extra"])
        torch.set_rng_state(state["rng"]["torch"])
        self.step = int(state["step"])

    def save(self) -> Path:
        """Check the divergence guard, then write the checkpoint atomically (rank 0, with every rank's extras)."""
        self._flush_logs(force_check=True)
        path = last_checkpoint(self.run_dir)
        extras = gather_to_main(self.model.extra_state(), self.dist)  # e.g. each process's own image pools
        if extras is not None:
            state = self.state_dict()
            if self.dist.world > 1:
                state["extra"], state["extra_ranks"] = extras[0], extras
            save_checkpoint(state, path)
        barrier(self.dist)
        self.last_good = (path, self.step)
        return path

    def resume(self) -> None:
        """Continue from ``run_dir``'s checkpoint; later log lines of the interrupted run are dropped."""
        path = last_checkpoint(self.run_dir)
        state = load_checkpoint(path, family=self.model.family, arch=self.model.arch(),
                                map_location=str(self.device))  # fmt: skip
        written_by = int(state.get("world", 1))
        if written_by != self.dist.world:
            raise CheckpointError(f"{path}: written by a run on {written_by} process(es), resumed on "
                                  f"{self.dist.world}: resume with the same number of processes (each keeps its "
                                  "own image pools)")  # fmt: skip
        self.load_state_dict(state)
        self.last_good = (path, self.step)
        if self.dist.is_main:
            truncate_metrics(self.run_dir, self.step)

    # -- loop -----------------------------------------------------------------------------------

    def fit(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train until the schedule ends, or until step ``stop_at`` (checkpointed; resume goes on from there).

        Stopping at a step, rather than shortening the schedule, leaves everything that depends on the
        schedule's length (learning-rate decay, the weighted cycle loss's γ) as in the whole run:
        for time-limited jobs, and what makes interrupted-then-resumed runs testable.
        """
        if stop_at is not None and stop_at < 1:
            raise ValueError(f"stop_at must be a step >= 1, got {stop_at}")
        self._open_tensorboard()
        bar = tqdm(
            total=self.schedule.total_steps,
            initial=self.step,
            unit="step",
            disable=None if self.progress else True,
            dynamic_ncols=True,
        )  # None: tqdm hides itself when stderr is not a terminal
        last: dict[str, Any] = {}
        start = self.step
        self._window_start = (self.step, time.perf_counter())
        epoch_clock = (self.step, time.perf_counter())
        try:
            while self.step < min(self.schedule.total_steps, stop_at or self.schedule.total_steps):
                epoch, index = self.schedule.locate(self.step)
                if index == 0 or self.step == start:
                    self._set_learning_rates(epoch)
                self._train_one_step()
                bar.update(1)
                end_of_epoch = self.schedule.ends_epoch(self.step)
                if self.step % self.log_every == 0 or end_of_epoch:
                    last = self._flush_logs(force_check=False) or last
                    shown = {k: f"{v:.3g}" for k, v in last.items() if k.startswith("D/") or "total" in k}
                    bar.set_postfix(shown, refresh=False)
                if end_of_epoch and self.on_time is not None:
                    synchronize(self.device)
                    self._keep_on_time(epoch + 1, self.step - epoch_clock[0], time.perf_counter() - epoch_clock[1])
                    bar.total = self.schedule.total_steps
                    end_start = time.perf_counter()
                if self.step % self.checkpoint_every == 0 or end_of_epoch:
                    self.save()
                if end_of_epoch and (epoch + 1) % self.sample_every == 0 and self.dist.is_main:
                    self.sample_grid(epoch + 1)
                if end_of_epoch and self.on_time is not None:
                    self.on_time.record_end(float(max_over(torch.tensor([time.perf_counter() - end_start],
                                                                        dtype=torch.float64), self.dist)[0]))
                    epoch_clock = (self.step, time.perf_counter())
            if self.last_good is None or self.last_good[1] != self.step:  # stopped between checkpoints
                self.save()
        finally:
            bar.close()
            if self._tb is not None:
                self._tb.close()
        return last

    def _keep_on_time(self, finished: int, steps: int, train_s: float) -> None:
        """Re-size the epochs still to come so the run ends at its budget's deadline (feraug.train.budget.OnTime);
        the new lengths go into ``config.yaml`` and the checkpoints' config. Every process decides alike."""
        assert self.on_time is not None
        worst = max_over(torch.tensor([train_s, time.perf_counter() - self.on_time.deadline], dtype=torch.float64),
                         self.dist)  # fmt: skip
        s = self.schedule
        steps_now = self.on_time.epoch_done(list(s.epoch_steps), finished, train_s=float(worst[0]), steps=steps,
                                            now=self.on_time.deadline + float(worst[1]))  # fmt: skip
        if steps_now == list(s.epoch_steps):
            return
        self.schedule = Schedule(s.epochs, s.epochs_decay, s.steps_per_epoch, tuple(steps_now))
        self.config = {**self.config, "train": {**self.config["train"], "epoch_steps": steps_now}}
        if self.dist.is_main:
            write_config(self.run_dir, self.config)

    def _train_one_step(self) -> None:
        s = self.schedule
        epoch, index = s.locate(self.step)
        # the model's streams (pool, penalty) per process; augmentation of the global batch alike everywhere
        rank = (self.dist.rank,) if self.dist.world > 1 else ()
        gens = (*(generator(self.seed, STEP, self.step, k, *rank, device=self.device) for k in range(2)),
                generator(self.seed, STEP, self.step, 2, device=self.device))  # fmt: skip
        batch = self.sampler.batch(epoch, index, gens[2])
        ctx = StepContext(self.step, epoch, s.progress(self.step), gens[:2], self.autocast_dtype)
        losses = self.model.train_step(batch, ctx)
        self._update_ema()
        self._accumulate(losses)
        self.step += 1

    def measure(self, seconds: float, min_steps: int = 3) -> tuple[float, float, float]:
        """Train for about ``seconds`` (at least ``min_steps`` timed steps after one untimed warm-up step),
        then write a checkpoint and a sample grid twice: seconds per step, per (warm) checkpoint, per grid.

        For time budgets (:mod:`feraug.train.budget`), on a throwaway trainer whose ``run_dir`` is a scratch
        folder: this moves its weights. Under torchrun every process gets the slowest process's figures.
        """
        self._set_learning_rates(0)
        per_step = self._time_steps(seconds, min_steps)
        for _ in range(2):  # the second, warm round counts (the first loads fonts, creates files)
            t0 = time.perf_counter()
            self.save()
            t1 = time.perf_counter()
            if self.dist.is_main:
                self.sample_grid(1)
            t2 = time.perf_counter()
        worst = max_over(torch.tensor([per_step, t1 - t0, t2 - t1], dtype=torch.float64), self.dist)
        return float(worst[0]), float(worst[1]), float(worst[2])

    def _time_steps(self, seconds: float, min_steps: int) -> float:
        """Seconds per step over about ``seconds`` of training. Every process runs the same number of steps
        (each step holds a gradient all-reduce), decided from the slowest process's first ``min_steps``."""
        self._train_one_step()  # untimed: first-call allocations
        synchronize(self.device)
        start = time.perf_counter()
        for _ in range(min_steps):
            self._train_one_step()
        synchronize(self.device)
        first = float(max_over(torch.tensor([(time.perf_counter() - start) / min_steps], dtype=torch.float64),
                               self.dist)[0])  # fmt: skip
        total = max(min_steps, math.ceil(seconds / max(first, 1e-9)))
        for _ in range(total - min_steps):
            self._train_one_step()
        synchronize(self.device)
        return (time.perf_counter() - start) / total

    def _set_learning_rates(self, epoch: int) -> None:
        factor = self.schedule.lr_factor(epoch)
        for name, opt in self.model.optimizers.items():
            for group, base in zip(opt.param_groups, self.base_lrs[name], strict=True):
                group["lr"] = base * factor

    @torch.no_grad()
    def _update_ema(self) -> None:
        """Average the weights; copy the buffers (batch-norm running statistics are already averages)."""
        for name, ema in self.ema.items():
            net = self.model.networks[name]
            torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - self.ema_decay)
            for mine, theirs in zip(ema.buffers(), net.buffers(), strict=True):
                mine.copy_(theirs)

    def _accumulate(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            v = v.detach()
            self._sums[k] = self._sums[k] + v if k in self._sums else v.clone()
            self._counts[k] = self._counts.get(k, 0) + 1
            if k in DIAGNOSTICS or k.endswith(DIAGNOSTIC_SUFFIXES):  # schedules and D scores, not losses
                self._bad |= ~torch.isfinite(v)
            else:
                self._bad |= ~torch.isfinite(v) | (v.abs() > self.max_loss)

    def _flush_logs(self, *, force_check: bool) -> dict[str, Any]:
        """Sync once: check the guard (in every process), write the mean losses since the last flush."""
        if not self._sums:
            if force_check and any_true(self._bad, self.dist):
                self._diverged({})
            return {}
        keys = list(self._sums)
        local = torch.stack([(self._sums[k].float() / self._counts[k]).to(self.device) for k in keys])
        mean, bad = mean_and_any(local, self._bad, self.dist)
        means = dict(zip(keys, mean.tolist(), strict=True))
        if bad:
            self._diverged(means)
        start_step, start_time = self._window_start
        now = time.perf_counter()
        steps = self.step - start_step
        epoch, index = self.schedule.locate(self.step)
        n = self.schedule.epoch_steps[min(epoch, self.schedule.total_epochs - 1)]
        record = {"step": self.step, "epoch": epoch + index / n, **means,
                  "lr": {k: o.param_groups[0]["lr"] for k, o in self.model.optimizers.items()},
                  "img_per_s": steps * self.sampler.batch_size / max(now - start_time, 1e-9)}  # fmt: skip
        self._sums, self._counts = {}, {}
        self._window_start = (self.step, now)
        if not self.dist.is_main:
            return record
        append_metrics(self.run_dir, record)
        if self._tb is not None:
            for k, v in means.items():
                self._tb.add_scalar(k, v, self.step)
            self._tb.add_scalar("img_per_s", record["img_per_s"], self.step)
        return record

    def _diverged(self, means: dict[str, float]) -> None:
        culprits = {k: v for k, v in means.items() if not math.isfinite(v) or abs(v) > self.max_loss}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in culprits.items()) or "a loss"
        last = (f"the last good checkpoint {self.last_good[0]} (step {self.last_good[1]}) is intact"
                if self.last_good else "no checkpoint was written yet")  # fmt: skip
        raise diverged(f"or before step {self.step}", f"{shown} is non-finite or above max_loss={self.max_loss:g}",
                       last)  # fmt: skip

    def _open_tensorboard(self) -> None:
        if not self.dist.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the [tensorboard] extra is not installed: JSONL only
            return
        self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step)

    def sample_grid(self, epoch: int, n: int = 8) -> Path:
        """The model's sample rows on fixed faces (or fixed noise), with EMA weights when kept, in eval mode.

        Eval mode: a batch-norm generator must use its running statistics here, not the statistics of
        the eight grid faces (nor update its running statistics from them).
        """
        nets = {**self.model.networks, **self.ema}
        modes = {name: net.training for name, net in nets.items()}
        for net in nets.values():
            net.eval()
        try:
            rows, labels = self.model.sample_grid_rows(self.sampler.fixed(n), nets)
        finally:
            for name, net in nets.items():
                net.train(modes[name])
        image = labelled_grid([to_uint8(r).cpu() for r in rows], labels, scale=2, label_width=110)
        path = save_image(image, self.run_dir / "samples" / f"epoch_{epoch:03d}.png")
        image.save(self.run_dir / "samples" / "latest.png")
        if (self.run_dir / METRICS_FILE).is_file():  # losses, D gaps, ADA p so far, beside the grids
            plot_training_curves(self.run_dir / METRICS_FILE, self.run_dir / "curves.png")
        return path
