"""FER+ (Barsoum et al. 2016): ten annotators' votes per FER2013 face, aligned row for row.

Two uses: a label source for classifiers (majority or vote-share "soft" labels over the seven
FER2013 emotions), and ground truth for label-noise filters: a face whose FER+ plurality is not its
FER2013 label, or is "unknown" / "not a face", is a likely FER2013 label error
(:meth:`FerPlus.likely_label_errors`).

File layout (``ferplus.csv.gz`` / Microsoft's ``fer2013new.csv``): header
``Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF``, one
row per FER2013 row in the same order; ``Image name`` is empty for the images FER+ dropped.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from feraug.data.dataset import FaceDataset

#: FER+ vote columns, in file order.
VOTE_COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                 "contempt", "unknown", "NF")  # fmt: skip
#: FER2013 label of each emotion vote column (contempt, unknown and NF have none).
TO_FER2013: dict[str, int] = {"anger": 0, "disgust": 1, "fear": 2, "happiness": 3, "sadness": 4, "surprise": 5,
                              "neutral": 6}  # fmt: skip
_EMOTION_COLS = np.array([VOTE_COLUMNS.index(name) for name, _ in sorted(TO_FER2013.items(), key=lambda kv: kv[1])])


class FerPlusFormatError(ValueError):
    """A malformed FER+ file; the message names the file and line."""


@dataclass(frozen=True)
class FerPlus:
    """FER+ votes of every row.

    Attributes:
        votes: ``int64 [N, 10]`` vote counts in :data:`VOTE_COLUMNS` order.
        usage: ``[N]`` split name per row.
        dropped: ``bool [N]`` rows FER+ left without an image name (excluded from its release).
        source: the file read.
    """

    votes: np.ndarray
    usage: np.ndarray
    dropped: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.votes)

    def emotion_votes(self) -> np.ndarray:
        """``int64 [N, 7]`` votes for the seven FER2013 emotions, in FER2013 label order."""
        return self.votes[:, _EMOTION_COLS]

    def majority(self) -> np.ndarray:
        """FER2013 label of each row's plurality vote; -1 when the plurality is a tie, or is contempt,
        unknown or not-a-face, or the row was dropped."""
        top = self.votes.max(1, keepdims=True)
        winners = self.votes == top
        single = winners.sum(1) == 1
        col = self.votes.argmax(1)
        to_label = np.full(len(VOTE_COLUMNS), -1)
        for name, label in TO_FER2013.items():
            to_label[VOTE_COLUMNS.index(name)] = label
        out = np.where(single & (top[:, 0] > 0), to_label[col], -1)
        return np.where(self.dropped, -1, out)

    def soft_labels(self) -> np.ndarray:
        """``float32 [N, 7]`` share of the emotion votes per FER2013 class; NaN rows where no emotion got a vote."""
        ev = self.emotion_votes().astype(np.float64)
        total = ev.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, ev / total, np.nan).astype(np.float32)

    def likely_label_errors(self, labels: np.ndarray) -> np.ndarray:
        """``bool [N]``: FER2013 ``labels`` FER+ contradicts — its plurality (ties included) does not
        contain the label, the plurality is unknown or not-a-face, or FER+ dropped the image."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(self):
            raise ValueError(f"{len(labels)} labels for {len(self)} FER+ rows: is this FER+ file aligned with the "
                             "data?")
        top = self.votes.max(1)
        label_votes = self.votes[np.arange(len(labels)), _EMOTION_COLS[labels]]
        return self.dropped | (label_votes < top)  # a strict unknown / NF plurality is covered: it beats the label


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def load_ferplus(path: str | Path) -> FerPlus:
    """Read a FER+ CSV (plain or gzipped); a malformed row is an error naming its line.

    Raises:
        FileNotFoundError: with the file feraug needs, when ``path`` does not exist.
        FerPlusFormatError: bad header, wrong number of fields, or a vote that is not a count 0..10.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FER+ votes not found: {path} (needs ferplus.csv.gz / fer2013new.csv, the FER+ "
                                "relabelling aligned row for row with fer2013.csv)")  # fmt: skip
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        expected = ["usage", "image name", *(c.lower() for c in VOTE_COLUMNS)]
        if header is None or [h.strip().lower() for h in header] != expected:
            raise FerPlusFormatError(f"{path}:1: header {header} is not the FER+ header "
                                     f"Usage,Image name,{','.join(VOTE_COLUMNS)}")  # fmt: skip
        votes, usage, dropped = [], [], []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(expected):
                raise FerPlusFormatError(f"{path}:{line}: {len(row)} fields, expected {len(expected)}")
            try:
                v = [int(x) for x in row[2:]]
            except ValueError as e:
                raise FerPlusFormatError(f"{path}:{line}: a vote is not an integer: {row[2:]}") from e
            if min(v) < 0 or max(v) > 10:
                raise FerPlusFormatError(f"{path}:{line}: vote counts must lie in 0..10, got {v}")
            votes.append(v)
            usage.append(row[0].strip())
            dropped.append(not row[1].strip())
    return FerPlus(np.array(votes, dtype=np.int64).reshape(-1, len(VOTE_COLUMNS)), np.array(usage),
                   np.array(dropped, dtype=bool), str(path))  # fmt: skip


def relabel_with_majority(data: FaceDataset, ferplus: FerPlus) -> FaceDataset:
    """``data`` with FER+ plurality labels; faces whose plurality is no single FER2013 emotion are left out.

    Faces are matched by source row (:attr:`FaceDataset.rows`), so a subset of the file (e.g. one split)
    works; a row the FER+ file does not have is an error.
    """
    rows = np.asarray(data.rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(ferplus)):
        bad = int(rows.min()) if rows.min() < 0 else int(rows.max())
        raise ValueError(f"{data.source} has row {bad} but {ferplus.source} has rows 0..{len(ferplus) - 1}: "
                         "is it the FER+ file of this data?")  # fmt: skip
    majority = ferplus.majority()[rows]
    keep = np.flatnonzero(majority >= 0)
    out = data.subset(keep)
    relabelled = FaceDataset(out.images, torch.from_numpy(majority[keep]), out.usage, out.rows, out.classes,
                             out.source, out.notes)  # fmt: skip
    changed = int((majority[keep] != data.labels.numpy()[keep]).sum())
    return relabelled.with_note(f"labels: FER+ plurality from {ferplus.source} ({changed} changed, "
                                f"{len(data) - len(keep)} faces without a single-emotion plurality left out)")
