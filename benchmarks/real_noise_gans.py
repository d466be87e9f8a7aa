"""Birenbaum's "Fake GAN" on real FER2013: dcgan, wgan-gp and cdcgan, each sampled and measured.

    python benchmarks/real_noise_gans.py [--out runs/real-noise] [--data fer2013.csv.gz]
        [--budget dcgan=10m wgan-gp=15m cdcgan=20m] [--n 400]

For each preset: ``feraug train dcgan`` under a time budget (``dcgan`` and ``wgan-gp`` on the 436
Training Disgust faces, ``cdcgan`` on all seven classes with class-balanced batches), ``feraug
sample`` of N Disgust faces (the conditional model also draws ``classes.png``: the same noise
vectors drawn as each of the seven classes, one row per class), and ``feraug
quality`` on them: the rate at which cross-fitted FER2013 classifiers call them Disgust, KID/FID
against held-out real Disgust, and the memorization numbers (each sample's distance to its nearest
Training face, against the same for real held-out Disgust faces). Stages are skipped when their
output exists, so a second invocation resumes. ``summary.md`` in ``--out`` collects the table.
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
PRESETS = {"dcgan": ["--class", "disgust"], "wgan-gp": ["--class", "disgust"], "cdcgan": []}
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def feraug(*args: str) -> float:
    """Run one feraug command, failing loudly; returns its wall time in seconds."""
    print("$ feraug " + " ".join(args), flush=True)
    start = time.perf_counter()
    if subprocess.run([sys.executable, "-m", "feraug", *args]).returncode != 0:
        sys.exit(f"failed: feraug {' '.join(args)}")
    return time.perf_counter() - start


def class_grid(run: Path, out: Path, *, seed: int, n: int = 12) -> None:
    """One row per emotion, one column per noise vector: the same z drawn as each class (synthetic faces only)."""
    from feraug.figures.grid import labelled_grid, save_image
    from feraug.synth.sample import draw

    rows = [draw(run, n, emotion, seed=seed).faces for emotion in EMOTIONS]
    save_image(labelled_grid(rows, [e.capitalize() for e in EMOTIONS], scale=2, label_width=90), out)
    print(f"wrote {out}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/real-noise"))
    ap.add_argument("--data", default=str(DEFAULT_CSV))
    ap.add_argument("--budget", nargs="+", default=["dcgan=10m", "wgan-gp=15m", "cdcgan=20m"],
                    metavar="PRESET=DURATION")  # fmt: skip
    ap.add_argument("--n", type=int, default=400, help="Disgust faces sampled from each run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cyclegan", type=Path, default=None,
                    help="a Neutral -> Disgust CycleGAN run: also translate N cdcgan Neutral faces with it "
                         "(Birenbaum's fake GAN as the CycleGAN's sources) and measure them")  # fmt: skip
    args = ap.parse_args()
    budgets = dict(b.split("=", 1) for b in args.budget)
    rows = []
    for preset, extra in PRESETS.items():
        if preset not in budgets:
            continue
        run = args.out / preset
        timing = args.out / f"{preset}.train.json"
        if not timing.is_file():
            wall = feraug("train", "dcgan", "--data", args.data, "--preset", preset, *extra, "--time-budget",
                          budgets[preset], "--seed", str(args.seed), "--quiet", "--out", str(run))  # fmt: skip
            timing.write_text(json.dumps({"wall_s": wall}))
        syn = run / f"disgust{args.n}.csv"
        if not syn.is_file():
            feraug("sample", "--run", str(run), "--class", "disgust", "--n", str(args.n), "--seed", str(args.seed),
                   "--out", str(syn))  # fmt: skip
        if preset == "cdcgan" and not (run / "classes.png").is_file():
            class_grid(run, run / "classes.png", seed=args.seed)
        qdir = syn.with_suffix(".quality")
        if not (qdir / "quality.json").is_file():
            feraug("quality", "--synthetic", str(syn), "--data", args.data)
        quality = json.loads((qdir / "quality.json").read_text())
        meta = json.loads((run / "meta.json").read_text())
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        o, t = cfg["optim"], cfg["train"]
        steps = sum(t.get("epoch_steps") or [(o["epochs"] + o["epochs_decay"]) * t["steps_per_epoch"]])
        mem = quality["info"]["memorization"]
        if preset == "cdcgan" and args.cyclegan is not None:
            composed = run / f"composed{args.n}.csv"
            if not composed.is_file():
                feraug("translate", "--run", str(args.cyclegan), "--from", "neutral", "--n", str(args.n),
                       "--sources", str(run), "--seed", str(args.seed), "--out", str(composed))  # fmt: skip
            if not (composed.with_suffix(".quality") / "quality.json").is_file():
                feraug("quality", "--synthetic", str(composed), "--data", args.data)
        rows.append({"preset": preset, "steps": steps, "g_steps": steps // cfg["loss"]["n_critic"],
                     "budget_s": meta["budget"]["budget_s"],
                     "wall_s": json.loads(timing.read_text())["wall_s"], "synthetic": summary(qdir),
                     "memorization": mem})  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1))
    lines = ["| preset | steps (G steps) | train min | judge A above control (share of real) | judge B | KID | FID | "
             "nearest Training face, min / p5 / median (grey levels) | real held-out Disgust, same |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for r in rows:
        s, m = r["synthetic"], r["memorization"]
        sp, rp = m["synthetic_pixel"], m["real_pixel"]
        lines.append(f"| {r['preset']} | {r['steps']:,} ({r['g_steps']:,}) | {r['wall_s'] / 60:.1f} | "
                     f"{judge_cell(s['judges'].get('A'))} | {judge_cell(s['judges'].get('B'))} | {s['kid']:.3f} | "
                     f"{s['fid']:.2f} | {sp['min']:.1f} / {sp['p05']:.1f} / {sp['median']:.1f} | "
                     f"{rp['min']:.1f} / {rp['p05']:.1f} / {rp['median']:.1f} |")  # fmt: skip
    composed = args.out / "cdcgan" / f"composed{args.n}.quality"
    if args.cyclegan is not None and (composed / "quality.json").is_file():
        s = summary(composed)
        sp = json.loads((composed / "quality.json").read_text())["info"]["memorization"]["synthetic_pixel"]
        lines.append(f"| cdcgan Neutral -> {args.cyclegan.name} -> Disgust | | | {judge_cell(s['judges'].get('A'))} | "
                     f"{judge_cell(s['judges'].get('B'))} | {s['kid']:.3f} | {s['fid']:.2f} | "
                     f"{sp['min']:.1f} / {sp['p05']:.1f} / {sp['median']:.1f} | |")  # fmt: skip
    lines += ["", "Above control: points of Disgust calls above the highest negative control (real faces of other "
              "classes, degraded), 95 % interval, and the share of real held-out Disgust's own margin reached. "
              "Grids: `<preset>/disgust<N>.quality/grid_p_target.png`."]  # fmt: skip
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
