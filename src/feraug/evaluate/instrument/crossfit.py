"""Cross-fitted classifiers: every face scored by a model that never trained on it.

Both the synthetic-set instrument (:mod:`feraug.evaluate.instrument.quality`: a judge must not have seen a
translation's source face, nor the real faces its calibration rows are made of) and confidence
filtering (:mod:`feraug.evaluate.instrument.filtering`: a face's label is doubted by a model that did not
memorize it) need out-of-fold scores. :func:`cross_fit` splits a pool of faces into ``k``
stratified folds and trains model ``i`` on every fold but ``i``, so a face in fold ``i`` is scored
by model ``i`` alone (:meth:`CrossFit.out_of_fold_proba`).

Training ``k`` classifiers is the expensive part, so the models are cached on disk under a key of
the faces (their pixels, labels and source rows), the classifier configuration, ``k`` and the
seed; a second call with the same inputs loads them, an interrupted one resumes the unfinished
fold. The default recipe is the CPU-fast classifier (``arch fast``, batch 128, one-cycle at
3e-3, label smoothing 0.1), which reaches ~64 % on FER2013's PublicTest in 15 CPU minutes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from feraug.config import ClassifierConfig, build_config, parse_override
from feraug.data.cache import default_cache_dir
from feraug.data.dataset import FaceDataset
from feraug.evaluate.classifier import load_classifier, predict_proba, train_classifier
from feraug.nets.classifiers import ExpressionClassifier
from feraug.train.run_folder import best_checkpoint, last_checkpoint

#: The cross-fitting recipe: the fast classifier with the settings of benchmarks/bench_fast_classifier.py.
JUDGE_DEFAULTS: dict[str, Any] = {"arch": "fast", "batch_size": 128, "lr": 3e-3, "schedule": "onecycle",
                                  "label_smoothing": 0.1, "epochs": 10}  # fmt: skip
#: What the synthetic-set judge (``quality``, ``select``) adds: class-balanced loss weights. Unweighted, a
#: classifier on FER2013 almost never predicts Disgust (1.5 % of the faces) — measured: 0 % of real held-out
#: Disgust faces called Disgust — so a transfer rate toward a minority class would read 0 for every set.
QUALITY_JUDGE: dict[str, Any] = {"class_weights": "balanced"}


def judge_config(sets: Sequence[str] = (), **fields: Any) -> ClassifierConfig:
    """:data:`JUDGE_DEFAULTS`, then ``fields``, then ``KEY=VALUE`` strings (as ``--set`` takes them)."""
    overrides = [{k: v} for k, v in {**JUDGE_DEFAULTS, **fields}.items()] + [parse_override(s) for s in sets]
    return build_config(ClassifierConfig, overrides=overrides, family="classifier")  # type: ignore[return-value]


def data_digest(data: FaceDataset) -> str:
    """SHA-256 of the faces' pixels, labels and source rows: what a cached model was trained on."""
    h = hashlib.sha256()
    for part in (data.images.numpy(), data.labels.numpy(), np.asarray(data.rows, dtype=np.int64)):
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(repr(data.classes).encode())
    return h.hexdigest()


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index ``0..k-1`` of every face, stratified by label (scikit-learn's ``StratifiedKFold``).

    A class with fewer than ``k`` faces cannot be spread over the folds: that is an error naming it.
    """
    counts = np.bincount(labels)
    small = [int(c) for c in np.flatnonzero((counts > 0) & (counts < k))]
    if small:
        raise ValueError(f"cross-fitting with k={k} needs at least {k} faces per class; class label(s) {small} "
                         f"have {[int(counts[c]) for c in small]}")  # fmt: skip
    folds = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held] = i
    return folds


@dataclass(frozen=True)
class CrossFit:
    """``k`` classifiers and the fold of every face of the pool they were trained on.

    Attributes:
        nets: model ``i`` trained on every fold but ``i`` (eval mode, CPU).
        folds: ``int64 [N]`` fold of each pool face, aligned with ``rows``.
        rows: ``int64 [N]`` source row of each pool face (:attr:`FaceDataset.rows`).
        cache: folder holding the models, or None for in-memory ones.
    """

    nets: list[ExpressionClassifier]
    folds: np.ndarray
    rows: np.ndarray
    cache: Path | None

    @property
    def k(self) -> int:
        """Number of folds (and models)."""
        return len(self.nets)

    def fold_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Fold of each source row; -1 for rows outside the pool (no model trained on them)."""
        order = np.argsort(self.rows, kind="stable")
        at = np.clip(np.searchsorted(self.rows, rows, sorter=order), 0, len(self.rows) - 1)
        found = self.rows[order[at]] == rows
        return np.where(found, self.folds[order[at]], -1)

    def out_of_fold_proba(self, images: torch.Tensor, folds: np.ndarray, *, tta: bool = False) -> np.ndarray:
        """Class probabilities of each image from the model that did not train on its fold.

        ``folds[j]`` is the fold of image ``j`` (of the face it was made from, for a synthetic
        face); -1 (outside the pool: no model saw it) averages all ``k`` models.
        """
        folds = np.asarray(folds, dtype=np.int64)
        if len(folds) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(folds)} fold indices")
        out = np.zeros((images.shape[0], self.nets[0].n_classes), dtype=np.float32)
        for i, net in enumerate(self.nets):
            mine = np.flatnonzero(folds == i)
            if mine.size:
                out[mine] = predict_proba(net, images[torch.from_numpy(mine)], tta=tta)
        outside = np.flatnonzero(folds < 0)
        if outside.size:
            x = images[torch.from_numpy(outside)]
            out[outside] = np.mean([predict_proba(net, x, tta=tta) for net in self.nets], axis=0)
        return out


