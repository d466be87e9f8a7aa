"""The augmentation experiment from start to finish: train every arm, say what the runs show, write every file.

:func:`run_augmentation_experiment` runs one synthetic set (:mod:`feraug.evaluate.experiment`),
turns the runs into ``results.json`` with the verdict in words (:mod:`feraug.report.results`) and
writes ``report.md``/``report.html`` (:mod:`feraug.report.experiment_report`).
:func:`run_set_comparison` does so for several sets on the same folds and seeds and asks which won.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feraug.data.dataset import FaceDataset
from feraug.evaluate.experiment.executors import Executor
from feraug.evaluate.experiment.run import run_experiment
from feraug.evaluate.experiment.summary import RunResult, summarize
from feraug.report.experiment_report import set_comparison_markdown, synthetic_faces_grid, write_report
from feraug.report.results import experiment_results, finite_or_none
from feraug.report.verdict import verdict

if TYPE_CHECKING:
    from feraug.config import ExperimentConfig


def run_augmentation_experiment(
    data: FaceDataset, synthetic: FaceDataset, provenance: dict[str, np.ndarray], cfg: ExperimentConfig,
    out_dir: str | Path, *, resume: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run every (arm, seed, fold) of ``cfg`` and write ``results.json``, ``report.md``, ``report.html`` and plots.

    Args:
        data: the real faces (``rows`` must be the row indices the provenance ``source_row`` refers to).
        synthetic: the synthetic faces (``rows`` = their CSV rows, provenance ``synthetic_row``).
        provenance: :func:`feraug.synth.synthetic_set.read_provenance` of the synthetic CSV.
        cfg: the experiment (protocol, seeds, classifier, balance, ...).
        out_dir: output folder; each run's predictions are cached in ``out_dir/predictions``.
        resume: reuse cached predictions of an interrupted experiment with the same configuration; a
            cached run is only reused when the faces it trained, selected and was scored on are the same.
        progress: show the classifier's progress bars.
        log: called with one line per run (e.g. ``click.echo``).
        executor: where the classifiers train (:mod:`feraug.evaluate.experiment.executors`); None: in this process.

    Returns:
        The ``results.json`` content.
    """
    return _experiment(data, synthetic, provenance, cfg, out_dir, resume=resume, progress=progress, log=log,
                       executor=executor)[0]


def _experiment(
    data: FaceDataset, synthetic: FaceDataset, provenance: dict[str, np.ndarray], cfg: ExperimentConfig,
    out_dir: str | Path, *, resume: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> tuple[dict[str, Any], list[RunResult]]:  # fmt: skip
    """:func:`run_augmentation_experiment`, also returning the runs (for comparisons across synthetic sets)."""
    out = Path(out_dir)
    done = run_experiment(data, synthetic, provenance, cfg, out, resume=resume, progress=progress, log=log,
                          executor=executor)
    results = experiment_results(
        done.runs,
        protocol=cfg.protocol,
        data=data,
        synthetic=synthetic,
        folds=done.folds,
        guard=done.guard,
        config=done.config,
        n_boot=cfg.n_boot,
        primary_metric=cfg.primary_metric,
        min_gain=cfg.min_gain,
    )
    if len(synthetic):
        results["synthetic_faces"] = synthetic_faces_grid(data, synthetic, done.sources, out / "plots")
    results = finite_or_none(results)
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False))
    write_report(results, out)
    return results, done.runs


