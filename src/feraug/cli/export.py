"""``feraug export``: a trained generator as TorchScript and ONNX files, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from feraug.cli.common import user_errors


@click.command("export")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A CycleGAN, expression or noise-GAN run folder.")
@click.option("--from", "source", default=None, help="CycleGAN runs: the emotion translated from (picks the "
              "direction).")
@click.option("--to", "target", default=None, help="Expression runs: the target emotion; noise GANs of several "
              "classes: the class to sample.")
@click.option("--format", "fmt", type=click.Choice(["all", "torchscript", "onnx"]), default="all",
              show_default=True, help="Files to write (ONNX needs the extra: pip install 'feraug[export]').")
@click.option("--no-ema", is_flag=True, help="Export the raw generator even when EMA weights exist.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing --out.")
@user_errors
def export(run_dir: Path, source: str | None, target: str | None, fmt: str, no_ema: bool, out: Path,
           force: bool) -> None:  # fmt: skip
    """Export one direction of a trained generator to OUT/generator.pt (TorchScript) and OUT/generator.onnx.

    OUT/generator.json describes the input (faces in [-1, 1], or latent vectors), the output and the
    conversion to pixels. Each file is run against the PyTorch generator on 16 inputs before the export
    counts as done (at most 1e-4 apart).
    """
    from feraug.synth.export import FORMATS
    from feraug.synth.export import export as run_export

    try:
        result = run_export(run_dir, out, source=source, target=target, use_ema=not no_ema,
                            formats=FORMATS if fmt == "all" else (fmt,), force=force)  # fmt: skip
    except ImportError as e:
        raise click.ClickException(str(e)) from e
    info = result.info
    click.echo(f"{info['family']} {info['direction']} ({info['weights']} weights, step {info['step']}):")
    for name, path in result.files.items():
        check = info["check"][name]
        shown = f"max |difference| {check:.2g} on {info['check']['n']} inputs" if isinstance(check, float) else check
        click.echo(f"  {name:<12} {path}  ({shown})")
    click.echo(f"description: {result.out / 'generator.json'}")
