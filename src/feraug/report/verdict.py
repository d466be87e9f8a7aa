"""The augmentation experiment's verdict in words: the questions it answers, each answer as one sentence.

The answers themselves (YES, NO, NOT SHOWN, from the primary metric's across-seed interval) are
decided in :mod:`feraug.evaluate.experiment.summary`; here they are put into the sentences that
``results.json``, the report, ``comparison.md`` and the command line show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feraug.evaluate.experiment.statistics import MIN_GAIN

METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
#: The questions the verdict answers: (a, b, question).
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("oversample", "synthetic", "Did synthetic faces beat oversampling real faces?"),
    ("baseline", "synthetic", "Did synthetic faces beat the baseline (no rebalancing)?"),
)


def points(x: float) -> str:
    """A difference of fractions in percentage points, signed: ``+5.0 pt``."""
    return f"{100 * x:+.1f} pt"


ANSWERS = {"yes": "YES", "no": "NO", "worse": "NO, it did worse", "not_shown": "NOT SHOWN"}


def verdict(summary: dict[str, Any],
            questions: Sequence[tuple[str, str, str]] = QUESTIONS) -> dict[str, Any]:  # fmt: skip
    """Plain-language answers to ``questions`` (default :data:`QUESTIONS`), decided by the primary metric alone.

    The answer is the primary metric's (macro-F1 by default)
    :func:`~feraug.evaluate.experiment.statistics.decide` on the primary interval of
    :func:`feraug.evaluate.experiment.summary._compare` — across training seeds, never the
    test-image bootstrap alone: YES (the interval excludes 0, in favour), NO (it excludes a gain of the
    minimum size, or shows a loss), NOT SHOWN (it could not tell: the sentence then gives the
    power this design had for a gain of the minimum size and the seeds that would reach 80 %).
    Secondary metrics and the test-set-noise-only interval are listed after it, labelled so.
    """
    primary_set = summary["primary_set"]
    metric = summary.get("primary_metric", "macro_f1")
    min_gain = summary.get("min_gain", MIN_GAIN)
    tests = summary["sets"][primary_set]["comparisons"] if primary_set else []
    out: dict[str, Any] = {}
    for a, b, question in questions:
        found = {t["metric"]: t for t in tests if t["a"] == a and t["b"] == b}
        if metric not in found:
            continue
        t = found[metric]
        answer = t["outcome"]
        parts = [f"{METRIC_LABELS[metric]} {points(t['diff'])}"]
        if "primary" in t:
            lo, hi = t["primary"]["ci95"]
            parts[0] += f" [95% CI {100 * lo:+.1f}, {100 * hi:+.1f}] ({t['primary']['method']})"
        else:
            parts[0] += " (one seed: no across-seed interval)"
        if answer == "no" and "primary" in t:
            parts.append(f"a gain of {points(min_gain)} or more is ruled out")
        power, need = t.get("power"), t.get("seeds_for_80")
        if power is not None:
            parts.append(f"the design had {100 * power:.0f}% power to show a {points(min_gain)} gain")
        if answer == "not_shown" and need:
            parts.append(f"about {need} seeds would give 80%")
        boot = t.get("bootstrap_pooled")
        if boot is not None and "test images" not in t.get("primary", {}).get("method", ""):
            parts.append(f"test-set noise only: [{100 * boot['ci95'][0]:+.1f}, {100 * boot['ci95'][1]:+.1f}]")
        for other, s in found.items():
            if other != metric and "primary" in s:
                lo, hi = s["primary"]["ci95"]
                parts.append(f"secondary: {METRIC_LABELS[other]} {points(s['diff'])} "
                             f"[{100 * lo:+.1f}, {100 * hi:+.1f}]")
        out[f"{b}_vs_{a}"] = {
            "question": question, "answer": answer, "metric": metric, "power": t.get("power"),
            "seeds_for_80": t.get("seeds_for_80"), "outcomes": {m: s["outcome"] for m, s in found.items()},
            "diff": t["diff"], "ci95": t["primary"]["ci95"] if "primary" in t else None,
            "sentence": f"{question} {ANSWERS[answer]}: {'; '.join(parts)}.",
        }  # fmt: skip
    return out


def headline(results: dict[str, Any]) -> str:
    """The verdict in one line: the first question's answer, its difference and across-seed 95 % CI."""
    if not results["verdict"]:
        return "No verdict: this protocol compares no synthetic arm with the baseline or with oversampling."
    v = next(iter(results["verdict"].values()))
    if v.get("diff") is None:  # a results.json written before the verdict kept its difference
        return v["sentence"].split(";")[0].rstrip(".") + "."
    ci = "" if v.get("ci95") is None else f" [95% CI {100 * v['ci95'][0]:+.1f}, {100 * v['ci95'][1]:+.1f}]"
    return (f"{v['question']} {ANSWERS[v['answer']]}: {METRIC_LABELS[v['metric']]} {points(v['diff'])}{ci}, "
            f"{len(results['seeds'])} seed(s).")  # fmt: skip


def per_class_delta_lines(changes: Sequence[dict[str, Any]]) -> list[str]:
    """Lines such as ``"Disgust F1 +5.0 pt [95% CI -1.2, +11.2]"`` from
    :func:`~feraug.evaluate.experiment.summary.per_class_changes`, in its order."""
    lines = []
    for d in changes:
        if d["diff"] is None:
            continue
        ci = f" [95% CI {100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]" if d["ci95"] else ""
        lines.append(f"{d['class']} {d['metric'].replace('f1', 'F1')} {points(d['diff'])}{ci}")
    return lines
