"""Drive the reference StarGAN (yunjey/stargan) for side-by-side timing with feraug's expression family.

The reference is never vendored into this repository: it is a plain checkout kept elsewhere and passed in as
``ref_root``. This module only *drives* it, the way its ``main.py`` does for ``--dataset RaFD`` (single-label
domains, softmax cross-entropy: what seven emotions are):

    solver = Solver(celeba_loader=None, rafd_loader=loader, config); solver.train()

Nothing of the training step is restated here. Each call of the step runs the reference's own
``Solver.train()`` for ``n_critic`` iterations (one with ``n_critic=1``), on a stand-in loader that hands out one
fixed random batch, so the timed work is exactly its loop body (``solver.py``, ``train``): the D update
(``-mean D_src(x) + mean D_src(G(x, c_trg).detach()) + λ_cls·CE(D_cls(x), y) + λ_gp·GP`` on random interpolates)
and, every ``n_critic``-th iteration, the G update (``-mean D_src(G(x, c_trg)) + λ_cls·CE(D_cls(x'), trg) +
λ_rec·‖G(x', c_org) − x‖₁``), with its per-iteration ``randperm`` targets, one-hot codes and seven ``.item()``
log values. What one ``train()`` call adds around the loop (fetching a fixed debug batch and making its seven
target codes, one ``print``) is a few tiny tensors, well under 1% of a step. Its log, sample, checkpoint and
learning-rate-decay steps are set beyond any iteration a call reaches, so none of them runs.

Written against upstream commit 94dd002e93a2863d9b987a937b85925b80f7a19f (2020-04-27; ``model.py`` and
``solver.py`` last changed in 3c5aa6b, 2018-04-30). :func:`describe_reference` says which commit a checkout is at
(and whether it has local changes); ``bench_expression_step.py`` prints it with its results and warns when it is
not that commit.

Grayscale: the reference's networks hard-code three image channels (``Conv2d(3+c_dim, ...)`` as G's first layer,
``Conv2d(curr_dim, 3, ...)`` as its last, ``Conv2d(3, conv_dim, ...)`` as D's first), and no constructor argument
changes that. The smallest change that makes them take feraug's 48x48 one-channel faces is to replace exactly
those three convolutions, right after the reference has built its networks and before its optimizers see them,
by convolutions identical in every respect (kernel, stride, padding, bias, PyTorch's default initialisation,
which the reference never overrides) except one image channel instead of three: G's stem reads ``1 + c_dim``
channels and its head writes one, D's first layer reads one. Everything else (widths, norms, activations, the
transposed-conv upsampling, the heads) is the reference's own. This is done by wrapping the ``Generator`` and
``Discriminator`` names that ``solver.py`` imported, for the lifetime of the build only.

The reference's top-level module names (``model``, ``solver``, ``logger``, ``data_loader``) are generic, so they
are imported with ``ref_root`` at the front of ``sys.path`` only while the solver is built, and dropped from
``sys.modules`` afterwards (any module of the same name that was loaded before is restored); the built solver
keeps working, its methods hold their own module globals. ``solver.py`` imports ``torchvision.utils.save_image``
(used only to write sample and test images); when torchvision is not installed, a stand-in that refuses to be
called is supplied, after checking against the checkout's source that this is its only use of torchvision.
No dataset is ever built: the batch is one fixed random ``(images, labels)`` pair on the host, as its RaFD
loader would deliver it (images uniform in [-1, 1]); the loop moves it to the device each iteration itself.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import itertools
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from reference_cyclegan import describe_reference as describe_checkout  # sibling scripts: benchmarks/ is on sys.path
from reference_cyclegan import reference_importable
from torch import nn

REFERENCE_COMMIT = "94dd002e93a2863d9b987a937b85925b80f7a19f"
_REFERENCE_MODULES = ("model", "solver", "logger", "data_loader")
_NEVER = 10**12  # an iteration no call reaches: log/sample/checkpoint/decay steps never fire
N_EMOTIONS = 7


def describe_reference(ref_root: Path) -> tuple[str, bool]:
    """A line naming the checkout's commit for the results, and whether it is :data:`REFERENCE_COMMIT` unchanged."""
    return describe_checkout(ref_root, REFERENCE_COMMIT)


@contextlib.contextmanager
def _reference_importable(ref_root: Path) -> Iterator[None]:
    """The checkout importable for the block (``reference_cyclegan.reference_importable``: the reference's
    ``model``/``solver``/``logger``/``data_loader`` never outlive it), and a torchvision stand-in installed by
    :func:`_ensure_torchvision` removed again afterwards."""
    had_torchvision = "torchvision" in sys.modules
    try:
        with reference_importable(ref_root, _REFERENCE_MODULES):
            yield
    finally:
        if not had_torchvision and getattr(sys.modules.get("torchvision"), "_feraug_stand_in", False):
            for name in [name for name in sys.modules if name.split(".", 1)[0] == "torchvision"]:
                del sys.modules[name]


