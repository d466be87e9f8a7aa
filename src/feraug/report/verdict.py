"""The augmentation experiment's verdict in words: the questions it answers, each answer as one sentence.

The answers themselves (YES, NO, NOT SHOWN from an across-seed interval; NOT INFORMATIVE when the
target-class checks fail) are decided in :mod:`feraug.evaluate.experiment.summary`; here they are
put into the sentences that ``results.json``, the report, ``comparison.md`` and the command line show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feraug.evaluate.experiment.statistics import MIN_GAIN, TARGET_MIN_GAIN

METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
#: The questions the verdict answers: (a, b, question).
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("oversample", "synthetic", "Did synthetic faces beat oversampling real faces?"),
    ("baseline", "synthetic", "Did synthetic faces beat the baseline (no rebalancing)?"),
)


def points(x: float) -> str:
    """A difference of fractions in percentage points, signed: ``+5.0 pt``."""
    return f"{100 * x:+.1f} pt"


ANSWERS = {"yes": "YES", "no": "NO", "worse": "NO, it did worse", "not_shown": "NOT SHOWN",
           "not_informative": "NOT INFORMATIVE"}  # fmt: skip


def interval_text(primary: dict[str, Any]) -> str:
    """The deciding interval with its level, ``[97.5% CI -1.0, +2.0]`` (results written before levels: 95 %)."""
    lo, hi = primary.get("ci", primary["ci95"])
    return f"[{100 * primary.get('level', 0.95):g}% CI {100 * lo:+.1f}, {100 * hi:+.1f}]"


def _label(metric: str, target: str | None) -> str:
    return f"{target} F1" if metric == "target_f1" else METRIC_LABELS[metric]


def _sentence(question: str, t: dict[str, Any], found: dict[str, dict[str, Any]], *, label: str, gain: float,
              checks: dict[str, Any] | None, scope: str, correction: str | None,
              secondary: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """One question's answer: the sentence and the numbers behind it (see :func:`verdict`)."""
    answer = t["outcome"]
    prim = t.get("primary")
    first = f"{label} {points(t['diff'])}"
    first += f" {interval_text(prim)} ({prim['method']})" if prim else " (one seed: no across-seed interval)"
    entry = {"answer": answer, "power": t.get("power"), "seeds_for_80": t.get("seeds_for_80"), "diff": t["diff"],
             "ci95": prim["ci95"] if prim else None, "ci": prim["ci"] if prim else None,
             "level": prim["level"] if prim else None}  # fmt: skip
    if answer == "not_informative" and checks is not None:
        advice = checks["advice"][0].upper() + checks["advice"][1:]
        entry["reasons"] = checks["reasons"]
        entry["interval_outcome"] = t.get("interval_outcome")
        entry["sentence"] = (f"{question} {ANSWERS[answer]}: {'; '.join(checks['reasons'])}. {advice}. For the "
                             f"record, not an answer: {first}.")  # fmt: skip
        return entry
    parts = [first]
    if prim and correction:
        parts.append(correction)
    if answer == "no" and prim:
        parts.append(f"a gain of {points(gain)} or more is ruled out")
    power, need = t.get("power"), t.get("seeds_for_80")
    if power is not None:
        parts.append(f"the design had {100 * power:.0f}% power to show a {points(gain)} gain")
    if answer == "not_shown" and need:
        parts.append(f"about {need} seeds would give 80%")
    boot = t.get("bootstrap_pooled")
    if boot is not None and "test images" not in (prim or {}).get("method", ""):
        parts.append(f"test-set noise only: [{100 * boot['ci95'][0]:+.1f}, {100 * boot['ci95'][1]:+.1f}]")
    for other in secondary:
        s = found.get(other)
        if s is not None and "primary" in s:
            lo, hi = s["primary"]["ci95"]
            parts.append(f"secondary: {METRIC_LABELS[other]} {points(s['diff'])} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    if answer in ("no", "worse"):
        parts.append(f"this answer holds {scope}")
    entry["sentence"] = f"{question} {ANSWERS[answer]}: {'; '.join(parts)}."
    return entry


def verdict(summary: dict[str, Any], questions: Sequence[tuple[str, str, str]] = QUESTIONS,
            recipe: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Plain-language answers to ``questions`` (default :data:`QUESTIONS`), each decided by one interval.

    The answer is :func:`~feraug.evaluate.experiment.statistics.decide` on the primary interval of
    :func:`feraug.evaluate.experiment.summary._compare` — across training seeds, never the
    test-image bootstrap alone: YES (the interval excludes 0, in favour), NO (it excludes a gain of the
    minimum size, or shows a loss), NOT SHOWN (it could not tell: the sentence then gives the
    power this design had for a gain of the minimum size and the seeds that would reach 80 %).
    Secondary metrics and the test-set-noise-only interval are listed after it, labelled so.

    Where the summary knows its target class, each question is asked twice — on the primary metric
    (keys ``<b>_vs_<a>``, first, so the headline stays the macro answer) and on the target class's F1
    against its own minimum gain (``<b>_vs_<a>_target_f1``) — with the Bonferroni correction named in
    the sentence; and when the set's target checks failed every answer is NOT INFORMATIVE, with the
    reasons and what to change, the interval shown for the record only. A NO is a statement about one
    classifier recipe (``recipe``, e.g. "fast, 4 epochs") on one test set, and its sentence says so.
    """
    primary_set = summary["primary_set"]
    metric = summary.get("primary_metric", "macro_f1")
    min_gain = summary.get("min_gain", MIN_GAIN)
    target = summary.get("target")
    tests = summary["sets"][primary_set]["comparisons"] if primary_set else []
    checks = summary["sets"][primary_set].get("checks") if primary_set else None
    scope = f"for this classifier recipe{f' ({recipe})' if recipe else ''} on this test set"
    fix = summary.get("correction")
    correction = None
    if fix:
        names = " and ".join(_label(m, target) for m in fix["metrics"])
        correction = (f"{fix['method']}-corrected over the two primary questions ({names}): "
                      f"{100 * fix['level']:g}% intervals")  # fmt: skip
    asked: list[tuple[str, str, str, str, float]] = [(a, b, q, metric, min_gain) for a, b, q in questions]
    if target is not None:
        gain = summary.get("target_min_gain", TARGET_MIN_GAIN)
        asked += [(a, b, f"{q.rstrip('?')}, on {target} F1?", "target_f1", gain) for a, b, q in questions]
    out: dict[str, Any] = {}
    for a, b, question, key, gain in asked:
        found = {t["metric"]: t for t in tests if t["a"] == a and t["b"] == b}
        if key not in found:
            continue
        secondary = [m for m in METRIC_LABELS if m != metric] if key == metric else []
        entry = _sentence(question, found[key], found, label=_label(key, target), gain=gain, checks=checks,
                          scope=scope, correction=correction, secondary=secondary)  # fmt: skip
        out[f"{b}_vs_{a}" + ("_target_f1" if key == "target_f1" else "")] = {
            "question": question, "metric": key, "outcomes": {m: s["outcome"] for m, s in found.items()}, **entry}
    return out


def headline(results: dict[str, Any]) -> str:
    """The verdict in one line: the first question's answer, its difference and deciding interval (or, NOT
    INFORMATIVE, why)."""
    if not results["verdict"]:
        return "No verdict: this protocol compares no synthetic arm with the baseline or with oversampling."
    v = next(iter(results["verdict"].values()))
    seeds = f"{len(results['seeds'])} seed(s)"
    if v["answer"] == "not_informative":
        return f"{v['question']} NOT INFORMATIVE: {'; '.join(v['reasons'])} ({seeds})."
    if v.get("diff") is None:  # a results.json written before the verdict kept its difference
        return v["sentence"].split(";")[0].rstrip(".") + "."
    ci = "" if v.get("ci95") is None else " " + interval_text(v)
    return f"{v['question']} {ANSWERS[v['answer']]}: {METRIC_LABELS[v['metric']]} {points(v['diff'])}{ci}, {seeds}."


def _change_interval(d: dict[str, Any]) -> str:
    """A per-class change's interval, labelled "test-set noise only" where the test-image bootstrap gave it."""
    if not d.get("ci95"):
        return ""
    label = "test-set noise only" if "test-set noise" in (d.get("method") or "") else "95% CI"
    return f"[{label} {100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"


def per_class_delta_lines(changes: Sequence[dict[str, Any]]) -> list[str]:
    """Lines such as ``"Disgust F1 +5.0 pt [95% CI -1.2, +11.2]"`` from
    :func:`~feraug.evaluate.experiment.summary.per_class_changes`, in its order."""
    return [f"{d['class']} {d['metric'].replace('f1', 'F1')} {points(d['diff'])} {_change_interval(d)}".rstrip()
            for d in changes if d["diff"] is not None]  # fmt: skip


def per_class_rows(changes: dict[str, Sequence[dict[str, Any]]]) -> list[list[str]]:
    """The exploratory per-class changes as table rows ``class | arm vs ref | change | interval | method``.

    ``changes`` maps "arm vs ref" to :func:`~feraug.evaluate.experiment.summary.per_class_changes`;
    rows run class by class in the first comparison's order (the target class first), one per
    comparison and metric, so a reader compares the arms of one class side by side.
    """
    order = list(dict.fromkeys(d["class"] for rows in changes.values() for d in rows))
    out = []
    for c in order:
        for name, rows in changes.items():
            for d in rows:
                if d["class"] == c and d["diff"] is not None:
                    ci = d.get("ci95")
                    out.append([c, name, f"{d['metric'].replace('f1', 'F1')} {points(d['diff'])}",
                                f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "-",
                                d.get("method") or "across seeds, 95%"])  # fmt: skip
    return out
