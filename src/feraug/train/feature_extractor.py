"""The perceptual loss's frozen ``φ`` from a file, and the faces it learned from.

``φ`` is, by default, a trained feraug expression classifier (a checkpoint or run folder, from
``feraug train classifier``); a VGG19 state-dict file is accepted when the user has one (ImageNet
weights cannot be downloaded at run time). Loading happens here, in the training engine, so that
the loss (:mod:`feraug.gan.perceptual`) and the CycleGAN model receive a network and open no file.

A face classifier may have trained on faces the run is later judged on, which would leak them into
the generator through the loss: :func:`extractor_training_faces` finds them, and a GAN run adds
them to its ``training_rows.npy`` (:func:`perceptual_records`), where the augmentation experiment's
generator-overlap guard refuses a fold that tests on any of them.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from feraug.core.checkpoint import FORMAT, CheckpointError, file_sha256
from feraug.data.ferplus import load_ferplus, relabel_with_majority
from feraug.data.load import load_dataset
from feraug.data.splits import standard_splits
from feraug.gan.perceptual import FeatureExtractor
from feraug.nets.classifiers import classifier_from_arch
from feraug.nets.vgg19 import ImageNetInput, vgg19_features, vgg19_layer_names
from feraug.train.provenance import read_training_rows, rows_sha256
from feraug.train.run_folder import best_checkpoint, last_checkpoint

#: Pasini et al.'s layer, "the last convolutional layer", for both kinds (VGG19: ``conv5_4``).
DEFAULT_LAYER = "last_conv"


class _ClassifierInput(nn.Module):
    """GAN faces as the classifier's own evaluation feeds them: float [-1, 1], at the classifier's size.

    :func:`feraug.evaluate.classifier.predict_proba` passes float faces in [-1, 1] to the network
    unchanged, and that is the range GAN generators emit (tanh), so nothing is rescaled. A face of
    another size is refused (as ``ExpressionClassifier.features`` refuses it), not resized: the
    classifier never saw resized faces, so their features would be a different ``φ``.
    """

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.channels, self.size = channels, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.size, self.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"the feature extractor's classifier takes faces [N, {', '.join(map(str, expected))}] "
                             f"(its training size), got {list(x.shape)}: train the classifier at the GAN's "
                             "data.size, or pick an extractor of that size")  # fmt: skip
        return x


def _checkpoint_file(path: Path) -> Path:
    """The file to load: ``path`` itself, or a classifier run folder's ``checkpoints/best.pt``."""
    if not path.exists():
        raise FileNotFoundError(f"feature extractor not found: {path} (expected a feraug classifier checkpoint or "
                                "run folder, or a VGG19 state-dict file)")  # fmt: skip
    if not path.is_dir():
        return path
    best = best_checkpoint(path)
    if best.is_file():
        return best
    last = last_checkpoint(path)
    if last.is_file():
        family = _read(last).get("family")
        raise CheckpointError(f"{path}: a run folder of a {family!r} model (no checkpoints/best.pt), not a "
                              "finished feraug classifier run: the feature extractor must be an expression "
                              "classifier")  # fmt: skip
    raise CheckpointError(f"{path}: a folder without checkpoints/best.pt, not a feraug classifier run folder")


def _read(path: Path) -> dict[str, Any]:
    """The file's contents, loaded weights-only (no code from it runs); a clear error for anything else."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:  # the globals it asks for, read from the pickle's opcodes (nothing executed)
            names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:
            names = []
        if not names:
            raise CheckpointError(f"{path}: not a PyTorch weights file, so not a feature extractor") from None
        raise CheckpointError(f"{path}: refused as feature extractor: unpickling it would call {', '.join(names)}, "
                              "and feraug loads weights only; save a plain state dict instead "
                              "(torch.save(model.state_dict(), path))") from None  # fmt: skip
    except Exception as e:
        raise CheckpointError(f"{path}: not a PyTorch weights file, so not a feature extractor "
                              f"({type(e).__name__}: {e})") from e  # fmt: skip
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a feraug classifier checkpoint or a VGG19 "
                              "state dict")  # fmt: skip
    return state


def _vgg19_weights(state: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor] | None:
    """The ``features`` part of a VGG19 state dict (torchvision's full one or features only); None if not VGG."""
    if not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        return None
    if any(k.startswith("features.") for k in state):
        weights = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}  # fmt: skip
    else:
        weights = dict(state)
    if "0.weight" not in weights:
        return None
    if any(k.endswith("running_mean") for k in weights):
        raise CheckpointError(f"{path}: a batch-norm VGG (vgg19_bn) state dict; the perceptual loss takes plain VGG19")
    return weights


