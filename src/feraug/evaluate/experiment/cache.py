"""One classifier of the experiment, trained once: a job run from its inputs alone, its predictions cached by key.

A job (:class:`JobSpec`) is an arm's training positions on one fold with one seed and the
classifier configuration; :func:`run_job` trains it from the spec and the faces alone, so any
executor (:mod:`~feraug.evaluate.experiment.executors`) can run it in any process or machine and
get the same predictions. Its cache file holds the predicted probabilities on every evaluation set,
the SHA-256 of what it saw (positions, labels and pixels of its training, selection and test faces)
and the job key (that hash with the classifier configuration, seed, fold and arm). Resuming an
interrupted experiment, or sharing the baseline arm between synthetic sets, reuses a file only when
both match (:func:`cached_result`): a cached run is never credited to other faces or other settings.
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


@dataclass(frozen=True)
class JobSpec:
    """Everything a job needs besides the faces, small enough to ship to a worker for every job.

    ``classifier`` already carries the job's seed; ``inputs_sha256`` and ``key`` are computed once
    by :func:`job_spec` in the process that holds the faces, so a worker need not hash them again.
    """

    job: Job
    classifier: ClassifierConfig
    cache: Path
    inputs_sha256: str
    key: str
    progress: bool = False


def job_spec(job: Job, combined: FaceDataset, cfg: ExperimentConfig, predictions: Path,
             progress: bool) -> JobSpec:  # fmt: skip
    """``job``'s spec: its classifier configuration, cache file in ``predictions`` and the hashes that key it."""
    labels = combined.labels.numpy()
    digest = hashlib.sha256()  # what the run saw: its training, selection and test faces (positions, labels, pixels)
    for idx in (job.train, job.fold.val, *job.fold.tests.values()):
        digest.update(idx.tobytes() + labels[idx].tobytes() + combined.images[torch.from_numpy(idx)].numpy().tobytes())
    ccfg = ClassifierConfig.model_validate({**cfg.classifier.model_dump(), "seed": job.seed})
    key = hashlib.sha256(json.dumps({"classifier": ccfg.model_dump(mode="json"), "arm": job.arm, "fold": job.fold.name,
                                     "inputs_sha256": digest.hexdigest()}, sort_keys=True).encode())  # fmt: skip
    cache = predictions / f"{job.arm}-seed{job.seed}-{job.fold.name}.npz"
    return JobSpec(job, ccfg, cache, digest.hexdigest(), key.hexdigest(), progress)


def _result(spec: JobSpec, combined: FaceDataset, prob: dict[str, np.ndarray], meta: dict) -> RunResult:
    job, labels = spec.job, combined.labels.numpy()
    counts = np.bincount(labels[job.train], minlength=len(combined.classes))
    evals = {name: EvalSet(idx, labels[idx], prob[name]) for name, idx in job.fold.tests.items()}
    n_real = int(job.fold.train.size + job.fold.val.size)
    return RunResult(job.arm, job.seed, job.fold.name, counts, n_real, evals, meta["best_epoch"], meta["best_score"])


def cached_result(spec: JobSpec, combined: FaceDataset) -> RunResult | None:
    """The job's cached result, None when it has none; an error when the cache holds another job's predictions."""
    if not spec.cache.is_file():
        return None
    job = spec.job
    with np.load(spec.cache) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("inputs_sha256") != spec.inputs_sha256:
            raise ValueError(f"{spec.cache} was computed on other faces than this experiment's {job.arm} arm, seed "
                             f"{job.seed}, fold {job.fold.name}: start a new --out")  # fmt: skip
        if meta.get("job_key", spec.key) != spec.key:  # files written before the key: config.yaml vouches for them
            raise ValueError(f"{spec.cache} was computed with another classifier configuration than this "
                             f"experiment's: start a new --out")  # fmt: skip
        prob = {name: z[f"prob_{name}"] for name in job.fold.tests}
    return _result(spec, combined, prob, meta)


def run_job(spec: JobSpec, combined: FaceDataset) -> RunResult:
    """Train the job's classifier, score every evaluation set of its fold and cache the predictions.

    Top-level and a function of its arguments alone (the classifier seeds itself from the job's
    seed, statelessly): a worker process or a Ray task on another machine computes what the
    calling process would, at the same thread count.
    """
    job, ccfg = spec.job, spec.classifier
    run = classifier.train_classifier(ccfg, combined.subset(job.train), combined.subset(job.fold.val), None,
                                      progress=spec.progress)  # fmt: skip
    device = resolve_device(ccfg.device)
    prob = {name: classifier.predict_proba(run.net, combined.subset(idx), tta=ccfg.tta, device=device)
            for name, idx in job.fold.tests.items()}  # fmt: skip
    meta = {"inputs_sha256": spec.inputs_sha256, "job_key": spec.key, "best_epoch": int(run.best_epoch),
            "best_score": float(run.best_score) if math.isfinite(run.best_score) else None}  # fmt: skip
    spec.cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = spec.cache.with_name(spec.cache.stem + ".tmp.npz")
    np.savez_compressed(tmp, meta=json.dumps(meta), **{f"prob_{n}": p for n, p in prob.items()})
    tmp.replace(spec.cache)  # atomic: a killed run never leaves a half-written cache that resume would trust
    return _result(spec, combined, prob, meta)
