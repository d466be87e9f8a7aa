"""Export a trained generator to TorchScript and ONNX, so faces can be made without feraug (or Python).

One direction of one run becomes a module with one input: faces ``float32 [N,1,H,W]`` in [-1, 1] for a
CycleGAN or expression run (the expression target is fixed at export), latent vectors
``float32 [N, z_dim]`` (standard normal) for a noise GAN (its class fixed at export). The output is
always faces ``float32 [N,1,H,W]`` in [-1, 1] (named ``generated``). ``generator.json`` beside the
files says exactly that, with the conversions from and to ``uint8`` pixels, and the run, checkpoint
and weights exported.

Each written file is run against the PyTorch module on 16 inputs before the export counts as done
(maximum absolute difference at most :data:`TOLERANCE`); the differences go into the JSON. ONNX needs
the ``export`` extra (``onnx`` and ``onnxscript`` for torch's exporter, ``onnxruntime`` for that check).
The CPU graph is what gets exported (some layers take a CPU-specific path); it runs on any device.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import feraug
from feraug.config import NoiseGANConfig
from feraug.core.checkpoint import CheckpointError, file_sha256, load_checkpoint
from feraug.data.augment import to_float
from feraug.data.classes import EMOTIONS, emotion_index, emotion_name
from feraug.data.toy import make_toy_faces
from feraug.nets.registry import build_gan_net
from feraug.synth.translate import TRANSLATING_FAMILIES, load_translator
from feraug.train.run_folder import last_checkpoint
from feraug.train.runinfo import git_revision

FORMATS = ("torchscript", "onnx")
FILES = {"torchscript": "generator.pt", "onnx": "generator.onnx"}
TOLERANCE = 1e-4
CHECK_N = 16
ONNX_PACKAGES = ("onnx", "onnxscript")
FACES_IN = {"name": "faces", "dtype": "float32", "range": [-1.0, 1.0], "from_uint8": "x = pixels / 127.5 - 1"}
FACES_OUT = {"name": "generated", "dtype": "float32", "range": [-1.0, 1.0],
             "to_uint8": "pixels = clamp(round((y + 1) * 127.5), 0, 255)"}  # fmt: skip


class ToClass(nn.Module):
    """A noise generator fixed to one class: ``z -> faces``, one input like every exported generator."""

    def __init__(self, generator: nn.Module, label: int | None) -> None:
        super().__init__()
        self.generator, self.label = generator, label

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.label is None:
            return self.generator(z)
        return self.generator(z, torch.full((z.shape[0],), self.label, dtype=torch.long))


@dataclass(frozen=True)
class Exportable:
    """A generator as one eval-mode module with one input, 16 example inputs, and what describes it."""

    module: nn.Module
    example: torch.Tensor
    info: dict[str, Any]


@dataclass(frozen=True)
class ExportResult:
    """The folder written, its files by format, and the description (``generator.json``)."""

    out: Path
    files: dict[str, Path]
    info: dict[str, Any]


def missing_onnx_packages() -> list[str]:
    """Packages of the ``export`` extra that ONNX export needs and this environment lacks."""
    return [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]


def _noise_generator(run: Path, target: str | None, use_ema: bool, state: dict[str, Any]) -> Exportable:
    cfg = NoiseGANConfig.model_validate(state["config"])
    if target is None and len(cfg.data.classes) > 1:
        raise ValueError(f"run {run} samples {', '.join(cfg.data.classes)}: name the class to export (--to)")
    name = emotion_name(emotion_index(target)) if target is not None else cfg.data.classes[0]
    if name not in cfg.data.classes:
        raise ValueError(f"run {run} learned {', '.join(cfg.data.classes)}; it cannot sample {name}")
    weights = "ema" if use_ema and "G" in state["ema"] else "raw"
    net = build_gan_net(state["arch"]["G"])
    net.load_state_dict(state["ema" if weights == "ema" else "networks"]["G"])
    module = ToClass(net, cfg.data.classes.index(name) if cfg.net.conditional else None).eval()
    z = torch.randn(CHECK_N, cfg.net.z_dim, generator=torch.Generator().manual_seed(0))
    size = cfg.data.size
    z_in = {"name": "z", "dtype": "float32", "shape": ["N", cfg.net.z_dim], "distribution": "standard normal"}
    info = {"direction": f"noise->{name}".lower(), "source": None, "target": name, "weights": weights,
            "input": z_in, "output": {**FACES_OUT, "shape": ["N", 1, size, size]}}  # fmt: skip
    return Exportable(module, z, info)


def load_exportable(run: str | Path, *, source: str | None = None, target: str | None = None,
                    use_ema: bool = True) -> Exportable:  # fmt: skip
    """The generator of ``run`` for one direction: CycleGAN needs ``source`` (``target`` is implied),
    expression needs ``target`` (its generator never reads the source), a noise GAN ``target`` when it
    learned several classes. EMA weights when the run kept them and ``use_ema``."""
    run = Path(run)
    ckpt = last_checkpoint(run)
    state = load_checkpoint(ckpt)
    family = state.get("family")
    if family == "dcgan":
        if source is not None:
            raise ValueError(f"run {run} samples faces from noise: it has no source emotion (drop --from)")
        exportable = _noise_generator(run, target, use_ema, state)
    elif family in TRANSLATING_FAMILIES:
        if family == "cyclegan" and source is None:
            raise ValueError(f"run {run} translates in two directions: name the one to export (--from)")
        if family == "expression" and target is None:
            raise ValueError(f"run {run} translates into any emotion: name the target to export (--to)")
        stand_in = next(e for e in EMOTIONS if target is None or e != emotion_name(emotion_index(target)))
        tr = load_translator(run, source or stand_in, target=target, use_ema=use_ema)
        size = tr.config.data.size
        faces = to_float(make_toy_faces(n=CHECK_N, seed=0, size=size).images)
        shape = ["N", 1, size, size]
        info = {"direction": tr.direction if source is not None else f"any->{tr.target}".lower(),
                "source": tr.source if source is not None else None, "target": tr.target, "weights": tr.weights,
                "input": {**FACES_IN, "shape": shape}, "output": {**FACES_OUT, "shape": shape}}  # fmt: skip
        exportable = Exportable(tr.net, faces, info)
    else:
        raise CheckpointError(f"{ckpt}: checkpoint of a {family!r} model; export reads cyclegan, expression and "
                              "dcgan runs")  # fmt: skip
    exportable.info.update({"family": family, "run": str(run), "checkpoint": str(ckpt),
                            "checkpoint_sha256": file_sha256(ckpt), "step": int(state["step"])})  # fmt: skip
    return exportable


def _torchscript(g: Exportable, path: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # torch 2.13 marks torch.jit deprecated; the tracer's warnings are about shape checks that pass
        warnings.simplefilter("ignore", (DeprecationWarning, torch.jit.TracerWarning))
        torch.jit.save(torch.jit.trace(g.module, (g.example,)), str(path))


def _onnx(g: Exportable, path: Path) -> int:
    """Export with torch's dynamo-based exporter (the TorchScript-based one cannot size the CPU stem's output);
    returns the opset written."""
    import onnx

    names = {"input_names": [g.info["input"]["name"]], "output_names": [g.info["output"]["name"]]}
    exporter_log = logging.getLogger("torch.onnx")  # it logs warnings such as "torchvision is not installed"
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(g.module, (g.example,), dynamo=True, verbose=False,
                                        dynamic_shapes=({0: torch.export.Dim("N")},), **names)  # fmt: skip
    finally:
        exporter_log.setLevel(level)
    program.save(str(path))
    return int(next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")))


def max_difference(path: Path, fmt: str, g: Exportable) -> float | None:
    """Largest absolute difference between the exported file and the PyTorch module on the example inputs;
    None for ONNX without onnxruntime."""
    with torch.no_grad():
        expected = g.module(g.example).numpy()
    if fmt == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)
            got = torch.jit.load(str(path))(g.example).numpy()
    elif importlib.util.find_spec("onnxruntime") is None:
        return None
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {g.info["input"]["name"]: g.example.numpy()})[0]
    return float(np.abs(got - expected).max())


def export(run: str | Path, out: str | Path, *, source: str | None = None, target: str | None = None,
           use_ema: bool = True, formats: Sequence[str] = FORMATS, force: bool = False) -> ExportResult:  # fmt: skip
    """Write ``formats`` of ``run``'s generator (see :func:`load_exportable`) and ``generator.json`` to ``out``.

    Each file is checked against the PyTorch module (at most :data:`TOLERANCE` apart) before ``out`` is
    renamed into place: a failed or interrupted export leaves no folder that looks complete.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown export format {(unknown or [''])[0]!r}: expected {' and/or '.join(FORMATS)}")
    if "onnx" in formats and (missing := missing_onnx_packages()):
        raise ModuleNotFoundError(f"ONNX export needs {' and '.join(missing)}: pip install 'feraug[export]' "
                                  "(or export TorchScript only)")  # fmt: skip
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists: pick another --out or pass --force to replace it")
    g = load_exportable(run, source=source, target=target, use_ema=use_ema)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        info = {**g.info, "files": {f: FILES[f] for f in formats}, "exported_on": "cpu",
                "torch": torch.__version__, "feraug_version": feraug.__version__, "git_revision": git_revision(),
                "check": {"n": CHECK_N}}  # fmt: skip
        for fmt in formats:
            if fmt == "torchscript":
                _torchscript(g, tmp / FILES[fmt])
            else:
                info["onnx_opset"] = _onnx(g, tmp / FILES[fmt])
            diff = max_difference(tmp / FILES[fmt], fmt, g)
            if diff is not None and not diff <= TOLERANCE:
                raise ArithmeticError(f"the exported {fmt} generator differs from the PyTorch one by up to {diff:.3g} "
                                      f"(more than {TOLERANCE:g}) on {CHECK_N} inputs")  # fmt: skip
            info["check"][fmt] = diff if diff is not None else "not run: onnxruntime is not installed"
        (tmp / "generator.json").write_text(json.dumps(info, indent=2))
        if out.exists():  # only with force: the old export goes only once the new one is complete
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, {f: out / FILES[f] for f in formats}, info)