def _ensure_torchvision(ref_root: Path) -> None:
    """Let ``solver.py`` import without torchvision: a checked stand-in for ``torchvision.utils.save_image``.

    ``solver.py`` uses torchvision only to write sample and test images, which never happens in a timed step
    (its ``sample_step`` is set beyond every iteration). The stand-in is used only after checking that the
    checkout's ``solver.py`` imports nothing else from torchvision and ``model.py`` nothing at all; calling it
    raises.
    """
    if importlib.util.find_spec("torchvision") is not None:
        return
    solver_src = (ref_root / "solver.py").read_text(encoding="utf-8")
    uses = re.findall(r"^.*torchvision.*$", solver_src, flags=re.MULTILINE)
    if [u.strip() for u in uses] != ["from torchvision.utils import save_image"] or "torchvision" in (
        ref_root / "model.py"
    ).read_text(encoding="utf-8"):
        raise RuntimeError(
            "this reference checkout uses torchvision beyond save_image in solver.py; install torchvision"
        )

    def save_image(*args: object, **kwargs: object) -> None:
        raise RuntimeError("torchvision stand-in: the reference tried to write an image during a timed step")

    package = types.ModuleType("torchvision", "Stand-in for torchvision (save_image only, never called).")
    utils = types.ModuleType("torchvision.utils")
    utils.save_image = save_image  # type: ignore[attr-defined]
    package.utils = utils  # type: ignore[attr-defined]
    package._feraug_stand_in = True  # type: ignore[attr-defined]
    sys.modules["torchvision"], sys.modules["torchvision.utils"] = package, utils


def reference_config(
    batch_size: int,
    *,
    ngf: int = 64,
    ndf: int = 64,
    n_blocks: int = 6,
    d_layers: int = 4,
    n_critic: int = 1,
    size: int = 48,
) -> argparse.Namespace:
    """The ``config`` that ``main.py`` would pass to ``Solver`` for the benchmark's run.

    ``main.py``'s defaults, except: ``--dataset RaFD --c_dim 7 --image_size size --g_conv_dim ngf --d_conv_dim
    ndf --g_repeat_num n_blocks --d_repeat_num d_layers --batch_size batch_size --n_critic n_critic
    --use_tensorboard False`` (its logger needs TensorFlow), ``num_iters`` = ``n_critic`` (one call of the step)
    and log/sample/checkpoint/learning-rate steps that no call reaches. ``main.py``'s default ``--n_critic`` is
    5; the benchmark sets 1 so that each step is one D and one G update, as feraug's is. Its default
    ``--d_repeat_num 6`` is for 128x128 images (2x2 patches); at 48x48 four stride-2 layers give 3x3 patches.
    """
    if size % 2**d_layers:
        raise ValueError(f"the reference's D halves {size}x{size} images {d_layers} times: its domain classifier's "
                         f"kernel (size / 2**d_layers) must be whole")  # fmt: skip
    never = _NEVER
    return argparse.Namespace(
        # model configuration
        c_dim=N_EMOTIONS, c2_dim=8, celeba_crop_size=178, rafd_crop_size=256, image_size=size, g_conv_dim=ngf,
        d_conv_dim=ndf, g_repeat_num=n_blocks, d_repeat_num=d_layers, lambda_cls=1.0, lambda_rec=10.0,
        lambda_gp=10.0,
        # training configuration
        dataset="RaFD", batch_size=batch_size, num_iters=n_critic, num_iters_decay=100000, g_lr=0.0001,
        d_lr=0.0001, n_critic=n_critic, beta1=0.5, beta2=0.999, resume_iters=None,
        selected_attrs=["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"],
        # test configuration and miscellaneous
        test_iters=200000, num_workers=1, mode="train", use_tensorboard=False,
        # directories (never written: nothing is logged, sampled or saved)
        celeba_image_dir="data/celeba/images", attr_path="data/celeba/list_attr_celeba.txt",
        rafd_image_dir="data/RaFD/train", log_dir="stargan/logs", model_save_dir="stargan/models",
        sample_dir="stargan/samples", result_dir="stargan/results",
        # step sizes: never reached
        log_step=never, sample_step=never, model_save_step=never, lr_update_step=never,
    )  # fmt: skip


def _one_channel(conv: nn.Module, *, in_channels: int | None = None, out_channels: int | None = None) -> nn.Conv2d:
    """``conv`` rebuilt with ``in_channels``/``out_channels`` changed and nothing else (default init, as built)."""
    if type(conv) is not nn.Conv2d:
        raise RuntimeError(f"expected the reference's nn.Conv2d here, found {type(conv).__name__}")
    return nn.Conv2d(
        conv.in_channels if in_channels is None else in_channels,
        conv.out_channels if out_channels is None else out_channels,
        conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups,
        bias=conv.bias is not None, padding_mode=conv.padding_mode,
    )  # fmt: skip


