"""``feraug data``: inspect datasets and make the built-in toy faces."""

from __future__ import annotations

import json
from pathlib import Path

import click

from feraug.cli.common import cache_option, data_argument, load_faces, size_option, skip_option, user_errors


@click.group()
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

    ds = load_faces(data, size, skip_bad_rows, no_cache)
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
    from feraug.figures.grid import class_grid, save_image

    ds = load_faces(data, size, skip_bad_rows, no_cache)
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
