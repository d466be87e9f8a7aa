"""History buffer of generated images (Shrivastava et al. 2017), as CycleGAN uses it.

The discriminator is updated on a mix of the newest fakes and fakes from earlier steps, which
damps the oscillation between generator and discriminator. Unlike the reference implementation
(a Python list and ``random.uniform`` per image) the pool is one tensor on the training device
and its decisions are vectorized draws from an explicit generator: no host syncs, and the whole
state (tensor + fill count) goes into checkpoints so a resumed run sees the same history. Its writes
are deterministic too (two images drawing one slot write the same value), so a seed fixes the run.
"""

from __future__ import annotations

import torch


class ImagePool:
    """Up to ``size`` past images; ``size=0`` disables the pool (queries return their input)."""

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.count = 0
        self.images: torch.Tensor | None = None

    def query(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return a batch for the discriminator and store ``images``.

        While the pool fills, images are stored and returned unchanged. Once full, each image is,
        with probability ½, swapped with a random stored image (the stored one is returned),
        otherwise returned unchanged.
        """
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = torch.empty((self.size, *images.shape[1:]), dtype=images.dtype, device=images.device)
        n_fill = min(images.shape[0], self.size - self.count)
        if n_fill:
            self.images[self.count : self.count + n_fill] = images[:n_fill]
            self.count += n_fill
        rest = images[n_fill:]
        if rest.shape[0] == 0:
            return images
        n = rest.shape[0]
        swap = torch.rand(n, device=images.device, generator=generator) < 0.5
        slot = torch.randint(0, self.size, (n,), device=images.device, generator=generator)
        stored = self.images[slot]
        mask = swap.view(-1, *([1] * (images.dim() - 1)))
        # Two images of a batch may draw the same slot. An indexed write with repeated indices keeps whichever
        # write lands last, and on a multi-threaded CPU (or a GPU) that varies from run to run: the same seed then
        # trains a different discriminator. So every writer of a slot writes the same value: the last image that
        # swaps into it, as a loop over the batch would leave it, or the stored image when none does.
        into = (slot.unsqueeze(1) == slot.unsqueeze(0)) & swap.unsqueeze(0)  # [i, j]: j swaps into i's slot
        last = torch.where(into, torch.arange(n, device=slot.device), -1).amax(dim=1)
        self.images[slot] = torch.where((last >= 0).view(mask.shape), rest[last.clamp(min=0)], stored)
        return torch.cat([images[:n_fill], torch.where(mask, stored, rest)])

    def state_dict(self) -> dict[str, object]:
        """Pool contents and fill count, for checkpoints."""
        return {"size": self.size, "count": self.count, "images": self.images}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what :meth:`state_dict` saved."""
        if state["size"] != self.size:
            raise ValueError(f"checkpoint image pool has size {state['size']}, this run uses {self.size}")
        self.count = int(state["count"])  # type: ignore[arg-type]
        self.images = state["images"]  # type: ignore[assignment]
