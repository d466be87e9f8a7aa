"""How often the experiment's verdict says YES with no true gain, and how often it finds a real +2 pt one.

    python benchmarks/verdict_calibration.py [--replicates 600] [--seeds 3 5 7 10] [--agreement 40]

Simulates the standard protocol at FER2013 scale: PublicTest's class counts (3,589 faces, 56
Disgust), classifiers at ~65 % accuracy whose per-class recalls follow a typical small CNN's, a
per-image difficulty shared by every run (hard faces are hard for all models) and a per-run shift
(training randomness), calibrated to a run-to-run spread of ~0.6 pt accuracy / ~0.9 pt macro-F1.
Each replicate is a new experiment: a fresh test set, S seeds x 2 arms. The "+2 pt" scenario raises
the synthetic arm's Disgust recall until macro-F1 gains +2 pt on average (the realized gain is
printed). Every replicate is decided by the project's own rule: the per-seed macro-F1 differences
go through :func:`feraug.evaluate.experiment.statistics.paired_test` and :func:`decide`, exactly as
:func:`feraug.evaluate.experiment.summary._compare` does; ``--agreement`` replicates are also run through
:func:`summarize` + :func:`verdict` on full predictions to check that both paths answer alike.
Prints YES / NO / NOT SHOWN rates per scenario and seed count, the measured spreads, the seeds
that reach 80 % power (predicted from the measured spread by the noncentral t, and observed), and
how often the test-image bootstrap alone would have excluded 0 ("boot excl. 0", on the
``--agreement`` replicates): the false alarms a rule deciding on it would raise.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from feraug.evaluate.experiment.statistics import MIN_GAIN, decide, paired_t_power, paired_test, seeds_for_power
from feraug.evaluate.experiment.summary import EvalSet, RunResult, summarize
from feraug.report.verdict import verdict

CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
PUBLIC_TEST = np.array([467, 56, 496, 895, 653, 415, 607])  # FER2013 PublicTest, per class
RECALL = np.array([0.56, 0.30, 0.45, 0.86, 0.52, 0.79, 0.66])  # a ~65 %-accurate small CNN's profile
IMAGE_CORRELATION = 0.9  # share of a run's correctness that is the image's own difficulty
RUN_SHIFT = 0.017  # sd of each run's shift of its thresholds (latent scale): ~0.8 pt macro-F1 run to run


def predictions(y: np.ndarray, ease: np.ndarray, recall: np.ndarray, rng: np.random.Generator,
                run_shift: float = RUN_SHIFT) -> np.ndarray:  # fmt: skip
    """One run's predicted labels: correct where the latent score clears the class's threshold."""
    latent = IMAGE_CORRELATION * ease + np.sqrt(1 - IMAGE_CORRELATION**2) * rng.standard_normal(y.size)
    threshold = stats.norm.ppf(1 - recall) + rng.normal(0, run_shift)
    correct = latent > threshold[y]
    prior = PUBLIC_TEST / PUBLIC_TEST.sum()
    wrong = rng.choice(7, size=y.size, p=prior)
    clash = wrong == y
    wrong[clash] = (y[clash] + rng.integers(1, 7, clash.sum())) % 7
    return np.where(correct, y, wrong)


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    cm = np.bincount(y * 7 + pred, minlength=49).reshape(7, 7)
    tp = np.diag(cm)
    return float(np.mean(2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)))


def experiment(rng: np.random.Generator, seeds: int, disgust_boost: float,
               run_shift: float = RUN_SHIFT) -> tuple[np.ndarray, list[list[np.ndarray]]]:  # fmt: skip
    y = rng.permutation(np.repeat(np.arange(7), PUBLIC_TEST))
    ease = rng.standard_normal(y.size)
    boosted = RECALL.copy()
    boosted[1] += disgust_boost
    arms = [[predictions(y, ease, r, rng, run_shift) for _ in range(seeds)] for r in (RECALL, boosted)]
    return y, arms


def full_path_answer(y: np.ndarray, arms: list[list[np.ndarray]]) -> tuple[str, bool]:
    """The verdict from summarize()+verdict(), and whether the test-image bootstrap alone excluded 0."""
    index, runs = np.arange(y.size), []
    for arm, per_seed in zip(("oversample", "synthetic"), arms, strict=True):
        for seed, pred in enumerate(per_seed):
            prob = np.full((y.size, 7), 0.02)
            prob[index, pred] = 0.88
            runs.append(RunResult(arm, seed, "standard", PUBLIC_TEST, 25_000, {"test": EvalSet(index, y, prob)}))
    summary = summarize(runs, CLASSES, comparisons=[("oversample", "synthetic")], n_boot=200)
    test = next(t for t in summary["sets"]["test"]["comparisons"] if t["metric"] == "macro_f1")
    low, high = test["bootstrap_pooled"]["ci95"]
    return verdict(summary)["synthetic_vs_oversample"]["answer"], bool(low > 0 or high < 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=600)
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 7, 10])
    ap.add_argument("--agreement", type=int, default=40, help="replicates also decided by summarize()+verdict()")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-shift", type=float, default=RUN_SHIFT, help="training randomness (see RUN_SHIFT)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()

    # The Disgust recall boost that gives +2 pt macro-F1 on average, and the spreads it comes with.
    boost_grid = np.linspace(0.05, 0.4, 15)
    gains = []
    for b in boost_grid:
        gain = []
        for _ in range(10):
            y, arms = experiment(rng, 10, b, args.run_shift)
            gain += [macro_f1(y, q) - macro_f1(y, p) for p, q in zip(*arms, strict=True)]
        gains.append(np.mean(gain))
    boost = float(np.interp(MIN_GAIN, gains, boost_grid))
    acc, f1, d_null = [], [], []
    for _ in range(100):
        y, arms = experiment(rng, 2, 0.0, args.run_shift)
        acc += [float(np.mean(p == y)) for p in arms[0]]
        f1 += [macro_f1(y, p) for p in arms[0]]
        d_null.append(macro_f1(y, arms[1][0]) - macro_f1(y, arms[0][0]))
    realized = []
    acc_sd, f1_sd = (float(np.std(np.subtract(v[0::2], v[1::2]), ddof=1) / np.sqrt(2)) for v in (acc, f1))
    print(f"classifiers: accuracy {100 * np.mean(acc):.1f}%, macro-F1 {100 * np.mean(f1):.1f}%; run-to-run sd "
          f"(same test set) accuracy {100 * acc_sd:.2f} pt, macro-F1 {100 * f1_sd:.2f} pt")
    sd_diff = float(np.std(d_null, ddof=1))
    print(f"per-seed macro-F1 difference between two arms, no true gain: sd {100 * sd_diff:.2f} pt")
    print(f"+2 pt scenario: Disgust recall {100 * RECALL[1]:.0f}% -> {100 * (RECALL[1] + boost):.0f}%")
    predicted = seeds_for_power(sd_diff)
    print(f"seeds for 80% power at +2 pt, predicted from that sd (noncentral t): {predicted}\n")

    print(f"{'scenario':<10}{'seeds':>6}{'YES':>8}{'NO':>8}{'worse':>8}{'NOT SHOWN':>11}{'predicted power':>17}"
          f"{'agreement':>11}{'boot excl. 0':>14}")  # fmt: skip
    for name, b in (("null", 0.0), ("+2 pt", boost)):
        for s in args.seeds:
            answers, agree, boot = [], 0, 0
            for r in range(args.replicates):
                y, arms = experiment(rng, s, b, args.run_shift)
                fa, fb = [macro_f1(y, p) for p in arms[0]], [macro_f1(y, p) for p in arms[1]]
                if b:
                    realized.append(np.mean(fb) - np.mean(fa))
                pt = paired_test(fa, fb)
                answers.append(decide(pt["ci95"]) if pt["ci95"] is not None else "not_shown")
                if r < args.agreement:
                    full, excludes_0 = full_path_answer(y, arms)
                    agree += full == answers[-1]
                    boot += excludes_0
            rate = {k: answers.count(k) / len(answers) for k in ("yes", "no", "worse", "not_shown")}
            power = paired_t_power(s, sd_diff) if b else None
            n_full = min(args.agreement, args.replicates)
            print(f"{name:<10}{s:>6}{100 * rate['yes']:>7.1f}%{100 * rate['no']:>7.1f}%{100 * rate['worse']:>7.1f}%"
                  f"{100 * rate['not_shown']:>10.1f}%{'' if power is None else f'{100 * power:.0f}%':>17}"
                  f"{f'{agree}/{n_full}':>11}{f'{boot}/{n_full}':>14}")  # fmt: skip
    print(f"\nrealized macro-F1 gain in the +2 pt scenario: {100 * np.mean(realized):+.2f} pt; "
          f"{args.replicates} replicates per row, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
