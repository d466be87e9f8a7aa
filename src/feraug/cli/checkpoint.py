"""``feraug checkpoint``: convert a trusted old checkpoint to the plain, code-free format."""

from __future__ import annotations

from pathlib import Path

import click

from feraug.cli.common import user_errors


@click.group("checkpoint")
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
    from feraug.core.checkpoint import convert_checkpoint

    written = convert_checkpoint(path, out or path, list(allow))
    click.echo(f"wrote {written} (loads with weights_only=True)")
