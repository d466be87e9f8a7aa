"""Know what you made: a synthetic set measured against real faces, with its calibration beside it.

:func:`measure_quality` scores a synthetic set of one target emotion in three ways and prints
every number next to the same number for two rows of *real* faces:

* ``real target (held out)`` — real faces of the target emotion: what "as good as real" reads as;
* ``real source (untranslated)`` — real faces of the source emotion: what "nothing was
  translated" reads as (for sampled sets without a source class, the most common other class).

So a score is read as a position between floor and ceiling, not as an absolute. A translated set
gets a fourth row, ``their sources (untranslated)``: the very faces it was made from, each judged by
the model that judges its translation. That is the exact floor of its ``transfer`` — the two rows
differ only by what the generator did — whereas the ``real source`` row (other faces, judged by
model 0) also carries the difference between the two judges, which with few target faces to train
on can be tens of points.

The judge (:mod:`feraug.evaluate.instrument.crossfit`): two classifiers cross-fitted on the Training faces,
model ``i`` trained on the half not in fold ``i``. A synthetic face is judged by the model that did
not train on its *source* face, a real calibration face by the model that did not train on *it*.
Features for the distribution scores come from model 0, and every face those scores use as real
reference or calibration comes from fold 0, which model 0 never saw; fold 0's target faces are
split in two halves, one the reference set, the other the ``real target`` row.

Scores:

* ``transfer`` — share the judge classifies as the target emotion; ``p_target`` its mean probability.
* ``kid`` — unbiased KID (Bińkowski et al. 2018; cubic polynomial kernel) against the reference
  set, mean ± std over 100 random subsets of ``min(n, 100)`` faces: unbiased, so usable for the
  100-500 faces a synthetic set has. ``fid`` — Fréchet distance of Gaussians fitted to the
  features; biased by the number of faces, so every row uses the same number. Both computed by
  torchmetrics from the judge's features (ImageNet Inception weights are not available offline,
  and 48x48 grey faces are far from ImageNet anyway).
* ``ssim_to_source`` / ``l1_to_source`` — for translations: structure and identity kept (SSIM 1 and
  L1 0 mean an unchanged face). The ``real target`` row pairs each face with a random source face:
  what two unrelated faces score.
* ``diversity`` — mean pairwise feature distance within the set divided by the same for the
  reference set (1 = as varied as real target faces; mode collapse drives it to 0).
* ``nn_pixel`` / ``nn_feature`` — median distance to the nearest *training* face of the target
  emotion (RMS grey levels; feature L2), excluding the face itself: near 0 means copied.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from feraug.core.seeding import SELECT, derive_seed
from feraug.data.dataset import FaceDataset
from feraug.data.degrade import CONTROLS
from feraug.evaluate.instrument.controls import UNTOUCHED, above_control, control_faces, headline
from feraug.evaluate.instrument.crossfit import features
from feraug.evaluate.instrument.image_quality import mean_abs_error, ssim
from feraug.evaluate.instrument.judges import DISAGREE, Judge, source_emotion

#: KID subsets and their largest size (Bińkowski et al. use 100 subsets of 1,000; synthetic sets here are smaller).
KID_SUBSETS = 100
KID_MAX_SUBSET = 100
ROW_SYNTHETIC, ROW_TARGET, ROW_SOURCE = "synthetic", "real target (held out)", "real source (untranslated)"


class _Precomputed(nn.Module):
    """Hands torchmetrics features computed elsewhere: its metrics accept any feature extractor."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def kid(real: np.ndarray, fake: np.ndarray, *, subsets: int = KID_SUBSETS, subset_size: int | None = None,
        seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Unbiased KID (mean, std over ``subsets``) between two feature sets, via torchmetrics.

    ``subset_size`` defaults to ``min(len(real), len(fake), 100)``; subsets are drawn with a
    generator seeded by ``seed`` (the caller's random state is left alone).
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    size = subset_size or min(len(real), len(fake), KID_MAX_SUBSET)
    if size < 2:
        raise ValueError(f"KID needs at least 2 faces per set, got {len(real)} and {len(fake)}")
    with warnings.catch_warnings():  # "saves all features in a buffer": a few hundred vectors here
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(torch.from_numpy(np.asarray(real, dtype=np.float64)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake, dtype=np.float64)), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance ``|μr − μf|² + Tr(Σr + Σf − 2(ΣrΣf)^½)`` of two feature sets, via torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 faces per set, got {len(real)} and {len(fake)}")
    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]))
    metric.update(torch.from_numpy(np.asarray(real, dtype=np.float64)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake, dtype=np.float64)), real=False)
    return float(metric.compute())


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of distinct rows."""
    if len(x) < 2:
        return float("nan")
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    d = torch.cdist(t, t)
    n = len(x)
    return float(d.sum() / (n * (n - 1)))


def nearest_distance(x: np.ndarray, ref: np.ndarray, *, exclude: np.ndarray | None = None,
                     return_index: bool = False) -> Any:  # fmt: skip
    """Distance of each row of ``x`` to its nearest row of ``ref`` (and, with ``return_index``, which row).

    ``exclude[i]`` is a ``ref`` index that does not count for row ``i`` (the face itself, when
    real faces are measured against a set that contains them); -1 excludes nothing.
    """
    a = torch.from_numpy(np.asarray(x, dtype=np.float64))
    b = torch.from_numpy(np.asarray(ref, dtype=np.float64))
    out = []
    for start in range(0, len(a), 256):
        d = torch.cdist(a[start : start + 256], b)
        if exclude is not None:
            ex = torch.from_numpy(np.asarray(exclude[start : start + 256], dtype=np.int64))
            rows = torch.nonzero(ex >= 0).flatten()
            d[rows, ex[rows]] = float("inf")
        out.append(d.min(1))
    dist = torch.cat([m.values for m in out]).numpy() if out else np.zeros(0)
    if return_index:
        return dist, (torch.cat([m.indices for m in out]).numpy() if out else np.zeros(0, dtype=np.int64))
    return dist


@dataclass(frozen=True)
class FaceSet:
    """One row of the quality table: faces, where they came from, and their paired sources (if any)."""

    name: str
    images: torch.Tensor  # uint8 [N,H,W]
    rows: np.ndarray  # data row of the face, or of its source, for out-of-fold judging; -1 for none
    self_index: np.ndarray  # index into the target training faces of the face itself, -1 if none
    sources: torch.Tensor | None  # uint8 [N,H,W] source faces paired with these, or None


def _pixels(images: torch.Tensor) -> np.ndarray:
    return images.flatten(1).double().numpy()


def judge_hits(images: torch.Tensor, rows: np.ndarray, judges: Sequence[Judge],
               target: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Per judge, each face's probability of ``target`` (``p_<name>``) and whether it is called so (``hit_<name>``)."""
    out: dict[str, np.ndarray] = {}
    for j in judges:
        proba = j.proba(images, rows)
        out[f"p_{j.name}"] = proba[:, target].astype(np.float64)
        out[f"hit_{j.name}"] = proba.argmax(1) == target
    return out


