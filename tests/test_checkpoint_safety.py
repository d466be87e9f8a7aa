"""No checkpoint feraug reads can run code: a planted ``__reduce__`` payload is refused by every loading path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from feraug.cli import main
from feraug.core.checkpoint import (
    FORMAT,
    UnsafeCheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from feraug.evaluate.classifier import load_classifier


class Payload:
    """What a malicious checkpoint holds: unpickling it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": Payload(marker)}, path)


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gan") / "run"
    code, output = cli("train", "cyclegan", "--data", "toy:140:1", "--source", "neutral", "--target", "happy",
                       "--epochs", "1", "--epochs-decay", "0", "--steps-per-epoch", "1", "--batch-size", "1",
                       "--set", "net.ngf=8", "--set", "net.n_blocks=1", "--set", "net.ndf=8", "--device", "cpu",
                       "--quiet", "--out", str(out))  # fmt: skip
    assert code == 0, output
    return out


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clf") / "run"
    code, output = cli("train", "classifier", "--data", "toy:300", "--arch", "vgg", "--out", str(out), "--epochs",
                       "1", "--steps-per-epoch", "1", "--batch-size", "16", "--device", "cpu", "--quiet",
                       "--set", "arch_kwargs={width: 0.125, fc: 32}", "--set", "size=32")  # fmt: skip
    assert code == 0, output
    return out


def planted_copy(run: Path, tmp_path: Path, *names: str) -> tuple[Path, Path]:
    """A copy of ``run`` whose checkpoints ``names`` carry the payload; and the file the payload would create."""
    copy, marker = tmp_path / "shared-run", tmp_path / "PWNED"
    shutil.copytree(run, copy)
    for name in names:
        plant(copy / "checkpoints" / name, marker)
    return copy, marker


def refused(code: int, output: str, marker: Path) -> None:
    assert code == 1, output
    assert "refused" in output and "system" in output and "feraug checkpoint convert" in output, output
    assert not marker.exists(), "the payload ran"


def test_translate_refuses(gan_run: Path, tmp_path: Path) -> None:
    run, marker = planted_copy(gan_run, tmp_path, "last.pt")
    refused(*cli("translate", "--run", str(run), "--n", "2", "--from", "neutral", "--out", str(tmp_path / "s.csv")),
            marker)  # fmt: skip


def test_gan_resume_refuses(gan_run: Path, tmp_path: Path) -> None:
    run, marker = planted_copy(gan_run, tmp_path, "last.pt")
    refused(*cli("train", "cyclegan", "--resume", "--out", str(run), "--quiet"), marker)


def test_classifier_evaluate_refuses(classifier_run: Path, tmp_path: Path) -> None:
    run, marker = planted_copy(classifier_run, tmp_path, "best.pt", "last.pt")
    refused(*cli("evaluate", "--run", str(run), "--device", "cpu"), marker)
    refused(*cli("evaluate", "--run", str(run), "--checkpoint", "last", "--device", "cpu"), marker)


def test_classifier_resume_and_load_refuse(classifier_run: Path, tmp_path: Path) -> None:
    run, marker = planted_copy(classifier_run, tmp_path, "best.pt", "last.pt")
    refused(*cli("train", "classifier", "--resume", "--out", str(run), "--quiet"), marker)
    with pytest.raises(UnsafeCheckpointError, match=r"refused: unpickling it would call posix\.system"):
        load_classifier(run)
    assert not marker.exists()


def test_plain_checkpoint_round_trips(tmp_path: Path) -> None:
    state = {"w": torch.arange(3.0), "rng": torch.get_rng_state(), "config": {"a": [1, 2.5, "x", None]}, "t": (1, 2)}
    loaded = load_checkpoint(save_checkpoint(state, tmp_path / "c.pt"))
    assert loaded["format"] == FORMAT and loaded["config"] == state["config"] and loaded["t"] == (1, 2)
    assert torch.equal(loaded["w"], state["w"]) and torch.equal(loaded["rng"], state["rng"])


def test_trusted_old_checkpoint_converts_with_exactly_the_named_globals(tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    torch.save({"format": FORMAT, "mean": np.arange(4, dtype=np.float32), "n": np.int64(7)}, old)
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint(old)
    needed = [w.split()[0] for w in str(e.value).split("--allow ")[1:]]
    assert needed and all("numpy" in n for n in needed), str(e.value)

    assert len(needed) > 1  # arrays and numpy scalars need several globals
    code, output = cli("checkpoint", "convert", str(old), "--allow", needed[0])  # too few globals: still refused
    assert code == 1 and "refused" in output
    code, output = cli("checkpoint", "convert", str(old), *[a for n in needed for a in ("--allow", n)])
    assert code == 0, output
    state = load_checkpoint(old)
    assert torch.equal(state["mean"], torch.arange(4, dtype=torch.float32)) and state["n"] == 7

    marker = tmp_path / "PWNED"
    plant(tmp_path / "evil.pt", marker)
    code, output = cli("checkpoint", "convert", str(tmp_path / "evil.pt"), "--allow", "numpy.dtype")
    assert code == 1 and "posix.system" in output and not marker.exists()
