"""The committed real-data experiment: CPU GAN recipe -> translate -> quality -> select -> experiment.

    python benchmarks/real_experiment.py [--out runs/real-experiment] [--budget 55m] [--seeds 5]

One command answers feraug's question on the shared FER2013 file with the CPU recipe: do
translated Neutral -> Disgust faces help the fast classifier more than duplicating real Disgust
faces does? Stages, each skipped when its output exists, so a second invocation resumes:

1. ``feraug train cyclegan`` with the CPU recipe under ``--time-budget``. The first invocation
   stops after one step (the budget has then fixed the schedule in ``config.yaml``); the run is
   resumed to ``--curve`` evenly spaced steps, and at each one ``feraug translate`` + ``feraug
   quality`` measure the same N Training Neutral faces, giving the transfer rate against training
   minutes (``curve.json``; minutes are the training invocations' wall time, quality excluded).
2. ``feraug experiment augment``: baseline, + all N synthetic, + N duplicated real, with the experiment's
   default classifier (``classifier-fast-cpu``) over ``--seeds`` seeds (resumable with ``--resume``).
   With ``--keep K``, ``feraug select`` first keeps the best K and ``--compare`` runs them too (+ K synthetic,
   + K duplicated). With ``--seeds 0`` the command stops after stage 1.

``summary.md`` in ``--out`` collects the curve, the final quality rows and the experiment's answers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from quality_rows import judge_cell, summary  # this folder is on sys.path when run

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
RECIPE = ["--preset", "cyclegan-improved", "--set", "net.ngf=32", "--set", "train.ema_decay=0.999",
          "--batch-size", "4"]  # fmt: skip


def feraug(*args: str) -> float:
    """Run one feraug command, failing loudly; returns its wall time in seconds."""
    cmd = [sys.executable, "-m", "feraug", *args]
    print("$ feraug " + " ".join(args), flush=True)
    start = time.perf_counter()
    if subprocess.run(cmd).returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - start


def total_steps(run: Path) -> int:
    """The schedule the time budget resolved, from the run's config.yaml."""
    optim = yaml.safe_load((run / "config.yaml").read_text())
    o, t = optim["optim"], optim["train"]
    return sum(t["epoch_steps"]) if t.get("epoch_steps") else (o["epochs"] + o["epochs_decay"]) * t["steps_per_epoch"]




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_CSV))
    ap.add_argument("--out", type=Path, default=Path("runs/real-experiment"))
    ap.add_argument("--budget", default="55m", help="GAN training time budget")
    ap.add_argument("--curve", type=int, default=4, help="quality measurements along the schedule")
    ap.add_argument("--n", type=int, default=400, help="Training Neutral faces translated")
    ap.add_argument("--keep", type=int, default=0, help="also run the experiment with the best KEEP faces "
                    "(`feraug select`) on the same folds and seeds; 0: all faces only")
    ap.add_argument("--seeds", type=int, default=5, help="experiment seeds; 0: stop after stage 1")
    args = ap.parse_args()
    if args.seeds < 0 or args.keep < 0:
        ap.error(f"--seeds and --keep must be >= 0, got --seeds {args.seeds} --keep {args.keep}")
    if args.keep and not args.seeds:
        ap.error("--keep selects faces for the experiment: it needs --seeds >= 1")
    out: Path = args.out
    gan, curve_dir = out / "gan", out / "curve"
    out.mkdir(parents=True, exist_ok=True)
    curve_file = out / "curve.json"
    curve: dict = json.loads(curve_file.read_text()) if curve_file.exists() else {"train_s": 0.0, "points": []}

    common = ["--data", args.data, "--source", "neutral", "--target", "disgust", *RECIPE, "--seed", "0",
              "--quiet", "--out", str(gan)]  # fmt: skip
    if not (gan / "config.yaml").exists():
        curve["train_s"] += feraug("train", "cyclegan", *common, "--time-budget", args.budget, "--stop-at-step", "1")
        curve_file.write_text(json.dumps(curve, indent=1))
    total = total_steps(gan)
    stops = [round(total * (i + 1) / args.curve) for i in range(args.curve)]
    for step in stops:
        if any(p["step"] == step for p in curve["points"]):
            continue
        curve["train_s"] += feraug("train", "cyclegan", *common, "--resume", "--stop-at-step", str(step))
        syn = curve_dir / f"step{step}.csv"
        feraug("translate", "--run", str(gan), "--n", str(args.n), "--from", "neutral", "--out", str(syn))
        feraug("quality", "--synthetic", str(syn), "--data", args.data)
        curve["points"].append({"step": step, "train_minutes": curve["train_s"] / 60,
                                **summary(syn.with_suffix(".quality"))})  # fmt: skip
        curve_file.write_text(json.dumps(curve, indent=1))

    final = curve_dir / f"step{stops[-1]}.csv"
    compare = []
    if args.seeds and args.keep:
        best = out / f"best{args.keep}.csv"
        if not best.exists():
            feraug("select", "--synthetic", str(final), "--data", args.data, "--keep", str(args.keep), "--out",
                   str(best))  # fmt: skip
        compare = ["--compare", str(best)]
    exp = out / "experiment"
    if args.seeds:
        resume = ["--resume"] if exp.exists() else []
        feraug("experiment", "augment", "--data", args.data, "--synthetic", str(final), *compare,
               "--seeds", str(args.seeds), "--quiet", "--out", str(exp), *resume)  # fmt: skip

    qdir = final.with_suffix(".quality")
    lines = [f"# Real FER2013, Neutral -> Disgust: {args.n} translated faces, {args.seeds} seeds", "",
             f"GAN: {total} steps, {curve['train_s'] / 60:.1f} training minutes.", "",
             "| step | minutes | judge A above control (share of real) | judge B | KID | FID | SSIM src |",
             "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for p in curve["points"]:
        lines.append(f"| {p['step']} | {p['train_minutes']:.1f} | {judge_cell(p['judges'].get('A'))} | "
                     f"{judge_cell(p['judges'].get('B'))} | {p['kid']:.3f} | {p['fid']:.2f} | "
                     f"{p['ssim_to_source']:.3f} |")  # fmt: skip
    lines += ["", f"The final set's quality report, controls and grids: `{qdir}`."]
    if compare:
        lines += ["", (exp / "comparison.md").read_text()]
    elif args.seeds:
        results = json.loads((exp / "results.json").read_text())
        arms = results["sets"][results["primary_set"]]["arms"]
        lines += ["", "| arm | accuracy | macro-F1 | Disgust F1 |", "|---|---:|---:|---:|"]
        for arm, a in arms.items():
            cells = [a["accuracy"], a["macro_f1"], a["per_class"]["Disgust"]["f1"]]
            lines.append(f"| {arm} | " + " | ".join(f"{100 * c['mean']:.2f} ± {100 * (c['std'] or 0):.2f}"
                                                   for c in cells) + " |")  # fmt: skip
        lines += ["", *[f"- {v['sentence']}" for v in results["verdict"].values()],
                  *[f"- per-class, {arm} vs baseline: " + "; ".join(d) for arm, d in results["delta_lines"].items()]]

    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
