"""Dataset filtering: score every training face's label, drop the least credible, and check against FER+.

Pasini et al. found that FER2013's noise (mislabelled, ambiguous and non-face images) hurt every GAN it
trained. Three scores, each computed only for the *training* faces — validation and test faces
are never scored, dropped or used to fit anything:

* ``confidence`` — the out-of-fold probability of the face's annotated class, from ``k``
  cross-fitted classifiers (:func:`feraug.evaluate.instrument.crossfit.cross_fit`): a face is never scored
  by a model that trained on it, so a memorized wrong label does not vouch for itself.
* ``likelihood`` — Gaussian log-likelihood of the face's embedding under its annotated class
  (DeVries et al., NeurIPS 2020, as Pasini et al. used it). Out of fold by default: fold ``i`` is
  embedded by cross-fitted model ``i`` and scored under Gaussians fitted to the other folds' faces
  in that embedding (Ledoit-Wolf shrinkage: the classes have fewer faces than a covariance has
  entries to estimate well); as each fold has its own feature space, the score is the face's
  percentile rank within its fold and class (0..1). With ``features_net`` one given classifier
  embeds every face, the Gaussians are fitted to all of them (in-sample, as DeVries et al. do) and
  the score is the log-likelihood itself.
* ``ferplus`` — the FER+ votes themselves: a face whose FER+ plurality is not its label (or is
  unknown / not a face) is dropped.

Which faces go: per class, the lowest-scored ``drop_fraction``, or all below ``threshold``.
:func:`ferplus_agreement` then gives each method's precision and recall against FER+.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.covariance import LedoitWolf

from feraug.config import ClassifierConfig
from feraug.data.dataset import FaceDataset
from feraug.data.ferplus import FerPlus
from feraug.evaluate.instrument.crossfit import cross_fit, features
from feraug.evaluate.instrument.selection import percentile_rank
from feraug.nets.classifiers import ExpressionClassifier

METHODS: tuple[str, ...] = ("confidence", "likelihood", "ferplus")


def confidence_scores(pool: FaceDataset, cfg: ClassifierConfig, *, k: int = 5, seed: int = 0,
                      cache_dir: Path | str | bool | None = True, progress: bool = True,
                      log: Callable[[str], None] | None = None) -> np.ndarray:  # fmt: skip
    """Out-of-fold probability of each face's annotated class (``float64 [N]``)."""
    cf = cross_fit(pool, cfg, k=k, seed=seed, cache_dir=cache_dir, progress=progress, log=log)
    proba = cf.out_of_fold_proba(pool.images, cf.folds)
    return proba[np.arange(len(pool)), pool.labels.numpy()].astype(np.float64)


def _class_gaussian_loglik(fit_x: np.ndarray, fit_y: np.ndarray, x: np.ndarray, y: np.ndarray,
                           n_classes: int) -> np.ndarray:  # fmt: skip
    """Log-density of each row of ``x`` under the Ledoit-Wolf Gaussian of its class ``y``, fitted on ``fit_x``."""
    out = np.full(len(x), -np.inf)
    for c in range(n_classes):
        mine = y == c
        if not mine.any():
            continue
        train = fit_x[fit_y == c]
        if len(train) < 2:
            raise ValueError(f"class {c} has {len(train)} faces to fit its Gaussian; likelihood filtering needs 2")
        lw = LedoitWolf().fit(train)
        diff = x[mine] - lw.location_
        _sign, logdet = np.linalg.slogdet(lw.covariance_)
        maha = np.einsum("ij,ij->i", diff @ lw.precision_, diff)
        out[mine] = -0.5 * (maha + logdet + x.shape[1] * np.log(2 * np.pi))
    return out


def likelihood_scores(pool: FaceDataset, cfg: ClassifierConfig, *, k: int = 5, seed: int = 0,
                      features_net: ExpressionClassifier | None = None, cache_dir: Path | str | bool | None = True,
                      progress: bool = True, log: Callable[[str], None] | None = None) -> np.ndarray:  # fmt: skip
    """Gaussian log-likelihood of each face's embedding under its annotated class (see the module docstring)."""
    labels = pool.labels.numpy()
    n_classes = len(pool.classes)
    if features_net is not None:
        x = features(features_net, pool.images)
        return _class_gaussian_loglik(x, labels, x, labels, n_classes)
    cf = cross_fit(pool, cfg, k=k, seed=seed, cache_dir=cache_dir, progress=progress, log=log)
    out = np.empty(len(pool))
    for i, net in enumerate(cf.nets):
        x = features(net, pool.images)
        held = cf.folds == i
        loglik = _class_gaussian_loglik(x[~held], labels[~held], x[held], labels[held], n_classes)
        # Each fold lives in its own model's feature space, whose scale shifts the log-density by
        # ~D·log(scale) nats: only ranks within a (fold, class) compare across folds.
        for c in np.unique(labels[held]):
            mine = np.flatnonzero(held)[labels[held] == c]
            out[mine] = percentile_rank(loglik[labels[held] == c])
    return out


