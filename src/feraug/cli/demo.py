"""``feraug demo``: the whole pipeline end to end on the built-in toy faces."""

from __future__ import annotations

from pathlib import Path

import click

from feraug.cli.common import user_errors


@click.command()
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
