"""``feraug train``: one command per GAN family and one for the expression classifier."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from feraug.cli.common import STARTED, field_overrides, user_errors, with_label_source


@click.group()
def train() -> None:
    """Train a GAN of any family (one command each) or an expression classifier into a run folder."""


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
    from feraug.config import build_config
    from feraug.train.budget import parse_duration
    from feraug.train.families import get_family
    from feraug.train.launch import train as run_training

    config_class = get_family(family).config
    budget = parse_duration(time_budget) if time_budget is not None else None
    overrides = field_overrides({**fields, "optim.epochs": epochs, "optim.epochs_decay": epochs_decay,
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
                           started=STARTED)  # fmt: skip
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
@click.option("--preset", default=None, help="cyclegan, cyclegan-improved, wcyclegan, ecyclegan, ecyclegan-wgangp, "
              "ecyclegan-diffaug or cyclegan-diffaug (described below).  [default: cyclegan]")
@_gan_run_options
@user_errors
def train_cyclegan(data: str | None, source: str | None, target: str | None, preset: str | None,
                   **run: Any) -> None:  # fmt: skip
    """Train a CycleGAN translating SOURCE faces into TARGET faces (and back).

    Presets reproduce Birenbaum's write-up: cyclegan (original), cyclegan-improved (weighted cycle loss, two
    learning rates, soft labels, augmentation), wcyclegan (Wasserstein critics with gradient penalty);
    and Pasini et al.'s: ecyclegan (RDNB generator, perceptual loss: needs --set loss.perceptual=CLASSIFIER_RUN),
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
    """Train a noise GAN that samples new faces of a class (Birenbaum's "Fake GAN").

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


@train.command("classifier")
@click.option("--data", default=None, help="FER2013 CSV, image folder, or toy[:N[:SEED]] (split by standard_splits).")
@click.option("--arch", default=None, help="simple, surreal, vgg, fast or resnet.  [default: simple]")
@click.option("--preset", default=None, help="Start from a classifier preset: classifier-fast-cpu (the CPU recipe "
              "experiments train by default; --arch and --set win over it).  [default: none]")
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
@click.option("--tta", is_flag=True, help="Ten-crop test-time augmentation for the test (selection sees plain faces).")
@click.option("--time-budget", default=None, metavar="DURATION",
              help="Fit the whole schedule into e.g. 15m or 900s: a short measurement fixes epochs and steps, "
              "written into config.yaml so --resume and re-runs are exact.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def train_classifier(
    data: str | None, arch: str | None, preset: str | None, config_file: Path | None, sets: tuple[str, ...],
    out: Path, resume: bool,
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
    from feraug.evaluate.classifier import evaluate_classifier
    from feraug.evaluate.classifier import train_classifier as run_training
    from feraug.evaluate.metrics import metrics_table
    from feraug.train.budget import parse_duration
    from feraug.train.classifier_run import tta_padding_for
    from feraug.train.device import resolve_device

    given = {"preset": preset, "data": data, "arch": arch, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "seed": seed,
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
    ds = with_label_source(load_dataset(cfg.data, size=cfg.size), cfg.labels, cfg.ferplus)
    splits = standard_splits(ds)
    train_ds, val_ds, test_ds = splits.datasets(ds)
    click.echo(f"{ds.source}: {len(train_ds):,} train / {len(val_ds):,} val / {len(test_ds):,} test faces; "
               f"{splits.note}")  # fmt: skip
    budget = parse_duration(time_budget) if time_budget is not None else None
    test_passes = len(test_ds) / max(len(val_ds), 1) * (10 if cfg.tta else 1)  # in plain validation passes
    run = run_training(cfg, train_ds, val_ds, out, resume=resume, progress=not quiet, time_budget=budget,
                       started=STARTED, reserve_validations=test_passes)  # fmt: skip
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
