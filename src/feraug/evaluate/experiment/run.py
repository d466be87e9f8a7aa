"""Train every arm, seed and fold of an augmentation experiment (or reuse the runs an interrupted one finished).

:func:`run_experiment` checks the folds, the leakage guard and the output folder before any file
is written, records the configuration (``config.yaml``, ``meta.json``), reads back every job the
prediction cache (:mod:`feraug.evaluate.experiment.cache`) already holds and hands the rest to an
executor (:mod:`feraug.evaluate.experiment.executors`: this process, worker processes or a Ray
cluster), which caches each job as it finishes, so an interrupted experiment resumes. What the
runs mean is :mod:`~feraug.evaluate.experiment.summary`'s to compute and :mod:`feraug.report`'s to
say; :mod:`feraug.pipelines.experiment` chains the three.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from feraug.data.dataset import FaceDataset
from feraug.evaluate.experiment.arms import (
    ARMS,
    Generators,
    build_arms,
    concat,
    generator_overlap,
    generators_of,
    source_positions,
)
from feraug.evaluate.experiment.cache import Job, JobSpec, cached_result, job_spec, run_job
from feraug.evaluate.experiment.executors import Executor, LocalExecutor
from feraug.evaluate.experiment.protocols import Fold, kfold_protocol, standard_protocol, trts_protocol, tstr_protocol
from feraug.evaluate.experiment.summary import RunResult
from feraug.train.device import resolve_device
from feraug.train.runinfo import write_run_info

if TYPE_CHECKING:
    from feraug.config import ExperimentConfig


def plan_jobs(cfg: ExperimentConfig, data: FaceDataset, synthetic: FaceDataset, sources: np.ndarray,
              gens: Generators | None = None) -> tuple[list[Fold], list[Job], dict[str, Any]]:  # fmt: skip
    """Folds, jobs and the leakage-guard / arm-size / generator-overlap bookkeeping for ``cfg.protocol``."""
    seeds = range(cfg.seeds)
    gens = gens or Generators(np.full(len(synthetic), -1, dtype=np.int64), (), ())
    guard: dict[str, Any] = {"n_synthetic": len(synthetic), "dropped_per_fold": {}, "added_per_fold": {},
                             "generator_overlap": {}, "generator_overlap_mode": cfg.generator_overlap}  # fmt: skip
    jobs: list[Job] = []
    if cfg.protocol in ("standard", "kfold"):
        folds = (standard_protocol(data, val_fraction=cfg.val_fraction) if cfg.protocol == "standard" else
                 kfold_protocol(data, n_per_class_test=cfg.n_per_class_test, repeats=cfg.repeats, folds=cfg.folds,
                                val_fraction=cfg.val_fraction))  # fmt: skip
        real_labels, syn_labels = data.labels.numpy(), synthetic.labels.numpy()
        tainted = {}
        for fold in folds:
            guard["generator_overlap"][fold.name], tainted[fold.name] = generator_overlap(data, fold, gens,
                                                                                          cfg.generator_overlap)
        for seed in seeds:
            for fold in folds:
                arms = build_arms(fold, real_labels, syn_labels, sources, balance=cfg.balance, seed=seed,
                                  n_classes=len(data.classes), tainted=tainted[fold.name])  # fmt: skip
                guard["dropped_per_fold"][fold.name] = int(arms.dropped.size)
                guard["added_per_fold"][fold.name] = dict(zip(data.classes, arms.added.tolist(), strict=True))
                jobs += [Job(arm, seed, fold, arms.train[arm]) for arm in ARMS]
        return folds, jobs, guard
    if cfg.protocol == "tstr":
        (fold,) = tstr_protocol(data, sources, val_fraction=cfg.val_fraction)
        guard["generator_overlap"][fold.name], tainted_faces = generator_overlap(data, fold, gens,
                                                                                 cfg.generator_overlap)
        fold = dataclasses.replace(fold, train=fold.train[~tainted_faces[fold.train - len(data)]])
        (real,) = standard_protocol(data, val_fraction=cfg.val_fraction)
        guard["dropped_per_fold"][fold.name] = int(len(synthetic) - fold.train.size)
        jobs = [j for s in seeds for j in (Job("baseline", s, fold, real.train), Job("synthetic_only", s, fold,
                                                                                      fold.train))]  # fmt: skip
        return [fold], jobs, guard
    (fold,) = trts_protocol(data, sources, val_fraction=cfg.val_fraction)
    guard["dropped_per_fold"][fold.name] = 0
    guard["removed_real_sources"] = int(standard_protocol(data, val_fraction=cfg.val_fraction)[0].train.size
                                        - fold.train.size)  # fmt: skip
    return [fold], [Job("baseline", s, fold, fold.train) for s in seeds], guard


@dataclass(frozen=True)
class ExperimentRuns:
    """What :func:`run_experiment` trained: the runs, the folds they ran on, the guard's bookkeeping.

    ``sources`` holds each synthetic face's source position in the real data (-1: none), ``config``
    the experiment's configuration as written to ``config.yaml``.
    """

    runs: list[RunResult]
    folds: list[Fold]
    guard: dict[str, Any]
    sources: np.ndarray
    config: dict[str, Any]


def run_experiment(
    data: FaceDataset, synthetic: FaceDataset, provenance: dict[str, np.ndarray], cfg: ExperimentConfig,
    out_dir: str | Path, *, resume: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> ExperimentRuns:  # fmt: skip
    """Train every (arm, seed, fold) of ``cfg`` into ``out_dir`` (predictions cached in ``out_dir/predictions``).

    Args:
        data: the real faces (``rows`` must be the row indices the provenance ``source_row`` refers to).
        synthetic: the synthetic faces (``rows`` = their CSV rows, provenance ``synthetic_row``).
        provenance: :func:`feraug.synth.synthetic_set.read_provenance` of the synthetic CSV.
        cfg: the experiment (protocol, seeds, classifier, balance, ...).
        out_dir: output folder; ``config.yaml`` and ``meta.json`` record the configuration.
        resume: reuse cached predictions of an interrupted experiment with the same configuration; a
            cached run is only reused when the faces it trained, selected and was scored on are the same.
        progress: show the classifier's progress bars (local executor) or the jobs' progress bar (others).
        log: called with one line per run (e.g. ``click.echo``).
        executor: where the jobs run (:func:`~feraug.evaluate.experiment.executors.parse_executor`);
            None: one after the other in this process. The results are the same on every executor.
    """
    out = Path(out_dir)
    config = cfg.model_dump(mode="json")
    sources = source_positions(data, synthetic, provenance)
    gens = generators_of(synthetic, provenance)
    folds, jobs, guard = plan_jobs(cfg, data, synthetic, sources, gens)  # checks the folds and guards before any file
    if (out / "config.yaml").exists():
        if not resume:
            raise FileExistsError(f"{out} already holds an experiment; resume it or pick another --out")
        saved = yaml.safe_load((out / "config.yaml").read_text())
        if type(cfg).model_validate(saved).model_dump(mode="json") != config:  # fields added since: defaults
            raise ValueError(f"{out}/config.yaml differs from this configuration: cannot resume with other settings")
    write_run_info(out, config, 0, resolve_device(cfg.classifier.device))
    combined = concat(data, synthetic)
    executor = executor or LocalExecutor()
    local = isinstance(executor, LocalExecutor)  # a worker's classifier bars would only garble one another
    specs = [job_spec(job, combined, cfg, out / "predictions", progress and local) for job in jobs]
    runs = [cached_result(spec, combined) for spec in specs]  # every cache checked before any training
    todo = [i for i, run in enumerate(runs) if run is None]
    say = log or (lambda _line: None)
    for i in sorted(set(range(len(jobs))) - set(todo)):
        say(_job_line(specs[i].job, i, len(jobs), "cached"))
    position = {id(specs[i]): i for i in todo}

    def announced(spec: JobSpec, shared: FaceDataset) -> RunResult:
        """In this process: say which run trains before its (long) training starts."""
        say(_job_line(spec.job, position[id(spec)], len(jobs), "training"))
        return run_job(spec, shared)

    if not local:
        say(f"{len(todo)} of {len(jobs)} runs to train on {executor.name}")
    for k, result in executor.map(announced if local else run_job, [specs[i] for i in todo], combined,
                                  progress=progress):  # fmt: skip
        runs[todo[k]] = result
        if not local:
            with tqdm.external_write_mode():  # above the jobs' progress bar, not through it
                say(_job_line(specs[todo[k]].job, todo[k], len(jobs), "done"))
    return ExperimentRuns(runs, folds, guard, sources, config)


def _job_line(job: Job, i: int, n: int, state: str) -> str:
    """One line per run: ``[i/n] arm ..., seed ..., fold ...: N training faces, state``."""
    return (f"[{i + 1}/{n}] arm {job.arm}, seed {job.seed}, fold {job.fold.name}: {job.train.size} training "
            f"faces, {state}")  # fmt: skip
