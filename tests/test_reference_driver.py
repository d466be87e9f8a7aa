"""The reference-CycleGAN benchmark driver names the commit of the checkout it measured (no checkout needed here)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_cyclegan.py"
_SPEC = importlib.util.spec_from_file_location("reference_cyclegan", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
ref = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ref)


def git(root: Path, *args: str) -> str:
    cmd = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def test_the_checkout_commit_is_named_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "pytorch-CycleGAN-and-pix2pix"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("print('train')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "c")
    head = git(root, "rev-parse", "HEAD")

    line, ok = ref.describe_reference(root)  # another commit than the driver's
    assert not ok and f"commit {head} (WARNING: this driver was written against {ref.REFERENCE_COMMIT}" in line
    monkeypatch.setattr(ref, "REFERENCE_COMMIT", head)
    line, ok = ref.describe_reference(root)
    assert ok and line.endswith(f"commit {head} (the one this driver was written against)")
    (root / "train.py").write_text("print('edited')\n")
    line, ok = ref.describe_reference(root)
    assert not ok and f"commit {head} with local changes (WARNING" in line

    (tmp_path / "plain").mkdir()
    line, ok = ref.describe_reference(tmp_path / "plain")  # not a git checkout (nor inside one)
    assert not ok and "not a git checkout, commit unknown" in line
