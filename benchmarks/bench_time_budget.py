"""How close a ``--time-budget`` run ends to its budget: whole CLI commands timed from outside.

    python benchmarks/bench_time_budget.py [--budgets 60 180] [--out runs/bench-budget]

For each budget, runs ``feraug train cyclegan`` (toy faces, a small ResNet CycleGAN at batch 4,
2+2 epochs) and ``feraug train classifier`` (toy faces, a small VGG) as subprocesses, and prints
the wall time (process start to exit, imports and the measurement included) next to the budget and
the schedule it resolved to, with the seconds per step measured for the budget beside those the
training achieved (from ``metrics.jsonl``: a classifier's epoch lines, which time training only; a
CycleGAN's log windows that hold no checkpoint or sample grid). The schedule planned from the first seconds is
kept on time while the run goes (``feraug.train.budget.OnTime``): the script prints what was
planned, what ran, and the s/step measured beside the s/step achieved.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

COMMANDS = {
    "cyclegan": ["train", "cyclegan", "--data", "toy:2000:0", "--source", "neutral", "--target", "disgust",
                 "--set", "net.ngf=16", "--set", "net.n_blocks=3", "--set", "net.ndf=16", "--batch-size", "4",
                 "--epochs", "2", "--epochs-decay", "2"],
    "classifier": ["train", "classifier", "--data", "toy:3000:0", "--arch", "vgg",
                   "--set", "arch_kwargs={width: 0.25, fc: 64}", "--epochs", "10"],
}  # fmt: skip


def achieved_seconds_per_step(out: Path) -> float:
    """Training seconds per step over the run, from its metrics.jsonl (checkpoints, grids, validation excluded)."""
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    log = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if ln]
    if "optim" not in cfg:  # a classifier: one line per epoch, its img/s over the training steps alone
        epochs = [r for r in log if r.get("kind") == "epoch"]
        return sum(cfg["batch_size"] / r["img_per_s"] for r in epochs) / len(epochs)
    # a CycleGAN: a line per log window; a window that starts at an epoch end or checkpoint holds that save
    # (and the epoch's sample grid), so only the others count
    batch, every = cfg["optim"]["batch_size"], cfg["train"]["checkpoint_every"]
    ends = set(itertools.accumulate(cfg["train"]["epoch_steps"]))
    seconds = steps = 0.0
    previous = 0
    for r in log:
        if previous == 0 or (previous not in ends and previous % every):
            steps += r["step"] - previous
            seconds += (r["step"] - previous) * batch / r["img_per_s"]
        previous = r["step"]
    return seconds / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", type=float, nargs="+", default=[60.0, 180.0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-budget"))
    args = ap.parse_args()
    print(f"{'command':<12}{'budget s':>10}{'wall s':>9}{'wall/budget':>13}  schedule")
    for budget in args.budgets:
        for name, cmd in COMMANDS.items():
            out = args.out / f"{name}-{budget:g}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            argv = [sys.executable, "-m", "feraug", *cmd, "--time-budget", f"{budget:g}s", "--device", "cpu",
                    "--quiet", "--out", str(out)]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stderr[-2000:]}")
            b = json.loads((out / "meta.json").read_text())["budget"]
            cfg = yaml.safe_load((out / "config.yaml").read_text())
            ran = cfg.get("epoch_steps") or cfg["train"]["epoch_steps"]
            schedule = (f"planned {b['epochs']}+{b['epochs_decay']} epochs x {b['steps_per_epoch']} steps = "
                        f"{b['total_steps']}, ran {sum(ran)} (epochs of {min(ran)}-{max(ran)} steps); "
                        f"{b['seconds_per_step']:.3g} s/step measured, {achieved_seconds_per_step(out):.3g} "
                        f"achieved, {b['elapsed_s']:.1f} s before training")  # fmt: skip
            print(f"{name:<12}{budget:>10.0f}{wall:>9.1f}{wall / budget:>13.3f}  {schedule}", flush=True)


if __name__ == "__main__":
    main()
