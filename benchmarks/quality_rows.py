"""The real-face table rows from ``feraug quality`` outputs: what the README's real-face tables print per set.

    python benchmarks/quality_rows.py NAME=QUALITY_DIR [NAME=QUALITY_DIR ...] [--out table.md]

Each QUALITY_DIR is the folder ``feraug quality`` writes beside a synthetic set (``<set>.quality``). A set's
headline is its transfer above control by each judge, with the 95 % interval paired by source face and the share
of the real target faces' own margin it reaches, never the raw rate; beside it KID and FID against held-out real
target faces, SSIM to the source face (translations), and the grid of its most target-like faces to look at.
The ``real_*.py`` benchmarks build their summaries with :func:`summary` and :func:`table`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HEADER = ("| set | n | judge A above control [95 % CI] (share of real) | judge B above control [95 % CI] (share of "
          "real) | KID | FID | SSIM to source | grid |")  # fmt: skip
RULE = "|---|---:|---:|---:|---:|---:|---:|---|"


def summary(qdir: str | Path) -> dict[str, Any]:
    """One set's table entry from its ``quality.json``: n, per-judge above-control figures, KID, FID, SSIM, grid."""
    qdir = Path(qdir)
    path = qdir / "quality.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `feraug quality --synthetic <set>` first")
    q = json.loads(path.read_text())
    above = q["info"].get("above_control")
    if not above:
        raise ValueError(f"{path} has no above-control figures: it was written by an older `feraug quality`; "
                         "re-run quality on the set")  # fmt: skip
    syn = next(r for r in q["rows"] if r["set"] == "synthetic")
    judges = {name: {k: r.get(k) for k in ("above", "ci95", "transfer", "control", "control_rate", "of_real",
                                           "real_target_rate")} for name, r in above.items()}  # fmt: skip
    return {"n": syn["n"], "judges": judges, "kid": syn["kid"], "fid": syn["fid"],
            "ssim_to_source": syn.get("ssim_to_source"), "target": q["info"].get("target"),
            "source": q["info"].get("source"), "grid": str(qdir / "grid_p_target.png")}  # fmt: skip


def judge_cell(j: dict[str, Any] | None) -> str:
    """``+33.2 [+28.4, +38.1] (82 %)``: points above the highest control, interval, share of the real margin."""
    if j is None:
        return "—"
    lo, hi = j["ci95"]
    share = "" if j.get("of_real") is None else f" ({j['of_real']:.0%})"
    return f"{100 * j['above']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]{share}"


def row(name: str, s: dict[str, Any]) -> str:
    """One Markdown table row for set ``name``."""
    ssim = "—" if s["ssim_to_source"] is None else f"{s['ssim_to_source']:.2f}"
    return (f"| {name} | {s['n']} | {judge_cell(s['judges'].get('A'))} | {judge_cell(s['judges'].get('B'))} | "
            f"{s['kid']:.3f} | {s['fid']:.2f} | {ssim} | `{s['grid']}` |")  # fmt: skip


def table(named: list[tuple[str, dict[str, Any]]]) -> str:
    """The Markdown table of several sets, in the given order."""
    return "\n".join([HEADER, RULE, *(row(name, s) for name, s in named)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+", metavar="NAME=QUALITY_DIR")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args()
    named = []
    for spec in args.sets:
        name, sep, qdir = spec.partition("=")
        if not sep:
            ap.error(f"expected NAME=QUALITY_DIR, got {spec!r}")
        named.append((name, summary(qdir)))
    text = table(named)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
