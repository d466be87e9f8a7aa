"""CLI smoke tests: every subcommand's --help, the data commands and clean error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from feraug import __version__
from feraug.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def all_commands(group=main, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from all_commands(cmd, (*prefix, name))


@pytest.mark.parametrize("command", list(all_commands()), ids=" ".join)
def test_every_subcommand_has_help(command: tuple[str, ...]) -> None:
    code, out = run(*command, "--help")
    assert code == 0 and "Usage:" in out


def test_version() -> None:
    assert run("--version") == (0, f"feraug, version {__version__}\n")


def test_toy_stats_grid(tmp_path: Path) -> None:
    csv = tmp_path / "toy.csv"
    code, out = run("data", "toy", "--out", str(csv), "--n", "300", "--seed", "2")
    assert code == 0 and "wrote 300 toy faces" in out
    code, out = run("data", "stats", str(csv))
    assert code == 0
    assert "Training" in out and "PrivateTest" in out and "imbalance ratio" in out
    assert out.splitlines()[-2].split()[0] == "all" and out.splitlines()[-2].split()[-1] == "300"
    code, out = run("data", "grid", str(csv), "--out", str(tmp_path / "g.png"), "--per-class", "4")
    assert code == 0
    width, height = Image.open(tmp_path / "g.png").size
    assert height > 7 * 48 * 2 and width > 4 * 48 * 2


def test_builtin_toy_spec_and_folder_format(tmp_path: Path) -> None:
    code, out = run("data", "stats", "toy:210:1", "--json")
    assert code == 0 and '"imbalance_ratio"' in out
    code, _ = run("data", "toy", "--out", str(tmp_path / "folder"), "--n", "70", "--format", "folder", "--balanced")
    assert code == 0 and len(list((tmp_path / "folder").rglob("*.png"))) == 70
    code, out = run("data", "stats", str(tmp_path / "folder"))
    assert code == 0 and out.splitlines()[-2].split()[-1] == "70"


def test_errors_are_one_clean_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n9," + " ".join(["0"] * 2304) + ",Training\n")
    code, out = run("data", "stats", str(bad))
    assert code == 1 and "bad.csv:2: unknown emotion label 9" in out and "Traceback" not in out
    code, out = run("data", "stats", str(tmp_path / "missing.csv"))
    assert code == 1 and "dataset not found" in out
    code, out = run("data", "grid", "toy:70", "--out", str(tmp_path / "g.png"), "--split", "Holdout")
    assert code == 1 and "no 'Holdout' split" in out


def test_demo_runs(tmp_path: Path) -> None:
    code, out = run(
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--n",
        "700",
        "--gan-steps",
        "2",
        "--gan-epochs",
        "1",
        "--clf-epochs",
        "1",
        "--clf-steps",
        "2",
        "--seeds",
        "1",
    )
    assert code == 0, out
    demo = tmp_path / "demo"
    assert (demo / "toy_grid.png").is_file() and "imbalance ratio" in out
    assert (demo / "cyclegan-neutral-disgust" / "samples" / "latest.png").is_file()
    assert (demo / "synthetic_disgust.provenance.csv").is_file() and "neutral->disgust" in out
    assert (demo / "experiment" / "all" / "report.html").is_file() and "Did synthetic faces beat oversampling" in out
    assert (demo / "synthetic_disgust.quality" / "quality.json").is_file() and "real source (untranslated)" in out
    assert "GAN bar: the translations' transfer above control" in out
    assert "classifier test accuracy (mean over seeds): baseline" in out
    assert "a smoke run of the pipeline: 1 seed of a classifier" in out
    assert (demo / "selected_disgust.provenance.csv").is_file() and (demo / "experiment" / "comparison.md").is_file()
    assert "Did the 'selected' synthetic faces beat the 'all' ones?" in out