def run_set_comparison(
    data: FaceDataset, sets: Sequence[tuple[str, FaceDataset, dict[str, np.ndarray]]], cfg: ExperimentConfig,
    out_dir: str | Path, *, resume: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The augmentation experiment for several synthetic sets (e.g. all faces vs ``feraug select``'s best) on
    identical folds and seeds, and the paired question "did set B's synthetic arm beat set A's?".

    Each set gets its own full experiment in ``out_dir/<name>`` (report included). The baseline arm
    does not depend on the synthetic faces, so it is trained once: its cached predictions are copied
    into every later set's folder, where the usual check (same training, selection and test faces)
    still guards them. ``out_dir/comparison.json`` and ``comparison.md`` hold, for each later set B
    against the first set A, the primary-metric comparison of B's synthetic arm with A's and with
    B's own oversampling arm, across seeds as in :func:`~feraug.report.verdict.verdict`. ``executor``
    runs every set's classifiers (None: in this process).
    """
    if cfg.protocol not in ("standard", "kfold"):
        raise ValueError(f"comparing synthetic sets needs the standard or kfold protocol (a baseline shared by "
                         f"every set and a synthetic arm in each), not {cfg.protocol}")  # fmt: skip
    out = Path(out_dir)
    names = [name for name, _, _ in sets]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"a comparison needs at least two synthetic sets with distinct names, got {names}")
    runs_of: dict[str, list[RunResult]] = {}
    results_of: dict[str, dict[str, Any]] = {}
    for i, (name, synthetic, provenance) in enumerate(sets):
        if log:
            log(f"== synthetic set {name!r}: {len(synthetic)} faces")
        sub = out / name
        if i > 0:
            for cached in (out / names[0] / "predictions").glob("baseline-*.npz"):
                target = sub / "predictions" / cached.name
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(cached, target)
        results_of[name], runs_of[name] = _experiment(data, synthetic, provenance, cfg, sub,
                                                      resume=resume or i > 0, progress=progress, log=log,
                                                      executor=executor)  # fmt: skip
    first = names[0]
    merged = [r for r in runs_of[first] if r.arm == "baseline"]
    for name in names:
        merged += [dataclasses.replace(r, arm=f"{r.arm}:{name}") for r in runs_of[name] if r.arm != "baseline"]
    pairs, questions = [], []
    for name in names[1:]:
        pairs += [(f"synthetic:{first}", f"synthetic:{name}"), (f"oversample:{name}", f"synthetic:{name}")]
        questions += [(f"synthetic:{first}", f"synthetic:{name}",
                       f"Did the {name!r} synthetic faces beat the {first!r} ones?"),
                      (f"oversample:{name}", f"synthetic:{name}",
                       f"Did the {name!r} synthetic faces beat oversampling as many real faces?")]  # fmt: skip
    summary = summarize(merged, data.classes, comparisons=pairs, n_boot=cfg.n_boot, kfold=cfg.protocol == "kfold",
                        primary_metric=cfg.primary_metric, min_gain=cfg.min_gain)  # fmt: skip
    _inherit_failed_checks(summary, {name: results_of[name] for name in names})
    answers = verdict(summary, questions)
    primary = summary["primary_set"]
    table = {arm: {m: s[m] for m in ("accuracy", "macro_f1")} for arm, s in summary["sets"][primary]["arms"].items()}
    comparison = {"sets": {name: {"n_synthetic": len(syn), "folder": str(out / name),
                                  "verdict": results_of[name]["verdict"]} for name, syn, _ in sets},
                  "arms": table, "verdict": answers, "primary_metric": cfg.primary_metric}  # fmt: skip
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2, allow_nan=False))
    (out / "comparison.md").write_text(set_comparison_markdown(names, primary, table, answers))
    return comparison


def _inherit_failed_checks(summary: dict[str, Any], results_of: dict[str, dict[str, Any]]) -> None:
    """Make every cross-set answer NOT INFORMATIVE when a set's own target-class checks failed.

    The cross-set comparisons pool arms of several sets under new names, so :func:`summarize` cannot run the
    checks on them; but they train the same classifier on the same folds, so a classifier that never predicts
    the target class (or that oversampling does not lift) cannot tell two synthetic sets apart either.
    """
    for name, results in results_of.items():
        checks = results["sets"][results["primary_set"]].get("checks") if results.get("primary_set") else None
        if checks is None or checks["informative"]:
            continue
        merged = summary["sets"][summary["primary_set"]]
        merged["checks"] = {**checks, "reasons": [f"in set {name!r}, {r}" for r in checks["reasons"]]}
        for t in merged["comparisons"]:
            t["interval_outcome"], t["outcome"] = t["outcome"], "not_informative"
        return
