"""``report.md`` and a self-contained ``report.html`` from an augmentation experiment's ``results.json``, and the
report's figures.

The report is built once as a list of blocks (headings, paragraphs, tables, figures, code) and
rendered twice: Markdown that links the PNGs in ``plots/``, and one HTML file with every figure
embedded as a base64 ``data:`` URI, so a reviewer can open (or mail) a single file and see
everything. Both are functions of ``results.json`` alone: a report can be rebuilt, or restyled,
without retraining anything.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from feraug.data.dataset import FaceDataset
from feraug.figures.grid import labelled_grid, save_image
from feraug.figures.plots import plot_confusion_matrix, plot_per_class_bars, plot_per_class_changes
from feraug.report.verdict import headline, interval_text, per_class_rows

_SCALARS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("macro_auc", "macro-AUC"),
            ("macro_precision", "macro precision"), ("macro_recall", "macro recall (balanced accuracy)"))  # fmt: skip
_PRESENT = (("macro_f1_present", "macro-F1, present classes"),
            ("macro_recall_present", "macro recall, present classes"))  # fmt: skip
_PER_CLASS = (("recall", "recall"), ("f1", "F1"), ("precision", "precision"), ("auc", "one-vs-rest AUC"))


@dataclass(frozen=True)
class Block:
    """One report element: ``kind`` is heading, lead (the one-line verdict), text, bullets, table, figure or code."""

    kind: str
    text: str = ""
    level: int = 2
    items: tuple[str, ...] = ()
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    path: Path | None = None


def _heading(text: str, level: int = 2) -> Block:
    return Block("heading", text, level)


def _text(text: str) -> Block:
    return Block("text", text)


def _table(header: list[str], rows: list[list[str]]) -> Block:
    return Block("table", header=tuple(header), rows=tuple(tuple(r) for r in rows))


def _ms(stat: dict[str, Any], digits: int = 2) -> str:
    """``mean ± std`` in percent; ``-`` when undefined."""
    if stat["mean"] is None:
        return "-"
    return f"{100 * stat['mean']:.{digits}f}" + ("" if stat["std"] is None else f" ± {100 * stat['std']:.{digits}f}")


def _pt(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def _ci(ci: list[float] | None) -> str:
    return "-" if ci is None else f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def synthetic_faces_grid(data: FaceDataset, synthetic: FaceDataset, sources: np.ndarray, folder: Path,
                         k: int = 10) -> dict[str, str]:  # fmt: skip
    """Draw the report's grid of synthetic faces under their sources (if any); returns its file name and caption.

    A reader should see the faces before the tables that judge them. When ``feraug quality`` has
    scored this very set (its ``quality.json`` in ``<csv>.quality`` beside the CSV, one score per
    face), the grid shows the ``k`` best and ``k`` worst by the judge's target probability;
    otherwise ``k`` faces spread evenly over the set, and the caption says how to rank them.
    """
    csv = Path(synthetic.source)
    scores = None
    qfile = csv.with_name(csv.name.removesuffix(".gz").removesuffix(".csv") + ".quality") / "quality.json"
    if qfile.is_file():
        p_target = json.loads(qfile.read_text()).get("per_face", {}).get("p_target")
        if p_target is not None and len(p_target) == len(synthetic):
            scores = np.asarray(p_target, dtype=np.float64)
    n = min(k, len(synthetic))
    if scores is not None:
        order = np.argsort(-scores, kind="stable")
        groups = [("best", order[:n]), ("worst", order[::-1][:n])]
        caption = (f"The {n} synthetic faces the quality judge found most and least like their target class "
                   f"(p(target) from {qfile}), each under its source face")  # fmt: skip
    else:
        groups = [("", np.linspace(0, len(synthetic) - 1, n).round().astype(np.int64))]
        caption = (f"{n} synthetic faces spread over the set, each under its source face (run `feraug quality "
                   f"--synthetic {csv}` to see the best and worst)")  # fmt: skip
    rows, names = [], []
    for label, idx in groups:
        t = torch.from_numpy(np.ascontiguousarray(idx))
        if (sources[idx] >= 0).all():
            rows.append(data.images[torch.from_numpy(sources[idx])])
            names.append(f"{label} source".strip())
        rows.append(synthetic.images[t])
        names.append(f"{label} synthetic".strip())
    name = "synthetic_faces.png"
    save_image(labelled_grid(rows, names, label_width=110), folder / name)
    return {"file": name, "caption": caption}


def _plots(results: dict[str, Any], name: str, folder: Path) -> list[Block]:
    """Per-class recall and F1 bars (std error bars) and each arm's pooled confusion matrix for one set."""
    classes = results["classes"]
    arms = results["sets"][name]["arms"]
    figs = []
    for key, label in _PER_CLASS[:2]:
        values = {arm: [s["per_class"][c][key]["mean"] for c in classes] for arm, s in arms.items()}
        errors = {arm: [s["per_class"][c][key]["std"] or 0.0 for c in classes] for arm, s in arms.items()}
        path = plot_per_class_bars(values, classes, folder / f"{name}_{key}.png", f"{label} (mean ± std over runs)",
                                   f"Per-class {label} on {name}", errors=errors)  # fmt: skip
        figs.append(Block("figure", f"Per-class {label} on {name}; error bars: std over runs", path=path))
    for arm, s in arms.items():
        path = plot_confusion_matrix(s["confusion_matrix"], classes, folder / f"{name}_confusion_{arm}.png",
                                     title=f"{arm}: {name}, {len(s['runs'])} run(s) pooled")  # fmt: skip
        figs.append(Block("figure", f"Confusion matrix of {arm} on {name}, predictions of all runs pooled", path=path))
    return figs


