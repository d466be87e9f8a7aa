"""Pasini et al.'s Enhanced CycleGAN and the small-data fixes on real FER2013 Neutral -> Disgust, one command.

    python benchmarks/real_ecyclegan.py --out runs/real-ecyclegan [--budget 10m] [--phi-budget 10m]
        [--presets cyclegan cyclegan-diffaug ecyclegan ecyclegan-diffaug ecyclegan-wgangp] [--n 400]
        [--variants NAME=PRESET:KEY=VALUE[:KEY=VALUE...] ...]

1. φ, the perceptual loss's frozen network: ``feraug train classifier --arch fast`` on the standard
   splits (the fast-classifier recipe) under ``--phi-budget``.
2. Each preset (and each ``--variants`` entry: a preset with ``--set`` overrides, e.g.
   ``diffaug-p1=cyclegan-diffaug:regularize.ada=false`` for plain DiffAugment at p = 1):
   ``feraug train cyclegan --preset P`` with the CPU recipe's sizes (ngf 32, batch 4,
   image output) under ``--budget``, stopped at step ``--stop-at`` and resumed (``--stop-at-step``
   then ``--resume``: the rest of the run is a resume), then ``feraug translate`` of ``--n``
   Training Neutral faces (the same faces for every preset: same seed) and ``feraug quality``.
3. A summary (``summary.md``, ``summary.json``) and one figure of every preset's D_B (Disgust
   discriminator) real/fake score gap over training, with ADA's p (``gaps.png``): whether DiffAugment/ADA
   shrink the minority discriminator's overfitting.

Every stage is skipped when its output exists, so the command resumes. Grids of translated faces
(``*/syn.quality/grid_*.png``) show FER2013 faces: look at them, do not commit them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from quality_rows import judge_cell, summary
from real_noise_gans import feraug  # the same run-one-command helper (this folder is on sys.path when run)

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
PRESETS = ["cyclegan", "cyclegan-diffaug", "ecyclegan", "ecyclegan-diffaug", "ecyclegan-wgangp"]
RECIPE = ["--set", "net.ngf=32", "--batch-size", "4", "--set", "net.output=image"]
PHI = ["--arch", "fast", "--set", "batch_size=128", "--set", "lr=3e-3", "--set", "schedule=onecycle",
       "--set", "label_smoothing=0.1"]  # fmt: skip


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def tail_mean(rows: list[dict], key: str, frac: float = 0.25) -> float | None:
    """Mean of ``key`` over the last ``frac`` of the logged steps (None if never logged)."""
    values = [(r["step"], r[key]) for r in rows if key in r]
    if not values:
        return None
    last = values[-1][0]
    picked = [v for s, v in values if s >= (1 - frac) * last]
    return sum(picked) / len(picked)


def plot_gaps(runs: dict[str, Path], out: Path) -> None:
    """Every preset's D_B real/fake score gap (and ADA's p) against the fraction of training."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.5))
    ax, ax_p = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    for i, (name, run) in enumerate(runs.items()):
        color = f"C{i}"  # one colour per preset in both panels
        rows = records(run)
        last = rows[-1]["step"]
        pts = [(r["step"] / last, r["D_B/gap"]) for r in rows if "D_B/gap" in r]
        k = max(1, len(pts) // 40)  # a moving average over ~1/40 of the run: the raw gap is noisy at batch 4
        smooth = [sum(v for _, v in pts[max(0, i - k + 1) : i + 1]) / len(pts[max(0, i - k + 1) : i + 1])
                  for i in range(len(pts))]  # fmt: skip
        ax.plot([s for s, _ in pts], smooth, label=name, linewidth=1.2, color=color)
        p = [(r["step"] / last, r["D_B/ada_p"]) for r in rows if "D_B/ada_p" in r]
        if p:
            ax_p.plot([s for s, _ in p], [v for _, v in p], label=name, linewidth=1.2, color=color)
    ax.set_title("Disgust discriminator D_B: mean score on real minus fake faces (moving average; a WGAN "
                 "critic's in its own units)", fontsize=9)  # fmt: skip
    ax.set_ylabel("score gap")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax_p.set_title("ADA's augmentation probability p", fontsize=9)
    ax_p.set_xlabel("fraction of training")
    ax_p.set_ylabel("p")
    ax_p.legend(fontsize=7)
    ax_p.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=130, bbox_inches="tight")
    print(f"wrote {out}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/real-ecyclegan"))
    ap.add_argument("--data", default=str(DEFAULT_CSV))
    ap.add_argument("--budget", default="10m", help="time budget of each GAN")
    ap.add_argument("--phi-budget", default="10m", help="time budget of the perceptual loss's classifier")
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--variants", nargs="*", default=[], help="NAME=PRESET:KEY=VALUE[:KEY=VALUE...]")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stop-at", type=int, default=400, help="the first invocation stops here; --resume finishes")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    phi = args.out / "phi"
    if not (phi / "checkpoints" / "best.pt").is_file():
        feraug("train", "classifier", "--data", args.data, *PHI, "--time-budget", args.phi_budget, "--seed",
               str(args.seed), "--quiet", "--out", str(phi))  # fmt: skip
    rows, runs = [], {}
    entries = [(p, p, []) for p in args.presets]
    for v in args.variants:
        name, _, spec = v.partition("=")
        preset, *sets = spec.split(":")
        entries.append((name, preset, [a for s in sets for a in ("--set", s)]))
    for preset, base, sets in entries:
        run = args.out / preset
        runs[preset] = run
        timing = args.out / f"{preset}.train.json"
        common = ["train", "cyclegan", "--data", args.data, "--source", "neutral", "--target", "disgust"]
        if not timing.is_file():
            extra = ["--set", f"loss.perceptual={phi}"] if base.startswith("ecyclegan") else []
            first = 0.0
            if not (run / "checkpoints" / "last.pt").is_file():  # else interrupted after the first invocation
                first = feraug(*common, "--preset", base, *RECIPE, *extra, *sets, "--time-budget", args.budget,
                               "--seed", str(args.seed), "--quiet", "--out", str(run), "--stop-at-step",
                               str(args.stop_at))  # fmt: skip
            second = feraug(*common, "--resume", "--quiet", "--out", str(run))  # the planned schedule, resumed
            cfg = yaml.safe_load((run / "config.yaml").read_text())
            total = sum(cfg["train"]["epoch_steps"])
            timing.write_text(json.dumps({"wall_s": first + second, "steps": total, "resumed_at": args.stop_at}))
        syn = run / f"syn{args.n}.csv"
        if not syn.is_file():
            feraug("translate", "--run", str(run), "--from", "neutral", "--n", str(args.n), "--seed", str(args.seed),
                   "--out", str(syn))  # fmt: skip
        qdir = syn.with_suffix(".quality")
        if not (qdir / "quality.json").is_file():
            feraug("quality", "--synthetic", str(syn), "--data", args.data, "--quiet")
        log = records(run)
        meta = json.loads((run / "meta.json").read_text())
        rows.append({"preset": preset, "steps": json.loads(timing.read_text())["steps"],
                     "wall_s": json.loads(timing.read_text())["wall_s"], "budget_s": meta["budget"]["budget_s"],
                     "gap_B_last_quarter": tail_mean(log, "D_B/gap"), "gap_A_last_quarter": tail_mean(log, "D_A/gap"),
                     "ada_p_end": next((r["D_B/ada_p"] for r in reversed(log) if "D_B/ada_p" in r), None),
                     "synthetic": summary(qdir),
                     "perceptual_sha256": meta.get("perceptual", {}).get("sha256")})  # fmt: skip
    plot_gaps(runs, args.out / "gaps.png")
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2))
    lines = ["| preset | steps | D_B gap (last quarter) | D_A gap | ADA p (end) | judge A above control (share of "
             "real) | judge B | KID | FID | SSIM src |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    fmt = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        s = r["synthetic"]
        lines.append(f"| {r['preset']} | {r['steps']:,} | {fmt(r['gap_B_last_quarter'], '.3f')} | "
                     f"{fmt(r['gap_A_last_quarter'], '.3f')} | {fmt(r['ada_p_end'], '.2f')} | "
                     f"{judge_cell(s['judges'].get('A'))} | {judge_cell(s['judges'].get('B'))} | {s['kid']:.3f} | "
                     f"{s['fid']:.2f} | {fmt(s['ssim_to_source'], '.3f')} |")  # fmt: skip
    lines += ["", "Above control: points of Disgust calls above the highest of the sources' negative controls "
              "(untouched and degraded), 95 % interval paired by source face, share of real held-out Disgust's "
              "margin. Grids: `<preset>/syn<N>.quality/grid_p_target.png`."]  # fmt: skip
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
