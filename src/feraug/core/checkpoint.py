"""Checkpoints: written atomically, read without running code, refused clearly when they belong to another model.

A checkpoint holds only tensors, numbers, strings, lists, tuples and dicts (configs as plain dicts,
RNG states as tensors), so every load uses ``torch.load(weights_only=True)``: run folders and
trained generators are shared between people, and an unpickler that may call arbitrary globals
would run whatever a file asks for. A file that needs more is refused before anything in it runs;
:func:`convert_checkpoint` turns a trusted one into the plain format, allowing exactly the globals
its owner names.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "feraug-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for the requested model; the message says why."""


class UnsafeCheckpointError(CheckpointError):
    """A file that would need Python code (a global beyond plain data) to unpickle; nothing in it ran."""


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
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise _unsafe(path, e) from None
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


def _unsafe(path: Path, error: pickle.UnpicklingError) -> UnsafeCheckpointError:
    try:  # every global the file asks for (read from the pickle's opcodes, nothing executed), not just the first
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        names = []
    names = names or sorted(set(re.findall(r"GLOBAL (\S+)", str(error)))) or ["<unknown>"]
    return UnsafeCheckpointError(
        f"{path}: refused: unpickling it would call {', '.join(names)}, and feraug never runs code from a "
        "checkpoint (weights_only=True). If the file is a checkpoint you trust (e.g. written by an older "
        f"feraug), convert it once: feraug checkpoint convert {path} "
        + " ".join(f"--allow {n}" for n in names)
    )


def _plain(obj: Any, where: str) -> Any:
    """``obj`` as tensors, numbers, strings, lists, tuples and dicts (what a weights-only load accepts)."""
    if obj is None or isinstance(obj, bool | int | float | str | torch.Tensor):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_plain(v, f"{where}[{i}]") for i, v in enumerate(obj))
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    raise CheckpointError(f"cannot convert {where}: a {kind} is not plain data")


def _resolve(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise CheckpointError(f"--allow {name}: no such global ({e})") from e


def convert_checkpoint(src: Path, dst: Path, allow: list[str]) -> Path:
    """Rewrite a trusted checkpoint that needs the globals ``allow`` as a plain, weights-only one.

    Only the named globals are allowed (``torch.serialization.safe_globals``), so a file that asks
    for anything else is still refused; numpy arrays and scalars become tensors and numbers.
    """
    if not src.is_file():
        raise FileNotFoundError(f"checkpoint not found: {src}")
    allowed = [_resolve(n) for n in allow]
    if np.dtype in allowed:  # a numpy dtype is rebuilt through its per-type class (numpy.dtypes.Float32DType, ...)
        allowed += [type(np.dtype(t)) for t in np.sctypeDict.values()]
    try:
        with torch.serialization.safe_globals(allowed):
            state = torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _unsafe(src, e) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{src}: not a feraug checkpoint (expected format {FORMAT})")
    return save_checkpoint({k: v for k, v in _plain(state, "checkpoint").items() if k != "format"}, dst)