def drop_mask(scores: np.ndarray, labels: np.ndarray, *, drop_fraction: float | None = None,
              threshold: float | None = None) -> np.ndarray:  # fmt: skip
    """``bool [N]`` faces to drop: per class the lowest ``round(drop_fraction * n_class)``, or all below ``threshold``.

    Ties are broken by position (stable sort), so the same scores always drop the same faces.
    """
    if (drop_fraction is None) == (threshold is None):
        raise ValueError("give exactly one of drop_fraction and threshold")
    if threshold is not None:
        return scores < threshold
    if not 0.0 <= drop_fraction < 1.0:  # type: ignore[operator]
        raise ValueError(f"drop_fraction must lie in [0, 1), got {drop_fraction}")
    drop = np.zeros(len(scores), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = round(drop_fraction * len(members))  # type: ignore[operator]
        drop[members[np.argsort(scores[members], kind="stable")[:n]]] = True
    return drop


def precision_recall(dropped: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Precision (share of dropped faces that are label errors) and recall (share of errors dropped); None when
    undefined (nothing dropped, no errors)."""
    tp = int((dropped & truth).sum())
    return {"dropped": int(dropped.sum()), "errors": int(truth.sum()), "true_positives": tp,
            "precision": tp / int(dropped.sum()) if dropped.any() else None,
            "recall": tp / int(truth.sum()) if truth.any() else None,
            "base_rate": float(truth.mean()) if len(truth) else None}  # fmt: skip


def ferplus_agreement(dropped: np.ndarray, labels: np.ndarray, truth: np.ndarray,
                      classes: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
    """Precision/recall of a drop mask against FER+ label errors, overall and per class."""
    per_class = {name: precision_recall(dropped[labels == c], truth[labels == c]) for c, name in enumerate(classes)}
    return {"all": precision_recall(dropped, truth), "per_class": per_class}


@dataclass(frozen=True)
class FilterResult:
    """Scores and drop decisions for the training faces of a dataset."""

    method: str
    train_index: np.ndarray  # positions in the full dataset of the scored (training) faces
    scores: np.ndarray
    dropped: np.ndarray  # bool, aligned with train_index
    agreement: dict[str, Any] | None  # against FER+, when available

    def kept_positions(self, n_total: int) -> np.ndarray:
        """Positions of the full dataset that survive: every non-training face, and the kept training ones."""
        keep = np.ones(n_total, dtype=bool)
        keep[self.train_index[self.dropped]] = False
        return np.flatnonzero(keep)


def filter_dataset(data: FaceDataset, method: str, *, cfg: ClassifierConfig, ferplus: FerPlus | None = None,
                   drop_fraction: float | None = None, threshold: float | None = None, k: int = 5, seed: int = 0,
                   features_net: ExpressionClassifier | None = None, cache_dir: Path | str | bool | None = True,
                   progress: bool = True, log: Callable[[str], None] | None = None) -> FilterResult:  # fmt: skip
    """Score ``data``'s training faces with ``method`` and decide which to drop; see the module docstring.

    The faces scored are the training part of :func:`~feraug.data.splits.standard_splits` — what a
    classifier trains on — so the standard validation and test faces are never scored, dropped or
    fitted on. ``ferplus`` (aligned row for row with ``data.rows``) enables the FER+ method and the
    agreement report.
    """
    from feraug.data.splits import standard_splits

    if method not in METHODS:
        raise ValueError(f"unknown filter method {method!r}: expected one of {', '.join(METHODS)}")
    train_index = np.sort(standard_splits(data).train)
    pool = data.subset(train_index)
    labels = pool.labels.numpy()
    truth = None
    if ferplus is not None:
        rows = np.asarray(pool.rows, dtype=np.int64)
        all_rows = np.asarray(data.rows, dtype=np.int64)
        if len(ferplus) != len(data) or not np.array_equal(all_rows, np.arange(len(data))):
            raise ValueError(f"{ferplus.source} has {len(ferplus)} rows but {data.source} has {len(data)} faces: "
                             "FER+ is matched row for row, so it needs the unfiltered FER2013 file it was made "
                             "for")  # fmt: skip
        truth = ferplus.likely_label_errors(data.labels.numpy())[rows]
    if method == "confidence":
        scores = confidence_scores(pool, cfg, k=k, seed=seed, cache_dir=cache_dir, progress=progress, log=log)
    elif method == "likelihood":
        scores = likelihood_scores(pool, cfg, k=k, seed=seed, features_net=features_net, cache_dir=cache_dir,
                                   progress=progress, log=log)  # fmt: skip
    else:
        if truth is None:
            raise ValueError("the ferplus method needs the FER+ votes (--ferplus ferplus.csv.gz)")
        scores = (~truth).astype(np.float64)
        if drop_fraction is None and threshold is None:
            threshold = 0.5
    dropped = drop_mask(scores, labels, drop_fraction=drop_fraction, threshold=threshold)
    agreement = ferplus_agreement(dropped, labels, truth, data.classes) if truth is not None else None
    return FilterResult(method, train_index, scores, dropped, agreement)


def write_filter_report(out_csv: Path, data: FaceDataset, result: FilterResult, k_grid: int = 12) -> dict[str, Path]:
    """``<out>.filter.json`` (counts, FER+ agreement, dropped rows and scores), ``<out>.filter.md`` and a grid
    of each class's lowest-scored faces, beside the filtered CSV."""
    from feraug.figures.grid import labelled_grid, save_image

    stem = out_csv.name.removesuffix(".gz").removesuffix(".csv")
    pool_labels = data.labels.numpy()[result.train_index]
    per_class = []
    grid_rows, names = [], []
    for c, name in enumerate(data.classes):
        members = np.flatnonzero(pool_labels == c)
        per_class.append({"class": name, "training": len(members), "dropped": int(result.dropped[members].sum())})
        lowest = members[np.argsort(result.scores[members], kind="stable")[:k_grid]]
        grid_rows.append(data.images[torch.from_numpy(result.train_index[lowest])])
        names.append(f"{name} ({len(members)})")
    dropped_pos = result.train_index[result.dropped]
    record = {"method": result.method, "data": data.source, "per_class": per_class,
              "ferplus_agreement": result.agreement,
              "dropped_rows": np.asarray(data.rows)[dropped_pos].tolist(),
              "dropped_scores": [float(v) if np.isfinite(v) else None
                                 for v in result.scores[result.dropped]]}  # fmt: skip
    files = {"json": out_csv.with_name(f"{stem}.filter.json"), "md": out_csv.with_name(f"{stem}.filter.md"),
             "grid": out_csv.with_name(f"{stem}.lowest.png")}  # fmt: skip
    files["json"].write_text(json.dumps(record, indent=2, allow_nan=False))
    files["md"].write_text(format_filter_report(record))
    save_image(labelled_grid(grid_rows, names, label_width=110), files["grid"])
    return files


def format_filter_report(record: dict[str, Any]) -> str:
    """Markdown: faces dropped per class and, with FER+, precision/recall against its label errors."""
    agree = record.get("ferplus_agreement")
    lines = [f"# Filter `{record['method']}` on {record['data']}", "",
             "| class | training faces | dropped |" + (" FER+ errors (share) | precision | recall |" if agree else ""),
             "|---|---:|---:|" + ("---:|---:|---:|" if agree else "")]  # fmt: skip
    for row in record["per_class"]:
        cells = [row["class"], str(row["training"]), str(row["dropped"])]
        if agree:
            pr = agree["per_class"][row["class"]]
            share = "" if pr["base_rate"] is None else f" ({pr['base_rate']:.0%})"
            cells += [f"{pr['errors']}{share}",
                      *("-" if pr[k] is None else f"{pr[k]:.2f}" for k in ("precision", "recall"))]
        lines.append("| " + " | ".join(cells) + " |")
    if agree:
        a = agree["all"]
        def num(x: float | None, fmt: str) -> str:
            return "-" if x is None else format(x, fmt)

        lines += ["", f"All training faces: dropped {a['dropped']}, FER+ label errors {a['errors']} "
                  f"(base rate {num(a['base_rate'], '.1%')}: the precision of dropping at random), precision "
                  f"{num(a['precision'], '.3f')}, recall {num(a['recall'], '.3f')} (at most "
                  f"{num(min(1.0, a['dropped'] / a['errors']) if a['errors'] else None, '.3f')} with this many "
                  "dropped)."]  # fmt: skip
    return "\n".join(lines) + "\n"
