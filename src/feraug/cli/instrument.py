"""``feraug quality``, ``select`` and ``filter``: the instrument that judges faces and labels."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from feraug.cli.common import cache_option, load_faces, skip_option, user_errors

judge_options = [
    click.option("--judge-k", type=click.IntRange(2), default=2, show_default=True,
                 help="Folds of the cross-fitted judge (model i never trains on fold i)."),
    click.option("--judge-set", "judge_sets", multiple=True, metavar="KEY=VALUE",
                 help="Judge classifier settings, e.g. epochs=20.  [default: filter: arch fast, 10 epochs; quality "
                      "and select: the classifier-fast-cpu recipe for 36 passes, degradation augmentation, plain "
                      "loss, a prior correction fitted out of fold, and a second judge of arch resnet, 24 passes]"),
    click.option("--judge-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Folder for the judge models.  [default: <feraug cache>/crossfit]"),
]


def _judge_options(fn: Callable[..., Any], k: int = 2) -> Callable[..., Any]:
    options = [click.option("--judge-k", type=click.IntRange(2), default=k, show_default=True,
                            help="Folds of the cross-fitted models (model i never trains on fold i)."),
               *judge_options[1:]]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _synthetic_set_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--synthetic, --provenance, --data and --target: a synthetic set and the real faces it is judged against."""
    options = [
        click.option("--synthetic", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
                     help="Synthetic faces (FER2013-format CSV from translate or sample)."),
        click.option("--provenance", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Provenance CSV of --synthetic.  [default: the .provenance.csv beside it, if any]"),
        click.option("--data", default=None,
                     help="The real faces the generator trained on.  [default: the provenance's data column]"),
        click.option("--target", default=None, help="Emotion the faces should show.  [default: their label]"),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _training_pool(data):  # noqa: ANN001, ANN202 - FaceDataset, imported lazily
    """The faces generators and judges train on: the Training split, or everything when there are no splits."""
    return data.split("Training") if "Training" in data.splits else data


def _translation_sources(prov: dict | None) -> Any:
    """The source rows of a translated set's faces; None for a set without provenance or sampled from noise."""
    if prov is None or (prov["source_row"] < 0).any():
        return None
    return prov["source_row"]


def _generator_rows(prov: dict | None) -> Any:
    """The training rows of the generator(s) that made a set (their runs' records); None when any is unknown."""
    import numpy as np

    from feraug.train.provenance import read_training_rows

    if prov is None or "run" not in prov:
        return None
    rows = [read_training_rows(run) for run in sorted(set(prov["run"].tolist()))]
    return None if any(r is None for r in rows) else np.unique(np.concatenate(rows))


def _ferplus_for(data: str, ferplus: Path | None, echo: Callable[[str], None]) -> Any:
    """The FER+ votes judge B learns from: ``--ferplus``, else a ``ferplus.csv.gz`` beside the data file, else None."""
    from feraug.data.ferplus import load_ferplus

    if ferplus is None:
        beside = Path(data).parent / "ferplus.csv.gz"
        if not beside.is_file():
            return None
        echo(f"judge B learns FER+ plurality labels from {beside} (found beside the data)")
        ferplus = beside
    return load_ferplus(ferplus)


def _judged_set(synthetic: Path, provenance: Path | None, data: str | None, target: str | None, seed: int,
                judge_k: int, judge_sets: tuple[str, ...], judge_cache: Path | None, quiet: bool, skip_bad_rows: bool,
                no_cache: bool, ferplus: Path | None) -> dict[str, Any]:  # fmt: skip
    """Load a synthetic set, its provenance and real data; resolve the target; cross-fit (or load) the judges."""
    from feraug.data.classes import emotion_index
    from feraug.evaluate.instrument.judges import build_judges, training_signal_conflict
    from feraug.synth.synthetic_set import load_synthetic_set

    syn, prov = load_synthetic_set(synthetic, provenance=provenance, cache_dir=not no_cache)
    if data is None:
        if prov is None or "data" not in prov:
            raise click.UsageError("--data is needed: the synthetic set has no provenance naming its real data")
        data = str(prov["data"][0])
    real = load_faces(data, syn.size, skip_bad_rows, no_cache)
    if target is None:
        present = sorted(set(syn.labels.tolist()))
        if len(present) != 1:
            raise click.UsageError(f"the synthetic set holds {len(present)} emotions: say which with --target")
        target_label = present[0]
    else:
        target_label = emotion_index(target)
    pool = _training_pool(real)
    judges = build_judges(pool, k=judge_k, seed=seed, ferplus=_ferplus_for(data, ferplus, click.echo),
                          sets=judge_sets, cache_dir=judge_cache or True, progress=not quiet,
                          log=click.echo)  # fmt: skip
    runs = sorted({Path(r) for r in prov["run"].tolist()}) if prov is not None and "run" in prov else []
    conflict = training_signal_conflict(judges, runs)
    if conflict:
        raise click.UsageError(conflict)
    return {"syn": syn, "prov": prov, "pool": pool, "target": target_label, "judges": judges}


ferplus_option = click.option("--ferplus", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                              default=None, help="FER+ votes aligned with --data, for judge B's labels.  [default: "
                              "ferplus.csv.gz beside the data file, if any; else the data's own labels]")  # fmt: skip


@click.command("quality")
@_synthetic_set_options
@click.option("--source", default=None, help="Emotion of the untranslated calibration row.  [default: the sources']")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for quality.json, quality.md and grids.  [default: <synthetic>.quality]")
@click.option("--seed", default=0, show_default=True, help="Judge folds and seeds, KID subsets, calibration draws.")
@_judge_options
@ferplus_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
@skip_option
@cache_option
@user_errors
def quality(synthetic: Path, provenance: Path | None, data: str | None, target: str | None, source: str | None,
            out: Path | None, seed: int, judge_k: int, judge_sets: tuple[str, ...], judge_cache: Path | None,
            ferplus: Path | None, quiet: bool, skip_bad_rows: bool, no_cache: bool) -> None:  # fmt: skip
    """Measure a synthetic set against real faces, with real-face calibration rows beside it.

    The headline is the transfer above control: the share two cross-fitted judges (different
    architectures and labels, neither trained on a face it scores or on a translation's source) call
    the target emotion, minus the highest share among negative controls — the faces the set was made
    from, untouched and degraded (blur, noise, down-up sampling, textures, blotches, brightness,
    contrast), judged the same way — with a 95 % interval. Beside it: KID and FID in judge A's
    feature space, SSIM/L1 to the source face, diversity and distance to the nearest training face,
    for the set, real held-out target faces and real untranslated source faces. Judges are trained
    once and cached.
    """
    from feraug.data.classes import emotion_index
    from feraug.evaluate.instrument.quality import measure_quality, memorization_line, opening

    j = _judged_set(synthetic, provenance, data, target, seed, judge_k, judge_sets, judge_cache, quiet, skip_bad_rows,
                    no_cache, ferplus)  # fmt: skip
    syn, prov, pool, target_label, judges = (j[k] for k in ("syn", "prov", "pool", "target", "judges"))
    out = out or synthetic.with_name(synthetic.name.removesuffix(".gz").removesuffix(".csv") + ".quality")
    report = measure_quality(syn, pool, judges, target=target_label,
                             source_rows=_translation_sources(prov),
                             source=emotion_index(source) if source is not None else None,
                             out_dir=out, seed=seed, log=None if quiet else click.echo,
                             generator_rows=_generator_rows(prov))  # fmt: skip
    click.echo(f"\n{report.info['source']} -> {report.info['target']}: {len(syn)} synthetic faces\n")
    click.echo(opening(report.info) + "\n")
    click.echo(report.table())
    click.echo(memorization_line(report.info.get("memorization")).rstrip())
    click.echo(f"\nreport: {report.files['md']} (also quality.json and best/worst grids)")


@click.command("select")
@_synthetic_set_options
@click.option("--keep", type=click.IntRange(1), default=None, help="Keep this many faces (the best first).")
@click.option("--threshold", type=float, default=None, help="Keep every face whose --by score is at least this.")
@click.option("--by", type=click.Choice(["combined", "target", "realism", "structure"]), default="combined",
              show_default=True, help="combined: mean percentile rank of target confidence, realism and SSIM to "
                                      "the source; or one of them alone.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV of the kept faces; provenance, .select.json and a grid go beside it.")
@click.option("--seed", default=0, show_default=True, help="Judge folds and seeds.")
@_judge_options
@ferplus_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
@skip_option
@cache_option
@user_errors
def select(synthetic: Path, provenance: Path | None, data: str | None, target: str | None, keep: int | None,
           threshold: float | None, by: str, out: Path, seed: int, judge_k: int, judge_sets: tuple[str, ...],
           judge_cache: Path | None, ferplus: Path | None, quiet: bool, skip_bad_rows: bool,
           no_cache: bool) -> None:  # fmt: skip
    """Keep the best synthetic faces by target confidence, realism and identity kept (SSIM to source).

    Scores come from the same two cross-fitted judges as `feraug quality` (cached): target
    confidence is the lower of the two judges' probabilities, so a face ranks high only when both
    agree, and a face is never judged by a model that trained on its source. The kept faces keep
    their provenance, so the augmentation experiment's leakage guard works on them unchanged.
    """
    import numpy as np
    import torch

    from feraug.evaluate.instrument.selection import select_top, selection_scores, write_selection

    if (keep is None) == (threshold is None):
        raise click.UsageError("give exactly one of --keep N and --threshold T")
    j = _judged_set(synthetic, provenance, data, target, seed, judge_k, judge_sets, judge_cache, quiet, skip_bad_rows,
                    no_cache, ferplus)  # fmt: skip
    syn, prov, pool, judges = j["syn"], j["prov"], j["pool"], j["judges"]
    sources = None
    source_rows = _translation_sources(prov)
    if source_rows is not None:
        index = {int(r): i for i, r in enumerate(pool.rows)}
        pos = np.array([index.get(int(r), -1) for r in source_rows])
        if (pos < 0).any():
            raise click.UsageError(f"{int((pos < 0).sum())} synthetic faces name source rows outside the training "
                                   "faces of --data: pass the data the generator was trained on")  # fmt: skip
        sources = pool.images[torch.from_numpy(pos)]
    if by == "structure" and sources is None:
        raise click.UsageError("--by structure needs translations with provenance (SSIM to the source face)")
    scores = selection_scores(syn, pool, judges, target=j["target"], sources=sources, source_rows=source_rows)
    kept = select_top(scores[by], keep=keep, threshold=threshold)
    if kept.size == 0:
        raise click.UsageError(f"no face has a {by} score of at least {threshold}")
    result = write_selection(out, syn, prov, scores, kept, by,
                             {"synthetic": str(synthetic), "seed": seed,
                              "judge_caches": [str(jd.fit.cache) for jd in judges]})  # fmt: skip
    click.echo(f"kept {kept.size} of {len(syn)} faces by {by} -> {result.csv}")
    for k, v in scores.items():
        click.echo(f"  {k:<10} mean kept {v[kept].mean():9.4f}   all {v.mean():9.4f}")
    click.echo(f"provenance: {result.provenance}\nreport: {result.report}\ngrid: {result.grid}")


@click.command("filter")
@click.option("--data", required=True, help="FER2013 CSV, image folder, or toy[:N[:SEED]] to filter.")
@click.option("--method", type=click.Choice(["confidence", "likelihood", "ferplus"]), required=True,
              help="confidence: out-of-fold probability of the label; likelihood: Gaussian likelihood of the "
                   "embedding under the label's class; ferplus: drop what the FER+ votes contradict.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Filtered CSV (FER2013 layout); the report (.filter.md/.json) and a grid go beside it.")
@click.option("--drop-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
              help="Drop this share of each class's lowest-scored training faces.  [default: 0.1]")
@click.option("--threshold", type=float, default=None, help="Drop training faces scored below this instead.")
@click.option("--ferplus", "ferplus_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="FER+ votes aligned with --data (ferplus.csv.gz): ground truth for the report, needed by "
                   "--method ferplus.")
@click.option("--features", "features_run", type=click.Path(exists=True, path_type=Path), default=None,
              help="likelihood: embed with this classifier run (in-sample) instead of cross-fitted ones.")
@click.option("--seed", default=0, show_default=True, help="Folds and model seeds.")
@functools.partial(_judge_options, k=5)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@skip_option
@cache_option
@user_errors
def filter_data(data: str, method: str, out: Path, drop_fraction: float | None, threshold: float | None,
                ferplus_path: Path | None, features_run: Path | None, seed: int, judge_k: int,
                judge_sets: tuple[str, ...], judge_cache: Path | None, quiet: bool, skip_bad_rows: bool,
                no_cache: bool) -> None:  # fmt: skip
    """Score every training face's label, drop the least credible ones, write the rest as a new CSV.

    Validation and test faces are never scored or dropped. With --ferplus the report gives the
    method's precision and recall against FER+'s label errors (faces whose FER+ plurality is not
    their FER2013 label, or is unknown / not a face). Cross-fitted models (--judge-k folds) are
    cached. The faces scored are the training part of the standard splits; a classifier trained on
    the output re-carves its selection split from the Training faces that remain.
    """
    from feraug.data.fer2013 import write_fer2013_csv
    from feraug.data.ferplus import load_ferplus
    from feraug.evaluate.classifier import load_classifier
    from feraug.evaluate.instrument.crossfit import judge_config
    from feraug.evaluate.instrument.filtering import filter_dataset, write_filter_report

    real = load_faces(data, 48, skip_bad_rows, no_cache)
    fp = load_ferplus(ferplus_path) if ferplus_path is not None else None
    if drop_fraction is None and threshold is None and method != "ferplus":
        drop_fraction = 0.1
    net = load_classifier(features_run)[0] if features_run is not None else None
    result = filter_dataset(real, method, cfg=judge_config(judge_sets), ferplus=fp, drop_fraction=drop_fraction,
                            threshold=threshold, k=judge_k, seed=seed, features_net=net,
                            cache_dir=judge_cache or True, progress=not quiet, log=click.echo)  # fmt: skip
    kept = real.subset(result.kept_positions(len(real)))
    write_fer2013_csv(kept, out)
    files = write_filter_report(out, real, result)
    click.echo(files["md"].read_text())
    click.echo(f"wrote {len(kept)} of {len(real)} faces to {out} ({int(result.dropped.sum())} training faces "
               f"dropped)\nreport: {files['md']} (also {files['json'].name}, lowest-scored faces: "
               f"{files['grid'].name})")  # fmt: skip
