"""Expression classifiers as the yardstick: trained with selection on validation, then predicting and scored.

:func:`train_classifier` runs the training loop (:mod:`feraug.train.classifier`) with this
module's validation: :func:`predict_proba` on the validation faces (ten-crop TTA when ``cfg.tta``)
and :func:`~feraug.evaluate.metrics.classification_metrics`. :func:`evaluate_classifier` scores a
trained net on a split and writes its metrics and plots; :func:`load_classifier` reads one back from
its run folder.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from feraug.config import ClassifierConfig
from feraug.core.checkpoint import load_checkpoint
from feraug.data.augment import ten_crop, to_float
from feraug.data.dataset import FaceDataset
from feraug.evaluate.metrics import classification_metrics
from feraug.figures.plots import plot_confusion_matrix, plot_per_class_bars
from feraug.nets.classifiers import ExpressionClassifier, classifier_from_arch
from feraug.train.classifier import fit_classifier
from feraug.train.classifier_run import FAMILY, ClassifierRun, default_tta_padding, memory_format, tta_padding_for
from feraug.train.run_folder import best_checkpoint


def validation_scores(net: ExpressionClassifier, val: FaceDataset, device: torch.device, *, tta: bool,
                      tta_padding: int) -> tuple[dict[str, Any], float]:  # fmt: skip
    """Metrics of ``net`` on the validation faces (ten-crop TTA with ``tta``), and their loss."""
    proba = predict_proba(net, val, tta=tta, device=device, tta_padding=tta_padding)
    y = val.labels.numpy()
    metrics = classification_metrics(y, proba.argmax(1), proba, val.classes)
    val_loss = float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)).mean())
    return metrics, val_loss


def train_classifier(
    cfg: ClassifierConfig,
    train: FaceDataset,
    val: FaceDataset | None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    time_budget: float | None = None,
    started: float | None = None,
    reserve_validations: float = 0.0,
) -> ClassifierRun:
    """Train a classifier on ``train``, selecting the best epoch on ``val`` by :func:`validation_scores`.

    Arguments, run folder, resume and time budget as :func:`feraug.train.classifier.fit_classifier`.
    """
    # selection sees the plain faces: ten-crop views at every epoch end would cost ten validation passes
    validate = functools.partial(validation_scores, tta=False, tta_padding=tta_padding_for(cfg))
    return fit_classifier(cfg, train, val, run_dir, validate=validate, resume=resume, progress=progress,
                          time_budget=time_budget, started=started,
                          reserve_validations=reserve_validations)  # fmt: skip


def _as_float_batches(data: FaceDataset | torch.Tensor) -> torch.Tensor:
    images = data.images if isinstance(data, FaceDataset) else data
    if images.dtype == torch.uint8 and images.dim() == 3:
        return images
    if images.is_floating_point() and images.dim() == 4 and images.shape[1] == 1:
        return images
    raise ValueError(f"expected uint8 [N,H,W] images or float [N,1,H,W] in [-1, 1], got {images.dtype} "
                     f"{list(images.shape)}")  # fmt: skip


def predict_proba(
    net: ExpressionClassifier,
    data: FaceDataset | torch.Tensor,
    *,
    batch_size: int = 256,
    tta: bool = False,
    device: torch.device | str | None = None,
    tta_padding: int | None = None,
) -> np.ndarray:
    """Softmax class probabilities ``float32 [N, n_classes]`` (rows sum to 1).

    Args:
        net: the classifier; put in eval mode for the call (its mode is restored afterwards) and
            moved to ``device`` when one is given (else it runs where its weights are).
        data: a dataset, ``uint8 [N,H,W]`` faces, or ``float [N,1,H,W]`` in [-1, 1] (e.g. a
            generator's output).
        batch_size: images per forward pass (with ``tta``, views per pass: ``batch_size // 10``
            images at a time).
        tta: average the probabilities over the ten views of :func:`feraug.data.augment.ten_crop`
            (corner and center crops of the border-padded face, and their mirror images), at the
            network's input size.
        tta_padding: shift of the TTA views in pixels; default :func:`default_tta_padding`.
    """
    images = _as_float_batches(data)
    dev = torch.device(device) if device is not None else next(net.parameters()).device
    if device is not None:
        net.to(dev)
    fmt = memory_format(dev)
    pad = tta_padding if tta_padding is not None else default_tta_padding(net.size)
    step = max(1, batch_size // 10) if tta else max(1, batch_size)
    was_training = net.training
    net.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, images.shape[0], step):
                x = images[start : start + step].to(dev)
                x = to_float(x) if x.dtype == torch.uint8 else x.float()
                if tta:
                    views = ten_crop(x, pad)
                    logits = net(views.flatten(0, 1).contiguous(memory_format=fmt)).float()
                    p = logits.softmax(-1).view(views.shape[0], x.shape[0], -1).mean(0)
                else:
                    p = net(x.contiguous(memory_format=fmt)).float().softmax(-1)
                out.append(p.cpu())
    finally:
        net.train(was_training)
    if not out:
        return np.zeros((0, net.n_classes), dtype=np.float32)
    return torch.cat(out).numpy()


def evaluate_classifier(
    net: ExpressionClassifier,
    data: FaceDataset,
    *,
    tta: bool = False,
    out_dir: str | Path | None = None,
    name: str = "test",
    batch_size: int = 256,
    device: torch.device | str | None = None,
    tta_padding: int | None = None,
) -> dict[str, Any]:
    """:func:`~feraug.evaluate.metrics.classification_metrics` of ``net`` on ``data``; prints nothing.

    With ``out_dir``, also writes ``<name>_metrics.json`` (the metrics plus ``name``, ``tta`` and
    the data's source and notes), ``<name>_confusion.png`` (row-normalized confusion matrix) and
    ``<name>_per_class.png`` (precision, recall, F1 and AUC per class).
    """
    if len(data) == 0:
        raise ValueError(f"cannot evaluate on an empty dataset ({name})")
    if len(data.classes) != net.n_classes:
        raise ValueError(f"the classifier has {net.n_classes} classes but the data has {len(data.classes)}")
    proba = predict_proba(net, data, batch_size=batch_size, tta=tta, device=device, tta_padding=tta_padding)
    metrics = classification_metrics(data.labels.numpy(), proba.argmax(1), proba, data.classes)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        record = {"name": name, "tta": tta, "source": data.source, "data_notes": list(data.notes), **metrics}
        (out / f"{name}_metrics.json").write_text(json.dumps(record, indent=2))
        label = f"{name}{' (ten-crop TTA)' if tta else ''}"
        plot_confusion_matrix(metrics["confusion_matrix"], data.classes, out / f"{name}_confusion.png",
                              title=f"Confusion matrix, {label}")  # fmt: skip
        per_class = metrics["per_class"]
        bars = {key: [per_class[c][key.lower()] for c in data.classes] for key in ("Precision", "Recall", "F1", "AUC")}
        plot_per_class_bars(bars, data.classes, out / f"{name}_per_class.png", ylabel="score",
                            title=f"Per-class scores, {label}")  # fmt: skip
    return metrics


def load_classifier(path: str | Path) -> tuple[ExpressionClassifier, dict[str, Any]]:
    """A trained classifier (eval mode, CPU) and its checkpoint's metadata, from its path alone.

    ``path`` is a run folder (its ``checkpoints/best.pt`` is loaded) or a checkpoint file
    (``best.pt``, or ``last.pt`` for the latest weights). The network is rebuilt from the
    checkpoint's ``arch``; the returned dict holds everything but the weights and optimizer state
    (``arch``, ``config``, ``classes``, ``epoch``, ``tta_padding``, for best.pt ``metrics`` and
    ``score``) plus ``path``.
    """
    p = Path(path)
    if p.is_dir():
        p = best_checkpoint(p)
        if not p.is_file():
            raise FileNotFoundError(f"{path} has no checkpoints/best.pt: not a (finished) classifier run folder")
    state = load_checkpoint(p, family=FAMILY)
    net = classifier_from_arch(state["arch"])
    net.load_state_dict(state["weights"])
    info = {k: v for k, v in state.items() if k not in ("weights", "optimizer", "scheduler", "scaler", "format")}
    info["path"] = str(p)
    return net.eval(), info
