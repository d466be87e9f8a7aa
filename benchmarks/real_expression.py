"""The expression family on real FER2013, with its curve: train, and at each curve step translate and measure.

    python benchmarks/real_expression.py [--out runs/real-expression] [--data fer2013.csv.gz]
        [--curve 3000 5000 7000 10000] [--targets disgust happy surprise] [--n 400]
        [--set net.output=residual ...]

One ``feraug train expression --preset expression`` run (seed 0, the ``--set`` overrides applied; by default the
residual output, the recipe measured so far), trained in invocations that each stop at the next ``--curve`` step
(``--stop-at-step``, then ``--resume``: the schedule is the preset's, and an interrupted invocation resumes from
its last checkpoint). At each step a snapshot of the checkpoint is kept, and ``feraug translate`` turns the same
N Training Neutral faces (seed 0) into each target emotion, then ``feraug quality`` measures each set against its
negative controls with both judges. Every stage is skipped when its output exists, so the command resumes;
``summary.md`` holds one table per target (rows: steps) from :mod:`quality_rows`, with the training minutes.
The grids (``curve/step*/*.quality/grid_*.png``) show FER2013 faces: look at them, do not commit them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from quality_rows import summary, table  # this folder is on sys.path when run
from real_noise_gans import feraug

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_CSV))
    ap.add_argument("--out", type=Path, default=Path("runs/real-expression"))
    ap.add_argument("--curve", type=int, nargs="+", default=[3000, 5000, 7000, 10000], help="steps to measure at")
    ap.add_argument("--targets", nargs="+", default=["disgust", "happy", "surprise"])
    ap.add_argument("--n", type=int, default=400, help="Training Neutral faces translated per target")
    ap.add_argument("--set", dest="sets", action="append", default=None, metavar="KEY=VALUE",
                    help="override of the expression preset (repeatable; default: net.output=residual)")  # fmt: skip
    args = ap.parse_args()
    if any(step < 1 for step in args.curve) or args.n < 1:
        ap.error(f"--curve steps and --n must be >= 1, got --curve {args.curve} --n {args.n}")
    sets = args.sets if args.sets is not None else ["net.output=residual"]
    out: Path = args.out
    run = out / "run"
    out.mkdir(parents=True, exist_ok=True)
    times_file = out / "train_minutes.json"
    minutes: dict[str, float] = json.loads(times_file.read_text()) if times_file.exists() else {}
    for step in sorted(args.curve):
        snap = out / "curve" / f"step{step}"
        if not (snap / "checkpoints" / "last.pt").is_file():
            resume = ["--resume"] if (run / "checkpoints" / "last.pt").is_file() else []
            config = [] if resume else ["--preset", "expression", *(a for s in sets for a in ("--set", s)),
                                        "--seed", "0"]  # fmt: skip
            wall = feraug("train", "expression", "--data", args.data, *config, *resume, "--stop-at-step", str(step),
                          "--quiet", "--out", str(run))  # fmt: skip
            minutes[str(step)] = minutes.get(str(step), 0.0) + wall / 60
            times_file.write_text(json.dumps(minutes, indent=1))
            snap.mkdir(parents=True, exist_ok=True)
            (snap / "checkpoints").mkdir(exist_ok=True)
            for f in run.iterdir():  # config, meta, metrics, training_rows.npy (the experiment's leakage guard)
                if f.is_file():
                    shutil.copy2(f, snap / f.name)
            partial = snap / "checkpoints" / "last.pt.partial"  # the snapshot's checkpoint appears whole or not at all
            shutil.copy2(run / "checkpoints" / "last.pt", partial)
            partial.replace(snap / "checkpoints" / "last.pt")
        for target in args.targets:
            syn = snap / f"n2{target}.csv"
            if not syn.is_file():
                feraug("translate", "--run", str(snap), "--from", "neutral", "--to", target, "--n", str(args.n),
                       "--seed", "0", "--out", str(syn))  # fmt: skip
            if not (syn.with_suffix(".quality") / "quality.json").is_file():
                feraug("quality", "--synthetic", str(syn), "--data", args.data, "--quiet")

    lines = [f"# The expression family on real FER2013 ({', '.join(sets) or 'the preset as is'}): "
             f"{args.n} Training Neutral faces per target", ""]  # fmt: skip
    elapsed = 0.0
    cumulative = {}
    for step in sorted(args.curve):
        elapsed += minutes.get(str(step), 0.0)
        cumulative[step] = elapsed
    for target in args.targets:
        named = [(f"step {step:,} ({cumulative[step]:.0f} min)",
                  summary(out / "curve" / f"step{step}" / f"n2{target}.quality")) for step in sorted(args.curve)]
        lines += [f"## Neutral -> {target.capitalize()}", "", table(named), ""]
    lines.append("Minutes: the training invocations' wall time to that step, translation and quality excluded.")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
