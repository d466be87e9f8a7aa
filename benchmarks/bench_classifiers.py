"""Short-schedule classifier benchmarks on the real FER2013: training speed and test accuracy.

    python benchmarks/bench_classifiers.py --arch simple vgg [--epochs 2 --steps-per-epoch 40]

Runs ``feraug train classifier``'s code path (standard splits: train on Training minus a stratified
10% used for selection, report on PublicTest, since the shared copy has no PrivateTest) with a
capped schedule, then reports images/s of training, the seconds one full epoch would take at that
rate (computed, not timed), and test accuracy / macro-F1 / Disgust recall after the short schedule.
On a CPU these are speed measurements, not the architectures' attainable accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from feraug.config import ClassifierConfig
from feraug.data import load_dataset, standard_splits
from feraug.evaluate.classifier import evaluate_classifier, train_classifier

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_CSV))
    ap.add_argument("--arch", nargs="+", default=["simple", "vgg"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps-per-epoch", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-classifiers"))
    args = ap.parse_args()
    data = load_dataset(args.data)
    splits = standard_splits(data)
    train, val, test = splits.datasets(data)
    print(splits.note)
    rows = []
    for arch in args.arch:
        cfg = ClassifierConfig(arch=arch, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                               batch_size=args.batch_size, data=args.data)  # fmt: skip
        t = time.perf_counter()
        run = train_classifier(cfg, train, val, args.out / arch, progress=False)
        seconds = time.perf_counter() - t
        ips = sum(h["img_per_s"] for h in run.history) / len(run.history)
        m = evaluate_classifier(run.net, test, out_dir=args.out / arch, name="test")
        row = {"arch": arch, "train_img_per_s": ips,
               "full_epoch_s": math.floor(len(train) / args.batch_size) * args.batch_size / ips,
               "steps": args.epochs * args.steps_per_epoch, "wall_s": seconds, "test_accuracy": m["accuracy"],
               "test_macro_f1": m["macro_f1"], "disgust_recall": m["per_class"]["Disgust"]["recall"]}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "bench.json").write_text(json.dumps(rows, indent=2))
    print(f"\n{'arch':8s} {'train img/s':>11s} {'epoch s':>8s} {'steps':>6s} {'test acc':>9s} {'macro-F1':>9s}")
    for r in rows:
        print(
            f"{r['arch']:8s} {r['train_img_per_s']:11.1f} {r['full_epoch_s']:8.0f} {r['steps']:6d} "
            f"{r['test_accuracy']:9.1%} {r['test_macro_f1']:9.1%}"
        )


if __name__ == "__main__":
    main()