def _grayscale_generator(generator: type[nn.Module]) -> Callable[..., nn.Module]:
    """The reference ``Generator`` class, built as usual, then its first and last conv for one image channel."""

    def build(conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> nn.Module:
        net = generator(conv_dim, c_dim, repeat_num)
        first, last = net.main[0], net.main[-2]
        if first.in_channels != 3 + c_dim or last.out_channels != 3 or not isinstance(net.main[-1], nn.Tanh):
            raise RuntimeError("the reference Generator's layout is not the one this driver was written against")
        net.main[0] = _one_channel(first, in_channels=1 + c_dim)
        net.main[-2] = _one_channel(last, out_channels=1)
        return net

    return build


def _grayscale_discriminator(discriminator: type[nn.Module]) -> Callable[..., nn.Module]:
    """The reference ``Discriminator`` class, built as usual, then its first conv for one image channel."""

    def build(image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> nn.Module:
        net = discriminator(image_size, conv_dim, c_dim, repeat_num)
        if net.main[0].in_channels != 3:
            raise RuntimeError("the reference Discriminator's layout is not the one this driver was written against")
        net.main[0] = _one_channel(net.main[0], in_channels=1)
        return net

    return build


class FixedBatchLoader:
    """What ``Solver.train()`` draws from (its RaFD ``DataLoader``): here the same ``(images, labels)`` forever."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.batch = (images, labels)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return itertools.repeat(self.batch)


def build_reference_solver(
    ref_root: Path,
    batch_size: int,
    *,
    ngf: int = 64,
    ndf: int = 64,
    n_blocks: int = 6,
    d_layers: int = 4,
    n_critic: int = 1,
    size: int = 48,
    seed: int = 0,
    device: str = "cpu",
    verbose: bool = False,
) -> tuple[Any, argparse.Namespace]:
    """Build the reference ``Solver`` as ``main.py`` would (one-channel nets, see the module docstring).

    Returns ``(solver, config)``. Seeds torch's global generator with ``seed`` before the networks are built (the
    reference draws its targets with ``torch.randperm`` and its interpolation weights with ``torch.rand``, both
    from it). The batch is images ``(batch_size, 1, size, size)`` uniform in [-1, 1] and labels in 0..6, both on
    the host and from a generator seeded with ``seed``. Sets ``torch.backends.cudnn.benchmark = True`` as
    ``main.py`` does (only CUDA reads it). The solver is put on ``device`` (the reference itself picks CUDA when
    it is available). Its console output (it prints both networks) is swallowed unless ``verbose``.
    """
    ref_root = Path(ref_root)
    if not (ref_root / "solver.py").is_file() or not (ref_root / "model.py").is_file():
        raise FileNotFoundError(f"{ref_root} is not a checkout of yunjey/stargan")
    config = reference_config(batch_size, ngf=ngf, ndf=ndf, n_blocks=n_blocks, d_layers=d_layers,
                              n_critic=n_critic, size=size)  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 1, size, size, generator=gen) * 2 - 1
    labels = torch.randint(N_EMOTIONS, (batch_size,), generator=gen)
    log = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with _reference_importable(ref_root), log:
        _ensure_torchvision(ref_root)
        solver_module = importlib.import_module("solver")
        solver_module.Generator = _grayscale_generator(solver_module.Generator)
        solver_module.Discriminator = _grayscale_discriminator(solver_module.Discriminator)
        torch.backends.cudnn.benchmark = True  # main.py: "For fast training."
        torch.manual_seed(seed)
        solver = solver_module.Solver(None, FixedBatchLoader(images, labels), config)
    dev = torch.device(device)
    solver.device = dev
    solver.G.to(dev)
    solver.D.to(dev)
    return solver, config


def make_reference_step(
    ref_root: Path,
    batch_size: int,
    *,
    ngf: int = 64,
    ndf: int = 64,
    n_blocks: int = 6,
    d_layers: int = 4,
    n_critic: int = 1,
    size: int = 48,
    seed: int = 0,
    device: str = "cpu",
) -> Callable[[], None]:
    """Return a closure running the reference's own ``Solver.train()`` for ``n_critic`` iterations.

    That is ``n_critic`` D updates and one G update (one of each with ``n_critic=1``), on the fixed batch of
    :func:`build_reference_solver`; only the closure is meant to be timed. Every call starts the loop at
    iteration 0 again (``train()`` has no other entry), which is why a call spans a whole ``n_critic`` cycle.
    """
    solver, _ = build_reference_solver(ref_root, batch_size, ngf=ngf, ndf=ndf, n_blocks=n_blocks,
                                       d_layers=d_layers, n_critic=n_critic, size=size, seed=seed,
                                       device=device)  # fmt: skip
    sink = io.StringIO()

    def step() -> None:
        with contextlib.redirect_stdout(sink):  # train() prints "Start training..." on entry
            solver.train()
        sink.seek(0)
        sink.truncate()

    return step
