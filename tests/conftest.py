"""Shared fixtures: small toy datasets, and the real FER2013 copy when this machine has it."""

from __future__ import annotations

from pathlib import Path

import pytest

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
