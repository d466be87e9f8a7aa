"""The in-memory face dataset every feraug component consumes.

All images live in one ``uint8 [N, H, W]`` tensor (FER2013 at 48x48 is ~75 MB), so training
loops index tensors instead of opening files; conversion to float happens on the device, per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from feraug.data.classes import EMOTIONS

#: Canonical split names, as in FER2013's ``Usage`` column.
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")


@dataclass(frozen=True)
class FaceDataset:
    """Faces, labels and where each face came from.

    Attributes:
        images: ``uint8 [N, H, W]`` grayscale faces.
        labels: ``int64 [N]`` indices into :data:`classes`.
        usage: ``[N]`` split name per face (``"Training"``, ``"PublicTest"``, ``"PrivateTest"``),
            or ``""`` when the source has no split information.
        rows: ``int64 [N]`` index of each face in its source (CSV data row or sorted file list);
            synthetic faces point back to these through their provenance files.
        classes: class names, FER2013 order.
        source: human-readable origin (a path or ``"toy(seed=...)"``), for messages and reports.
    """

    images: torch.Tensor
    labels: torch.Tensor
    usage: np.ndarray
    rows: np.ndarray
    classes: tuple[str, ...] = EMOTIONS
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.dim() != 3:
            raise ValueError(f"images must be uint8 [N,H,W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (n,) or len(self.usage) != n or len(self.rows) != n:
            raise ValueError(
                f"length mismatch: {n} images, {self.labels.shape[0]} labels, "
                f"{len(self.usage)} usage values, {len(self.rows)} row indices"
            )
        if n and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise ValueError(f"labels must lie in 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        """Side length of the (square) images."""
        return int(self.images.shape[-1])

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names present, in canonical order (empty when the source has none)."""
        present = set(self.usage.tolist())
        return tuple(s for s in SPLITS if s in present)

    def subset(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> FaceDataset:
        """Faces at ``index`` (positions in this dataset), keeping their source rows."""
        idx = np.asarray(index, dtype=np.int64)
        t = torch.from_numpy(idx)
        return FaceDataset(
            self.images[t], self.labels[t], self.usage[idx], self.rows[idx], self.classes, self.source, self.notes
        )

    def split(self, name: str) -> FaceDataset:
        """The faces whose ``Usage`` is ``name``."""
        if name not in self.splits:
            raise KeyError(f"{self.source or 'dataset'} has no {name!r} split (splits: {list(self.splits) or 'none'})")
        return self.subset(np.flatnonzero(self.usage == name))

    def class_counts(self) -> np.ndarray:
        """Number of faces per class, ``int64 [n_classes]``."""
        return np.bincount(self.labels.numpy(), minlength=len(self.classes))

    def of_class(self, label: int) -> FaceDataset:
        """The faces of one class; a class with no faces is an error, never an empty tensor."""
        idx = np.flatnonzero(self.labels.numpy() == label)
        if idx.size == 0:
            raise ValueError(f"class {self.classes[label]!r} has no images in {self.source or 'this dataset'}")
        return self.subset(idx)

    def with_note(self, note: str) -> FaceDataset:
        """A copy carrying an extra note (e.g. how a split was derived) for reports."""
        return FaceDataset(
            self.images, self.labels, self.usage, self.rows, self.classes, self.source, (*self.notes, note)
        )
