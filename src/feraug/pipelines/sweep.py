"""Birenbaum's comparison as one call: several CycleGAN presets, the same Neutral faces, one table.

:func:`run_sweep` trains one CycleGAN per entry (a preset plus overrides), translates the *same*
N source faces with each, runs the augmentation experiment (:mod:`feraug.pipelines.experiment`) on
each synthetic set with the same configuration (so the same seeds and splits), then translates
more faces with the entry that gained most over oversampling (Pasini et al. went on from 100 faces to
200 and 500 with its best model) and runs the experiment on those too. ``comparison.md``,
``comparison.json`` and ``comparison.png`` put every experiment side by side
(:mod:`feraug.report.sweep_comparison`).

Why the pieces are as they are:

* *Same faces.* ``translate`` draws its sources with ``default_rng(derive_seed(seed, SELECT))``
  from the training faces of the source emotion, so the same seed on the same data, split and
  filter picks the same rows for every generator. The sweep refuses entries that change those
  inputs before training anything, and after translating it compares the provenance files'
  ``source_row`` columns and fails loudly if any entry's faces differ: a comparison of presets on
  different faces would mix the generators' quality with the faces' difficulty.
* *Shared arms.* The baseline arm never sees synthetic faces, so its cached predictions are copied
  from the first experiment into every later one (as :func:`run_set_comparison` does). The
  oversample arm depends only on how many faces per class the synthetic arm added, which is the
  same for entries that translated the same source rows, so it is shared between entries at the
  same face count too. The experiment checks every cached prediction against the faces it would
  train, select and test on; a shared oversample cache that does not match (e.g. with
  ``generator_overlap=drop``) is discarded and that arm retrained. Shared arms make the entries
  differ only in their synthetic arm, which is the point of the comparison.
* *Resumable.* Every stage is skipped when its output is complete (a finished GAN, a translated
  set whose provenance names the run's current checkpoint, an experiment's ``results.json`` for
  this configuration and synthetic set) and continued when it is not (an interrupted GAN resumes
  from its checkpoint, an interrupted experiment reuses its finished runs). Output made with other
  settings is never overwritten: it is an error naming the folder.

Layout of ``out``::

    sweep.yaml  comparison.md  comparison.json  comparison.png
    NAME/gan/  NAME/gan.done.json  NAME/synthetic_100.csv (+ .provenance.csv, .png)  NAME/experiment_100/
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from feraug.config import ConfigError, CycleGANConfig, ExperimentConfig, build_config, parse_override
from feraug.core.checkpoint import file_sha256
from feraug.data.classes import emotion_index
from feraug.data.load import load_dataset, without_filtered_rows
from feraug.evaluate.experiment.executors import Executor
from feraug.nets.classifiers import build_classifier
from feraug.pipelines.experiment import run_augmentation_experiment
from feraug.report.sweep_comparison import best_entry, comparison_row, write_comparison
from feraug.report.verdict import METRIC_LABELS
from feraug.synth.synthetic_set import load_synthetic_set, provenance_path, read_provenance
from feraug.synth.translate import translate
from feraug.train.launch import train as train_gan
from feraug.train.run_folder import last_checkpoint

#: Config fields a time budget resolves (and keeps re-sizing) into the run's config.yaml, and the device, which
#: may change between invocations: differences there do not make a finished GAN another entry's.
_MAY_DIFFER = {"train.device"}
_BUDGET_FIELDS = {"optim.epochs", "optim.epochs_decay", "train.steps_per_epoch", "train.epoch_steps"}
#: Data fields that decide which source faces ``translate`` draws: they must agree across entries.
_SOURCE_FIELDS = ("data", "source", "target", "split", "exclude")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Entry:
    """One CycleGAN of the sweep: a folder name, a preset and ``section.key=value`` overrides of its own."""

    name: str
    preset: str
    sets: tuple[str, ...] = field(default_factory=tuple)


def parse_entry(text: str) -> Entry:
    """``NAME=PRESET[,key=value,...]`` or ``PRESET[,key=value,...]`` (the preset names the entry).

    Overrides are split at commas that start a new ``key=``, so a list value such as
    ``regularize.diffaugment=[translation,cutout]`` keeps its commas.
    """
    parts = [p.strip() for p in re.split(r",(?=\s*[A-Za-z_][\w.]*\s*=)", text.strip())]
    head, sets = parts[0], tuple(p for p in parts[1:] if p)
    name, _, preset = head.partition("=") if "=" in head else (head, "", head)
    name, preset = name.strip(), preset.strip()
    if not preset or not _NAME.fullmatch(name):
        raise ValueError(f"bad sweep entry {text!r}: expected NAME=PRESET[,key=value,...] with a NAME of letters, "
                         "digits, '.', '_' or '-' (it names the entry's folder)")  # fmt: skip
    return Entry(name, preset, sets)


def entry_configs(entries: Sequence[Entry], *, data: str, source: str, target: str, seed: int,
                  sets: Sequence[str] = ()) -> dict[str, CycleGANConfig]:  # fmt: skip
    """Each entry's resolved config: preset, then the sweep's data/seed, then ``sets``, then its own overrides.

    Everything that can be checked without training is checked here, so that a typo in the fifth
    entry does not surface hours into the first: unknown presets and keys, invalid values, a
    perceptual-loss network that does not exist, and entries whose data fields would make
    ``translate`` draw other source faces than the first entry's.
    """
    names = [e.name for e in entries]
    if not entries:
        raise ValueError("a sweep needs at least one entry (--entry NAME=PRESET or --presets A,B)")
    if len(set(names)) != len(names):
        raise ValueError(f"sweep entry names must be distinct, got {names}")
    # data/source/target as values, not KEY=VALUE text: a path such as "2024" or "yes" must not be read as YAML
    base = [{"data": {"data": data, "source": source, "target": target}}, {"train": {"seed": seed}}]
    configs: dict[str, CycleGANConfig] = {}
    for e in entries:
        try:
            cfg = build_config(CycleGANConfig, preset=e.preset, family="cyclegan",
                               overrides=[*base, *(parse_override(s) for s in (*sets, *e.sets))])  # fmt: skip
        except ConfigError as err:
            raise ConfigError(f"sweep entry {e.name!r} (preset {e.preset!r}): {err}") from None
        assert isinstance(cfg, CycleGANConfig)
        if cfg.loss.perceptual is not None and not Path(cfg.loss.perceptual).exists():
            raise ConfigError(f"sweep entry {e.name!r}: loss.perceptual={cfg.loss.perceptual} does not exist "
                              "(a classifier run folder or checkpoint from `feraug train classifier`)")  # fmt: skip
        configs[e.name] = cfg
    first_name, first = names[0], configs[names[0]]
    for name, cfg in configs.items():
        differ = [f"data.{k}" for k in _SOURCE_FIELDS if getattr(cfg.data, k) != getattr(first.data, k)]
        if differ:
            raise ConfigError(f"sweep entry {name!r} sets {', '.join(differ)} unlike {first_name!r}: every entry "
                              "must translate the same source faces, so these must agree")  # fmt: skip
    return configs


def available_sources(cfg: CycleGANConfig) -> int:
    """How many faces ``translate`` can draw from for ``cfg``: the source emotion's faces of the training split."""
    full = load_dataset(cfg.data.data, size=cfg.data.size)
    if cfg.data.exclude is not None:
        full = without_filtered_rows(full, cfg.data.exclude)
    pool = full.split(cfg.data.split) if full.splits else full
    return int((pool.labels == emotion_index(cfg.data.source)).sum())


