"""The CPU-fast classifier on the real FER2013 within a fixed time: accuracy, macro-F1, Disgust F1, images/s.

    python benchmarks/bench_fast_classifier.py [--budget 15m] [--variant NAME KEY=VALUE ...]

Each variant is ``feraug train classifier --preset classifier-fast-cpu --time-budget BUDGET`` (plus the
variant's ``--set`` overrides) on the shared file:
standard splits (train on Training minus a stratified 10 % used for selection, select the best
epoch on that 10 % by macro-F1, report once on PublicTest, since the shared copy has no
PrivateTest). The budget covers the whole command (data loading, the speed measurement, training,
validation and checkpoints); the final test pass is timed separately. Prints one row per variant:
the resolved schedule (from ``meta.json``), the mean training img/s, the PublicTest figures (of the
selected epoch's weights), and from ``metrics.jsonl`` the selected epoch with its accuracy on the
selection split and the last epoch's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
BASE = ["--preset", "classifier-fast-cpu"]  # the recipe experiments train; the budget re-sizes its schedule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_CSV))
    ap.add_argument("--budget", default="15m")
    ap.add_argument("--variant", nargs="+", action="append", metavar="NAME [KEY=VALUE ...]",
                    help="a name and --set overrides on top of the defaults; repeatable")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("runs/bench-fast"))
    args = ap.parse_args()
    variants = args.variant or [["default"]]
    print(f"{'variant':<14}{'wall s':>8}{'epochs':>8}{'steps/ep':>10}{'img/s':>8}{'test acc':>10}{'macro-F1':>10}"
          f"{'Disgust F1':>12}{'sel. ep':>9}{'val sel.':>10}{'val last':>10}")  # fmt: skip
    for name, *sets in variants:
        out = args.out / name
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-m", "feraug", "train", "classifier", "--data", args.data, "--time-budget",
               args.budget, "--device", "cpu", "--quiet", "--out", str(out), *BASE]  # fmt: skip
        for s in sets:
            cmd += ["--set", s]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        m = json.loads((out / "test_metrics.json").read_text())
        log = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
        epochs = [r for r in log if r.get("kind") == "epoch"]
        img_s = sum(r["img_per_s"] for r in epochs) / len(epochs)
        best = next(r for r in epochs if r["epoch"] == epochs[-1]["best_epoch"])  # best.pt: the weights tested
        spe = json.loads((out / "meta.json").read_text())["budget"]["steps_per_epoch"]
        print(f"{name:<14}{wall:>8.0f}{len(epochs):>8}{spe:>10}{img_s:>8.0f}{100 * m['accuracy']:>9.2f}%"
              f"{100 * m['macro_f1']:>9.2f}%{100 * m['per_class']['Disgust']['f1']:>11.2f}%"
              f"{best['epoch']:>9}{100 * best['val_accuracy']:>9.1f}%{100 * epochs[-1]['val_accuracy']:>9.1f}%",
              flush=True)  # fmt: skip
        print(f"{'':<14}{' '.join(cmd[3:])}", flush=True)


if __name__ == "__main__":
    main()
