"""Every choice a command accepts is named in its ``--help``, and help speaks of methods, not of sources' nicknames.

A user learns what a command accepts from ``--help``; a list typed by hand there drifts from the
registry the command really checks against (it once offered three of seven CycleGAN presets, and
omitted the classifier the docs recommend on a CPU). These tests hold the help text to the registries.
"""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from feraug.cli import main
from feraug.config import available_presets
from feraug.nets.classifiers import CLASSIFIERS


def help_text(*path: str) -> str:
    done = CliRunner().invoke(main, [*path, "--help"], terminal_width=200)
    assert done.exit_code == 0, done.output
    return " ".join(done.output.split())  # click wraps lines: compare on single spaces


def commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += commands(cmd, (*prefix, name))
    return out


@pytest.mark.parametrize("family", ["cyclegan", "dcgan", "expression", "classifier"])
def test_every_shipped_preset_is_in_its_trainers_help(family: str) -> None:
    text = help_text("train", family)
    missing = [p for p in available_presets(family) if not re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", text)]
    assert not missing, f"`feraug train {family} --help` does not name presets {missing}"


def test_every_classifier_is_in_the_help_of_commands_that_take_one() -> None:
    for path in [("train", "classifier"), ("experiment", "augment"), ("sweep",)]:
        text = help_text(*path)
        missing = [a for a in CLASSIFIERS if not re.search(rf"\b{a}\b", text)]
        assert not missing, f"`feraug {' '.join(path)} --help` does not name classifiers {missing}"


def test_every_command_has_help_without_source_nicknames() -> None:
    for path in commands():
        text = help_text(*path)
        assert not re.search(r"seed[ -]?00\d|seed's", text, re.IGNORECASE), (
            f"`feraug {' '.join(path)} --help` names a write-up by a nickname: {text[:300]}")
