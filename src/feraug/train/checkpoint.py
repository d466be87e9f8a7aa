"""Checkpoints: written atomically, refused with a clear message when they belong to another model."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "feraug-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for the requested model; the message says why."""


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` to ``path`` via a temporary file and an atomic rename.

    A crash mid-write leaves the previous checkpoint intact, never a truncated file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(
    path: Path, *, family: str | None = None, arch: dict[str, Any] | None = None, map_location: str = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint, checking that it is feraug's and (optionally) of ``family`` with ``arch``."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a feraug checkpoint (expected format {FORMAT})")
    if family is not None and state.get("family") != family:
        raise CheckpointError(f"{path}: checkpoint of a {state.get('family')!r} model, expected {family!r}")
    if arch is not None and state.get("arch") != arch:
        diff = sorted(k for k in {*arch, *state.get("arch", {})} if arch.get(k) != state.get("arch", {}).get(k))
        raise CheckpointError(
            f"{path}: checkpoint architecture differs in {diff}: "
            f"checkpoint {[state.get('arch', {}).get(k) for k in diff]} vs. this run {[arch.get(k) for k in diff]}"
        )
    return state


def file_sha256(path: Path) -> str:
    """Content hash of a checkpoint, recorded in synthetic sets' provenance."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
