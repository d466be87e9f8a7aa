"""The contract between a model family (what a step computes) and the shared trainer (how it runs).

A model owns its networks, optimizers and any extra training state (e.g. image pools) and
implements one ``train_step``. The trainer owns everything else: data order, devices, precision,
schedules, EMA, logging, sample grids, checkpoints, resume and the divergence guard. Adding a GAN
family means writing one class that satisfies :class:`GANModel`; the trainer does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn


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
