"""``feraug augment``: the real training faces plus a synthetic set, as a dataset to take home."""

from __future__ import annotations

from pathlib import Path

import click

from feraug.cli.common import cache_option, user_errors

#: feraug.data.SPLITS, spelled out: importing that loads torch, which ``feraug --help`` must not pay for.
SPLIT_NAMES = ("Training", "PublicTest", "PrivateTest")


@click.command("augment")
@click.option("--data", required=True, help="Real faces: FER2013 CSV, image folder, or toy[:N[:SEED]].")
@click.option("--synthetic", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="A synthetic set: the CSV feraug translate, sample or select wrote (provenance beside it).")
@click.option("--provenance", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The synthetic set's provenance CSV, when it is not beside the set.")
@click.option("--split", "splits", type=click.Choice(SPLIT_NAMES), multiple=True, default=("Training",),
              show_default=True, help="Real faces to include, by split (repeatable); synthetic faces are always "
              "Training faces.")
@click.option("--format", "fmt", type=click.Choice(["csv", "folder"]), default="csv", show_default=True,
              help="csv: emotion,pixels,Usage (gzipped when --out ends in .gz); folder: OUT/<split>/<class>/*.png.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="CSV file or folder to write; the JSON record goes beside the CSV or into the folder.")
@click.option("--force", is_flag=True, help="Replace an existing output.")
@cache_option
@user_errors
def augment(data: str, synthetic: Path, provenance: Path | None, splits: tuple[str, ...], fmt: str, out: Path,
            force: bool, no_cache: bool) -> None:  # fmt: skip
    """Write the real faces of --data (its training faces by default) plus a synthetic set as one dataset.

    Refuses faces of another size, a synthetic class the real faces lack, a synthetic set without
    provenance, and synthetic faces translated from validation or test faces (they would carry a
    held-out face into training). Read it back in Python with feraug.api.AugmentedFaces(OUT).
    """
    from feraug.synth.takehome import augment as run_augment

    result = run_augment(data, synthetic, out, provenance=provenance, splits=splits, fmt=fmt, force=force,
                         cache_dir=not no_cache)  # fmt: skip
    counts = result.record["counts"]
    click.echo(f"{'class':<10}{'real':>9}{'added':>9}{'after':>9}")
    for name, before in counts["before"].items():
        click.echo(f"{name:<10}{before:>9}{counts['added'][name]:>9}{counts['after'][name]:>9}")
    click.echo(f"{'total':<10}{counts['real']:>9}{counts['synthetic']:>9}{counts['real'] + counts['synthetic']:>9}")
    click.echo(f"wrote {result.out}\nrecord: {result.record_path}")
