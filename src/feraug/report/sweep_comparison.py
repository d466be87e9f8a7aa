"""The sweep's comparison: one row per experiment, read from its ``results.json``, as a table and a figure.

Every number is read from the experiments' own results (:mod:`feraug.pipelines.sweep` runs them),
so the comparison can be rewritten without training anything: ``comparison.json`` holds the rows,
``comparison.md`` the table and what its cells mean, ``comparison.png`` each entry's gains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from feraug.data.classes import emotion_index, emotion_name
from feraug.report.verdict import METRIC_LABELS

ARMS = ("baseline", "synthetic", "oversample")


def _stat(s: dict[str, Any] | None) -> dict[str, Any]:
    return {"mean": None, "std": None} if s is None else {"mean": s.get("mean"), "std": s.get("std")}


def _test(results: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    """The primary metric's ``b − a``: difference, across-seed 95 % CI, answer and the interval's method."""
    metric = results.get("primary_metric", "macro_f1")
    v = results["verdict"].get(f"{b}_vs_{a}", {})
    tests = results["sets"][results["primary_set"]]["comparisons"]
    t = next((t for t in tests if t["a"] == a and t["b"] == b and t["metric"] == metric), {})
    return {"metric": metric, "diff": v.get("diff", t.get("diff")), "ci95": v.get("ci95"), "answer": v.get("answer"),
            "method": t.get("primary", {}).get("method"), "power": v.get("power")}  # fmt: skip


def _class_change(results: dict[str, Any], versus: str, cls: str, metric: str) -> dict[str, Any]:
    changes = results.get("per_class_versus", {}).get(versus, [])
    d = next((d for d in changes if d["class"] == cls and d["metric"] == metric), None)
    return {"diff": None, "ci95": None} if d is None else {"diff": d["diff"], "ci95": d["ci95"]}


def comparison_row(entry: str, preset: str, n: int, results: dict[str, Any], folder: Path,
                   target: str) -> dict[str, Any]:  # fmt: skip
    """What the table shows of one experiment, every number read from its ``results.json`` (None where absent)."""
    cls = emotion_name(emotion_index(target))
    arms = results["sets"][results["primary_set"]]["arms"]
    added = [sum(per_class.values()) for per_class in results["leakage_guard"]["added_per_fold"].values()]
    per_class = {key: {arm: _stat(arms.get(arm, {}).get("per_class", {}).get(cls, {}).get(key)) for arm in ARMS}
                 for key in ("f1", "precision", "recall", "auc")}  # fmt: skip
    return {
        "entry": entry, "preset": preset, "n": n, "n_used": float(np.mean(added)) if added else None,
        "seeds": len(results["seeds"]), "folds": len(results["folds"]), "experiment": str(folder),
        "macro_f1": {arm: _stat(arms.get(arm, {}).get("macro_f1")) for arm in ARMS},
        "accuracy": {arm: _stat(arms.get(arm, {}).get("accuracy")) for arm in ARMS},
        "vs_baseline": _test(results, "baseline", "synthetic"),
        "vs_oversample": _test(results, "oversample", "synthetic"),
        "target": {"class": cls, "support": arms["synthetic"]["per_class"].get(cls, {}).get("support"), **per_class,
                   "f1_vs_baseline": _class_change(results, "synthetic vs baseline", cls, "f1"),
                   "f1_vs_oversample": _class_change(results, "synthetic vs oversample", cls, "f1")},
    }  # fmt: skip


def best_entry(rows: Sequence[dict[str, Any]]) -> str | None:
    """The entry whose synthetic arm gained most over oversampling in the primary metric (a point estimate)."""
    scored = [(r["vs_oversample"]["diff"], -i, r["entry"]) for i, r in enumerate(rows)
              if r["vs_oversample"]["diff"] is not None]  # fmt: skip
    return max(scored)[2] if scored else None


def _pct(s: dict[str, Any]) -> str:
    if s.get("mean") is None:
        return "—"
    return f"{100 * s['mean']:.2f}" + ("" if s.get("std") is None else f" ± {100 * s['std']:.2f}")


def _delta(d: dict[str, Any]) -> str:
    if d.get("diff") is None:
        return "—"
    ci = d.get("ci95")
    return f"{100 * d['diff']:+.1f}" + ("" if not ci else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]")


_ANSWERS = {"yes": "YES", "no": "NO", "worse": "NO (worse)", "not_shown": "NOT SHOWN",
            "not_informative": "NOT INFORMATIVE", None: "—"}  # fmt: skip


def comparison_markdown(rows: Sequence[dict[str, Any]], settings: dict[str, Any], best: str | None) -> str:
    """``comparison.md``: the table over every experiment, and what its cells mean."""
    if not rows:
        return "# Sweep\n\nNo experiments.\n"
    r0 = rows[0]
    cls, metric = r0["target"]["class"], METRIC_LABELS[r0["vs_oversample"]["metric"]]
    base_f1, base_cls = r0["macro_f1"]["baseline"], r0["target"]["f1"]["baseline"]
    lines = [
        f"# Sweep: {settings['source']} -> {settings['target']}, {len({r['entry'] for r in rows})} CycleGAN entries "
        "compared by the augmentation experiment", "",
        f"Data `{settings['data']}`. Every entry translated the same {settings['n']} {settings['source']} training "
        "faces (same provenance source rows, checked); every experiment used the same configuration: "
        f"{r0['seeds']} seed(s) x {r0['folds']} fold(s), protocol {settings['experiment']['protocol']}. The baseline "
        "arm (real faces only) is shared by all experiments, the oversample arm by those at the same face count.", "",
        f"Baseline: macro-F1 {_pct(base_f1)} %, {cls} F1 {_pct(base_cls)} %.", "",
        f"| entry | preset | faces (used) | macro-F1 + synthetic | Δ {metric} vs baseline [95% CI] | "
        f"Δ {metric} vs oversampling [95% CI] | beat oversampling? | beat baseline? | {cls} F1 syn / over | "
        f"{cls} precision syn / over | {cls} AUC syn / over | Δ {cls} F1 vs oversampling [95% CI] |",
        "|---|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        t = r["target"]
        used = "—" if r["n_used"] is None else f"{r['n_used']:.0f}"
        pair = {k: f"{_pct(t[k]['synthetic'])} / {_pct(t[k]['oversample'])}" for k in ("f1", "precision", "auc")}
        star = " **(best)**" if r["entry"] == best and r["n"] == settings["n"] else ""
        lines.append(f"| {r['entry']}{star} | {r['preset']} | {r['n']} ({used}) | {_pct(r['macro_f1']['synthetic'])} | "
                     f"{_delta(r['vs_baseline'])} | {_delta(r['vs_oversample'])} | "
                     f"{_ANSWERS[r['vs_oversample']['answer']]} | {_ANSWERS[r['vs_baseline']['answer']]} | "
                     f"{pair['f1']} | {pair['precision']} | {pair['auc']} | "
                     f"{_delta(t['f1_vs_oversample'])} |")  # fmt: skip
    methods = sorted({r["vs_oversample"]["method"] for r in rows if r["vs_oversample"]["method"]})
    lines += [
        "", "Means ± standard deviations over runs in %; differences in percentage points (synthetic arm minus the "
        f"other arm) with the experiment's across-seed 95% interval ({'; '.join(methods) or 'none: one seed'}). "
        f"The answers are the experiment's verdicts on {metric} (YES: the interval excludes 0 in favour; NO: it "
        "rules out the minimum gain or shows a loss; NOT SHOWN: could not tell; NOT INFORMATIVE: the target-class "
        "checks failed, the baseline never predicting the class or oversampling not lifting it; with a target class "
        "the answers decide on Bonferroni-corrected 97.5% intervals). faces (used): translated, and "
        "added to the synthetic arm after the leakage guard (mean over folds). "
        f"{cls} columns: the synthetic arm / the oversample arm; the {cls} F1 change is exploratory (one of "
        "fourteen per-class intervals). —: not defined (e.g. no across-seed interval with one seed, or no AUC "
        f"when the test faces hold no {cls} face).",
    ]  # fmt: skip
    if best is not None and settings["more"]:
        lines += ["", f"Best entry at {settings['n']} faces by the {metric} gain over oversampling: **{best}** (a "
                  "point estimate: its interval says whether it is distinguishable from the others); it translated "
                  f"{', '.join(str(k) for k in settings['more'])} faces too, as Pasini et al. did."]  # fmt: skip
    lines += ["", "Each experiment's own report: " + ", ".join(f"`{Path(r['experiment']).name}` of {r['entry']}"
                                                             for r in rows) + " (report.md, report.html)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_comparison(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Per experiment, the synthetic arm's gain vs baseline and vs oversampling, with across-seed 95 % CIs.

    Left: the primary metric; right: the target class's F1. One row per experiment, so the
    presets (and the best one's larger sets) can be read off one figure.
    """
    labels = [f"{r['entry']} ({r['n']})" for r in rows]
    cls, metric = rows[0]["target"]["class"], METRIC_LABELS[rows[0]["vs_oversample"]["metric"]]
    panels = [(f"Δ {metric} (pt)", [r["vs_baseline"] for r in rows], [r["vs_oversample"] for r in rows]),
              (f"Δ {cls} F1 (pt)", [r["target"]["f1_vs_baseline"] for r in rows],
               [r["target"]["f1_vs_oversample"] for r in rows])]  # fmt: skip
    fig = Figure(figsize=(11, 1.2 + 0.45 * len(rows)))
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))
    for ax, (title, vs_base, vs_over) in zip(axes, panels, strict=True):
        for shift, series, label, color in ((-0.15, vs_base, "vs baseline", "tab:blue"),
                                            (0.15, vs_over, "vs oversampling", "tab:orange")):  # fmt: skip
            for yi, d in zip(y + shift, series, strict=True):
                if d["diff"] is None or not math.isfinite(d["diff"]):
                    continue
                x, ci = 100 * d["diff"], d.get("ci95")
                err = None if not ci else [[x - 100 * ci[0]], [100 * ci[1] - x]]
                ax.errorbar(x, yi, xerr=err, fmt="o", color=color, capsize=3, label=label)
                label = None  # one legend entry per series
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle("Synthetic arm's gain per sweep entry (faces), across-seed 95% CI")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    return out


def write_comparison(rows: Sequence[dict[str, Any]], out: Path, *, settings: dict[str, Any],
                     best: str | None) -> dict[str, Path]:  # fmt: skip
    """``comparison.json`` (settings, best entry, rows), ``comparison.md`` and ``comparison.png`` in ``out``."""
    files = {"json": out / "comparison.json", "md": out / "comparison.md", "png": out / "comparison.png"}
    record = {"settings": settings, "best": best, "rows": list(rows)}
    files["json"].write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    files["md"].write_text(comparison_markdown(rows, settings, best))
    if rows:
        plot_comparison(rows, files["png"])
    return files