def _layer_index(layer: str | int, names: Mapping[str, int], n_layers: int, path: Path) -> int:
    if isinstance(layer, int) and not isinstance(layer, bool):
        index = layer + n_layers if layer < 0 else layer
        if not 0 <= index < n_layers:
            raise ValueError(f"{path}: layer {layer} out of range: the network has layers 0..{n_layers - 1}")
        return index
    if layer in names:
        return names[layer]
    raise ValueError(f"{path}: unknown layer {layer!r}; expected an index 0..{n_layers - 1} or one of "
                     f"{', '.join(names)}")  # fmt: skip


def _vgg19_extractor(weights: dict[str, torch.Tensor], layer: str | int, path: Path, sha: str) -> FeatureExtractor:
    features = vgg19_features()
    try:
        features.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: not a VGG19 state dict (its keys or shapes differ from torchvision's vgg19: "
                              f"{str(e).splitlines()[0]})") from e  # fmt: skip
    names = vgg19_layer_names()
    index = _layer_index(names["conv5_4"] if layer == DEFAULT_LAYER else layer, names, len(features), path)
    name = next((n for n, i in names.items() if i == index), f"features.{index}")
    pools = sum(isinstance(m, nn.MaxPool2d) for m in list(features)[: index + 1])
    net = nn.Sequential(ImageNetInput(2**pools), *list(features)[: index + 1])
    return FeatureExtractor(net, {
        "kind": "vgg19", "path": str(path), "sha256": sha, "layer": name, "layer_index": index, "input_size": None,
        "input": f"[-1, 1] -> [0, 1], gray repeated to RGB, ImageNet mean/std; upsampled only below {2**pools}x"
                 f"{2**pools}",
    })  # fmt: skip


def _classifier_layers(trunk: nn.Module, neck: nn.Module, layer: str | int,
                       path: Path) -> tuple[list[nn.Module], str, int | None]:  # fmt: skip
    """The modules up to ``layer`` (after the input check), the layer's canonical name and trunk index."""
    if layer == "features":
        return [trunk, nn.Flatten(1), neck], "features", None
    if layer == "trunk":
        return [trunk], "trunk", None
    if not isinstance(trunk, nn.Sequential):
        raise ValueError(f"{path}: this classifier's trunk is not a sequence of layers; use 'trunk' or 'features'")
    modules = list(trunk)
    names = {f"trunk.{i}": i for i in range(len(modules))}
    convs = [i for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]
    if layer == DEFAULT_LAYER:
        if not convs:
            raise ValueError(f"{path}: the classifier's trunk has no convolution; pick a layer index")
        index = convs[-1]
    else:
        index = _layer_index(layer, names, len(modules), path)
    return modules[: index + 1], f"trunk.{index}", index


def _classifier_extractor(state: dict[str, Any], layer: str | int, path: Path, sha: str) -> FeatureExtractor:
    if not isinstance(state.get("arch"), dict) or "weights" not in state:
        raise CheckpointError(f"{path}: a classifier checkpoint without arch or weights")
    net = classifier_from_arch(state["arch"])
    net.load_state_dict(state["weights"])
    layers, name, index = _classifier_layers(net.trunk, net.neck, layer, path)
    frozen = nn.Sequential(_ClassifierInput(net.in_channels, net.size), *layers)
    config = state.get("config") or {}
    return FeatureExtractor(frozen, {
        "kind": "feraug-classifier", "path": str(path), "sha256": sha, "layer": name, "layer_index": index,
        "input_size": net.size, "input": "[-1, 1] as is, at the classifier's size (as its own evaluation)",
        "arch": state["arch"], "classes": list(state.get("classes") or []), "epoch": state.get("epoch"),
        "data": config.get("data"),
    })  # fmt: skip


