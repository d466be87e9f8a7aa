"""Stateless randomness: every random draw of a run is a function of (seed, purpose, position).

Why: if step ``k``'s augmentation and pool decisions depend only on ``(seed, k)``, a run resumed
at step ``k`` replays exactly what the uninterrupted run would have done, with no RNG state to
save, and two consumers (e.g. the two image pools) never share one generator.
"""

from __future__ import annotations

import numpy as np
import torch

# Purposes, so that different uses of the same (seed, position) never share a stream of numbers.
ORDER, STEP, INIT, SELECT, SAMPLE, DEGRADE = 1, 2, 3, 4, 5, 6


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed mixing ``seed`` and ``keys`` (NumPy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([seed & (2**63 - 1), *keys]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with :func:`derive_seed`."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))
