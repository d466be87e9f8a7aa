"""Batches from in-memory ``uint8`` domains, resident on the training device.

An epoch is ``ceil(max_domain_size / batch_size)`` steps (optionally capped): every face of the
larger domain is seen once per epoch, and the smaller domain is resampled — shuffled again each
time it runs out — so Neutral (4,965 faces) -> Disgust (436) sees each Disgust face ~11 times per
epoch. The order of epoch ``e`` depends only on ``(seed, e)``. In a data-parallel run every
process draws the same global batch (same order, same augmentation) and keeps its ``shard``:
augmenting the whole batch in every process costs little next to a GAN step and keeps the shards
exactly what one process would have trained on.
"""

from __future__ import annotations

import math

import torch

from feraug.data.augment import flip_affine, to_float
from feraug.train.seeding import ORDER, generator


class DomainSampler:
    """Aligned batches ``{name: float [B,1,H,W]}`` drawn from several domains at once."""

    def __init__(
        self,
        domains: dict[str, torch.Tensor],
        batch_size: int,
        *,
        seed: int,
        device: torch.device,
        augment: bool = False,
        steps_per_epoch: int | None = None,
        shard: slice | None = None,
    ) -> None:
        for name, images in domains.items():
            if images.shape[0] == 0:
                raise ValueError(f"domain {name!r} has no images")
        self.domains = {name: images.to(device) for name, images in domains.items()}
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.augment = augment
        self.shard = shard or slice(None)
        full = math.ceil(max(len(v) for v in domains.values()) / batch_size)
        self.steps_per_epoch = min(full, steps_per_epoch) if steps_per_epoch else full
        self._epoch = -1
        self._order: dict[str, torch.Tensor] = {}

    def _order_for(self, epoch: int) -> dict[str, torch.Tensor]:
        if epoch != self._epoch:
            g = generator(self.seed, ORDER, epoch)
            need = self.steps_per_epoch * self.batch_size
            self._order = {}
            for name, images in self.domains.items():
                n = images.shape[0]
                perms = [torch.randperm(n, generator=g) for _ in range(math.ceil(need / n))]
                self._order[name] = torch.cat(perms)[:need].to(self.device)
            self._epoch = epoch
        return self._order

    def batch(self, epoch: int, index: int, gen: torch.Generator | None) -> dict[str, torch.Tensor]:
        """This process's shard of batch ``index`` of ``epoch``; ``gen`` drives augmentation."""
        order = self._order_for(epoch)
        sl = slice(index * self.batch_size, (index + 1) * self.batch_size)
        out = {}
        for name, images in self.domains.items():
            x = to_float(images[order[name][sl]])
            out[name] = (flip_affine(x, gen) if self.augment else x)[self.shard]
        return out

    def fixed(self, n: int) -> dict[str, torch.Tensor]:
        """The first ``n`` faces of each domain (a fixed set for sample grids), unaugmented."""
        return {name: to_float(images[:n]) for name, images in self.domains.items()}
