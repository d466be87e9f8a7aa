"""What the ``feraug`` commands share: user-error reporting, the data options and loaders, config overrides."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from feraug.data.dataset import FaceDataset

STARTED = time.perf_counter()  # a --time-budget counts from here: the command's start, imports included


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


def load_faces(data: str, size: int, skip_bad_rows: bool, no_cache: bool) -> FaceDataset:
    """DATA as faces of ``size`` pixels, honouring --skip-bad-rows and --no-cache."""
    from feraug.data import load_dataset  # lazily: ``feraug --help`` must not pay for torch

    return load_dataset(data, size=size, skip_bad_rows=skip_bad_rows, cache_dir=not no_cache)


def with_label_source(ds: FaceDataset, labels: str | None, ferplus: str | None) -> FaceDataset:
    """Apply a classifier config's label source (``labels``/``ferplus`` fields) to loaded faces."""
    if labels in (None, "fer2013"):
        return ds
    from feraug.data.ferplus import load_ferplus, relabel_with_majority

    return relabel_with_majority(ds, load_ferplus(ferplus))  # type: ignore[arg-type]


def field_overrides(pairs: dict[str, object], sets: tuple[str, ...]) -> list[dict[str, object]]:
    """Config overrides from the options given (``"section.field": value``, None = not given), then ``--set``s."""
    from feraug.config import parse_override

    out: list[dict[str, object]] = []
    for key, value in pairs.items():
        if value is not None:
            section, _, name = key.partition(".")
            out.append({section: {name: value}})
    return out + [parse_override(s) for s in sets]
