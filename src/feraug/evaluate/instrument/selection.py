"""Best-sample selection: keep the synthetic faces most likely to help, drop the rest.

Pasini et al. saw its classifier get worse past ~100 synthetic Disgust faces because bad samples
outweighed good ones, and asked for instance selection. Each synthetic face gets three scores
from the two cross-fitted judges of :mod:`feraug.evaluate.instrument.judges` (those ``feraug quality`` uses):

* ``target`` — the lower of the two judges' probabilities that the face shows the target emotion
  (each from the model that never trained on the face's source): a face is ranked high only when
  both judges, of different architectures and labels, agree;
* ``realism`` — log-density of its features under a Gaussian (Ledoit-Wolf) fitted to the real
  training faces of the target emotion, in judge A's model 0's feature space (one space for every face,
  so the scores compare; model 0 trained on about half of the sources): how typical of real target
  faces it looks to the judge;
* ``structure`` — SSIM to its source face (translations only): identity and pose kept.

``combined`` (the default) ranks by the mean of the three percentile ranks within the set
(``(rank − 0.5) / n``, ties averaged), so no score's scale dominates and a face must do well on
all of them; sets without sources average the first two. Selection keeps the top ``keep`` in
that order (ties by position), or every face whose chosen score clears ``threshold``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.covariance import LedoitWolf

from feraug.data.dataset import FaceDataset
from feraug.evaluate.instrument.crossfit import features
from feraug.evaluate.instrument.image_quality import ssim
from feraug.evaluate.instrument.judges import Judge, source_emotion

SCORES: tuple[str, ...] = ("combined", "target", "realism", "structure")


def percentile_rank(x: np.ndarray) -> np.ndarray:
    """``(rank − 0.5) / n`` with ties averaged: 1/(2n) for the lowest value, 1 − 1/(2n) for the highest."""
    return (rankdata(x, method="average") - 0.5) / len(x)


def selection_scores(synthetic: FaceDataset, pool: FaceDataset, judges: Sequence[Judge], *, target: int,
                     sources: torch.Tensor | None = None, source_rows: np.ndarray | None = None,
                     ) -> dict[str, np.ndarray]:  # fmt: skip
    """The per-face scores of the module docstring, each ``float64 [N]`` (higher = keep first).

    ``source_rows``: the data row of each face's source (translations), for out-of-fold judging.
    """
    rows = source_rows if source_rows is not None else np.full(len(synthetic), -1)
    labels = pool.labels.numpy()
    positions = None
    if source_rows is not None:
        pool_rows = np.asarray(pool.rows, dtype=np.int64)
        order = np.argsort(pool_rows, kind="stable")
        positions = order[np.clip(np.searchsorted(pool_rows, source_rows, sorter=order), 0, len(pool) - 1)]
        positions = positions[pool_rows[positions] == source_rows]  # rows outside the pool name no emotion
    source = source_emotion(labels, target, positions)
    judges = [j.for_target(target, source) for j in judges]  # the operating point quality reads the set at
    agreed = np.min([j.proba(synthetic.images, rows)[:, target] for j in judges], axis=0)
    net = judges[0].fit.nets[0]
    real = pool.images[torch.from_numpy(np.flatnonzero(labels == target))]
    if len(real) < 2:
        raise ValueError(f"the real data has {len(real)} {pool.classes[target]} faces; realism needs at least 2")
    lw = LedoitWolf().fit(features(net, real))
    diff = features(net, synthetic.images) - lw.location_
    scores = {"target": agreed.astype(np.float64),
              "realism": -0.5 * np.einsum("ij,ij->i", diff @ lw.precision_, diff)}  # fmt: skip
    if sources is not None:
        scores["structure"] = ssim(synthetic.images, sources).double().numpy()
    scores["combined"] = np.mean([percentile_rank(v) for v in scores.values()], axis=0)
    return scores


def select_top(scores: np.ndarray, *, keep: int | None = None, threshold: float | None = None) -> np.ndarray:
    """Indices to keep, best first: the top ``keep``, or all scoring at least ``threshold`` (ties by position)."""
    if (keep is None) == (threshold is None):
        raise ValueError("give exactly one of keep and threshold")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    if keep is not None:
        if not 1 <= keep <= len(scores):
            raise ValueError(f"cannot keep {keep} of {len(scores)} synthetic faces")
        return order[:keep]
    return order[np.asarray(scores)[order] >= threshold]


@dataclass(frozen=True)
class Selection:
    """What :func:`write_selection` wrote."""

    csv: Path
    provenance: Path | None
    report: Path
    grid: Path
    kept: np.ndarray


def write_selection(out: Path, synthetic: FaceDataset, provenance: dict[str, np.ndarray] | None,
                    scores: dict[str, np.ndarray], kept: np.ndarray, by: str,
                    settings: dict[str, Any]) -> Selection:  # fmt: skip
    """The kept faces as a FER2013 CSV (best first), their provenance (renumbered, with the original synthetic
    row and the scores), ``<out>.select.json`` and a grid of the best kept and the worst dropped faces."""
    from feraug.data.fer2013 import write_fer2013_csv
    from feraug.figures.grid import labelled_grid, save_image
    from feraug.synth.synthetic_set import provenance_path

    t = torch.from_numpy(kept)
    chosen = FaceDataset(synthetic.images[t], synthetic.labels[t], synthetic.usage[kept],
                         np.arange(len(kept), dtype=np.int64), synthetic.classes,
                         f"select({synthetic.source}, by={by}, keep={len(kept)})")  # fmt: skip
    write_fer2013_csv(chosen, out)
    prov_out = None
    if provenance is not None:
        prov_out = provenance_path(out)
        added = ["selected_from_row", "select_by", "select_rank"] + [f"score_{k}" for k in scores]
        fields = [k for k in provenance if k not in added] + added  # a selection of a selection: columns renewed
        with prov_out.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(fields)
            for rank, i in enumerate(kept):
                values = {k: v[i] for k, v in provenance.items()}
                values.update({"synthetic_row": rank, "selected_from_row": int(synthetic.rows[i]), "select_by": by,
                               "select_rank": rank + 1, **{f"score_{k}": f"{v[i]:.6g}" for k, v in scores.items()}})
                w.writerow([values[k] for k in fields])
    stem = out.name.removesuffix(".gz").removesuffix(".csv")
    dropped = np.setdiff1d(np.arange(len(synthetic)), kept)
    worst = dropped[np.argsort(scores[by][dropped], kind="stable")][:12]
    grid = save_image(labelled_grid([synthetic.images[t[:12]], synthetic.images[torch.from_numpy(worst)]],
                                    ["best kept", "worst dropped"], label_width=100), out.with_name(f"{stem}.png"))
    report = out.with_name(f"{stem}.select.json")
    summary = {k: {"kept_mean": float(v[kept].mean()), "all_mean": float(v.mean())} for k, v in scores.items()}
    report.write_text(json.dumps({**settings, "by": by, "n_in": len(synthetic), "n_kept": len(kept),
                                  "kept_synthetic_rows": synthetic.rows[kept].tolist(), "scores": summary}, indent=2))
    return Selection(out, prov_out, report, grid, kept)
