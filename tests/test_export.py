"""`feraug export`: TorchScript and ONNX generators that compute what the PyTorch ones compute."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from feraug.api import train
from feraug.config import CycleGANConfig, ExpressionGANConfig, NoiseGANConfig, build_config, parse_override
from feraug.data import make_toy_faces
from feraug.data.augment import to_float
from feraug.synth import export as export_module
from feraug.synth.export import TOLERANCE, export
from feraug.synth.sample import draw
from feraug.synth.translate import load_translator

SHORT = ["optim.epochs=1", "optim.epochs_decay=0", "train.steps_per_epoch=1", "train.ema_decay=0.5"]
FAMILIES = {
    "cyclegan": (CycleGANConfig, "cyclegan", ["net.ngf=4", "net.n_blocks=1", "net.ndf=4", "data.source=neutral",
                                              "data.target=disgust"]),
    "expression": (ExpressionGANConfig, "expression", ["net.ngf=4", "net.n_blocks=1", "net.ndf=4",
                                                       "optim.batch_size=4"]),
    "dcgan": (NoiseGANConfig, "cdcgan", ["net.ngf=4", "net.ndf=4", "net.z_dim=8", "optim.batch_size=8"]),
}  # fmt: skip
DIRECTIONS = {"cyclegan": ("disgust", None), "expression": (None, "surprise"), "dcgan": (None, "sad")}
ONNX_READY = importlib.util.find_spec("onnxruntime") is not None and not export_module.missing_onnx_packages()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> dict[str, Path]:
    """One-step runs of each family on toy faces, with EMA weights."""
    faces, root = make_toy_faces(n=400, seed=1), tmp_path_factory.mktemp("export")
    for family, (kind, preset, sets) in FAMILIES.items():
        cfg = build_config(kind, preset=preset, family=family,
                           overrides=[parse_override(s) for s in (*SHORT, *sets)])  # fmt: skip
        train(cfg, root / family, data=faces, progress=False)
    return {family: root / family for family in FAMILIES}


def reference(run: Path, family: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` inputs (faces other than the export's own check inputs, or latent vectors) and what PyTorch makes
    of them, through feraug's own generator loading."""
    source, target = DIRECTIONS[family]
    if family == "dcgan":
        z = torch.randn(n, 8, generator=torch.Generator().manual_seed(7))
        net = export_module.load_exportable(run, target=target).module
    else:
        z = to_float(make_toy_faces(n=max(n, 7), seed=7).images[:n])
        net = load_translator(run, source or "neutral", target=target).net
    with torch.no_grad():
        return z, net(z)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_torchscript_matches_pytorch_on_16_inputs(tmp_path: Path, runs: dict[str, Path], family: str) -> None:
    source, target = DIRECTIONS[family]
    result = export(runs[family], tmp_path / "g", source=source, target=target, formats=("torchscript",))
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["generator.json", "generator.pt"]
    info = json.loads((tmp_path / "g" / "generator.json").read_text())
    assert info["family"] == family and info["weights"] == "ema" and info["check"]["torchscript"] <= TOLERANCE
    assert info["output"]["shape"] == ["N", 1, 48, 48] and info["output"]["range"] == [-1.0, 1.0]
    x, expected = reference(runs[family], family, 16)
    assert info["input"]["shape"] == ["N", *x.shape[1:]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(result.files["torchscript"]))
    with torch.no_grad():
        assert (scripted(x) - expected).abs().max() <= TOLERANCE
        assert (scripted(x[:3]) - expected[:3]).abs().max() <= TOLERANCE  # any batch size


@pytest.mark.skipif(not ONNX_READY, reason="ONNX needs the export extra: pip install 'feraug[export]'")
@pytest.mark.parametrize("family", ["cyclegan", "expression"])
def test_onnx_matches_pytorch_on_16_faces(tmp_path: Path, runs: dict[str, Path], family: str) -> None:
    import onnxruntime

    source, target = DIRECTIONS[family]
    result = export(runs[family], tmp_path / "g", source=source, target=target)
    info = result.info
    assert info["files"] == {"torchscript": "generator.pt", "onnx": "generator.onnx"} and info["onnx_opset"] >= 17
    assert info["check"]["onnx"] <= TOLERANCE
    x, expected = reference(runs[family], family, 16)
    session = onnxruntime.InferenceSession(str(result.files["onnx"]), providers=["CPUExecutionProvider"])
    for n in (16, 1):
        got = session.run(None, {info["input"]["name"]: x[:n].numpy()})[0]
        assert got.shape == (n, 1, 48, 48) and np.abs(got - expected[:n].numpy()).max() <= TOLERANCE


def test_names_what_is_missing(tmp_path: Path, runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="translates in two directions: name the one to export"):
        export(runs["cyclegan"], tmp_path / "g", formats=("torchscript",))
    with pytest.raises(ValueError, match="translates into any emotion: name the target to export"):
        export(runs["expression"], tmp_path / "g", formats=("torchscript",))
    with pytest.raises(ValueError, match=r"samples Angry, Disgust.*: name the class to export"):
        export(runs["dcgan"], tmp_path / "g", formats=("torchscript",))
    monkeypatch.setattr(export_module, "missing_onnx_packages", lambda: ["onnxscript"])
    with pytest.raises(ModuleNotFoundError, match=r"ONNX export needs onnxscript: pip install 'feraug\[export\]'"):
        export(runs["cyclegan"], tmp_path / "g", source="neutral")
    assert not (tmp_path / "g").exists()
    export(runs["cyclegan"], tmp_path / "g", source="neutral", formats=("torchscript",), use_ema=False)
    with pytest.raises(FileExistsError, match="pass --force"):
        export(runs["cyclegan"], tmp_path / "g", source="neutral", formats=("torchscript",))
    assert json.loads((tmp_path / "g" / "generator.json").read_text())["weights"] == "raw"
    assert len(draw(runs["dcgan"], 2, "sad").faces) == 2  # exporting leaves the run usable


def test_the_command_reports_each_file_and_names_the_extra(
    tmp_path: Path, runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from feraug.cli import main

    formats = "all" if ONNX_READY else "torchscript"
    done = CliRunner().invoke(main, ["export", "--run", str(runs["dcgan"]), "--to", "sad", "--format", formats,
                                     "--out", str(tmp_path / "g")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert done.output.startswith("dcgan noise->sad (ema weights, step 1):\n  torchscript  ")
    assert "max |difference|" in done.output and done.output.endswith(f"{tmp_path / 'g' / 'generator.json'}\n")
    monkeypatch.setattr(export_module, "missing_onnx_packages", lambda: ["onnx", "onnxscript"])
    done = CliRunner().invoke(main, ["export", "--run", str(runs["dcgan"]), "--to", "sad", "--format", "onnx",
                                     "--out", str(tmp_path / "h")])  # fmt: skip
    assert done.exit_code == 1 and "ONNX export needs onnx and onnxscript: pip install 'feraug[export]'" in done.output
    done = CliRunner().invoke(main, ["export", "--run", str(runs["dcgan"]), "--from", "neutral", "--to", "sad",
                                     "--format", "torchscript", "--out", str(tmp_path / "h")])  # fmt: skip
    assert done.exit_code == 1 and "has no source emotion (drop --from)" in done.output