def _lead_figures(results: dict[str, Any], folder: Path) -> list[Block]:
    """What a reader should see first: per-class F1 change of the synthetic arm with CIs, and the faces."""
    figs = []
    versus = results.get("per_class_versus") or {}
    if versus:
        path = plot_per_class_changes(versus, results["classes"], folder / "f1_change.png",
                                      title=f"Per-class F1 change on {results['primary_set']}")  # fmt: skip
        noise_only = any((d.get("method") or "").startswith("test-set noise only") for c in versus.values() for d in c)
        kind = ("test-image bootstrap 95% intervals (test-set noise only: too few seeds for an across-seed interval)"
                if noise_only else "95% CIs across seeds")  # fmt: skip
        caption = ("Per-class F1 change of the synthetic arm against each alternative, percentage points, with "
                   f"{kind}, clipped to ±100 (exploratory: one interval per class)")  # fmt: skip
        figs.append(Block("figure", caption, path=path))
    faces = results.get("synthetic_faces")
    if faces and (folder / faces["file"]).is_file():
        figs.append(Block("figure", faces["caption"], path=folder / faces["file"]))
    return figs


def _set_blocks(results: dict[str, Any], name: str, figures: list[Block]) -> list[Block]:
    s = results["sets"][name]
    arms = list(s["arms"])
    classes = results["classes"]
    first = s["arms"][arms[0]]
    blocks = [_heading(f"Results on {name} ({first['n_test']} faces per run)"),
              _text("Mean ± standard deviation over runs, in percent.")]  # fmt: skip
    scalars = list(_SCALARS)
    if any(a["present_classes"] != classes for a in s["arms"].values()):
        scalars += list(_PRESENT)
        present = "; ".join(f"{arm}: {', '.join(a['present_classes'])}" for arm, a in s["arms"].items())
        blocks.append(_text(f"Present classes (trained on and in the test set): {present}"))
    rows = [[label, *(_ms(s["arms"][a][key]) for a in arms)] for key, label in scalars]
    blocks.append(_table(["metric", *arms], rows))
    for key, label in _PER_CLASS:
        blocks += [_heading(f"Per-class {label}", 3),
                   _table(["class", "support", *arms], [[c, str(first["per_class"][c]["support"]),
                                                         *(_ms(s["arms"][a]["per_class"][c][key], 1) for a in arms)]
                                                        for c in classes])]  # fmt: skip
    for arm, d in s["deltas"].items():
        blocks += [_heading(f"{arm} − baseline, percentage points", 3),
                   _text(f"accuracy {_pt(d['accuracy'])}, macro-F1 {_pt(d['macro_f1'])}, "
                         f"macro-AUC {_pt(d['macro_auc'])}"),
                   _table(["class", *(label for _, label in _PER_CLASS)],
                          [[c, *(_pt(d["per_class"][c][k]) for k, _ in _PER_CLASS)] for c in classes])]  # fmt: skip
    if s["comparisons"]:
        blocks += [_heading("Significance", 3),
                   _text("Differences b − a in percentage points. The 'primary' rows decide the verdict (the "
                         "primary metric and, with a target class, its F1, each at its Bonferroni-corrected level); "
                         "the 'control' row is the positive control; the deciding interval is across training "
                         "seeds (paired t over seeds, or the corrected t over k-fold folds), clipped to [-100, +100] "
                         "for a class's own metric. 'seeds p' is that paired t-test's p; the Wilcoxon p "
                         "is shown only where it can reach 0.05 (6+ seeds). 'test-set noise only' resamples the "
                         "test images with all runs pooled: it ignores training randomness and never decides. "
                         "'power' is the chance this design had to show a true gain of the minimum size.")]  # fmt: skip
        rows = []
        for t in s["comparisons"]:
            pt_ = t.get("paired_test")
            boot = t.get("bootstrap_pooled")
            ct = t.get("corrected_ttest")
            prim = t.get("primary")
            seeds_p = "-"
            if pt_:
                seeds_p = _p(pt_["p_ttest"])
                if pt_["wilcoxon_min_p"] <= 0.05:
                    seeds_p += f" (Wilcoxon {_p(pt_['p_wilcoxon'])})"
            power = t.get("power")
            rows.append([f"{t['b']} vs {t['a']}", f"{t['metric']} ({t.get('role', '-')})", _pt(t["diff"]),
                         interval_text(prim) if prim else "-", _p(prim["p"]) if prim else "-", seeds_p,
                         _ci(boot["ci95"]) if boot else "-", _ci(ct["ci95"]) if ct else "-",
                         "-" if power is None else f"{100 * power:.0f}%",
                         t.get("outcome", "-") + (f" (interval: {t['interval_outcome']})"
                                                  if "interval_outcome" in t else "")])  # fmt: skip
        blocks.append(_table(["comparison", "metric", "diff", "deciding CI", "p", "seeds p",
                              "test-set noise only CI", "corrected t CI", "power", "outcome"], rows))  # fmt: skip
        per_seed = [[f"{t['b']} vs {t['a']}", t["metric"], str(b["seed"]), _pt(b["diff"]), _ci(b["ci95"]), _p(b["p"])]
                    for t in s["comparisons"] for b in t.get("bootstrap_per_seed", [])]  # fmt: skip
        if per_seed:
            blocks += [_text("Paired bootstrap per seed (each seed's pair of models on its own):"),
                       _table(["comparison", "metric", "seed", "diff", "95% CI", "p"], per_seed)]  # fmt: skip
        notes = sorted({n for t in s["comparisons"] for n in t["notes"]})
        if notes:
            blocks.append(Block("bullets", items=tuple(notes)))
    return [*blocks, *figures]