def run_sweep(
    data: str, entries: Sequence[Entry | str], out: str | Path, *, source: str = "neutral", target: str = "disgust",
    sets: Sequence[str] = (), time_budget: float | None = None, n: int = 100, more: Sequence[int] = (200, 500),
    seed: int = 0, experiment: ExperimentConfig | None = None, progress: bool = False,
    log: Callable[[str], None] | None = None, executor: Executor | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Train, translate and run the augmentation experiment for every entry; write the comparison; return its rows.

    Args:
        data: the real faces (FER2013 CSV, image folder or ``toy[:N[:SEED]]``), for the GANs and the experiment.
        entries: :class:`Entry` objects or ``NAME=PRESET[,key=value,...]`` strings.
        out: the sweep's folder (see the module docstring for its layout).
        source, target: the translation, e.g. Neutral -> Disgust.
        sets: ``section.key=value`` overrides applied to every entry (before its own).
        time_budget: seconds per GAN (its whole schedule is fitted into it); None: the configured schedule.
        n: faces translated by every entry (the same source faces for all).
        more: further face counts translated by the best entry (by the primary metric's gain over
            oversampling at ``n``) and run through the experiment too.
        seed: the GANs' ``train.seed`` (before overrides) and the seed that picks the source faces.
        experiment: the experiment's configuration, identical for every synthetic set (default: its defaults).
        progress: show training progress bars.
        log: called with one line per stage (e.g. ``click.echo``).
        executor: where the experiments' classifiers train (:mod:`feraug.evaluate.experiment.executors`);
            None: in this process. The GANs train in this process either way.

    Returns:
        One row per experiment (entries at ``n``, then the best entry at each of ``more``), as in
        ``comparison.json``.
    """
    say = log or (lambda _line: None)
    out = Path(out)
    parsed = [e if isinstance(e, Entry) else parse_entry(e) for e in entries]
    exp = experiment or ExperimentConfig()
    counts = _counts(n, more)
    if exp.protocol not in ("standard", "kfold"):
        raise ValueError(f"a sweep compares synthetic arms with the baseline and oversampling: protocol standard or "
                         f"kfold, not {exp.protocol}")  # fmt: skip
    if exp.classifier.labels != "fer2013":
        raise ValueError("the sweep runs the experiment on the data's own labels (classifier.labels=fer2013); for "
                         "FER+ labels run `feraug experiment augment` on each synthetic set")  # fmt: skip
    configs = entry_configs(parsed, data=data, source=source, target=target, seed=seed, sets=sets)
    first = next(iter(configs.values()))
    have = available_sources(first)
    if max(counts) > have:
        raise ValueError(f"asked for {max(counts)} translations but the {first.data.split} split of {data} has "
                         f"{have} {first.data.source} faces: lower --n / --more")  # fmt: skip
    real = load_dataset(data, size=exp.classifier.size)
    _check_classifier(exp, len(real.classes))

    out.mkdir(parents=True, exist_ok=True)
    settings = {"data": data, "source": first.data.source, "target": first.data.target, "seed": seed, "n": n,
                "more": list(counts[1:]), "time_budget_s": time_budget, "sets": list(sets),
                "entries": [{"name": e.name, "preset": e.preset, "sets": list(e.sets)} for e in parsed],
                "experiment": exp.model_dump(mode="json")}  # fmt: skip
    (out / "sweep.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))

    for i, (name, cfg) in enumerate(configs.items(), 1):
        say(f"[sweep] GAN {i}/{len(configs)}: {name} ({cfg.preset})")
        _train_stage(cfg, out / name, time_budget=time_budget, progress=progress, log=say)

    sources = {name: _translate_stage(out / name, n, first.data.source, seed, say) for name in configs}
    _check_same_sources(sources, n)

    shared = _Donors()
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for name in configs:
        say(f"[sweep] experiment: {name}, {n} faces")
        results[name, n] = _experiment_stage(real, out / name, n, exp, shared, progress=progress, log=log,
                                             executor=executor)
    rows = [comparison_row(name, configs[name].preset, n, results[name, n], out / name / f"experiment_{n}",
                           first.data.target) for name in configs]  # fmt: skip

    best = best_entry(rows)
    if counts[1:] and best is None:
        say("[sweep] no entry has a difference vs oversampling: no best entry, --more skipped")
    elif counts[1:]:
        say(f"[sweep] best entry by {METRIC_LABELS[exp.primary_metric]} gain vs oversampling: {best}")
        for k in counts[1:]:
            _translate_stage(out / best, k, first.data.source, seed, say)
            say(f"[sweep] experiment: {best}, {k} faces")
            results[best, k] = _experiment_stage(real, out / best, k, exp, shared, progress=progress, log=log,
                                                   executor=executor)
            rows.append(comparison_row(best, configs[best].preset, k, results[best, k],
                                       out / best / f"experiment_{k}", first.data.target))  # fmt: skip
    write_comparison(rows, out, settings=settings, best=best)
    say(f"[sweep] comparison: {out / 'comparison.md'} (also comparison.json, comparison.png)")
    return rows


def _check_classifier(exp: ExperimentConfig, n_classes: int) -> None:
    """Build the experiment's classifier once, so bad ``arch``/``arch_kwargs`` fail before hours of GAN training."""
    c = exp.classifier
    try:
        build_classifier(c.arch, n_classes=n_classes, in_channels=1, size=c.size, **c.arch_kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"experiment classifier {c.arch!r} with arch_kwargs {c.arch_kwargs}: {e}") from None


def _counts(n: int, more: Sequence[int]) -> tuple[int, ...]:
    counts = (int(n), *dict.fromkeys(int(k) for k in more if int(k) != int(n)))
    if min(counts) < 1:
        raise ValueError(f"face counts must be at least 1, got {list(counts)}")
    return counts


# ----------------------------------------------------------------------------------------------------------------
# Stages: each skipped when its output is complete, continued when interrupted, refused when made otherwise.
# ----------------------------------------------------------------------------------------------------------------


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def _config_differences(saved: dict[str, Any], wanted: dict[str, Any], budgeted: bool) -> list[str]:
    a, b = _flat(saved), _flat(wanted)
    skip = _MAY_DIFFER | (_BUDGET_FIELDS if budgeted else set())
    return [f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in sorted(set(a) | set(b))
            if k not in skip and a.get(k) != b.get(k)]  # fmt: skip


def _train_stage(cfg: CycleGANConfig, entry_dir: Path, *, time_budget: float | None, progress: bool,
                 log: Callable[[str], None]) -> None:  # fmt: skip
    """Train the entry's GAN into ``entry_dir/gan``; skip a finished one, resume an interrupted one.

    A run is finished when ``gan.done.json`` (written when :func:`feraug.train.launch.train` returned, i.e.
    the schedule ended) names its checkpoint. A run folder made with another configuration is an
    error: silently reusing it would credit one preset with another's generator.
    """
    run, done = entry_dir / "gan", entry_dir / "gan.done.json"
    ckpt = last_checkpoint(run)
    if ckpt.exists():
        saved = CycleGANConfig.model_validate(yaml.safe_load((run / "config.yaml").read_text()))
        budgeted = time_budget is not None or "budget" in json.loads((run / "meta.json").read_text())
        differ = _config_differences(saved.model_dump(mode="json"), cfg.model_dump(mode="json"), budgeted)
        if differ:
            raise ValueError(f"{run} holds a GAN trained with other settings ({'; '.join(differ)}): remove it or "
                             "pick another --out")  # fmt: skip
        if done.is_file() and json.loads(done.read_text()).get("step") is not None:
            log(f"        finished already ({run}): skipped")
            return
        log(f"        resuming the interrupted run in {run}")
        trainer = train_gan(saved, run, resume=True, progress=progress)
    else:
        trainer = train_gan(cfg, run, progress=progress, time_budget=time_budget, started=time.perf_counter())
    done.write_text(json.dumps({"step": trainer.step, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    log(f"        trained {trainer.step} steps in {run}")


def _translate_stage(entry_dir: Path, n: int, source: str, seed: int,
                     log: Callable[[str], None]) -> np.ndarray:  # fmt: skip
    """Translate ``n`` source faces with the entry's GAN into ``synthetic_{n}.csv``; returns their source rows.

    Complete = the CSV, its provenance and ``synthetic_{n}.seed.json`` exist, the provenance has ``n``
    rows and names the run's current checkpoint, and the seed that drew the sources is this one. A set
    made otherwise is an error, never overwritten.
    """
    run, csv = entry_dir / "gan", entry_dir / f"synthetic_{n}.csv"
    prov_file, marker = provenance_path(csv), entry_dir / f"synthetic_{n}.seed.json"
    sha = file_sha256(last_checkpoint(run))
    if csv.is_file():
        prov = read_provenance(prov_file) if prov_file.is_file() else {}
        recorded = json.loads(marker.read_text()).get("seed") if marker.is_file() else None
        problem = ("has no complete provenance" if len(prov.get("source_row", ())) != n
                   or "checkpoint_sha256" not in prov else
                   f"was translated by another checkpoint than {run}'s"
                   if set(prov["checkpoint_sha256"].tolist()) != {sha} else
                   f"drew its sources with seed {recorded}, not {seed}" if recorded != seed else None)  # fmt: skip
        if problem is not None:
            raise ValueError(f"{csv} {problem}: remove it (and its experiment_{n} folder) to translate again")
        log(f"[sweep] {csv}: {n} faces translated already: skipped")
        return prov["source_row"]
    result = translate(run, n, source, csv, seed=seed)
    marker.write_text(json.dumps({"seed": seed}) + "\n")
    log(f"[sweep] translated {result.n} {result.direction} faces: {result.csv}")
    return read_provenance(result.provenance)["source_row"]


def _check_same_sources(sources: dict[str, np.ndarray], n: int) -> None:
    """Fail unless every entry's ``n`` synthetic faces came from the same source rows (provenance ``source_row``)."""
    names = list(sources)
    ref = np.sort(sources[names[0]])
    for name in names[1:]:
        rows = np.sort(sources[name])
        if rows.shape != ref.shape or not np.array_equal(rows, ref):
            k = int(np.setdiff1d(rows, ref).size) if rows.shape == ref.shape else len(rows)
            raise ValueError(f"sweep entries {names[0]!r} and {name!r} translated different source faces ({k} of "
                             f"{n} source rows differ in their synthetic_{n}.provenance.csv): the comparison needs "
                             "the same faces for every entry")  # fmt: skip


@dataclass
class _Donors:
    """Finished experiments whose baseline (any count) or oversample (same count) predictions later ones reuse."""

    baseline: Path | None = None
    oversample: dict[int, Path] = field(default_factory=dict)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _share(donor: Path | None, folder: Path, arm: str) -> list[Path]:
    """Copy ``donor``'s cached predictions of ``arm`` into ``folder`` where it has none; returns the copies."""
    copied = []
    if donor is None or donor == folder:
        return copied
    for cached in sorted((donor / "predictions").glob(f"{arm}-*.npz")):
        target = folder / "predictions" / cached.name
        if cached.name.endswith(".tmp.npz") or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target)
        copied.append(target)
    return copied


def _experiment_stage(real: Any, entry_dir: Path, n: int, cfg: ExperimentConfig, donors: _Donors, *,
                      progress: bool, log: Callable[[str], None] | None,
                      executor: Executor | None) -> dict[str, Any]:  # fmt: skip
    """The augmentation experiment on ``synthetic_{n}.csv`` in ``experiment_{n}``; its ``results.json``.

    ``sweep_input.json`` records the synthetic set's hash: a finished experiment is reused only for
    this configuration and this very set.
    """
    csv, folder = entry_dir / f"synthetic_{n}.csv", entry_dir / f"experiment_{n}"
    inputs = {"synthetic_sha256": _sha(csv), "provenance_sha256": _sha(provenance_path(csv))}
    marker, results_file = folder / "sweep_input.json", folder / "results.json"
    if marker.is_file() and json.loads(marker.read_text()) != inputs:
        raise ValueError(f"{folder} holds an experiment on another synthetic set than {csv}: remove it to run again")
    wanted = cfg.model_dump(mode="json")
    if results_file.is_file() and marker.is_file():
        results = json.loads(results_file.read_text())
        if type(cfg).model_validate(results["config"]).model_dump(mode="json") != wanted:
            raise ValueError(f"{folder} holds an experiment with other settings: remove it or pick another --out")
        if log:
            log(f"[sweep] {folder}: finished already: skipped")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(inputs) + "\n")
        syn, prov = load_synthetic_set(csv, size=real.size)
        assert prov is not None  # translate always writes provenance
        _share(donors.baseline, folder, "baseline")
        over = _share(donors.oversample.get(n), folder, "oversample")
        try:
            results = run_augmentation_experiment(real, syn, prov, cfg, folder, resume=True, progress=progress,
                                                  log=log, executor=executor)  # fmt: skip
        except ValueError as e:
            if "computed on other faces" not in str(e) or not over:
                raise
            if log:
                log(f"[sweep] the shared oversample predictions do not fit {folder}: training that arm here")
            for p in over:
                p.unlink(missing_ok=True)
            results = run_augmentation_experiment(real, syn, prov, cfg, folder, resume=True, progress=progress,
                                                  log=log, executor=executor)  # fmt: skip
    donors.baseline = donors.baseline or folder
    donors.oversample.setdefault(n, folder)
    return results

