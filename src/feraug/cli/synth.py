"""``feraug translate`` and ``feraug sample``: write synthetic faces from a trained generator."""

from __future__ import annotations

from pathlib import Path

import click

from feraug.cli.common import user_errors


@click.command()
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


@click.command("sample")
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