def score_set(fs: FaceSet, judges: Sequence[Judge], target: int, ref_feats: np.ndarray, train_target: torch.Tensor,
              train_feats: np.ndarray, ref_diversity: float, fid_n: int,
              seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # fmt: skip
    """The table row of one set and its per-face scores (for grids, controls and selection)."""
    calls = judge_hits(fs.images, fs.rows, judges, target)
    net = judges[0].fit.nets[0]
    feats = features(net, fs.images)
    rng = np.random.default_rng(derive_seed(seed, SELECT, len(fs.images)))
    pick = np.sort(rng.choice(len(feats), size=fid_n, replace=False))
    kid_mean, kid_std = kid(ref_feats, feats, seed=seed)
    nn_pix = nearest_distance(_pixels(fs.images), _pixels(train_target), exclude=fs.self_index) / np.sqrt(
        fs.images[0].numel())
    nn_feat = nearest_distance(feats, train_feats, exclude=fs.self_index)
    agreed = np.min([calls[f"p_{j.name}"] for j in judges], axis=0)
    per_face: dict[str, np.ndarray] = {"p_target": agreed, **calls, "nn_pixel": nn_pix, "nn_feature": nn_feat}
    row: dict[str, Any] = {
        "set": fs.name, "n": len(fs.images),
        **{f"transfer_{j.name}": float(calls[f"hit_{j.name}"].mean()) for j in judges},
        "p_target": float(agreed.mean()),
        "kid": kid_mean, "kid_std": kid_std, "fid": fid(ref_feats, feats[pick]), "fid_n": fid_n,
        "diversity": mean_pairwise_distance(feats) / ref_diversity,
        "nn_pixel": float(np.median(nn_pix)), "nn_feature": float(np.median(nn_feat)),
    }  # fmt: skip
    if fs.sources is not None:
        s, l1 = ssim(fs.images, fs.sources).numpy(), mean_abs_error(fs.images, fs.sources).numpy()
        per_face.update({"ssim_to_source": s, "l1_to_source": l1})
        row.update({"ssim_to_source": float(s.mean()), "l1_to_source": float(l1.mean())})
    return row, per_face


def control_rows(faces: torch.Tensor, rows: np.ndarray, judges: Sequence[Judge], target: int,
                 seed: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:  # fmt: skip
    """Table rows of the controls made from ``faces`` and, per control, each judge's per-face hits."""
    table, hits = [], {}
    for name, images in control_faces(faces, seed).items():
        calls = judge_hits(images, rows, judges, target)
        hits[name] = {j.name: calls[f"hit_{j.name}"] for j in judges}
        table.append({"set": f"control: {name}", "n": len(images),
                      **{f"transfer_{j.name}": float(calls[f"hit_{j.name}"].mean()) for j in judges},
                      "p_target": float(np.min([calls[f"p_{j.name}"] for j in judges], axis=0).mean()),
                      "l1_to_source": float(mean_abs_error(images, faces).mean())})  # fmt: skip
    return table, hits


def memorization(synthetic: FaceDataset, reference: FaceDataset, net: nn.Module, *, own_source: np.ndarray,
                 calibration: torch.Tensor, calibration_self: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """Each synthetic face's distance to its nearest face among ``reference`` (the generator's training faces).

    A generator that copies its training faces shows up as distances near 0, below what real faces
    that are *not* copies read: the ``calibration`` faces (real held-out target faces, each excluding
    itself via ``calibration_self``, an index into ``reference`` or -1). A translation excludes its own
    source (``own_source``, same convention): staying close to the source is the point of translating.
    Distances in RMS grey levels (pixels) and in the judge's feature space.
    """
    ref_pix, ref_feat = _pixels(reference.images), features(net, reference.images)
    scale = np.sqrt(reference.images[0].numel())
    out: dict[str, Any] = {"reference_faces": len(reference)}
    for name, images, exclude in (("synthetic", synthetic.images, own_source),
                                  ("real", calibration, calibration_self)):  # fmt: skip
        pix = nearest_distance(_pixels(images), ref_pix, exclude=exclude, return_index=True)
        feat = nearest_distance(features(net, images), ref_feat, exclude=exclude)
        out[name] = {"pixel": pix[0] / scale, "feature": feat, "nearest": pix[1]}
    return out


def write_memorization(out: Path, mem: dict[str, Any], synthetic: FaceDataset, reference: FaceDataset,
                       k: int = 12) -> dict[str, Any]:  # fmt: skip
    """``memorization.png`` (histograms, synthetic vs real) and ``closest_pairs.png``; returns the summary numbers."""
    from matplotlib.figure import Figure

    from feraug.figures.grid import labelled_grid, save_image

    fig = Figure(figsize=(9, 3.2))
    for i, (key, label) in enumerate((("pixel", "RMS grey levels"), ("feature", "judge feature distance"))):
        ax = fig.add_subplot(1, 2, i + 1)
        both = np.concatenate([mem["synthetic"][key], mem["real"][key]])
        bins = np.linspace(0.0, float(both.max()) * 1.02 + 1e-9, 30)
        ax.hist(mem["real"][key], bins=bins, alpha=0.6, density=True, label="real held-out target faces")
        ax.hist(mem["synthetic"][key], bins=bins, alpha=0.6, density=True, label="synthetic faces")
        ax.set_xlabel(f"distance to the nearest training face ({label})")
        ax.set_yticks([])
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(f"Nearest of the generator's {mem['reference_faces']} training faces (near 0 = a copy)", fontsize=9)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "memorization.png", dpi=120, bbox_inches="tight")
    order = np.argsort(mem["synthetic"]["pixel"], kind="stable")[:k]
    nearest = torch.from_numpy(mem["synthetic"]["nearest"][order])
    grid = labelled_grid([synthetic.images[torch.from_numpy(order)], reference.images[nearest]],
                         ["synthetic", "nearest training"], label_width=110)  # fmt: skip
    save_image(grid, out / "closest_pairs.png")

    def stats(v: np.ndarray) -> dict[str, float]:
        return {"median": float(np.median(v)), "p05": float(np.percentile(v, 5)), "min": float(v.min())}

    return {"reference_faces": mem["reference_faces"],
            **{f"{who}_{key}": stats(mem[who][key]) for who in ("synthetic", "real") for key in ("pixel", "feature")}}


@dataclass(frozen=True)
class QualityReport:
    """What :func:`measure_quality` returns: table rows, per-face scores of the synthetic set, files written."""

    rows: list[dict[str, Any]]
    per_face: dict[str, np.ndarray]
    info: dict[str, Any]
    files: dict[str, Path]

    def table(self) -> str:
        """The rows as a fixed-width text table."""
        return format_table(self.rows)


COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("n", "n", "{:d}"), ("transfer_A", "transfer A", "{:.1%}"), ("transfer_B", "transfer B", "{:.1%}"),
    ("p_target", "p(target)", "{:.3f}"),
    ("kid", "KID", "{:.4f}"), ("kid_std", "± std", "{:.4f}"), ("fid", "FID", "{:.2f}"),
    ("ssim_to_source", "SSIM src", "{:.3f}"), ("l1_to_source", "L1 src", "{:.1f}"),
    ("diversity", "diversity", "{:.2f}"), ("nn_pixel", "NN pixel", "{:.1f}"), ("nn_feature", "NN feat", "{:.2f}"),
)  # fmt: skip


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of quality rows (missing values as ``-``)."""
    head = f"{'set':<44}" + "".join(f"{label:>11}" for _, label, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = [fmt.format(r[key]) if r.get(key) is not None else "-" for key, _, fmt in COLUMNS]
        lines.append(f"{r['set']:<44}" + "".join(f"{c:>11}" for c in cells))
    return "\n".join(lines)


def measure_quality(
    synthetic: FaceDataset,
    data: FaceDataset,
    judges: Sequence[Judge],
    *,
    target: int,
    source_rows: np.ndarray | None = None,
    source: int | None = None,
    out_dir: Path | str | None = None,
    seed: int = 0,
    grid_k: int = 12,
    log: Callable[[str], None] | None = None,
    generator_rows: np.ndarray | None = None,
) -> QualityReport:
    """Score ``synthetic`` (faces meant to show emotion ``target``) against real faces; see the module docstring.

    Args:
        synthetic: the synthetic set.
        data: the real pool the judges were cross-fitted on (the Training faces the generator drew on).
        judges: :func:`~feraug.evaluate.instrument.judges.build_judges` of ``data``; the first one's model 0 gives
            the features of the distribution scores.
        target: label of the emotion the synthetic faces should show.
        source_rows: for translations, the source row (:attr:`FaceDataset.rows`) of each synthetic
            face, from its provenance: enables the source-based scores and out-of-fold judging.
        source: emotion of the source faces (the untranslated calibration row); default: the
            source faces' label, else the largest class other than ``target``.
        out_dir: writes ``quality.json``, ``quality.md`` and best/worst grids there.
        generator_rows: the data rows the generator trained on (its run's ``training_rows.npy``): the
            faces the memorization check searches for copies; default: all of ``data``.
    """
    if len(synthetic) < 4:
        raise ValueError(f"the synthetic set has {len(synthetic)} faces; quality needs at least 4")
    if synthetic.size != data.size:
        raise ValueError(f"synthetic faces are {synthetic.size}px but the real ones {data.size}px")
    labels = data.labels.numpy()
    data_index = {int(r): i for i, r in enumerate(np.asarray(data.rows))}
    sources, src_pos = None, None
    if source_rows is not None:
        src_pos = np.array([data_index.get(int(r), -1) for r in source_rows])
        if (src_pos < 0).any():
            bad = int(np.asarray(source_rows)[src_pos < 0][0])
            raise ValueError(f"{int((src_pos < 0).sum())} synthetic face(s) name a source row that is not in the real "
                             f"faces (e.g. row {bad}): pass the data the generator was trained on")  # fmt: skip
        sources = data.images[torch.from_numpy(src_pos)]
    if source is None:
        source = source_emotion(labels, target, src_pos)
    judges = [j.for_target(target, source) for j in judges]  # each calls FALSE_ALARM of real source faces target
    first = judges[0].fit
    fold_of = first.fold_of_rows(np.asarray(data.rows, dtype=np.int64))
    tgt_idx = np.flatnonzero(labels == target)
    src_idx = np.flatnonzero(labels == source)
    rng = np.random.default_rng(derive_seed(seed, SELECT))
    held_tgt = rng.permutation(tgt_idx[fold_of[tgt_idx] == 0])
    if len(held_tgt) < 4:
        raise ValueError(f"only {len(held_tgt)} {data.classes[target]} faces in the judge's held-out fold; "
                         "quality needs at least 4 (2 reference, 2 calibration)")  # fmt: skip
    ref, cal = held_tgt[: len(held_tgt) // 2], held_tgt[len(held_tgt) // 2 :]
    held_src = rng.permutation(src_idx[fold_of[src_idx] == 0])[: max(len(cal), min(len(synthetic), 500))]
    net0 = first.nets[0]
    ref_feats = features(net0, data.images[torch.from_numpy(ref)])
    train_target = data.images[torch.from_numpy(tgt_idx)]
    train_feats = features(net0, train_target)
    ref_div = mean_pairwise_distance(ref_feats)
    position_in_target = {int(p): j for j, p in enumerate(tgt_idx)}
    fid_n = min(len(synthetic), len(cal), len(held_src))

    rows_of = np.asarray(data.rows, dtype=np.int64)
    syn_rows = np.asarray(source_rows, dtype=np.int64) if source_rows is not None else np.full(len(synthetic), -1)
    partner = rng.choice(src_idx, size=len(cal), replace=True)
    sets = [
        FaceSet(ROW_SYNTHETIC, synthetic.images, syn_rows, np.full(len(synthetic), -1), sources),
        FaceSet(ROW_TARGET, data.images[torch.from_numpy(cal)], rows_of[cal],
                np.array([position_in_target[int(p)] for p in cal]),
                data.images[torch.from_numpy(partner)] if sources is not None else None),
        FaceSet(ROW_SOURCE, data.images[torch.from_numpy(held_src)], rows_of[held_src], np.full(len(held_src), -1),
                data.images[torch.from_numpy(held_src)] if sources is not None else None),
    ]  # fmt: skip
    rows, per_face = [], {}
    for fs in sets:
        if log:
            log(f"scoring {fs.name} ({len(fs.images)} faces)")
        row, faces = score_set(fs, judges, target, ref_feats, train_target, train_feats, ref_div, fid_n, seed)
        rows.append(row)
        if fs.name == ROW_SYNTHETIC:
            per_face = faces
    # Controls: the set's own sources degraded (paired face by face), or for a sampled set real faces of the
    # source class degraded; judged exactly like the set.
    paired = sources is not None
    base_faces = sources if paired else data.images[torch.from_numpy(held_src)]
    base_rows = syn_rows if paired else rows_of[held_src]
    if log:
        log(f"scoring {len(CONTROLS) + 1} controls ({len(base_faces)} faces each)")
    ctrl_rows, ctrl_hits = control_rows(base_faces, base_rows, judges, target, seed)
    rows.extend(ctrl_rows)
    above = {j.name: above_control(per_face[f"hit_{j.name}"], {c: h[j.name] for c, h in ctrl_hits.items()},
                                   paired=paired) for j in judges}  # fmt: skip
    for j in judges:  # the yardstick: how far above the same control real held-out target faces read
        real_rate = next(r for r in rows if r["set"] == ROW_TARGET)[f"transfer_{j.name}"]
        margin = real_rate - above[j.name]["control_rate"]
        above[j.name].update({"real_target_rate": real_rate,
                              "of_real": above[j.name]["above"] / margin if margin > 0 else None})  # fmt: skip
    if log:
        log("searching the generator's training faces for near-copies")
    in_reference = np.ones(len(data), dtype=bool) if generator_rows is None else np.isin(data.rows, generator_rows)
    reference = data.subset(np.flatnonzero(in_reference))
    ref_position = np.full(len(data), -1, dtype=np.int64)
    ref_position[in_reference] = np.arange(len(reference))
    own = ref_position[src_pos] if sources is not None else np.full(len(synthetic), -1, dtype=np.int64)
    mem = memorization(synthetic, reference, net0, own_source=own, calibration=data.images[torch.from_numpy(cal)],
                       calibration_self=ref_position[cal])  # fmt: skip
    per_face["nn_training_pixel"] = mem["synthetic"]["pixel"]
    info = {"target": data.classes[target], "source": data.classes[source], "reference_faces": len(ref),
            "above_control": above, "disagree": DISAGREE, "headline": headline(above, DISAGREE),
            "judges": [{"name": j.name, "arch": j.arch, "labels": j.labels, "k": j.fit.k, "describe": j.describe(),
                        "target_recall": j.oof["recall"][target], **j.oof,
                        "cache": str(j.fit.cache) if j.fit.cache else None} for j in judges],
            "translation": source_rows is not None, "synthetic_source": synthetic.source, "data": data.source,
            "seed": seed}  # fmt: skip
    files: dict[str, Path] = {}
    if out_dir is not None:
        info["memorization"] = {**write_memorization(Path(out_dir), mem, synthetic, reference),
                                "generator_known": generator_rows is not None}
        files = write_quality(Path(out_dir), rows, per_face, info, synthetic, sources, grid_k)
        files.update({"memorization": Path(out_dir) / "memorization.png",
                      "closest_pairs": Path(out_dir) / "closest_pairs.png"})  # fmt: skip
    return QualityReport(rows, per_face, info, files)


def memorization_line(m: dict[str, Any] | None) -> str:
    """One sentence of :func:`write_memorization`'s numbers (empty without them)."""
    if not m:
        return ""
    syn, real = m["synthetic_pixel"], m["real_pixel"]
    whose = "the generator's" if m.get("generator_known", True) else "the (generator's unrecorded, so all)"
    return (f"\nMemorization: distance to the nearest of {whose} {m['reference_faces']} training faces, RMS "
            f"grey levels: synthetic median {syn['median']:.1f} (5th percentile {syn['p05']:.1f}, "
            f"min {syn['min']:.1f}); "
            f"real held-out target faces {real['median']:.1f} ({real['p05']:.1f}, {real['min']:.1f}). "
            "Near 0 is a copy (memorization.png, closest_pairs.png).\n")  # fmt: skip


def opening(info: dict[str, Any]) -> str:
    """What ``quality.md`` and ``feraug quality`` print first: the above-control figures, then the judges' own skill."""
    pairing = "paired by source face" if info["translation"] else "two independent proportions"
    lines = [f"Transfer above control: the set's {info['target']} rate minus that of the highest of its negative "
             f"controls (the faces it was made from, untouched and degraded; 95 % interval {pairing}):", "",
             *info["headline"].splitlines(), "", "The judges (out of fold, on the faces they were trained on):"]
    for j in info["judges"]:
        untouched = info["above_control"][j["name"]]["controls"].get(UNTOUCHED)
        point = j.get("operating_point")
        pinned = (f" (pinned to call {point['false_alarm']:.1%} of real {info['source']} faces {info['target']})"
                  if point else "")  # fmt: skip
        lines.append(f"- {j['describe']}, {info['target']} recall {j['target_recall']:.1%}{pinned}; untouched sources "
                     f"read {untouched:.1%} {info['target']}")  # fmt: skip
    return "\n".join(lines)


#: Per-face scores the best/worst grids are drawn for, and whether higher is better.
GRID_SCORES: dict[str, bool] = {"p_target": True, "ssim_to_source": True, "nn_pixel": True}


def write_quality(out: Path, rows: list[dict[str, Any]], per_face: dict[str, np.ndarray], info: dict[str, Any],
                  synthetic: FaceDataset, sources: torch.Tensor | None, k: int) -> dict[str, Path]:  # fmt: skip
    """``quality.json`` (rows, info, per-face scores), ``quality.md`` (the table) and one best/worst grid per score."""
    from feraug.figures.grid import labelled_grid, save_image

    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "quality.json", "md": out / "quality.md"}
    record = {"rows": rows, "info": info, "per_face": {key: v.tolist() for key, v in per_face.items()}}
    files["json"].write_text(json.dumps(record, indent=2))
    title = (f"{info['source']} -> {info['target']}" if info["translation"] else
             f"{info['target']} sampled from noise (untranslated row: real {info['source']} faces)")  # fmt: skip
    files["md"].write_text(f"# Synthetic set quality: {title}\n\n{opening(info)}\n\n```\n"
                           f"{format_table(rows)}\n```\n" + memorization_line(info.get("memorization")))  # fmt: skip
    for key, higher_better in GRID_SCORES.items():
        if key not in per_face:
            continue
        order = np.argsort(per_face[key], kind="stable")
        if higher_better:
            order = order[::-1]
        n = min(k, len(order))
        best, worst = order[:n].copy(), order[::-1][:n].copy()
        grid_rows, names = [], []
        for label, idx in (("best", best), ("worst", worst)):
            t = torch.from_numpy(idx)
            if sources is not None:
                grid_rows.append(sources[t])
                names.append(f"{label}: source")
            grid_rows.append(synthetic.images[t])
            names.append(f"{label}: synthetic")
        files[f"grid_{key}"] = save_image(labelled_grid(grid_rows, names, label_width=110), out / f"grid_{key}.png")
    return files
