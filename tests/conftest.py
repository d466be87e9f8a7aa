"""Shared fixtures: small toy datasets, one-thread runs, a tiny classifier run, the real FER2013 copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from feraug.data import FaceDataset, make_toy_faces

REAL_FER2013 = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


@pytest.fixture(scope="session")
def toy() -> FaceDataset:
    """700 toy faces with FER2013 proportions and Usage splits."""
    return make_toy_faces(n=700, seed=3)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the parsed-data cache of tests out of the user's home."""
    monkeypatch.setenv("FERAUG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def real_fer2013() -> Path:
    """The shared real FER2013 file; tests using it skip where it is absent (users' clones)."""
    if not REAL_FER2013.is_file():
        pytest.skip(f"real FER2013 not available at {REAL_FER2013}")
    return REAL_FER2013


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny nets train many times faster on one thread than on cores shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def classifier_run_32(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """A classifier run folder made as users make one (`feraug train classifier`): one step of a tiny `fast`
    net on 32x32 toy faces (toy:300); a perceptual loss's φ in the tests."""
    from feraug.cli import main

    out = tmp_path_factory.mktemp("clf") / "run"
    args = ["train", "classifier", "--data", "toy:300", "--arch", "fast", "--out", str(out), "--epochs", "1",
            "--steps-per-epoch", "1", "--batch-size", "16", "--device", "cpu", "--quiet",
            "--set", "arch_kwargs={stem: 4, widths: [8, 16], depth: 1, fc: 16}", "--set", "size=32"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out
