"""One classifier of the experiment, trained once: its predictions are cached and reused only for the same faces.

A run's cache file holds its predicted probabilities on every evaluation set and the SHA-256 of
what it saw (positions, labels and pixels of its training, selection and test faces). Resuming an
interrupted experiment, or sharing the baseline arm between synthetic sets, reuses a file only when
that hash matches: a cached run is never credited to other faces.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from feraug.config import ClassifierConfig
from feraug.data.dataset import FaceDataset
from feraug.evaluate import classifier
from feraug.evaluate.experiment.protocols import Fold
from feraug.evaluate.experiment.summary import EvalSet, RunResult
from feraug.train.device import resolve_device

if TYPE_CHECKING:
    from feraug.config import ExperimentConfig


@dataclass(frozen=True)
class Job:
    """One classifier to train: an arm's training positions on one fold with one seed."""

    arm: str
    seed: int
    fold: Fold
    train: np.ndarray


def train_and_predict(job: Job, combined: FaceDataset, cfg: ExperimentConfig, cache: Path,
                      progress: bool) -> RunResult:  # fmt: skip
    """Train ``job``'s classifier (or load its cached predictions) and score every evaluation set of its fold."""
    k = len(combined.classes)
    labels = combined.labels.numpy()
    counts = np.bincount(labels[job.train], minlength=k)
    n_real = int(job.fold.train.size + job.fold.val.size)
    # What the run saw: its training, selection and test faces (positions, labels and pixels), hashed.
    digest = hashlib.sha256()
    for idx in (job.train, job.fold.val, *job.fold.tests.values()):
        digest.update(idx.tobytes() + labels[idx].tobytes() + combined.images[torch.from_numpy(idx)].numpy().tobytes())
    if cache.is_file():
        with np.load(cache) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("inputs_sha256") != digest.hexdigest():
                raise ValueError(f"{cache} was computed on other faces than this experiment's {job.arm} arm, seed "
                                 f"{job.seed}, fold {job.fold.name}: start a new --out")  # fmt: skip
            evals = {name: EvalSet(idx, labels[idx], z[f"prob_{name}"]) for name, idx in job.fold.tests.items()}
    else:
        ccfg = ClassifierConfig.model_validate({**cfg.classifier.model_dump(), "seed": job.seed})
        run = classifier.train_classifier(ccfg, combined.subset(job.train), combined.subset(job.fold.val), None,
                               progress=progress)  # fmt: skip
        device = resolve_device(ccfg.device)
        evals = {name: EvalSet(idx, labels[idx], classifier.predict_proba(run.net, combined.subset(idx), tta=ccfg.tta,
                                                               device=device))
                 for name, idx in job.fold.tests.items()}  # fmt: skip
        meta = {"inputs_sha256": digest.hexdigest(), "best_epoch": int(run.best_epoch),
                "best_score": float(run.best_score) if math.isfinite(run.best_score) else None}  # fmt: skip
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez_compressed(tmp, meta=json.dumps(meta), **{f"prob_{n}": e.prob for n, e in evals.items()})
        tmp.replace(cache)  # atomic: a killed run never leaves a half-written cache that resume would trust
    return RunResult(job.arm, job.seed, job.fold.name, counts, n_real, evals, meta["best_epoch"], meta["best_score"])