def _checks_blocks(results: dict[str, Any]) -> list[Block]:
    """The target-class checks that precede any YES or NO: what was checked, what was found."""
    primary = results["primary_set"]
    checks = results["sets"][primary].get("checks") if primary else None
    if not checks:
        return []
    target, c = checks["target"], checks["control"]
    control = "not assessed (one seed)" if c["passed"] is None else (
        f"{'passed' if c['passed'] else 'FAILED'}: oversample − baseline {target} recall {_pt(c['diff'])} pt, 95% CI "
        f"{_ci(c['ci95'])} ({c['method']})")  # fmt: skip
    items = [f"{target} test faces: {checks['support']} per run",
             f"the baseline predicted {target} (recall > 0) in {checks['seeds_predicting']} of {checks['seeds']} "
             "seed(s); needed: at least half", f"positive control {control}"]  # fmt: skip
    verdict = "passed: the answers above are read" if checks["informative"] else (
        f"failed, so every answer is NOT INFORMATIVE: {'; '.join(checks['reasons'])}. To change: {checks['advice']}")
    return [_heading(f"Target-class checks ({target})", 3), Block("bullets", items=tuple(items)),
            _text(f"Checks {verdict}.")]  # fmt: skip


def report_blocks(results: dict[str, Any], figures: dict[str, list[Block]], lead: Sequence[Block] = ()) -> list[Block]:
    """The report's content, in order: the verdict in one line, ``lead`` figures, then the detail.

    ``figures`` maps each evaluation set to its figure blocks.
    """
    data = results["data"]
    guard = results["leakage_guard"]
    n_runs = len(results["runs"])
    blocks = [
        _heading(f"feraug experiment: {results['protocol']} protocol", 1),
        Block("lead", headline(results)),
        *lead,
        _text(f"Protocol {results['protocol']}: {n_runs} classifier runs "
              f"({len(results['seeds'])} seed(s) x {len(results['folds'])} fold(s) x arms). Real data: {data['real']} "
              f"({data['n_real']} faces); synthetic: {data['synthetic']} ({data['n_synthetic']} faces: "
              + ", ".join(f"{c} {n}" for c, n in data["synthetic_per_class"].items() if n) + ")."),
        _heading("Verdict"),
    ]  # fmt: skip
    sentences = [v["sentence"] for v in results["verdict"].values()]
    none = "This protocol has no synthetic-vs-baseline or synthetic-vs-oversampling comparison."
    blocks.append(Block("bullets", items=tuple(sentences)) if sentences else _text(none))
    blocks += _checks_blocks(results)
    changes = {**results.get("per_class_versus", {}),
               **{f"{arm} vs baseline": c for arm, c in results["per_class_changes"].items() if arm != "synthetic"}}
    rows = per_class_rows(changes)
    if rows:
        blocks += [_heading("Per-class changes (exploratory)", 3),
                   _text(f"Not part of the verdict: each class's change on {results['primary_set']}, percentage "
                         "points, with its interval clipped to [-100, +100] (one test face of a small class moves "
                         "its recall by several points; one interval per row, so some exclude 0 by chance)."),
                   _table(["class", "arm vs ref", "change", "interval", "method"], rows)]  # fmt: skip
    dropped = list(guard["dropped_per_fold"].values())
    blocks += [_heading("Protocol"), _text(results["split_note"] + "."),
               _text(f"Leakage guard: of {guard['n_synthetic']} synthetic faces, {guard['total_dropped']} were dropped "
                     f"from training in total over {len(dropped)} fold(s) (per fold {min(dropped)}-{max(dropped)}): "
                     "their source face was in that fold's validation or test set.")]  # fmt: skip
    overlap = guard.get("generator_overlap") or {}
    runs = sorted({run for per_fold in overlap.values() for run in per_fold})
    for run in runs:
        counts = [per_fold.get(run) for per_fold in overlap.values()]
        if any(c is None for c in counts):
            blocks.append(_text(f"Generator provenance: {run} records no training rows (trained before feraug kept "
                                "them, or not found from here): whether it saw test faces is unknown."))  # fmt: skip
            continue
        tests, vals = [c["test"] for c in counts], [c["val"] for c in counts]
        mode = guard.get("generator_overlap_mode")
        fate = "its faces were left out of those folds" if mode == "drop" else "its faces were kept"
        what = "trained on none of the test faces of any fold"
        if any(tests):
            what = f"trained on {min(tests)}-{max(tests)} test faces per fold (generator_overlap={mode}: {fate})"
        blocks.append(_text(f"Generator provenance: the generator of {run} {what}; it saw {min(vals)}-{max(vals)} "
                            "validation faces per fold (validation only picks the epoch)."))  # fmt: skip
    if "removed_real_sources" in guard:
        blocks.append(_text(f"{guard['removed_real_sources']} real training faces that are sources of synthetic "
                            "test faces were removed from training."))  # fmt: skip
    added = guard.get("added_per_fold", {})
    if added:
        fold, counts = next(iter(added.items()))
        listed = ", ".join(f"{c} {n}" for c, n in counts.items() if n) or "none"
        blocks.append(_text(f"Faces added per class to the synthetic arm, and duplicated in the oversample arm (fold "
                            f"{fold}): {listed}."))  # fmt: skip
    if results["notes"]:
        blocks.append(Block("bullets", items=tuple(results["notes"])))
    for name in results["sets"]:
        blocks += _set_blocks(results, name, figures.get(name, []))
    blocks += [_heading("Runs"),
               _table(["arm", "seed", "fold", "training faces", "best epoch", "best val score"],
                      [[r["arm"], str(r["seed"]), r["fold"], str(r["n_train"]), str(r["best_epoch"]),
                        "-" if r["best_score"] is None else f"{r['best_score']:.4f}"] for r in results["runs"]]),
               _heading("Configuration"),
               Block("code", yaml.safe_dump(results["config"], sort_keys=False))]  # fmt: skip
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(blocks: list[Block], root: Path) -> str:
    """Markdown; figures link their PNGs relative to ``root``."""
    out = []
    for b in blocks:
        if b.kind == "heading":
            out.append(f"{'#' * b.level} {b.text}")
        elif b.kind == "text":
            out.append(b.text)
        elif b.kind == "lead":
            out.append(f"**{b.text}**")
        elif b.kind == "bullets":
            out.append("\n".join(f"- {item}" for item in b.items))
        elif b.kind == "table":
            lines = ["| " + " | ".join(map(_md_cell, b.header)) + " |", "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif b.kind == "figure" and b.path is not None:
            out.append(f"![{b.text}]({b.path.relative_to(root).as_posix()})")
        elif b.kind == "code":
            out.append(f"```yaml\n{b.text.rstrip()}\n```")
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em;vertical-align:top}img{max-width:100%}figcaption{font-size:.85em;color:#555}
pre{background:#f6f6f6;padding:1em;overflow:auto}
.lead{font-size:1.25em;font-weight:600;background:#f4f7fb;border-left:5px solid #3b6ea5;padding:.6em 1em}"""


def render_html(blocks: list[Block]) -> str:
    """One HTML page with every figure embedded as a base64 PNG (no external files)."""
    e = html.escape
    body = []
    for b in blocks:
        if b.kind == "heading":
            body.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif b.kind == "text":
            body.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "lead":
            body.append(f'<p class="lead">{e(b.text)}</p>')
        elif b.kind == "bullets":
            body.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "figure" and b.path is not None:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{e(b.text)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{e(b.text)}</figcaption></figure>")  # fmt: skip
        elif b.kind == "code":
            body.append(f"<pre>{e(b.text)}</pre>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>feraug augmentation experiment'
            f"</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")  # fmt: skip


def write_report(results: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``plots/*.png``, ``report.md`` and ``report.html`` into ``out_dir``; returns the two report paths."""
    out = Path(out_dir)
    figures = {name: _plots(results, name, out / "plots") for name in results["sets"]}
    blocks = report_blocks(results, figures, _lead_figures(results, out / "plots"))
    md = out / "report.md"
    md.write_text(render_markdown(blocks, out))
    page = out / "report.html"
    page.write_text(render_html(blocks))
    return {"markdown": md, "html": page}


def set_comparison_markdown(names: Sequence[str], primary: str, table: dict[str, dict[str, Any]],
                            answers: dict[str, Any]) -> str:  # fmt: skip
    """``comparison.md`` of synthetic sets run on the same folds and seeds: each arm's scores and the answers."""
    lines = [f"# Synthetic sets compared: {', '.join(names)}", "",
             f"Same folds and seeds for every set; mean ± std over runs on {primary}, in %.", "",
             "| arm | accuracy | macro-F1 |", "|---|---:|---:|"]  # fmt: skip
    for arm, s in table.items():
        cells = [f"{100 * s[m]['mean']:.2f} ± {100 * (s[m]['std'] or 0.0):.2f}" for m in ("accuracy", "macro_f1")]
        lines.append(f"| {arm} | {cells[0]} | {cells[1]} |")
    lines += ["", *[f"- {v['sentence']}" for v in answers.values()], "",
              "Each set's own report: " + ", ".join(f"`{name}/report.md`" for name in names) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
