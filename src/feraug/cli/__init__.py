"""The ``feraug`` command: thin click wrappers that parse arguments and call the Python API.

Errors that users cause (a bad file, an unknown emotion, a bad option value) are turned into a
one-line ``Error: ...`` and exit status 1 instead of a traceback.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from feraug import __version__

_STARTED = time.perf_counter()  # a --time-budget counts from here: the command's start, imports included


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report user-caused errors (bad values, files, diverged training) as a clean CLI error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, OSError, KeyError, ArithmeticError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)  # KeyError's str() adds quotes
            raise click.ClickException(str(message)) from e

    return wrapper


data_argument = click.argument("data", metavar="DATA")
size_option = click.option("--size", default=48, show_default=True, help="Image side length in pixels.")
skip_option = click.option("--skip-bad-rows", is_flag=True, help="Drop malformed CSV rows with a warning.")
cache_option = click.option("--no-cache", is_flag=True, help="Do not read or write the parsed-data cache.")


def _load(data: str, size: int, skip_bad_rows: bool, no_cache: bool):  # noqa: ANN202 - FaceDataset, imported lazily
    from feraug.data import load_dataset

    return load_dataset(data, size=size, skip_bad_rows=skip_bad_rows, cache_dir=not no_cache)


def _with_label_source(ds, labels: str | None, ferplus: str | None):  # noqa: ANN001, ANN202 - FaceDataset
    """Apply a classifier config's label source (``labels``/``ferplus`` fields) to loaded faces."""
    if labels in (None, "fer2013"):
        return ds
    from feraug.data.ferplus import load_ferplus, relabel_with_majority

    return relabel_with_majority(ds, load_ferplus(ferplus))  # type: ignore[arg-type]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="feraug")
def main() -> None:
    """feraug: synthesize facial-expression training faces with GANs and measure whether they help.

    DATA arguments accept a FER2013 CSV (.csv or .csv.gz), an image folder (root/<split>/<class>/*.png
    or root/<class>/*.png), or the built-in toy faces: toy, toy:N or toy:N:SEED.
    """


@main.group()
def data() -> None:
    """Inspect datasets and make the built-in toy-faces dataset."""


@data.command("stats")
@data_argument
@size_option
@skip_option
@cache_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@user_errors
def data_stats(data: str, size: int, skip_bad_rows: bool, no_cache: bool, as_json: bool) -> None:
    """Per-class counts per split and the imbalance ratio of DATA."""
    from feraug.data import dataset_stats

    ds = _load(data, size, skip_bad_rows, no_cache)
    stats = dataset_stats(ds)
    if as_json:
        click.echo(json.dumps({"source": ds.source, **stats.to_dict()}, indent=2))
        return
    click.echo(f"{ds.source}: {len(ds):,} faces, {ds.size}x{ds.size}")
    click.echo(stats.table())


@data.command("grid")
@data_argument
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
@click.option("--per-class", default=8, show_default=True, type=click.IntRange(1, 64), help="Faces per class.")
@click.option("--split", default=None, help="Only faces of this split (Training, PublicTest, PrivateTest).")
@click.option("--seed", default=0, show_default=True, help="Which faces are drawn.")
@click.option("--scale", default=2, show_default=True, type=click.IntRange(1, 8), help="Upscaling factor.")
@size_option
@skip_option
@cache_option
@user_errors
def data_grid(
    data: str, out: Path, per_class: int, split: str | None, seed: int, scale: int, size: int,
    skip_bad_rows: bool, no_cache: bool,
) -> None:  # fmt: skip
    """A labelled grid of sample faces per class of DATA, saved as a PNG."""
    from feraug.report.grid import class_grid, save_image

    ds = _load(data, size, skip_bad_rows, no_cache)
    if split:
        ds = ds.split(split)
    save_image(class_grid(ds, per_class=per_class, seed=seed, scale=scale), out)
    click.echo(f"wrote {out}")


@data.command("toy")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="CSV (.csv/.csv.gz) or folder to write.")
@click.option("--n", default=3000, show_default=True, type=click.IntRange(7), help="Number of faces.")
@click.option("--seed", default=0, show_default=True, help="Random seed (the dataset is a function of it).")
@click.option("--balanced", is_flag=True, help="Equal class counts instead of FER2013's proportions.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "folder"]), default="csv", show_default=True, help="Output layout."
)
@size_option
@user_errors
def data_toy(out: Path, n: int, seed: int, balanced: bool, fmt: str, size: int) -> None:
    """Generate the built-in toy-faces dataset (FER2013 format, Usage column included)."""
    from feraug.data import make_toy_faces, write_fer2013_csv, write_image_folder

    ds = make_toy_faces(n=n, seed=seed, size=size, class_weights=[1.0] * 7 if balanced else None)
    written = write_fer2013_csv(ds, out) if fmt == "csv" else write_image_folder(ds, out)
    click.echo(f"wrote {len(ds):,} toy faces to {written}")


@main.group()
def train() -> None:
    """Train a GAN of any family (one command each) or an expression classifier into a run folder."""


def _overrides(pairs: dict[str, object], sets: tuple[str, ...]) -> list[dict[str, object]]:
    from feraug.config import parse_override

    out: list[dict[str, object]] = []
    for key, value in pairs.items():
        if value is not None:
            section, _, name = key.partition(".")
            out.append({section: {name: value}})
    return out + [parse_override(s) for s in sets]


