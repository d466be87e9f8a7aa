"""The contract between a model family (what a step computes) and the shared trainer (how it runs).

A model owns its networks, optimizers and any extra training state (e.g. image pools) and
implements one ``train_step``. The trainer owns everything else: data order, devices, precision,
schedules, EMA, logging, sample grids, checkpoints, resume and the divergence guard. Adding a GAN
family means writing one class that satisfies :class:`GANModel`; the trainer does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class StepContext:
    """What a training step may know about where it is in the run.

    ``generators`` are per-stream random generators derived from (seed, step), so a step's
    randomness does not depend on what ran before it: this is what makes resume exact.
    """

    step: int
    epoch: int
    progress: float
    generators: tuple[torch.Generator, ...]
    autocast_dtype: torch.dtype | None


class GANModel(Protocol):
    """What the trainer needs from a model family."""

    family: str
    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    ema_names: tuple[str, ...]

    def arch(self) -> dict[str, Any]:
        """Everything that fixes tensor shapes; a checkpoint whose arch differs is refused."""

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One optimization step; returns detached scalar losses (on device, never ``.item()``-ed)."""

    def sample_grid_rows(
        self, batch: dict[str, torch.Tensor], networks: dict[str, nn.Module]
    ) -> tuple[list[torch.Tensor], list[str]]:
        """Rows of images in [-1, 1] and their labels for the per-epoch sample grid."""

    def extra_state(self) -> dict[str, Any]:
        """Training state beyond networks and optimizers (e.g. image pools)."""

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""


class Streams:
    """Run two independent computations concurrently on a 2-thread CPU, one thread each.

    Why: at batch 1 a 48x48 CycleGAN's convolutions are too small to keep two cores busy
    from one op at a time; the two cycle directions are independent until their gradients meet,
    so running them as two single-threaded streams uses both cores (~1.5x measured, see
    ``benchmarks/bench_cyclegan_step.py``). Autocast state is thread-local, so each stream
    enters it itself.
    """

    def __init__(self, n: int, autocast_device: str) -> None:
        if n not in (1, 2):
            raise ValueError(f"streams must be 1 or 2, got {n}")
        self.n = n
        self.device_type = autocast_device
        self._pool = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,)) if n == 2 else None

    def run(self, first: Callable[[], T], second: Callable[[], T], dtype: torch.dtype | None) -> tuple[T, T]:
        """``(first(), second())``, concurrently when two streams are configured."""

        def wrapped(fn: Callable[[], T]) -> Callable[[], T]:
            def call() -> T:
                with torch.autocast(self.device_type, dtype=dtype, enabled=dtype is not None):
                    return fn()

            return call

        if self._pool is None:
            return wrapped(first)(), wrapped(second)()
        future = self._pool.submit(wrapped(second))
        return wrapped(first)(), future.result()

    def close(self) -> None:
        """Stop the worker thread."""
        if self._pool is not None:
            self._pool.shutdown()
