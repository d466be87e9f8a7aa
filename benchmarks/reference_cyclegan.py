"""Drive the reference CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix) for side-by-side timing.

The reference is never vendored into this repository: it is a plain checkout kept elsewhere and passed in as
``ref_root``. This module only *drives* it, the way its ``train.py`` does:

    opt = TrainOptions().parse(); opt.device = ...; model = create_model(opt); model.setup(opt)
    model.set_input(batch); model.optimize_parameters()

Written against upstream commit 2a7afba2895d52556dd5dfe07e8555ef657ced6f (2025-08-06). Since that version the
reference has no ``--gpu_ids``: ``train.py`` sets ``opt.device`` itself (``util.util.init_ddp()``), so here it is set
from the ``device`` argument. :func:`describe_reference` says which commit a checkout is at (and whether it has local
changes); ``bench_cyclegan_step.py`` prints it with its results and warns when it is not that commit.

The reference's top-level package names (``models``, ``util``, ``options``, ``data``) are generic, so they are
imported with ``ref_root`` at the front of ``sys.path`` only while the model is built, and every module of those
names is dropped from ``sys.modules`` afterwards (any module of the same name that was loaded before is restored).
The built model keeps working: its classes hold their own module globals.

Its option parser imports the reference's ``data`` package, which needs torchvision. When torchvision is not
installed, a stand-in ``data`` module is supplied to the parser that answers only ``get_option_setter("unaligned")``
with a no-op, which is exactly what the reference's ``UnalignedDataset`` inherits from ``BaseDataset``; this is
checked against the checkout's source before it is used. No dataset is ever built: the batch is one fixed random
tensor pair, as a data loader would deliver it (values in [-1, 1]).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import random
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

REFERENCE_COMMIT = "2a7afba2895d52556dd5dfe07e8555ef657ced6f"
_REFERENCE_PACKAGES = ("models", "util", "options", "data")
_GENERATORS = {6: "resnet_6blocks", 9: "resnet_9blocks"}


def reference_commit(ref_root: Path) -> tuple[str, bool] | None:
    """``(commit, has local changes)`` of the reference checkout, or None when it is not a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ref_root), *args], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip

    try:
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return None


def describe_reference(ref_root: Path, expected: str | None = None) -> tuple[str, bool]:
    """A line naming the checkout's commit for the results, and whether it is ``expected`` (the commit the driver
    was written against; this driver's :data:`REFERENCE_COMMIT` when None) unchanged."""
    expected = expected or REFERENCE_COMMIT
    found = reference_commit(ref_root)
    if found is None:
        return (f"reference {ref_root}: not a git checkout, commit unknown (WARNING: this driver was written against "
                f"{expected})", False)  # fmt: skip
    commit, dirty = found
    changes = " with local changes" if dirty else ""
    if commit == expected and not dirty:
        return f"reference {ref_root}: commit {commit} (the one this driver was written against)", True
    return (f"reference {ref_root}: commit {commit}{changes} (WARNING: this driver was written against "
            f"{expected}; results may not compare)", False)  # fmt: skip


@contextlib.contextmanager
def reference_importable(ref_root: Path, packages: tuple[str, ...] = _REFERENCE_PACKAGES) -> Iterator[None]:
    """Make the reference checkout importable for the duration of the block, then remove every trace of it.

    Modules that already carried one of the reference's top-level ``packages`` names are set aside for the block
    and restored afterwards, so nothing else in the process sees the reference's ``models``/``util``/... .
    """

    def _is_reference_module(name: str) -> bool:
        return name.split(".", 1)[0] in packages

    root = str(ref_root.resolve())
    shadowed = {name: mod for name, mod in sys.modules.items() if _is_reference_module(name)}
    for name in shadowed:
        del sys.modules[name]
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(root)
        for name in [name for name in sys.modules if _is_reference_module(name)]:
            del sys.modules[name]
        sys.modules.update(shadowed)


def _ensure_data_package(ref_root: Path) -> None:
    """Import the reference's ``data`` package, or a checked stand-in for its option hook without torchvision.

    ``options/base_options.py`` imports ``data`` only to call ``data.get_option_setter(opt.dataset_mode)``. For the
    default ``unaligned`` mode the reference returns ``BaseDataset.modify_commandline_options``, which returns the
    parser unchanged; the stand-in does the same and refuses any other mode.
    """
    try:
        importlib.import_module("data")
        return
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("torchvision"):
            raise
    for name in [name for name in sys.modules if name.split(".", 1)[0] == "data"]:
        del sys.modules[name]
    source = (ref_root / "data" / "unaligned_dataset.py").read_text(encoding="utf-8")
    if "modify_commandline_options" in source:
        raise RuntimeError(
            "this reference checkout's UnalignedDataset defines its own options; install torchvision so that its "
            "option parser can import the real data package"
        )

    def get_option_setter(dataset_name: str) -> Callable[[argparse.ArgumentParser, bool], argparse.ArgumentParser]:
        if dataset_name != "unaligned":
            raise RuntimeError(f"stand-in data package knows only the 'unaligned' dataset, not {dataset_name!r}")
        return lambda parser, is_train: parser

    stand_in = types.ModuleType("data", "Stand-in for the reference's data package (option hook only).")
    stand_in.get_option_setter = get_option_setter  # type: ignore[attr-defined]
    sys.modules["data"] = stand_in


