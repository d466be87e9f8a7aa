"""The ``feraug`` command: thin click wrappers that parse arguments and call the Python API.

Errors that users cause (a bad file, an unknown emotion, a bad option value) are turned into a
one-line ``Error: ...`` and exit status 1 instead of a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from feraug import __version__


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
    """Train GANs (and, later, classifiers) into a run folder."""


def _overrides(pairs: dict[str, object], sets: tuple[str, ...]) -> list[dict[str, object]]:
    from feraug.config import parse_override

    out: list[dict[str, object]] = []
    for key, value in pairs.items():
        if value is not None:
            section, _, name = key.partition(".")
            out.append({section: {name: value}})
    return out + [parse_override(s) for s in sets]


@train.command("cyclegan")
@click.option("--data", default=None, help="FER2013 CSV, image folder, or toy[:N[:SEED]].  [default: toy]")
@click.option("--source", default=None, help="Emotion of domain A, e.g. neutral.")
@click.option("--target", default=None, help="Emotion of domain B, e.g. disgust.")
@click.option("--preset", default=None, help="cyclegan, cyclegan-improved or wcyclegan.  [default: cyclegan]")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file of config sections (applied after the preset).",
)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any field, e.g. optim.lr_d=1e-4.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--epochs", type=int, default=None, help="Epochs at constant learning rate.")
@click.option("--epochs-decay", type=int, default=None, help="Epochs of linear learning-rate decay.")
@click.option("--batch-size", type=int, default=None)
@click.option("--steps-per-epoch", type=int, default=None, help="Cap steps per epoch (quick runs).")
@click.option("--seed", type=int, default=None)
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def train_cyclegan(
    data: str | None, source: str | None, target: str | None, preset: str | None, config_file: Path | None,
    sets: tuple[str, ...], out: Path, resume: bool, epochs: int | None, epochs_decay: int | None,
    batch_size: int | None, steps_per_epoch: int | None, seed: int | None, device: str | None, quiet: bool,
) -> None:  # fmt: skip
    """Train a CycleGAN translating SOURCE faces into TARGET faces (and back).

    Presets reproduce seed 000: cyclegan (original), cyclegan-improved (weighted cycle loss, two
    learning rates, soft labels, augmentation), wcyclegan (Wasserstein critics with gradient penalty).
    Every config field can be overridden with --config FILE and --set section.key=value.
    """
    from feraug.api import train_cyclegan as run_training
    from feraug.config import CycleGANConfig, build_config

    overrides = _overrides({"data.data": data, "data.source": source, "data.target": target,
                            "optim.epochs": epochs, "optim.epochs_decay": epochs_decay,
                            "optim.batch_size": batch_size, "train.steps_per_epoch": steps_per_epoch,
                            "train.seed": seed, "train.device": device}, sets)  # fmt: skip
    if resume:
        saved = out / "config.yaml"
        if not saved.is_file():
            raise click.ClickException(f"--resume: {out} has no config.yaml (is it a run folder?)")
        cfg = build_config(CycleGANConfig, file=saved, overrides=overrides)
    else:
        cfg = build_config(CycleGANConfig, preset=preset, file=config_file, overrides=overrides)
    trainer = run_training(cfg, out, resume=resume, progress=not quiet)
    click.echo(f"finished step {trainer.step} in {out}; samples in {out / 'samples'}")


@main.command()
@click.option(
    "--run",
    "run_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A CycleGAN run folder.",
)
@click.option("--n", type=click.IntRange(1), required=True, help="Number of faces to translate.")
@click.option("--from", "source", required=True, help="Emotion to translate from (one of the run's two domains).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="FER2013-format CSV to write (.csv or .csv.gz); provenance and a PNG grid go beside it.",
)
@click.option("--seed", default=0, show_default=True, help="Which training faces are translated.")
@click.option("--no-ema", is_flag=True, help="Use the raw generator even when EMA weights exist.")
@user_errors
def translate(run_dir: Path, n: int, source: str, out: Path, seed: int, no_ema: bool) -> None:
    """Translate N training faces with a trained CycleGAN into a synthetic FER2013 CSV."""
    from feraug.synth.translate import translate as run_translate

    result = run_translate(run_dir, n, source, out, seed=seed, use_ema=not no_ema)
    click.echo(f"wrote {result.n} {result.direction} faces to {result.csv}\n"
               f"provenance: {result.provenance}\ngrid: {result.grid}")  # fmt: skip


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--n", default=3000, show_default=True, type=click.IntRange(70), help="Number of toy faces.")
@click.option("--seed", default=0, show_default=True)
@click.option("--gan-steps", default=60, show_default=True, type=click.IntRange(1), help="CycleGAN steps per epoch.")
@click.option("--gan-epochs", default=2, show_default=True, type=click.IntRange(1),
              help="CycleGAN epochs at constant learning rate (as many again with decay).")
@user_errors
def demo(out: Path, n: int, seed: int, gan_steps: int, gan_epochs: int) -> None:
    """End-to-end demo on the built-in toy faces: data, a tiny CycleGAN, synthetic faces with provenance."""
    from feraug.demo import run_demo

    run_demo(out, n=n, seed=seed, gan_steps=gan_steps, gan_epochs=gan_epochs, echo=click.echo)
