"""Executors: worker processes and Ray give exactly the local predictions, a resumed experiment trains only the
missing jobs, a killed worker's job runs again, and ``--executor ray`` without Ray names the extra to install.

Every run here is on one thread per job (local: the ``one_thread`` fixture; the others: ``threads=1``), because
the thread count may change float sums and the comparisons are exact.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from feraug.config import ExperimentConfig, build_config, parse_override
from feraug.data import FaceDataset
from feraug.evaluate.experiment.cache import JobSpec
from feraug.evaluate.experiment.executors import ProcessExecutor, RayExecutor
from feraug.evaluate.experiment.protocols import standard_protocol
from feraug.evaluate.experiment.run import ExperimentRuns, run_experiment
from feraug.evaluate.experiment.summary import RunResult

SETTINGS = ["classifier.arch=fast", "classifier.arch_kwargs={stem: 4, widths: [8, 8], depth: 1, fc: 8}",
            "classifier.epochs=1", "classifier.steps_per_epoch=2", "classifier.batch_size=16", "classifier.device=cpu",
            "seeds=2"]  # fmt: skip


@pytest.fixture(scope="module")
def experiment(toy: FaceDataset) -> tuple[FaceDataset, FaceDataset, dict[str, np.ndarray], ExperimentConfig]:
    """Toy real faces, 20 mirrored training faces relabelled Disgust as the synthetic set, a tiny classifier."""
    (fold,) = standard_protocol(toy)
    sources = fold.train[:20]
    syn = FaceDataset(toy.images[torch.from_numpy(sources)].flip(-1), torch.full((20,), 1), np.full(20, "Training"),
                      np.arange(20), source="mirror")  # fmt: skip
    prov = {"synthetic_row": np.arange(20), "source_row": toy.rows[sources], "label": np.full(20, 1)}
    cfg = build_config(ExperimentConfig, overrides=[parse_override(s) for s in SETTINGS])
    assert isinstance(cfg, ExperimentConfig)
    return toy, syn, prov, cfg


@pytest.fixture(scope="module")
def local_runs(experiment: tuple, tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> ExperimentRuns:
    """The reference: every job in this process, one after the other."""
    return run_experiment(*experiment, tmp_path_factory.mktemp("local"))


def assert_same_runs(a: list[RunResult], b: list[RunResult]) -> None:
    """Same jobs in the same order with bitwise equal predictions."""
    assert [(r.arm, r.seed, r.fold) for r in a] == [(r.arm, r.seed, r.fold) for r in b]
    for x, y in zip(a, b, strict=True):
        assert x.best_epoch == y.best_epoch and set(x.evals) == set(y.evals)
        for name in x.evals:
            assert np.array_equal(x.evals[name].prob, y.evals[name].prob), (x.arm, x.seed, name)
            assert np.array_equal(x.evals[name].index, y.evals[name].index)


def test_processes_match_local_exactly(experiment: tuple, local_runs: ExperimentRuns, tmp_path: Path) -> None:
    lines: list[str] = []
    with ProcessExecutor(2, threads=1) as executor:
        done = run_experiment(*experiment, tmp_path, executor=executor, log=lines.append)
    assert_same_runs(local_runs.runs, done.runs)
    assert len(list((tmp_path / "predictions").glob("*.npz"))) == 6
    assert lines[0] == "6 of 6 runs to train on processes:2" and sum(line.endswith(", done") for line in lines) == 6


def test_resume_trains_only_the_deleted_job(experiment: tuple, local_runs: ExperimentRuns, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:  # fmt: skip
    from feraug.evaluate import classifier

    trained: list[int] = []
    train = classifier.train_classifier
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: trained.append(1) or train(*a, **k))
    run_experiment(*experiment, tmp_path)
    assert len(trained) == 6
    files = sorted((tmp_path / "predictions").glob("*.npz"))
    stamps = {f: f.stat().st_mtime_ns for f in files}
    (tmp_path / "predictions" / "synthetic-seed1-standard.npz").unlink()
    lines: list[str] = []
    again = run_experiment(*experiment, tmp_path, resume=True, log=lines.append)
    assert len(trained) == 7  # only the deleted job trained again
    (line,) = [line for line in lines if line.endswith("training")]
    assert line.startswith("[5/6] arm synthetic, seed 1, fold standard:")
    assert all(f.stat().st_mtime_ns == stamps[f] for f in files if f.name != "synthetic-seed1-standard.npz")
    assert_same_runs(local_runs.runs, again.runs)


def die_once(marker: Path, fn: Callable[[JobSpec, Any], RunResult], spec: JobSpec, shared: Any) -> RunResult:
    """The job, except that the first time the synthetic arm of seed 0 starts, its worker is killed (kill -9)."""
    if spec.job.arm == "synthetic" and spec.job.seed == 0 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return fn(spec, shared)


class KillingProcessExecutor(ProcessExecutor):
    """Worker processes whose jobs go through :func:`die_once` (picklable: a partial of top-level functions)."""

    def __init__(self, marker: Path) -> None:
        super().__init__(2, threads=1)
        self.marker = marker

    def map(self, fn: Callable, items: Any, shared: Any, *, progress: bool = False) -> Any:
        return super().map(functools.partial(die_once, self.marker, fn), items, shared, progress=progress)


def test_a_killed_worker_is_replaced_and_its_job_run_again(experiment: tuple, local_runs: ExperimentRuns,
                                                           tmp_path: Path) -> None:  # fmt: skip
    marker = tmp_path / "killed-once"
    with KillingProcessExecutor(marker) as executor:
        done = run_experiment(*experiment, tmp_path / "exp", executor=executor)
    assert marker.exists()  # the worker did die ...
    assert_same_runs(local_runs.runs, done.runs)  # ... and the experiment still finished, with the same results


def die_always(fn: Callable[[JobSpec, Any], RunResult], spec: JobSpec, shared: Any) -> RunResult:
    """The job, except that the synthetic arm kills its worker every time."""
    if spec.job.arm == "synthetic":
        os.kill(os.getpid(), signal.SIGKILL)
    return fn(spec, shared)


class AlwaysKillingProcessExecutor(ProcessExecutor):
    """Worker processes whose jobs go through :func:`die_always`."""

    def map(self, fn: Callable, items: Any, shared: Any, *, progress: bool = False) -> Any:
        return super().map(functools.partial(die_always, fn), items, shared, progress=progress)


def test_a_job_that_always_kills_its_worker_fails_the_experiment(experiment: tuple, tmp_path: Path) -> None:
    toy, syn, prov, cfg = experiment
    one_seed = cfg.model_copy(update={"seeds": 1})
    with pytest.raises(RuntimeError, match="died 4 times"), AlwaysKillingProcessExecutor(2, threads=1) as executor:
        run_experiment(toy, syn, prov, one_seed, tmp_path, executor=executor)


def test_ray_matches_local_exactly(experiment: tuple, local_runs: ExperimentRuns, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install "feraug[ray]"')
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # a local instance that reports nowhere
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)  # fmt: skip
    try:
        with RayExecutor(threads=1) as executor:
            done = run_experiment(*experiment, tmp_path, executor=executor)
        assert ray.is_initialized()  # a session the caller started is the caller's to end
    finally:
        ray.shutdown()
    assert_same_runs(local_runs.runs, done.runs)


def test_executor_option_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from feraug.cli import main

    syn = tmp_path / "syn.csv"
    syn.write_text("emotion,pixels,Usage\n")
    args = ["experiment", "augment", "--data", "toy:100", "--synthetic", str(syn), "--out", str(tmp_path / "o")]
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    missing = CliRunner().invoke(main, [*args, "--executor", "ray:auto"])
    assert missing.exit_code == 1 and 'pip install "feraug[ray]"' in missing.output
    bad = CliRunner().invoke(main, [*args, "--executor", "threads:2"])
    assert bad.exit_code == 2 and "expected local, processes:N or ray[:ADDRESS]" in bad.output
    zero = CliRunner().invoke(main, ["sweep", "--data", "toy:100", "--presets", "cyclegan", "--out", str(tmp_path),
                                     "--executor", "processes:0"])  # fmt: skip
    assert zero.exit_code == 2 and "processes:N needs" in zero.output
