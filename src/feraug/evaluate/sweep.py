"""Seed 000's comparison as one call: several CycleGAN presets, the same Neutral faces, one table.

:func:`run_sweep` trains one CycleGAN per entry (a preset plus overrides), translates the *same*
N source faces with each, runs the augmentation experiment (:mod:`feraug.evaluate.experiment`) on
each synthetic set with the same configuration (so the same seeds and splits), then translates
more faces with the entry that gained most over oversampling (seed 002 went on from 100 faces to
200 and 500 with its best model) and runs the experiment on those too. ``comparison.md``,
``comparison.json`` and ``comparison.png`` put every experiment side by side.

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
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure

from feraug.config import ConfigError, CycleGANConfig, ExperimentConfig, build_config, parse_override
from feraug.core.checkpoint import file_sha256
from feraug.data.classes import emotion_index, emotion_name
from feraug.data.load import load_dataset, without_filtered_rows
from feraug.evaluate.experiment import METRIC_LABELS, run_augmentation_experiment
from feraug.nets.classifiers import build_classifier
from feraug.synth.synthetic_set import load_synthetic_set, provenance_path, read_provenance
from feraug.synth.translate import translate
from feraug.train.launch import train as train_gan
from feraug.train.trainer import checkpoint_path

#: Config fields a time budget resolves (and keeps re-sizing) into the run's config.yaml, and the device, which
#: may change between invocations: differences there do not make a finished GAN another entry's.
_MAY_DIFFER = {"train.device"}
_BUDGET_FIELDS = {"optim.epochs", "optim.epochs_decay", "train.steps_per_epoch", "train.epoch_steps"}
#: Data fields that decide which source faces ``translate`` draws: they must agree across entries.
_SOURCE_FIELDS = ("data", "source", "target", "split", "exclude")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ARMS = ("baseline", "synthetic", "oversample")


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
    log: Callable[[str], None] | None = None,
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
        results[name, n] = _experiment_stage(real, out / name, n, exp, shared, progress=progress, log=log)
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
            results[best, k] = _experiment_stage(real, out / best, k, exp, shared, progress=progress, log=log)
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
    ckpt = checkpoint_path(run)
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
    sha = file_sha256(checkpoint_path(run))
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
                      progress: bool, log: Callable[[str], None] | None) -> dict[str, Any]:  # fmt: skip
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
                                                  log=log)  # fmt: skip
        except ValueError as e:
            if "computed on other faces" not in str(e) or not over:
                raise
            if log:
                log(f"[sweep] the shared oversample predictions do not fit {folder}: training that arm here")
            for p in over:
                p.unlink(missing_ok=True)
            results = run_augmentation_experiment(real, syn, prov, cfg, folder, resume=True, progress=progress,
                                                  log=log)  # fmt: skip
    donors.baseline = donors.baseline or folder
    donors.oversample.setdefault(n, folder)
    return results


# ----------------------------------------------------------------------------------------------------------------
# The comparison: one row per experiment, from its results.json only.
# ----------------------------------------------------------------------------------------------------------------


def _stat(s: dict[str, Any] | None) -> dict[str, Any]:
    return {"mean": None, "std": None} if s is None else {"mean": s.get("mean"), "std": s.get("std")}


def _test(results: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    """The primary metric's ``b − a``: difference, across-seed 95 % CI, answer and the interval's method."""
    metric = results.get("primary_metric", "macro_f1")
    v = results["verdict"].get(f"{b}_vs_{a}", {})
    tests = results["sets"][results["primary_set"]]["comparisons"]
    t = next((t for t in tests if t["a"] == a and t["b"] == b and t["metric"] == metric), {})
    return {"metric": metric, "diff": v.get("diff", t.get("diff")), "ci95": v.get("ci95"), "answer": v.get("answer"),
            "method": t.get("primary", {}).get("method"), "power": v.get("power")}  # fmt: skip


def _class_change(results: dict[str, Any], versus: str, cls: str, metric: str) -> dict[str, Any]:
    changes = results.get("per_class_versus", {}).get(versus, [])
    d = next((d for d in changes if d["class"] == cls and d["metric"] == metric), None)
    return {"diff": None, "ci95": None} if d is None else {"diff": d["diff"], "ci95": d["ci95"]}


def comparison_row(entry: str, preset: str, n: int, results: dict[str, Any], folder: Path,
                   target: str) -> dict[str, Any]:  # fmt: skip
    """What the table shows of one experiment, every number read from its ``results.json`` (None where absent)."""
    cls = emotion_name(emotion_index(target))
    arms = results["sets"][results["primary_set"]]["arms"]
    added = [sum(per_class.values()) for per_class in results["leakage_guard"]["added_per_fold"].values()]
    per_class = {key: {arm: _stat(arms.get(arm, {}).get("per_class", {}).get(cls, {}).get(key)) for arm in ARMS}
                 for key in ("f1", "precision", "recall", "auc")}  # fmt: skip
    return {
        "entry": entry, "preset": preset, "n": n, "n_used": float(np.mean(added)) if added else None,
        "seeds": len(results["seeds"]), "folds": len(results["folds"]), "experiment": str(folder),
        "macro_f1": {arm: _stat(arms.get(arm, {}).get("macro_f1")) for arm in ARMS},
        "accuracy": {arm: _stat(arms.get(arm, {}).get("accuracy")) for arm in ARMS},
        "vs_baseline": _test(results, "baseline", "synthetic"),
        "vs_oversample": _test(results, "oversample", "synthetic"),
        "target": {"class": cls, "support": arms["synthetic"]["per_class"].get(cls, {}).get("support"), **per_class,
                   "f1_vs_baseline": _class_change(results, "synthetic vs baseline", cls, "f1"),
                   "f1_vs_oversample": _class_change(results, "synthetic vs oversample", cls, "f1")},
    }  # fmt: skip


def best_entry(rows: Sequence[dict[str, Any]]) -> str | None:
    """The entry whose synthetic arm gained most over oversampling in the primary metric (a point estimate)."""
    scored = [(r["vs_oversample"]["diff"], -i, r["entry"]) for i, r in enumerate(rows)
              if r["vs_oversample"]["diff"] is not None]  # fmt: skip
    return max(scored)[2] if scored else None


def _pct(s: dict[str, Any]) -> str:
    if s.get("mean") is None:
        return "—"
    return f"{100 * s['mean']:.2f}" + ("" if s.get("std") is None else f" ± {100 * s['std']:.2f}")


def _delta(d: dict[str, Any]) -> str:
    if d.get("diff") is None:
        return "—"
    ci = d.get("ci95")
    return f"{100 * d['diff']:+.1f}" + ("" if not ci else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]")


_ANSWERS = {"yes": "YES", "no": "NO", "worse": "NO (worse)", "not_shown": "NOT SHOWN", None: "—"}


def comparison_markdown(rows: Sequence[dict[str, Any]], settings: dict[str, Any], best: str | None) -> str:
    """``comparison.md``: the table over every experiment, and what its cells mean."""
    if not rows:
        return "# Sweep\n\nNo experiments.\n"
    r0 = rows[0]
    cls, metric = r0["target"]["class"], METRIC_LABELS[r0["vs_oversample"]["metric"]]
    base_f1, base_cls = r0["macro_f1"]["baseline"], r0["target"]["f1"]["baseline"]
    lines = [
        f"# Sweep: {settings['source']} -> {settings['target']}, {len({r['entry'] for r in rows})} CycleGAN entries "
        "compared by the augmentation experiment", "",
        f"Data `{settings['data']}`. Every entry translated the same {settings['n']} {settings['source']} training "
        "faces (same provenance source rows, checked); every experiment used the same configuration: "
        f"{r0['seeds']} seed(s) x {r0['folds']} fold(s), protocol {settings['experiment']['protocol']}. The baseline "
        "arm (real faces only) is shared by all experiments, the oversample arm by those at the same face count.", "",
        f"Baseline: macro-F1 {_pct(base_f1)} %, {cls} F1 {_pct(base_cls)} %.", "",
        f"| entry | preset | faces (used) | macro-F1 + synthetic | Δ {metric} vs baseline [95% CI] | "
        f"Δ {metric} vs oversampling [95% CI] | beat oversampling? | beat baseline? | {cls} F1 syn / over | "
        f"{cls} precision syn / over | {cls} AUC syn / over | Δ {cls} F1 vs oversampling [95% CI] |",
        "|---|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        t = r["target"]
        used = "—" if r["n_used"] is None else f"{r['n_used']:.0f}"
        pair = {k: f"{_pct(t[k]['synthetic'])} / {_pct(t[k]['oversample'])}" for k in ("f1", "precision", "auc")}
        star = " **(best)**" if r["entry"] == best and r["n"] == settings["n"] else ""
        lines.append(f"| {r['entry']}{star} | {r['preset']} | {r['n']} ({used}) | {_pct(r['macro_f1']['synthetic'])} | "
                     f"{_delta(r['vs_baseline'])} | {_delta(r['vs_oversample'])} | "
                     f"{_ANSWERS[r['vs_oversample']['answer']]} | {_ANSWERS[r['vs_baseline']['answer']]} | "
                     f"{pair['f1']} | {pair['precision']} | {pair['auc']} | "
                     f"{_delta(t['f1_vs_oversample'])} |")  # fmt: skip
    methods = sorted({r["vs_oversample"]["method"] for r in rows if r["vs_oversample"]["method"]})
    lines += [
        "", "Means ± standard deviations over runs in %; differences in percentage points (synthetic arm minus the "
        f"other arm) with the experiment's across-seed 95% interval ({'; '.join(methods) or 'none: one seed'}). "
        f"The answers are the experiment's verdicts on {metric} (YES: the interval excludes 0 in favour; NO: it "
        "rules out the minimum gain or shows a loss; NOT SHOWN: could not tell). faces (used): translated, and "
        "added to the synthetic arm after the leakage guard (mean over folds). "
        f"{cls} columns: the synthetic arm / the oversample arm; the {cls} F1 change is exploratory (one of "
        "fourteen per-class intervals). —: not defined (e.g. no across-seed interval with one seed, or no AUC "
        f"when the test faces hold no {cls} face).",
    ]  # fmt: skip
    if best is not None and settings["more"]:
        lines += ["", f"Best entry at {settings['n']} faces by the {metric} gain over oversampling: **{best}** (a "
                  "point estimate: its interval says whether it is distinguishable from the others); it translated "
                  f"{', '.join(str(k) for k in settings['more'])} faces too, as seed 002 did."]  # fmt: skip
    lines += ["", "Each experiment's own report: " + ", ".join(f"`{Path(r['experiment']).name}` of {r['entry']}"
                                                             for r in rows) + " (report.md, report.html)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_comparison(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Per experiment, the synthetic arm's gain vs baseline and vs oversampling, with across-seed 95 % CIs.

    Left: the primary metric; right: the target class's F1. One row per experiment, so the
    presets (and the best one's larger sets) can be read off one figure.
    """
    labels = [f"{r['entry']} ({r['n']})" for r in rows]
    cls, metric = rows[0]["target"]["class"], METRIC_LABELS[rows[0]["vs_oversample"]["metric"]]
    panels = [(f"Δ {metric} (pt)", [r["vs_baseline"] for r in rows], [r["vs_oversample"] for r in rows]),
              (f"Δ {cls} F1 (pt)", [r["target"]["f1_vs_baseline"] for r in rows],
               [r["target"]["f1_vs_oversample"] for r in rows])]  # fmt: skip
    fig = Figure(figsize=(11, 1.2 + 0.45 * len(rows)))
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))
    for ax, (title, vs_base, vs_over) in zip(axes, panels, strict=True):
        for shift, series, label, color in ((-0.15, vs_base, "vs baseline", "tab:blue"),
                                            (0.15, vs_over, "vs oversampling", "tab:orange")):  # fmt: skip
            for yi, d in zip(y + shift, series, strict=True):
                if d["diff"] is None or not math.isfinite(d["diff"]):
                    continue
                x, ci = 100 * d["diff"], d.get("ci95")
                err = None if not ci else [[x - 100 * ci[0]], [100 * ci[1] - x]]
                ax.errorbar(x, yi, xerr=err, fmt="o", color=color, capsize=3, label=label)
                label = None  # one legend entry per series
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle("Synthetic arm's gain per sweep entry (faces), across-seed 95% CI")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    return out


def write_comparison(rows: Sequence[dict[str, Any]], out: Path, *, settings: dict[str, Any],
                     best: str | None) -> dict[str, Path]:  # fmt: skip
    """``comparison.json`` (settings, best entry, rows), ``comparison.md`` and ``comparison.png`` in ``out``."""
    files = {"json": out / "comparison.json", "md": out / "comparison.md", "png": out / "comparison.png"}
    record = {"settings": settings, "best": best, "rows": list(rows)}
    files["json"].write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    files["md"].write_text(comparison_markdown(rows, settings, best))
    if rows:
        plot_comparison(rows, files["png"])
    return files
