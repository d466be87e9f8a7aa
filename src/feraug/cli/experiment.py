"""``feraug experiment augment`` and ``feraug sweep``: does a synthetic set help a classifier?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from feraug.cli.common import cache_option, field_overrides, load_faces, skip_option, user_errors, with_label_source

if TYPE_CHECKING:
    from feraug.evaluate.experiment.executors import Executor

executor_option = click.option(
    "--executor", "executor_text", default="local", show_default=True, metavar="local|processes:N|ray[:ADDRESS]",
    help="Where the classifiers train: in this process; N at a time in worker processes (each on 1/N of the "
    "cores, or one GPU each); or as Ray tasks (ray: start or join a local instance; ray:auto or ray:HOST:PORT: "
    "an existing cluster). The results are the same on every executor.",
)


def parse_executor_option(text: str) -> Executor:
    """``--executor`` as an executor, or a click error (naming the extra to install when Ray is missing).

    Imported here, not at the top: ``feraug --help`` must not pay for torch.
    """
    from feraug.evaluate.experiment.executors import parse_executor

    try:
        return parse_executor(text)
    except ImportError as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--executor") from None


@click.group()
def experiment() -> None:
    """Experiments that measure whether synthetic faces help a classifier."""


@experiment.command("augment")
@click.option("--data", required=True, help="Real faces: FER2013 CSV, image folder, or toy[:N[:SEED]].")
@click.option(
    "--synthetic",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Synthetic faces: a FER2013-format CSV written by `feraug translate`.",
)
@click.option(
    "--provenance",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Provenance CSV of --synthetic.  [default: the .provenance.csv beside it]",
)
@click.option(
    "--compare",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A second synthetic set (e.g. `feraug select` output, with its provenance beside it) run on the same "
    "folds and seeds: each set gets its own report in --out/<name>, and comparison.md asks whether it beat "
    "--synthetic.",
)
@click.option("--classifier", "arch", default=None, help="Classifier: simple, surreal, vgg, fast or resnet; the "
              "rest of the recipe stays the classifier-fast-cpu preset's.  [default: fast]")
@click.option("--seeds", type=click.IntRange(1), default=None,
              help="Train every arm with seeds 0..N-1.  [default: 7: ~80% power for a +2 pt macro-F1 gain]")
@click.option(
    "--protocol",
    type=click.Choice(["standard", "kfold", "tstr", "trts"]),
    default=None,
    help="standard (Usage splits), kfold (Pasini et al.: 100 faces per class held out, 3x10-fold), "
    "tstr / trts.  [default: standard]",
)
@click.option(
    "--balance",
    type=click.IntRange(1),
    default=None,
    help="Add synthetic faces per class only up to this many training faces.  [default: add all]",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file of experiment settings (a saved config.yaml works).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any field, e.g. n_boot=5000 or classifier.lr=1e-3.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--epochs", type=int, default=None, help="Classifier epochs.")
@click.option("--steps-per-epoch", type=int, default=None, help="Cap classifier steps per epoch (quick runs).")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--resume", is_flag=True, help="Reuse the runs an interrupted experiment in --out already finished.")
@click.option("--quiet", is_flag=True, help="No per-run lines or progress bars.")
@executor_option
@skip_option
@cache_option
@user_errors
def experiment_augment(
    data: str,
    synthetic: Path,
    provenance: Path | None,
    compare: Path | None,
    arch: str | None,
    seeds: int | None,
    protocol: str | None,
    balance: int | None,
    config_file: Path | None,
    sets: tuple[str, ...],
    out: Path,
    epochs: int | None,
    steps_per_epoch: int | None,
    device: str | None,
    resume: bool,
    quiet: bool,
    executor_text: str,
    skip_bad_rows: bool,
    no_cache: bool,
) -> None:
    """Does adding synthetic faces to the training set help — more than duplicating real faces?

    Trains the classifier in three arms on identical splits and seeds: baseline (real faces),
    synthetic (+ the synthetic faces whose source is not held out) and oversample (+ as many
    duplicated real faces per class as the synthetic arm added), then writes results.json,
    report.md and a self-contained report.html to --out. Faces are loaded at classifier.size
    (--set classifier.size=N).
    """
    from feraug.config import ExperimentConfig, build_config
    from feraug.data import load_dataset
    from feraug.pipelines.experiment import run_augmentation_experiment
    from feraug.synth.synthetic_set import provenance_path, read_provenance

    executor = parse_executor_option(executor_text)
    top = {"protocol": protocol, "seeds": seeds, "balance": balance}
    overrides = [{key: value} for key, value in top.items() if value is not None]
    overrides += field_overrides(
        {
            "classifier.arch": arch,
            "classifier.epochs": epochs,
            "classifier.steps_per_epoch": steps_per_epoch,
            "classifier.device": device,
        },
        sets,
    )
    cfg = build_config(ExperimentConfig, file=config_file, overrides=overrides)
    real = load_faces(data, cfg.classifier.size, skip_bad_rows, no_cache)  # faces at the size the classifier expects
    relabelled = cfg.classifier.labels != "fer2013"
    real = with_label_source(real, cfg.classifier.labels, cfg.classifier.ferplus)
    syn = load_dataset(synthetic, size=real.size, cache_dir=not no_cache)
    prov = read_provenance(provenance or provenance_path(synthetic))
    if relabelled:
        syn, prov = _without_orphans(real, syn, prov, synthetic)
    if compare is not None:
        from feraug.pipelines.experiment import run_set_comparison

        names = [p.name.removesuffix(".gz").removesuffix(".csv") for p in (synthetic, compare)]
        if names[0] == names[1]:
            names = [f"{names[0]}-1", f"{names[1]}-2"]
        other = load_dataset(compare, size=real.size, cache_dir=not no_cache)
        other_prov = read_provenance(provenance_path(compare))
        if relabelled:
            other, other_prov = _without_orphans(real, other, other_prov, compare)
        with executor:
            comparison = run_set_comparison(
                real, [(names[0], syn, prov), (names[1], other, other_prov)], cfg, out,
                resume=resume, progress=not quiet, log=None if quiet else click.echo, executor=executor,
            )  # fmt: skip
        click.echo((out / "comparison.md").read_text())
        click.echo(f"reports: {', '.join(str(out / n / 'report.html') for n in comparison['sets'])}")
        return
    with executor:
        results = run_augmentation_experiment(real, syn, prov, cfg, out, resume=resume, progress=not quiet,
                                              log=None if quiet else click.echo, executor=executor)  # fmt: skip

    name = results["primary_set"]
    arms = results["sets"][name]["arms"]
    click.echo(f"\n{name}: mean ± std over {len(results['seeds'])} seed(s) x {len(results['folds'])} fold(s), in %")
    click.echo(f"{'arm':<16}{'accuracy':>16}{'macro-F1':>16}")
    for arm, s in arms.items():
        cells = [f"{100 * s[k]['mean']:.2f} ± {100 * (s[k]['std'] or 0.0):.2f}" for k in ("accuracy", "macro_f1")]
        click.echo(f"{arm:<16}{cells[0]:>16}{cells[1]:>16}")
    for v in results["verdict"].values():
        click.echo(f"\n{v['sentence']}")
    click.echo(f"\nreport: {out / 'report.html'} (also report.md, results.json)")


@click.command("sweep")
@click.option("--data", required=True, help="Real faces for the GANs and the experiment: FER2013 CSV, image folder, "
              "or toy[:N[:SEED]].")
@click.option("--source", default="neutral", show_default=True, help="Emotion translated from.")
@click.option("--target", default="disgust", show_default=True, help="Emotion translated to.")
@click.option("--entry", "entries", multiple=True, metavar="NAME=PRESET[,KEY=VALUE...]",
              help="A CycleGAN to train: a preset and overrides of its own, e.g. "
                   "ecg=ecyclegan,loss.perceptual=runs/phi. Repeat for each.")
@click.option("--presets", default=None, metavar="A,B,...", help="Shorthand for --entry A --entry B (each named by its "
              "preset): cyclegan, cyclegan-improved, wcyclegan, cyclegan-diffaug, ecyclegan (+ -wgangp, -diffaug; "
              "these need --set loss.perceptual=RUN).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="GAN override for every entry (before the entry's own), e.g. net.ngf=32.")
@click.option("--time-budget", default=None, metavar="DURATION",
              help="Fit each GAN's whole schedule into e.g. 15m.  [default: the preset's schedule]")
@click.option("--n", type=click.IntRange(1), default=100, show_default=True,
              help="Source faces every entry translates (the same faces for all).")
@click.option("--more", default="200,500", show_default=True, metavar="N,N...|none",
              help="Face counts the best entry (largest gain over oversampling at --n) translates and is "
                   "tested with too, as Pasini et al. did; none to skip.")
@click.option("--seed", default=0, show_default=True, help="The GANs' train.seed and which source faces are drawn.")
@click.option("--classifier", "arch", default=None, help="Experiment classifier: simple, surreal, vgg, fast or "
              "resnet; the rest of the recipe stays the classifier-fast-cpu preset's.  [default: fast]")
@click.option("--seeds", type=click.IntRange(1), default=None, help="Experiment seeds per arm.  [default: 7]")
@click.option("--epochs", type=int, default=None, help="Classifier epochs.")
@click.option("--steps-per-epoch", type=int, default=None, help="Cap classifier steps per epoch (quick runs).")
@click.option("--protocol", type=click.Choice(["standard", "kfold"]), default=None,
              help="Experiment protocol.  [default: standard]")
@click.option("--exp-config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="YAML file of experiment settings (as `experiment augment --config`).")
@click.option("--exp-set", "exp_sets", multiple=True, metavar="KEY=VALUE",
              help="Experiment override, e.g. n_boot=5000 or classifier.lr=1e-3.")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N, mps (GANs and classifiers).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Sweep folder.")
@click.option("--quiet", is_flag=True, help="No progress bars or per-run lines.")
@executor_option
@user_errors
def sweep(data: str, source: str, target: str, entries: tuple[str, ...], presets: str | None, sets: tuple[str, ...],
          time_budget: str | None, n: int, more: str, seed: int, arch: str | None, seeds: int | None,
          epochs: int | None, steps_per_epoch: int | None, protocol: str | None, exp_config: Path | None,
          exp_sets: tuple[str, ...], device: str | None, out: Path, quiet: bool,
          executor_text: str) -> None:  # fmt: skip
    """Compare CycleGAN presets by the augmentation experiment: Pasini et al.'s comparison as one command.

    Trains one GAN per entry (OUT/NAME/gan), translates the same --n source faces with each
    (OUT/NAME/synthetic_N.csv; the provenance source rows are checked to match), runs `experiment
    augment` on each with the same settings, seeds and splits (OUT/NAME/experiment_N; the baseline
    arm is shared), then has the best entry translate the --more counts and tests those too.
    OUT/comparison.md, .json and .png compare them all: macro-F1, the gain vs baseline and vs
    oversampling with the experiment's 95% intervals and verdicts, and the target class's F1,
    precision and AUC. Every entry and option is checked before any training.

    Re-running the same command continues: a finished GAN, translation or experiment is skipped,
    an interrupted one resumes, and output made with other settings is an error, never overwritten.
    """
    from feraug.config import ExperimentConfig, build_config
    from feraug.pipelines.sweep import run_sweep
    from feraug.train.budget import parse_duration

    executor = parse_executor_option(executor_text)
    listed = [*entries, *(p.strip() for p in (presets or "").split(",") if p.strip())]
    if not listed:
        raise click.UsageError("give the entries to compare: --entry NAME=PRESET[,KEY=VALUE...] or --presets A,B")
    try:
        counts = [] if more.strip().lower() in ("", "none", "0") else [int(k) for k in more.split(",") if k.strip()]
    except ValueError:
        raise click.BadParameter(f"expected face counts such as 200,500 or none, got {more!r}",
                                 param_hint="--more") from None  # fmt: skip
    top = {"protocol": protocol, "seeds": seeds}
    overrides = [{key: value} for key, value in top.items() if value is not None]
    overrides += field_overrides({"classifier.arch": arch, "classifier.epochs": epochs,
                             "classifier.steps_per_epoch": steps_per_epoch, "classifier.device": device},
                            exp_sets)  # fmt: skip
    cfg = build_config(ExperimentConfig, file=exp_config, overrides=overrides)
    assert isinstance(cfg, ExperimentConfig)
    gan_sets = ([f"train.device={device}"] if device is not None else []) + list(sets)
    budget = parse_duration(time_budget) if time_budget is not None else None
    with executor:
        rows = run_sweep(data, listed, out, source=source, target=target, sets=gan_sets, time_budget=budget, n=n,
                         more=counts, seed=seed, experiment=cfg, progress=not quiet,
                         log=None if quiet else click.echo, executor=executor)  # fmt: skip
    click.echo("\n" + (out / "comparison.md").read_text())
    click.echo(f"{len(rows)} experiment(s) compared: {out / 'comparison.md'} (also comparison.json, comparison.png)")


def _without_orphans(real, syn, prov: dict, path: Path) -> tuple:  # noqa: ANN001 - FaceDatasets, imported lazily
    """Drop synthetic faces whose source the label source left out of ``real`` (they are in no split: no leak)."""
    import numpy as np

    keep = np.isin(prov["source_row"], real.rows) | (prov["source_row"] == -1)  # -1: sampled, no source
    if keep.all():
        return syn, prov
    click.echo(f"{path}: {int((~keep).sum())} synthetic faces left out: FER+ gives their source faces no "
               "single-emotion plurality, so those sources are not in the relabelled data")  # fmt: skip
    kept_rows = prov["synthetic_row"][keep]
    return syn.subset(np.flatnonzero(np.isin(syn.rows, kept_rows))), {k: v[keep] for k, v in prov.items()}
