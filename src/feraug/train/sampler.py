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

from feraug.core.seeding import ORDER, generator
from feraug.data.augment import flip_affine, to_float


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
        passes: int = 1,
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
        full = passes * math.ceil(max(len(v) for v in domains.values()) / batch_size)
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


class LabelledSampler:
    """Batches ``{"image": float [B,1,H,W], "label": long [B]}`` of one labelled set, optionally class-balanced.

    Plain: an epoch is one shuffled pass, ``ceil(N / batch_size)`` steps (the last batch wraps into a
    second permutation). ``balanced``: every draw picks a class uniformly, then one of its faces, so a
    class-conditional GAN sees Disgust as often as Happy; the epoch keeps the same length. Either order
    depends only on ``(seed, epoch)``, as :class:`DomainSampler`'s does, so resume is exact.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        seed: int,
        device: torch.device,
        balanced: bool = False,
        augment: bool = False,
        steps_per_epoch: int | None = None,
        shard: slice | None = None,
        passes: int = 1,
    ) -> None:
        if images.shape[0] == 0:
            raise ValueError("no images to train on")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images = images.to(device)
        self.labels = labels.to(device=device, dtype=torch.long)
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.balanced = balanced
        self.augment = augment
        self.shard = shard or slice(None)
        full = passes * math.ceil(images.shape[0] / batch_size)
        self.steps_per_epoch = min(full, steps_per_epoch) if steps_per_epoch else full
        self._members = [torch.nonzero(labels == k).flatten() for k in torch.unique(labels).tolist()]
        self._epoch = -1
        self._order = torch.zeros(0, dtype=torch.long)

    def _order_for(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            g = generator(self.seed, ORDER, epoch)
            need = self.steps_per_epoch * self.batch_size
            n = self.images.shape[0]
            if self.balanced:
                which = torch.randint(len(self._members), (need,), generator=g)
                pick = torch.empty(need, dtype=torch.long)
                for k, members in enumerate(self._members):
                    at = which == k
                    pick[at] = members[torch.randint(members.numel(), (int(at.sum()),), generator=g)]
                order = pick
            else:
                order = torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(need / n))])[:need]
            self._order, self._epoch = order.to(self.device), epoch
        return self._order

    def batch(self, epoch: int, index: int, gen: torch.Generator | None) -> dict[str, torch.Tensor]:
        """This process's shard of batch ``index`` of ``epoch``; ``gen`` drives augmentation."""
        at = self._order_for(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        x = to_float(self.images[at])
        x = flip_affine(x, gen) if self.augment else x
        return {"image": x[self.shard], "label": self.labels[at][self.shard]}

    def fixed(self, n: int) -> dict[str, torch.Tensor]:
        """Up to ``n`` faces of every class (the first ones), unaugmented: the real row of a sample grid."""
        at = torch.cat([members[:n] for members in self._members])
        return {"image": to_float(self.images[at.to(self.device)]), "label": self.labels[at.to(self.device)]}