def load_feature_extractor(path: str | Path, layer: str | int = DEFAULT_LAYER) -> FeatureExtractor:
    """The frozen ``φ`` of the perceptual loss, from a feraug classifier or a VGG19 state dict.

    Args:
        path: a feraug expression-classifier checkpoint (``best.pt``/``last.pt``) or run folder (its
            ``checkpoints/best.pt``) — the default kind, since ImageNet weights cannot be downloaded
            at run time — or a VGG19 state-dict file (torchvision's ``vgg19`` keys, full or
            ``features`` only; torchvision itself is not needed).
        layer: whose output ``φ`` is. ``"last_conv"`` (default) is the output of the last
            convolutional layer, before its normalization and activation: Pasini et al.'s choice for
            VGG19 (``conv5_4``; pre-activation as in ESRGAN, whose dense blocks ECycleGAN's generator
            uses), and for feraug classifiers the same rule, which at 48x48 still gives a spatial
            map (5x5 to 12x12 by architecture) — unlike ``"features"``, the penultimate vector,
            which has lost the layout the cycle and identity terms are meant to preserve. A
            shallower map constrains texture more and expression less; pick one by index.
            Classifier: an index into ``trunk`` (or ``"trunk.K"``), ``"trunk"`` (its output) or
            ``"features"``. VGG19: an index into ``features`` or a name (``conv4_4``, ``relu5_4``, ...).

    The returned extractor's :attr:`~FeatureExtractor.provenance` (kind, the file loaded, its
    SHA-256, the resolved layer, input handling) is what the run records; move it to the run's
    device with ``.to(device)``.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        CheckpointError: (a ``ValueError``) ``path`` is something else — another feraug model's
            checkpoint or run folder (e.g. a GAN's), a file that is not PyTorch weights, or a
            state dict that is not VGG19's; the message names the path and what it holds.
        ValueError: an unknown or out-of-range ``layer``.
    """
    file = _checkpoint_file(Path(path))
    state = _read(file)
    sha = file_sha256(file)
    if state.get("format") == FORMAT:
        family = state.get("family")
        if family != "classifier":
            raise CheckpointError(f"{file}: a feraug {family!r} checkpoint, not an expression classifier's: the "
                                  "feature extractor must be a trained classifier (or a VGG19 state dict)")  # fmt: skip
        return _classifier_extractor(state, layer, file, sha)
    weights = _vgg19_weights(state, file)
    if weights is None:
        keys = ", ".join(map(str, list(state)[:5]))
        raise CheckpointError(f"{file}: neither a feraug classifier checkpoint nor a VGG19 state dict (keys: {keys}"
                              f"{', ...' if len(state) > 5 else ''})")  # fmt: skip
    return _vgg19_extractor(weights, layer, file, sha)


@dataclass(frozen=True)
class ExtractorFaces:
    """The faces a feature extractor learned from, as source rows (:attr:`FaceDataset.rows`) of one dataset.

    Attributes:
        path: the extractor's file.
        kind: ``feraug-classifier`` or ``vgg19``.
        source: :attr:`FaceDataset.source` of its training data; None when unknown.
        trained: rows its weights were fitted on; None when unknown.
        selected: rows its checkpoint was selected on (validation); None when unknown or not used.
        how: one sentence on where this record comes from (or why the faces are unknown).
    """

    path: str
    kind: str
    source: str | None
    trained: np.ndarray | None
    selected: np.ndarray | None
    how: str

    def record(self) -> dict[str, Any]:
        """Plain values for the run's records (row counts and the hash of the trained rows, not the rows)."""
        return {"source": self.source, "how": self.how,
                "n_trained": None if self.trained is None else int(self.trained.size),
                "trained_rows_sha256": None if self.trained is None else rows_sha256(self.trained)}  # fmt: skip


