"""Per-class counts per split and the imbalance ratio: the numbers a user checks first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feraug.data.dataset import FaceDataset


@dataclass(frozen=True)
class DatasetStats:
    """Class counts of each split (``"all"`` last) and the max/min class ratio of the whole set."""

    classes: tuple[str, ...]
    counts: dict[str, np.ndarray]
    imbalance_ratio: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "classes": list(self.classes),
            "counts": {split: c.tolist() for split, c in self.counts.items()},
            "imbalance_ratio": self.imbalance_ratio,
        }

    def table(self) -> str:
        """A fixed-width text table: one row per class, one column per split."""
        splits = list(self.counts)
        rows = [(f"{i} {name}", [int(self.counts[s][i]) for s in splits]) for i, name in enumerate(self.classes)]
        rows.append(("all", [int(self.counts[s].sum()) for s in splits]))
        name_w = max(len("emotion"), *(len(r[0]) for r in rows)) + 2
        col_w = [max(len(s), 7) + 2 for s in splits]
        lines = ["emotion".ljust(name_w) + "".join(s.rjust(w) for s, w in zip(splits, col_w, strict=True))]
        for name, values in rows:
            lines.append(name.ljust(name_w) + "".join(f"{v:,}".rjust(w) for v, w in zip(values, col_w, strict=True)))
        total = self.counts["all"]
        lines.append(
            f"imbalance ratio (largest / smallest class): {self.imbalance_ratio:.1f}"
            f" ({self.classes[int(total.argmax())]} / {self.classes[int(total.argmin())]})"
        )
        return "\n".join(lines)


def dataset_stats(data: FaceDataset) -> DatasetStats:
    """Counts per split (``Usage``) and overall; the ratio is infinite when a class has no faces."""
    counts = {split: data.split(split).class_counts() for split in data.splits}
    counts["all"] = data.class_counts()
    smallest = int(counts["all"].min())
    ratio = float(counts["all"].max()) / smallest if smallest else float("inf")
    return DatasetStats(tuple(data.classes), counts, ratio)
