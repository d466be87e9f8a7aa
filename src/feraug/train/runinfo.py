"""What is saved beside every run's outputs: resolved config, seed, versions, git revision, command."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import feraug


def git_revision() -> str | None:
    """``HEAD`` of the feraug source tree (with ``-dirty`` when modified), or None outside git."""
    src = Path(feraug.__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=5).stdout.strip()  # fmt: skip
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """``config.yaml``, atomically: a time budget rewrites it while the run goes on (its epoch lengths)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, run_dir / "config.yaml")


def write_run_info(run_dir: Path, config: dict[str, Any], seed: int, device: torch.device, world: int = 1,
                   extra: dict[str, Any] | None = None) -> None:  # fmt: skip
    """``config.yaml`` (the resolved config, reusable with ``--config``) and ``meta.json`` (plus ``extra``)."""
    write_config(run_dir, config)
    meta = {
        "seed": seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "device": str(device),
        "processes": world,
        "git_revision": git_revision(),
        "versions": {
            "feraug": feraug.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "platform": platform.platform(),
        **(extra or {}),
    }
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2))