def extractor_training_faces(extractor: FeatureExtractor | str | Path) -> ExtractorFaces:
    """Which faces the extractor trained on, reconstructed the way ``feraug train classifier`` split them.

    Classifier runs do not write ``training_rows.npy`` (only generator runs do,
    :mod:`feraug.train.provenance`); when a run folder has one it is used. Otherwise the
    checkpoint's ``config`` is: ``data`` (set by the CLI, None from the Python API) is loaded as
    ``feraug train classifier`` / ``feraug evaluate`` load it (its label source applied), and
    :func:`~feraug.data.splits.standard_splits` gives the training rows and the validation rows
    that selected ``best.pt``. Data that is not there, or no ``data`` at all, gives a record with
    ``trained=None`` and the reason (the GAN run then warns that no guard covers φ's faces). A
    VGG19 file was not trained by feraug: its faces are unknown and not feraug's (``trained=None``).
    """
    if isinstance(extractor, FeatureExtractor):
        if "path" not in extractor.provenance:
            return ExtractorFaces("<in memory>", extractor.kind, None, None, None,
                                  "a hand-built extractor: which faces it trained on is unknown")  # fmt: skip
        file = Path(extractor.provenance["path"])
    else:
        file = _checkpoint_file(Path(extractor))
    state = _read(file)
    if state.get("format") != FORMAT:
        return ExtractorFaces(str(file), "vgg19", None, None, None,
                              "VGG19 weights were not trained by feraug: their training faces are unknown, "
                              "and are no faces of a feraug dataset")  # fmt: skip
    kind = "feraug-classifier"
    if state.get("family") != "classifier":
        raise CheckpointError(f"{file}: a feraug {state.get('family')!r} checkpoint, not an expression classifier's")
    config = state.get("config") or {}
    spec = config.get("data")
    if spec is None:
        return ExtractorFaces(str(file), kind, None, None, None,
                              "its config records no data (trained through the Python API): which faces it "
                              "trained on is unknown")  # fmt: skip
    try:
        data = load_dataset(spec, size=int(config.get("size", 48)))
        if config.get("labels") not in (None, "fer2013"):
            data = relabel_with_majority(data, load_ferplus(config["ferplus"]))
    except (FileNotFoundError, KeyError, TypeError) as e:
        return ExtractorFaces(str(file), kind, None, None, None,
                              f"its training data {spec!r} cannot be loaded here ({e})")  # fmt: skip
    run_dir = file.parent.parent if file.parent.name == "checkpoints" else None
    recorded = read_training_rows(run_dir) if run_dir is not None else None
    if recorded is not None:
        return ExtractorFaces(str(file), kind, data.source, recorded, None,
                              f"{run_dir / 'training_rows.npy'} (rows of {data.source})")  # fmt: skip
    splits = standard_splits(data)
    return ExtractorFaces(str(file), kind, data.source, np.sort(data.rows[splits.train]),
                          np.sort(data.rows[splits.val]),
                          f"standard_splits of its config's data {spec!r}: trained on the train split, selected "
                          f"on val ({splits.note})")  # fmt: skip


def same_source(a: str, b: str) -> bool:
    """Whether two :attr:`FaceDataset.source` strings name one dataset (equal, or the same file or folder)."""
    return a == b or Path(a).resolve() == Path(b).resolve()


def perceptual_records(extractor: FeatureExtractor | None, source: str | None) -> tuple[dict[str, Any], list[int]]:
    """What ``meta.json`` records of a run's φ, and the data rows its generators learned from through it.

    The record is φ's file, SHA-256 and layer, and the faces it was trained on; when those are rows
    of ``source`` (the run's data) they are returned, to join ``training_rows.npy`` so that the
    experiment's generator-overlap guard sees them. A run without φ records nothing.
    """
    if extractor is None:
        return {}, []
    faces = extractor_training_faces(extractor)
    record = {**extractor.provenance, "faces": faces.record()}
    rows: list[int] = []
    if (faces.trained is not None and faces.source is not None and source is not None
            and same_source(faces.source, source)):  # fmt: skip
        parts = [faces.trained] + ([faces.selected] if faces.selected is not None else [])
        rows = sorted({int(r) for part in parts for r in part})
        record["faces"]["in_training_rows"] = True
    else:
        record["faces"]["in_training_rows"] = False
        if faces.kind == "feraug-classifier":
            warnings.warn(f"loss.perceptual: which faces {faces.path} trained on cannot be matched to this run's "
                          f"data ({faces.how}); the experiment's generator-overlap guard will not see them, so "
                          "make sure φ never trained on faces you evaluate on", stacklevel=2)  # fmt: skip
    return {"perceptual": record}, rows