def features(net: ExpressionClassifier, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Penultimate-layer features ``float64 [N, D]`` of uint8 ``[N,H,W]`` faces (eval mode, no grad)."""
    from feraug.data.augment import to_float

    was = net.training
    net.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                x = images[start : start + batch_size]
                x = to_float(x) if x.dtype == torch.uint8 else x.float()
                out.append(net.features(x).double().cpu())
    finally:
        net.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, net.feature_dim), dtype=np.float64)


def cross_fit(
    pool: FaceDataset,
    cfg: ClassifierConfig,
    *,
    k: int = 2,
    seed: int = 0,
    cache_dir: Path | str | bool | None = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> CrossFit:
    """Train (or load from the cache) ``k`` classifiers, model ``i`` on every fold of ``pool`` but ``i``.

    Args:
        pool: the faces to split (e.g. a dataset's Training split). Never pass test faces: every
            pool face is trained on by ``k - 1`` models.
        cfg: the classifier recipe (:func:`judge_config`); ``cfg.seed`` is replaced per fold.
        k: folds (>= 2).
        seed: fixes the folds and the models' seeds.
        cache_dir: folder for the models (``True``: ``<feraug cache>/crossfit``; None/False: train
            in memory every time).
        log: called with one line per model trained or loaded.
    """
    if k < 2:
        raise ValueError(f"cross-fitting needs k >= 2 folds, got {k}")
    labels = pool.labels.numpy()
    folds = stratified_folds(labels, k, seed)
    root: Path | None
    if cache_dir is True:
        root = default_cache_dir() / "crossfit"
    elif cache_dir in (None, False):
        root = None
    else:
        root = Path(cache_dir)  # type: ignore[arg-type]
    key = {"data": data_digest(pool), "config": cfg.model_dump(mode="json"), "k": k, "seed": seed, "v": 1}
    folder = None
    if root is not None:
        folder = root / hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "key.json").write_text(json.dumps({**key, "source": pool.source}, indent=2))
    nets = []
    for i in range(k):
        fold_cfg = cfg.model_copy(update={"seed": seed * 1000 + i})
        run = folder / f"fold{i}" if folder is not None else None
        if run is not None and (run / "done").is_file() and best_checkpoint(run).is_file():
            net, _ = load_classifier(run)
            nets.append(net)
            if log:
                log(f"cross-fit model {i + 1}/{k}: loaded from {run}")
            continue
        train = pool.subset(np.flatnonzero(folds != i))
        resume = run is not None and last_checkpoint(run).is_file()
        if log:
            log(f"cross-fit model {i + 1}/{k}: training on {len(train)} faces ({'resuming' if resume else 'new'})"
                + (f" in {run}" if run else ""))  # fmt: skip
        result = train_classifier(fold_cfg, train, None, run, resume=resume, progress=progress)
        if run is not None:
            (run / "done").write_text("finished\n")
        nets.append(result.net)
    return CrossFit(nets, folds, np.asarray(pool.rows, dtype=np.int64), folder)