def reference_argv(batch_size: int, *, ngf: int = 64, n_blocks: int = 6, size: int = 48) -> list[str]:
    """Command-line arguments of the reference ``train.py`` run that matches feraug's CycleGAN benchmark.

    ``--dataroot``, ``--checkpoints_dir`` and ``--name`` are left to the caller.
    """
    if n_blocks not in _GENERATORS:
        raise ValueError(f"the reference has ResNet generators with 6 or 9 blocks, not {n_blocks}")
    return [
        "--model", "cycle_gan",
        "--netG", _GENERATORS[n_blocks],
        "--netD", "basic",
        "--norm", "instance",
        "--gan_mode", "lsgan",
        "--input_nc", "1",
        "--output_nc", "1",
        "--load_size", str(size),
        "--crop_size", str(size),
        "--pool_size", "50",
        "--lambda_A", "10",
        "--lambda_B", "10",
        "--lambda_identity", "0.5",
        "--batch_size", str(batch_size),
        "--ngf", str(ngf),
        "--ndf", "64",
        "--init_type", "normal",
        "--init_gain", "0.02",
        "--lr", "0.0002",
        "--beta1", "0.5",
    ]  # fmt: skip


def _resolve_device(device: str) -> torch.device:
    """The device ``train.py`` would put in ``opt.device`` (``init_ddp`` uses ``cuda:<current>`` on a GPU)."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def build_reference_model(
    ref_root: Path,
    batch_size: int,
    *,
    ngf: int = 64,
    n_blocks: int = 6,
    size: int = 48,
    seed: int = 0,
    device: str = "cpu",
    verbose: bool = False,
) -> tuple[Any, argparse.Namespace]:
    """Build and set up the reference ``CycleGANModel`` as its ``train.py`` would, and feed it one fixed batch.

    Returns ``(model, opt)``. ``opt`` comes from the reference's own ``TrainOptions().parse()`` run on
    :func:`reference_argv` (its options file goes to a temporary directory that is removed again). Seeds torch's
    and Python's global generators with ``seed`` before the networks are built (the reference's image pool draws
    from Python's ``random``). The batch is ``{'A', 'B'}`` of shape ``(batch_size, 1, size, size)``, uniform in
    [-1, 1] from a generator seeded with ``seed``, plus dummy ``A_paths``/``B_paths``. The reference's console
    output is swallowed unless ``verbose``.
    """
    ref_root = Path(ref_root)
    if not (ref_root / "models" / "cycle_gan_model.py").is_file():
        raise FileNotFoundError(f"{ref_root} is not a checkout of junyanz/pytorch-CycleGAN-and-pix2pix")
    dev = _resolve_device(device)
    log = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with reference_importable(ref_root), tempfile.TemporaryDirectory(prefix="ref_cyclegan_") as tmp, log:
        _ensure_data_package(ref_root)
        train_options = importlib.import_module("options.train_options")
        models = importlib.import_module("models")
        argv = [
            "train.py",
            "--dataroot", tmp,
            "--checkpoints_dir", tmp,
            "--name", "feraug_reference_bench",
            *reference_argv(batch_size, ngf=ngf, n_blocks=n_blocks, size=size),
        ]  # fmt: skip
        saved_argv = sys.argv
        sys.argv = argv
        try:
            opt = train_options.TrainOptions().parse()
        finally:
            sys.argv = saved_argv
        opt.device = dev  # train.py: opt.device = init_ddp()
        torch.manual_seed(seed)
        random.seed(seed)
        model = models.create_model(opt)
        model.setup(opt)

    gen = torch.Generator().manual_seed(seed)
    shape = (batch_size, 1, size, size)
    batch = {
        "A": torch.rand(shape, generator=gen) * 2 - 1,
        "B": torch.rand(shape, generator=gen) * 2 - 1,
        "A_paths": [f"A_{i}.png" for i in range(batch_size)],
        "B_paths": [f"B_{i}.png" for i in range(batch_size)],
    }
    model.set_input(batch)
    return model, opt


def make_reference_step(
    ref_root: Path,
    batch_size: int,
    *,
    ngf: int = 64,
    n_blocks: int = 6,
    size: int = 48,
    seed: int = 0,
    device: str = "cpu",
) -> Callable[[], None]:
    """Return a closure running one reference CycleGAN training step on a fixed batch.

    Builds the reference ``CycleGANModel`` exactly as its ``train.py`` would for ``--model cycle_gan --netG
    resnet_6blocks`` (``resnet_9blocks`` when ``n_blocks=9``) ``--netD basic --norm instance --gan_mode lsgan
    --input_nc 1 --output_nc 1 --load_size size --crop_size size --pool_size 50 --lambda_A 10 --lambda_B 10
    --lambda_identity 0.5 --batch_size batch_size --ngf ngf --ndf 64 --init_type normal --init_gain 0.02 --lr 0.0002
    --beta1 0.5`` in training mode on ``device``, calls ``model.setup(opt)`` and ``model.set_input(...)`` with one
    fixed random batch (see :func:`build_reference_model`). Each call of the closure runs
    ``model.optimize_parameters()`` once (both generator and discriminator updates); only that is meant to be timed.
    """
    model, _ = build_reference_model(
        ref_root, batch_size, ngf=ngf, n_blocks=n_blocks, size=size, seed=seed, device=device
    )

    def step() -> None:
        model.optimize_parameters()

    return step