def _gan_run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options every GAN family's ``train`` command shares (config, run folder, resume, schedule, device)."""
    options = [
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="YAML file of config sections (applied after the preset)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override any field, e.g. optim.lr_d=1e-4."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder."),
        click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped."),
        click.option("--stop-at-step", type=click.IntRange(1), default=None,
                     help="End this invocation after this many steps in total, with a checkpoint (time-limited "
                     "jobs); --resume continues."),
        click.option("--time-budget", default=None, metavar="DURATION",
                     help="Fit the whole schedule, decay included, into e.g. 45m, 1h30m or 900s: a short "
                     "measurement fixes the steps, written into config.yaml so --resume and re-runs are exact."),
        click.option("--epochs", type=int, default=None, help="Epochs at constant learning rate."),
        click.option("--epochs-decay", type=int, default=None, help="Epochs of linear learning-rate decay."),
        click.option("--batch-size", type=int, default=None),
        click.option("--steps-per-epoch", type=int, default=None, help="Cap steps per epoch (quick runs)."),
        click.option("--seed", type=int, default=None),
        click.option("--device", default=None, help="auto, cpu, cuda, cuda:N, mps."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    return f


def _train_family(family: str, preset: str | None, fields: dict[str, object], *, config_file: Path | None,
                  sets: tuple[str, ...], out: Path, resume: bool, stop_at_step: int | None, time_budget: str | None,
                  epochs: int | None, epochs_decay: int | None, batch_size: int | None, steps_per_epoch: int | None,
                  seed: int | None, device: str | None, quiet: bool) -> None:  # fmt: skip
    """Build ``family``'s config (preset, file, options, --set; or the run's own config.yaml on --resume) and train."""
    from feraug.api import train as run_training
    from feraug.config import build_config
    from feraug.models.registry import get_family
    from feraug.train.budget import parse_duration

    config_class = get_family(family).config
    budget = parse_duration(time_budget) if time_budget is not None else None
    overrides = _overrides({**fields, "optim.epochs": epochs, "optim.epochs_decay": epochs_decay,
                            "optim.batch_size": batch_size, "train.steps_per_epoch": steps_per_epoch,
                            "train.seed": seed, "train.device": device}, sets)  # fmt: skip
    if resume:
        saved = out / "config.yaml"
        if not saved.is_file():
            raise click.ClickException(f"--resume: {out} has no config.yaml (is it a run folder?)")
        cfg = build_config(config_class, file=saved, overrides=overrides, family=family)
    else:
        cfg = build_config(config_class, preset=preset, file=config_file, overrides=overrides, family=family)
    trainer = run_training(cfg, out, resume=resume, progress=not quiet, stop_at=stop_at_step, time_budget=budget,
                           started=_STARTED)  # fmt: skip
    if trainer.dist.is_main:  # under torchrun, one line for the run rather than one per process
        if trainer.budget is not None:
            b = trainer.budget
            click.echo(f"time budget {b.budget_s:.0f} s: {b.seconds_per_step:.3g} s/step measured -> planned "
                       f"{b.epochs}+{b.epochs_decay} epochs x {b.steps_per_epoch} steps, kept on time: "
                       f"{trainer.schedule.total_steps} steps (train.epoch_steps in config.yaml)")  # fmt: skip
        click.echo(f"finished step {trainer.step} in {out}; samples in {out / 'samples'}")


@train.command("cyclegan")
@click.option("--data", default=None, help="FER2013 CSV, image folder, or toy[:N[:SEED]].  [default: toy]")
@click.option("--source", default=None, help="Emotion of domain A, e.g. neutral.")
@click.option("--target", default=None, help="Emotion of domain B, e.g. disgust.")
@click.option("--preset", default=None, help="cyclegan, cyclegan-improved or wcyclegan.  [default: cyclegan]")
@_gan_run_options
@user_errors
def train_cyclegan(data: str | None, source: str | None, target: str | None, preset: str | None,
                   **run: Any) -> None:  # fmt: skip
    """Train a CycleGAN translating SOURCE faces into TARGET faces (and back).

    Presets reproduce seed 000: cyclegan (original), cyclegan-improved (weighted cycle loss, two
    learning rates, soft labels, augmentation), wcyclegan (Wasserstein critics with gradient penalty);
    and seed 002: ecyclegan (RDNB generator, perceptual loss: needs --set loss.perceptual=CLASSIFIER_RUN),
    ecyclegan-wgangp, ecyclegan-diffaug and cyclegan-diffaug (DiffAugment + ADA on the target's
    discriminator; every regularizer is a regularize.* setting).
    Every config field can be overridden with --config FILE and --set section.key=value.

    Several GPUs (or CPU processes): torchrun --nproc_per_node N -m feraug train cyclegan ...
    splits each --batch-size batch over the N processes and averages their gradients.
    """
    _train_family("cyclegan", preset, {"data.data": data, "data.source": source, "data.target": target}, **run)


@train.command("dcgan")
@click.option("--data", default=None, help="FER2013 CSV, image folder, or toy[:N[:SEED]].  [default: toy]")
@click.option("--class", "classes", default=None, metavar="EMOTION[,EMOTION...]",
              help="Emotion(s) to learn, comma-separated, or all.  [default: the preset's: neutral; cdcgan: all]")
@click.option("--preset", default=None, help="dcgan, wgan-gp or cdcgan.  [default: dcgan]")
@_gan_run_options
@user_errors
def train_dcgan(data: str | None, classes: str | None, preset: str | None, **run: Any) -> None:
    """Train a noise GAN that samples new faces of a class (seed 000's "Fake GAN").

    Presets: dcgan (Radford et al.: batch norm, BCE, Adam 2e-4), wgan-gp (critic without batch
    norm, gradient penalty 10, 5 critic steps per generator step, Adam 1e-4 with betas (0, 0.9)),
    cdcgan (one class-conditional model for all seven emotions: conditional batch norm, projection
    discriminator, class-balanced batches). `feraug sample --run RUN --class EMOTION` then writes
    FER2013-format faces. Every config field can be overridden with --config FILE and --set.
    """
    listed = None if classes is None else [c.strip() for c in classes.split(",") if c.strip()]
    _train_family("dcgan", preset, {"data.data": data, "data.classes": listed}, **run)


@train.command("expression")
@click.option("--data", default=None, help="FER2013 CSV, image folder, or toy[:N[:SEED]].  [default: toy]")
@click.option("--preset", default="expression", show_default=True,
              help="expression (2 CPU cores) or expression-gpu (one GPU).")
@_gan_run_options
@user_errors
def train_expression(data: str | None, preset: str, **run: Any) -> None:
    """Train one generator that edits a face into any of the seven emotions (StarGAN-style).

    G(face, target emotion) learns from every training face: a domain-classification head on D
    (trained on real faces) tells G whether its face reads as the target, the reconstruction
    G(G(x, c), c_x) ~ x keeps the person, and the output is an edit of the input (net.output:
    attention mask, shown in the sample grids, or residual). Targets are drawn class-balanced.
    `feraug translate --run RUN --from neutral --to disgust` then writes FER2013-format faces.
    Every config field can be overridden with --config FILE and --set section.key=value.
    """
    _train_family("expression", preset, {"data.data": data}, **run)


@main.command()
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A CycleGAN or expression run folder.",
)
@click.option("--n", type=click.IntRange(1), required=True, help="Number of faces to translate.")
@click.option("--from", "source", required=True,
              help="Emotion to translate from (CycleGAN: one of the run's two domains; expression: any).")
@click.option("--to", "target", default=None,
              help="Emotion to translate to (expression runs: required, any but --from; CycleGAN runs: implied by "
              "the run, and if given must be the run's other domain).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="FER2013-format CSV to write (.csv or .csv.gz); provenance and a PNG grid go beside it.",
)
@click.option("--seed", default=0, show_default=True, help="Which training faces are translated.")
@click.option("--no-ema", is_flag=True, help="Use the raw generator even when EMA weights exist.")
@click.option("--sources", "sources_run", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A noise-GAN run (feraug train dcgan) that samples the --from faces instead of taking real ones.")
@user_errors
def translate(run_dir: Path, n: int, source: str, target: str | None, out: Path, seed: int, no_ema: bool,
              sources_run: Path | None) -> None:  # fmt: skip
    """Translate N training faces (or N faces sampled by --sources) with a trained CycleGAN or expression GAN
    into a FER2013 CSV (attention masks of an expression run go into the PNG grid)."""
    from feraug.synth.translate import translate as run_translate

    result = run_translate(run_dir, n, source, out, seed=seed, use_ema=not no_ema, sources=sources_run,
                           target=target)  # fmt: skip
    click.echo(f"wrote {result.n} {result.direction} faces to {result.csv}\n"
               f"provenance: {result.provenance}\ngrid: {result.grid}")  # fmt: skip


@main.command("sample")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A noise-GAN run folder (feraug train dcgan).")
@click.option("--class", "emotion", required=True, help="Emotion to sample (one the run learned).")
@click.option("--n", type=click.IntRange(1), required=True, help="Number of faces to sample.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="FER2013-format CSV to write (.csv or .csv.gz); provenance and a PNG grid go beside it.")
@click.option("--seed", default=0, show_default=True, help="Which latent vectors are drawn.")
@click.option("--no-ema", is_flag=True, help="Use the raw generator even when EMA weights exist.")
@user_errors
def sample_cmd(run_dir: Path, emotion: str, n: int, out: Path, seed: int, no_ema: bool) -> None:  # fmt: skip
    """Sample N new faces of a class from a trained noise GAN into a synthetic FER2013 CSV."""
    from feraug.synth.sample import sample

    result = sample(run_dir, n, emotion, out, seed=seed, use_ema=not no_ema)
    click.echo(f"wrote {result.n} sampled {result.emotion} faces to {result.csv}\n"
               f"provenance: {result.provenance}\ngrid: {result.grid}")  # fmt: skip


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--n", default=3000, show_default=True, type=click.IntRange(700),
              help="Number of toy faces (700 or more: the quality step needs a few held-out Disgust faces).")
@click.option("--seed", default=0, show_default=True)
@click.option("--gan-steps", default=100, show_default=True, type=click.IntRange(1),
              help="CycleGAN steps per epoch (at most one pass over the Neutral faces).")
@click.option(
    "--gan-epochs",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="CycleGAN epochs at constant learning rate (as many again with decay).",
)
@click.option("--clf-epochs", default=6, show_default=True, type=click.IntRange(1), help="Classifier epochs.")
@click.option("--clf-steps", default=40, show_default=True, type=click.IntRange(1), help="Classifier steps per epoch.")
@click.option("--seeds", default=2, show_default=True, type=click.IntRange(1), help="Experiment seeds per arm.")
@user_errors
def demo(out: Path, n: int, seed: int, gan_steps: int, gan_epochs: int, clf_epochs: int, clf_steps: int,
         seeds: int) -> None:  # fmt: skip
    """End-to-end demo on the built-in toy faces: data, a tiny CycleGAN, synthetic faces, their quality, the
    best half selected, the experiment for all and for the selected faces."""
    from feraug.demo import run_demo

    run_demo(out, n=n, seed=seed, gan_steps=gan_steps, gan_epochs=gan_epochs, clf_epochs=clf_epochs,
             clf_steps=clf_steps, seeds=seeds, echo=click.echo)  # fmt: skip


@main.group()
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
@click.option("--classifier", "arch", default=None, help="Classifier: simple, surreal, vgg, fast or resnet.")
@click.option("--seeds", type=click.IntRange(1), default=None,
              help="Train every arm with seeds 0..N-1.  [default: 7: ~80% power for a +2 pt macro-F1 gain]")
@click.option(
    "--protocol",
    type=click.Choice(["standard", "kfold", "tstr", "trts"]),
    default=None,
    help="standard (Usage splits), kfold (seed 002), tstr / trts.  [default: standard]",
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
    from feraug.evaluate.experiment import run_augmentation_experiment
    from feraug.synth.translate import provenance_path, read_provenance

    top = {"protocol": protocol, "seeds": seeds, "balance": balance}
    overrides = [{key: value} for key, value in top.items() if value is not None]
    overrides += _overrides(
        {
            "classifier.arch": arch,
            "classifier.epochs": epochs,
            "classifier.steps_per_epoch": steps_per_epoch,
            "classifier.device": device,
        },
        sets,
    )
    cfg = build_config(ExperimentConfig, file=config_file, overrides=overrides)
    real = _load(data, cfg.classifier.size, skip_bad_rows, no_cache)  # faces at the size the classifier expects
    relabelled = cfg.classifier.labels != "fer2013"
    real = _with_label_source(real, cfg.classifier.labels, cfg.classifier.ferplus)
    syn = load_dataset(synthetic, size=real.size, cache_dir=not no_cache)
    prov = read_provenance(provenance or provenance_path(synthetic))
    if relabelled:
        syn, prov = _without_orphans(real, syn, prov, synthetic)
    if compare is not None:
        from feraug.evaluate.experiment import run_set_comparison

        names = [p.name.removesuffix(".gz").removesuffix(".csv") for p in (synthetic, compare)]
        if names[0] == names[1]:
            names = [f"{names[0]}-1", f"{names[1]}-2"]
        other = load_dataset(compare, size=real.size, cache_dir=not no_cache)
        other_prov = read_provenance(provenance_path(compare))
        if relabelled:
            other, other_prov = _without_orphans(real, other, other_prov, compare)
        comparison = run_set_comparison(
            real, [(names[0], syn, prov), (names[1], other, other_prov)], cfg, out,
            resume=resume, progress=not quiet, log=None if quiet else click.echo,
        )  # fmt: skip
        click.echo((out / "comparison.md").read_text())
        click.echo(f"reports: {', '.join(str(out / n / 'report.html') for n in comparison['sets'])}")
        return
    results = run_augmentation_experiment(
        real, syn, prov, cfg, out, resume=resume, progress=not quiet, log=None if quiet else click.echo
    )

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


@main.command("sweep")
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
                   "tested with too, as seed 002 did; none to skip.")
@click.option("--seed", default=0, show_default=True, help="The GANs' train.seed and which source faces are drawn.")
@click.option("--classifier", "arch", default=None, help="Experiment classifier: simple, surreal, vgg or fast.")
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
@user_errors
def sweep(data: str, source: str, target: str, entries: tuple[str, ...], presets: str | None, sets: tuple[str, ...],
          time_budget: str | None, n: int, more: str, seed: int, arch: str | None, seeds: int | None,
          epochs: int | None, steps_per_epoch: int | None, protocol: str | None, exp_config: Path | None,
          exp_sets: tuple[str, ...], device: str | None, out: Path, quiet: bool) -> None:  # fmt: skip
    """Compare CycleGAN presets by the augmentation experiment: seed 002's comparison as one command.

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
    from feraug.evaluate.sweep import run_sweep
    from feraug.train.budget import parse_duration

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
    overrides += _overrides({"classifier.arch": arch, "classifier.epochs": epochs,
                             "classifier.steps_per_epoch": steps_per_epoch, "classifier.device": device},
                            exp_sets)  # fmt: skip
    cfg = build_config(ExperimentConfig, file=exp_config, overrides=overrides)
    assert isinstance(cfg, ExperimentConfig)
    gan_sets = ([f"train.device={device}"] if device is not None else []) + list(sets)
    budget = parse_duration(time_budget) if time_budget is not None else None
    rows = run_sweep(data, listed, out, source=source, target=target, sets=gan_sets, time_budget=budget, n=n,
                     more=counts, seed=seed, experiment=cfg, progress=not quiet,
                     log=None if quiet else click.echo)  # fmt: skip
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


@train.command("classifier")
@click.option("--data", default=None, help="FER2013 CSV, image folder, or toy[:N[:SEED]] (split by standard_splits).")
@click.option("--arch", default=None, help="simple, surreal, vgg, fast or resnet.  [default: simple]")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file of config fields (e.g. a previous run's config.yaml).",
)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any field, e.g. lr=0.01.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last finished epoch.")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None, help="Peak learning rate.")
@click.option("--steps-per-epoch", type=int, default=None, help="Cap steps per epoch (quick runs).")
@click.option("--seed", type=int, default=None)
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--tta", is_flag=True, help="Ten-crop test-time augmentation for selection and the test.")
@click.option("--time-budget", default=None, metavar="DURATION",
              help="Fit the whole schedule into e.g. 15m or 900s: a short measurement fixes epochs and steps, "
              "written into config.yaml so --resume and re-runs are exact.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def train_classifier(
    data: str | None, arch: str | None, config_file: Path | None, sets: tuple[str, ...], out: Path, resume: bool,
    epochs: int | None, batch_size: int | None, lr: float | None, steps_per_epoch: int | None, seed: int | None,
    device: str | None, tta: bool, quiet: bool, time_budget: str | None,
) -> None:  # fmt: skip
    """Train an expression classifier on the train split of DATA, select on val, report on test.

    Splits come from feraug.data.standard_splits (FER2013's Usage column when present), identical
    for every run on the same data. The best epoch by validation macro-F1 (select_metric) is kept
    in OUT/checkpoints/best.pt and scored once on the test split: OUT/test_metrics.json and plots.
    Every field of the classifier config can be set with --config FILE and --set key=value.
    """
    from feraug.config import ClassifierConfig, build_config, parse_override
    from feraug.data import load_dataset, standard_splits
    from feraug.evaluate.classifier import evaluate_classifier, tta_padding_for
    from feraug.evaluate.classifier import train_classifier as run_training
    from feraug.evaluate.metrics import metrics_table
    from feraug.train.budget import parse_duration
    from feraug.train.device import resolve_device

    given = {"data": data, "arch": arch, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
             "steps_per_epoch": steps_per_epoch, "device": device, "tta": True if tta else None}  # fmt: skip
    overrides = [{k: v} for k, v in given.items() if v is not None] + [parse_override(s) for s in sets]
    if resume:
        saved = out / "config.yaml"
        if not saved.is_file():
            raise click.ClickException(f"--resume: {out} has no config.yaml (is it a run folder?)")
        cfg = build_config(ClassifierConfig, file=saved, overrides=overrides, family="classifier")
    else:
        cfg = build_config(ClassifierConfig, file=config_file, overrides=overrides, family="classifier")
    assert isinstance(cfg, ClassifierConfig)
    if cfg.data is None:
        raise click.ClickException("--data is required: a FER2013 CSV, an image folder, or toy[:N[:SEED]]")
    ds = _with_label_source(load_dataset(cfg.data, size=cfg.size), cfg.labels, cfg.ferplus)
    splits = standard_splits(ds)
    train_ds, val_ds, test_ds = splits.datasets(ds)
    click.echo(f"{ds.source}: {len(train_ds):,} train / {len(val_ds):,} val / {len(test_ds):,} test faces; "
               f"{splits.note}")  # fmt: skip
    budget = parse_duration(time_budget) if time_budget is not None else None
    run = run_training(cfg, train_ds, val_ds, out, resume=resume, progress=not quiet, time_budget=budget,
                       started=_STARTED, reserve_validations=len(test_ds) / max(len(val_ds), 1))  # fmt: skip
    if run.budget is not None:
        b = run.budget
        done = sum(run.config.epoch_steps or []) if run.config is not None else b.total_steps
        click.echo(f"time budget {b.budget_s:.0f} s: {b.seconds_per_step:.3g} s/step measured -> planned {b.epochs} "
                   f"epochs x {b.steps_per_epoch} steps, kept on time: {done} steps (epoch_steps in "
                   "config.yaml)")  # fmt: skip
    metrics = evaluate_classifier(run.net, test_ds.with_note(splits.note), tta=cfg.tta, out_dir=out, name="test",
                                  device=resolve_device(cfg.device), tta_padding=tta_padding_for(cfg))  # fmt: skip
    click.echo(f"best epoch {run.best_epoch} of {len(run.history)}: val {cfg.select_metric} {run.best_score:.4f}")
    click.echo(f"test split ({len(test_ds):,} faces{', ten-crop TTA' if cfg.tta else ''}):")
    click.echo(metrics_table(metrics))
    click.echo(f"split: {splits.note}")
    click.echo(f"wrote {out / 'test_metrics.json'}, plots and checkpoints/best.pt")


judge_options = [
    click.option("--judge-k", type=click.IntRange(2), default=2, show_default=True,
                 help="Folds of the cross-fitted judge (model i never trains on fold i)."),
    click.option("--judge-set", "judge_sets", multiple=True, metavar="KEY=VALUE",
                 help="Judge classifier settings, e.g. epochs=20.  [default: arch fast, 10 epochs; quality and "
                      "select: degradation augmentation, plain loss, a prior correction fitted out of fold, and a "
                      "second judge of arch resnet]"),
    click.option("--judge-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Folder for the judge models.  [default: <feraug cache>/crossfit]"),
]


def _judge_options(fn: Callable[..., Any], k: int = 2) -> Callable[..., Any]:
    options = [click.option("--judge-k", type=click.IntRange(2), default=k, show_default=True,
                            help="Folds of the cross-fitted models (model i never trains on fold i)."),
               *judge_options[1:]]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _synthetic_set_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--synthetic, --provenance, --data and --target: a synthetic set and the real faces it is judged against."""
    options = [
        click.option("--synthetic", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
                     help="Synthetic faces (FER2013-format CSV from translate or sample)."),
        click.option("--provenance", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Provenance CSV of --synthetic.  [default: the .provenance.csv beside it, if any]"),
        click.option("--data", default=None,
                     help="The real faces the generator trained on.  [default: the provenance's data column]"),
        click.option("--target", default=None, help="Emotion the faces should show.  [default: their label]"),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _training_pool(data):  # noqa: ANN001, ANN202 - FaceDataset, imported lazily
    """The faces generators and judges train on: the Training split, or everything when there are no splits."""
    return data.split("Training") if "Training" in data.splits else data


def _translation_sources(prov: dict | None) -> Any:
    """The source rows of a translated set's faces; None for a set without provenance or sampled from noise."""
    if prov is None or (prov["source_row"] < 0).any():
        return None
    return prov["source_row"]


def _generator_rows(prov: dict | None) -> Any:
    """The training rows of the generator(s) that made a set (their runs' records); None when any is unknown."""
    import numpy as np

    from feraug.train.provenance import read_training_rows

    if prov is None or "run" not in prov:
        return None
    rows = [read_training_rows(run) for run in sorted(set(prov["run"].tolist()))]
    return None if any(r is None for r in rows) else np.unique(np.concatenate(rows))


def _ferplus_for(data: str, ferplus: Path | None, echo: Callable[[str], None]) -> Any:
    """The FER+ votes judge B learns from: ``--ferplus``, else a ``ferplus.csv.gz`` beside the data file, else None."""
    from feraug.data.ferplus import load_ferplus

    if ferplus is None:
        beside = Path(data).parent / "ferplus.csv.gz"
        if not beside.is_file():
            return None
        echo(f"judge B learns FER+ plurality labels from {beside} (found beside the data)")
        ferplus = beside
    return load_ferplus(ferplus)


def _judged_set(synthetic: Path, provenance: Path | None, data: str | None, target: str | None, seed: int,
                judge_k: int, judge_sets: tuple[str, ...], judge_cache: Path | None, quiet: bool, skip_bad_rows: bool,
                no_cache: bool, ferplus: Path | None) -> dict[str, Any]:  # fmt: skip
    """Load a synthetic set, its provenance and real data; resolve the target; cross-fit (or load) the judges."""
    from feraug.data.classes import emotion_index
    from feraug.evaluate.judges import build_judges, training_signal_conflict
    from feraug.synth.translate import load_synthetic_set

    syn, prov = load_synthetic_set(synthetic, provenance=provenance, cache_dir=not no_cache)
    if data is None:
        if prov is None or "data" not in prov:
            raise click.UsageError("--data is needed: the synthetic set has no provenance naming its real data")
        data = str(prov["data"][0])
    real = _load(data, syn.size, skip_bad_rows, no_cache)
    if target is None:
        present = sorted(set(syn.labels.tolist()))
        if len(present) != 1:
            raise click.UsageError(f"the synthetic set holds {len(present)} emotions: say which with --target")
        target_label = present[0]
    else:
        target_label = emotion_index(target)
    pool = _training_pool(real)
    judges = build_judges(pool, k=judge_k, seed=seed, ferplus=_ferplus_for(data, ferplus, click.echo),
                          sets=judge_sets, cache_dir=judge_cache or True, progress=not quiet,
                          log=click.echo)  # fmt: skip
    runs = sorted({Path(r) for r in prov["run"].tolist()}) if prov is not None and "run" in prov else []
    conflict = training_signal_conflict(judges, runs)
    if conflict:
        raise click.UsageError(conflict)
    return {"syn": syn, "prov": prov, "pool": pool, "target": target_label, "judges": judges}


ferplus_option = click.option("--ferplus", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                              default=None, help="FER+ votes aligned with --data, for judge B's labels.  [default: "
                              "ferplus.csv.gz beside the data file, if any; else the data's own labels]")  # fmt: skip


@main.command("quality")
@_synthetic_set_options
@click.option("--source", default=None, help="Emotion of the untranslated calibration row.  [default: the sources']")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for quality.json, quality.md and grids.  [default: <synthetic>.quality]")
@click.option("--seed", default=0, show_default=True, help="Judge folds and seeds, KID subsets, calibration draws.")
@_judge_options
@ferplus_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
@skip_option
@cache_option
@user_errors
def quality(synthetic: Path, provenance: Path | None, data: str | None, target: str | None, source: str | None,
            out: Path | None, seed: int, judge_k: int, judge_sets: tuple[str, ...], judge_cache: Path | None,
            ferplus: Path | None, quiet: bool, skip_bad_rows: bool, no_cache: bool) -> None:  # fmt: skip
    """Measure a synthetic set against real faces, with real-face calibration rows beside it.

    The headline is the transfer above control: the share two cross-fitted judges (different
    architectures and labels, neither trained on a face it scores or on a translation's source) call
    the target emotion, minus the highest share among negative controls — the faces the set was made
    from, untouched and degraded (blur, noise, down-up sampling, textures, blotches, brightness,
    contrast), judged the same way — with a 95 % interval. Beside it: KID and FID in judge A's
    feature space, SSIM/L1 to the source face, diversity and distance to the nearest training face,
    for the set, real held-out target faces and real untranslated source faces. Judges are trained
    once and cached.
    """
    from feraug.data.classes import emotion_index
    from feraug.evaluate.quality import measure_quality, memorization_line, opening

    j = _judged_set(synthetic, provenance, data, target, seed, judge_k, judge_sets, judge_cache, quiet, skip_bad_rows,
                    no_cache, ferplus)  # fmt: skip
    syn, prov, pool, target_label, judges = (j[k] for k in ("syn", "prov", "pool", "target", "judges"))
    out = out or synthetic.with_name(synthetic.name.removesuffix(".gz").removesuffix(".csv") + ".quality")
    report = measure_quality(syn, pool, judges, target=target_label,
                             source_rows=_translation_sources(prov),
                             source=emotion_index(source) if source is not None else None,
                             out_dir=out, seed=seed, log=None if quiet else click.echo,
                             generator_rows=_generator_rows(prov))  # fmt: skip
    click.echo(f"\n{report.info['source']} -> {report.info['target']}: {len(syn)} synthetic faces\n")
    click.echo(opening(report.info) + "\n")
    click.echo(report.table())
    click.echo(memorization_line(report.info.get("memorization")).rstrip())
    click.echo(f"\nreport: {report.files['md']} (also quality.json and best/worst grids)")


@main.command("select")
@_synthetic_set_options
@click.option("--keep", type=click.IntRange(1), default=None, help="Keep this many faces (the best first).")
@click.option("--threshold", type=float, default=None, help="Keep every face whose --by score is at least this.")
@click.option("--by", type=click.Choice(["combined", "target", "realism", "structure"]), default="combined",
              show_default=True, help="combined: mean percentile rank of target confidence, realism and SSIM to "
                                      "the source; or one of them alone.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV of the kept faces; provenance, .select.json and a grid go beside it.")
@click.option("--seed", default=0, show_default=True, help="Judge folds and seeds.")
@_judge_options
@ferplus_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
@skip_option
@cache_option
@user_errors
def select(synthetic: Path, provenance: Path | None, data: str | None, target: str | None, keep: int | None,
           threshold: float | None, by: str, out: Path, seed: int, judge_k: int, judge_sets: tuple[str, ...],
           judge_cache: Path | None, ferplus: Path | None, quiet: bool, skip_bad_rows: bool,
           no_cache: bool) -> None:  # fmt: skip
    """Keep the best synthetic faces by target confidence, realism and identity kept (SSIM to source).

    Scores come from the same two cross-fitted judges as `feraug quality` (cached): target
    confidence is the lower of the two judges' probabilities, so a face ranks high only when both
    agree, and a face is never judged by a model that trained on its source. The kept faces keep
    their provenance, so the augmentation experiment's leakage guard works on them unchanged.
    """
    import numpy as np
    import torch

    from feraug.evaluate.selection import select_top, selection_scores, write_selection

    if (keep is None) == (threshold is None):
        raise click.UsageError("give exactly one of --keep N and --threshold T")
    j = _judged_set(synthetic, provenance, data, target, seed, judge_k, judge_sets, judge_cache, quiet, skip_bad_rows,
                    no_cache, ferplus)  # fmt: skip
    syn, prov, pool, judges = j["syn"], j["prov"], j["pool"], j["judges"]
    sources = None
    source_rows = _translation_sources(prov)
    if source_rows is not None:
        index = {int(r): i for i, r in enumerate(pool.rows)}
        pos = np.array([index.get(int(r), -1) for r in source_rows])
        if (pos < 0).any():
            raise click.UsageError(f"{int((pos < 0).sum())} synthetic faces name source rows outside the training "
                                   "faces of --data: pass the data the generator was trained on")  # fmt: skip
        sources = pool.images[torch.from_numpy(pos)]
    if by == "structure" and sources is None:
        raise click.UsageError("--by structure needs translations with provenance (SSIM to the source face)")
    scores = selection_scores(syn, pool, judges, target=j["target"], sources=sources, source_rows=source_rows)
    kept = select_top(scores[by], keep=keep, threshold=threshold)
    if kept.size == 0:
        raise click.UsageError(f"no face has a {by} score of at least {threshold}")
    result = write_selection(out, syn, prov, scores, kept, by,
                             {"synthetic": str(synthetic), "seed": seed,
                              "judge_caches": [str(jd.fit.cache) for jd in judges]})  # fmt: skip
    click.echo(f"kept {kept.size} of {len(syn)} faces by {by} -> {result.csv}")
    for k, v in scores.items():
        click.echo(f"  {k:<10} mean kept {v[kept].mean():9.4f}   all {v.mean():9.4f}")
    click.echo(f"provenance: {result.provenance}\nreport: {result.report}\ngrid: {result.grid}")


@main.command("filter")
@click.option("--data", required=True, help="FER2013 CSV, image folder, or toy[:N[:SEED]] to filter.")
@click.option("--method", type=click.Choice(["confidence", "likelihood", "ferplus"]), required=True,
              help="confidence: out-of-fold probability of the label; likelihood: Gaussian likelihood of the "
                   "embedding under the label's class; ferplus: drop what the FER+ votes contradict.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Filtered CSV (FER2013 layout); the report (.filter.md/.json) and a grid go beside it.")
@click.option("--drop-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
              help="Drop this share of each class's lowest-scored training faces.  [default: 0.1]")
@click.option("--threshold", type=float, default=None, help="Drop training faces scored below this instead.")
@click.option("--ferplus", "ferplus_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="FER+ votes aligned with --data (ferplus.csv.gz): ground truth for the report, needed by "
                   "--method ferplus.")
@click.option("--features", "features_run", type=click.Path(exists=True, path_type=Path), default=None,
              help="likelihood: embed with this classifier run (in-sample) instead of cross-fitted ones.")
@click.option("--seed", default=0, show_default=True, help="Folds and model seeds.")
@functools.partial(_judge_options, k=5)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@skip_option
@cache_option
@user_errors
def filter_data(data: str, method: str, out: Path, drop_fraction: float | None, threshold: float | None,
                ferplus_path: Path | None, features_run: Path | None, seed: int, judge_k: int,
                judge_sets: tuple[str, ...], judge_cache: Path | None, quiet: bool, skip_bad_rows: bool,
                no_cache: bool) -> None:  # fmt: skip
    """Score every training face's label, drop the least credible ones, write the rest as a new CSV.

    Validation and test faces are never scored or dropped. With --ferplus the report gives the
    method's precision and recall against FER+'s label errors (faces whose FER+ plurality is not
    their FER2013 label, or is unknown / not a face). Cross-fitted models (--judge-k folds) are
    cached. The faces scored are the training part of the standard splits; a classifier trained on
    the output re-carves its selection split from the Training faces that remain.
    """
    from feraug.data.fer2013 import write_fer2013_csv
    from feraug.data.ferplus import load_ferplus
    from feraug.evaluate.classifier import load_classifier
    from feraug.evaluate.crossfit import judge_config
    from feraug.evaluate.filtering import filter_dataset, write_filter_report

    real = _load(data, 48, skip_bad_rows, no_cache)
    fp = load_ferplus(ferplus_path) if ferplus_path is not None else None
    if drop_fraction is None and threshold is None and method != "ferplus":
        drop_fraction = 0.1
    net = load_classifier(features_run)[0] if features_run is not None else None
    result = filter_dataset(real, method, cfg=judge_config(judge_sets), ferplus=fp, drop_fraction=drop_fraction,
                            threshold=threshold, k=judge_k, seed=seed, features_net=net,
                            cache_dir=judge_cache or True, progress=not quiet, log=click.echo)  # fmt: skip
    kept = real.subset(result.kept_positions(len(real)))
    write_fer2013_csv(kept, out)
    files = write_filter_report(out, real, result)
    click.echo(files["md"].read_text())
    click.echo(f"wrote {len(kept)} of {len(real)} faces to {out} ({int(result.dropped.sum())} training faces "
               f"dropped)\nreport: {files['md']} (also {files['json'].name}, lowest-scored faces: "
               f"{files['grid'].name})")  # fmt: skip


@main.command("evaluate")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A classifier run folder (from `feraug train classifier`).",
)
@click.option("--data", default=None, help="Data to split and evaluate on.  [default: the run's --data]")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--tta", is_flag=True, help="Ten-crop test-time augmentation.")
@click.option(
    "--checkpoint",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="The selected weights or the last epoch's.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@user_errors
def evaluate(run_dir: Path, data: str | None, split: str, tta: bool, checkpoint: str, device: str) -> None:
    """Score a trained classifier on one split of the standard splits; JSON and plots go to RUN/eval/."""
    from feraug.data import load_dataset, standard_splits
    from feraug.evaluate.classifier import evaluate_classifier, load_classifier
    from feraug.evaluate.metrics import metrics_table
    from feraug.train.device import resolve_device

    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not path.is_file():
        raise click.ClickException(f"{run_dir} has no checkpoints/{checkpoint}.pt: not a classifier run folder")
    net, info = load_classifier(path)
    trained_on = (info.get("config") or {}).get("data")
    data = data or trained_on
    if data is None:
        raise click.ClickException("--data is required: the run does not record which data it was trained on")
    run_cfg = info.get("config") or {}
    ds = _with_label_source(load_dataset(data, size=net.size), run_cfg.get("labels"), run_cfg.get("ferplus"))
    splits = standard_splits(ds)
    subset = dict(zip(("train", "val", "test"), splits.datasets(ds), strict=True))[split]
    name = f"{split}{'_tta' if tta else ''}{'_last' if checkpoint == 'last' else ''}"
    metrics = evaluate_classifier(net, subset.with_note(splits.note), tta=tta, out_dir=run_dir / "eval", name=name,
                                  device=resolve_device(device), tta_padding=info.get("tta_padding"))  # fmt: skip
    click.echo(f"{checkpoint}.pt (epoch {info.get('epoch')}) on the {split} split of {ds.source} "
               f"({len(subset):,} faces{', ten-crop TTA' if tta else ''}):")  # fmt: skip
    click.echo(metrics_table(metrics))
    click.echo(f"split: {splits.note}")
    if trained_on is not None and data != trained_on:
        click.echo(f"note: trained on {trained_on}, evaluated on {data}")
    if split != "test":
        click.echo(f"note: the {split} split was {'trained' if split == 'train' else 'selected'} on, not a test score")
    click.echo(f"wrote {run_dir / 'eval' / f'{name}_metrics.json'} and plots")


@main.group("checkpoint")
def checkpoint_group() -> None:
    """Checkpoint files: convert a trusted old one to the plain, code-free format."""


@checkpoint_group.command("convert")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--allow", "allow", multiple=True, metavar="MODULE.NAME",
              help="A global the file needs (the refusal message names them); repeat for each.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the converted file.  [default: replace PATH atomically]")  # fmt: skip
@user_errors
def checkpoint_convert(path: Path, allow: tuple[str, ...], out: Path | None) -> None:
    """Rewrite a checkpoint YOU TRUST as plain tensors, numbers, strings, lists and dicts.

    feraug loads every checkpoint with weights_only=True and refuses files that need more. This
    allows exactly the globals named by --allow while reading PATH once, then writes a file that
    loads without them. Allowing a global lets the file call it: only do this for files you trust.
    """
    from feraug.train.checkpoint import convert_checkpoint

    written = convert_checkpoint(path, out or path, list(allow))
    click.echo(f"wrote {written} (loads with weights_only=True)")
