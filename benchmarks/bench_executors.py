"""Wall time of one augmentation experiment under each executor, and whether their predictions agree.

    python benchmarks/bench_executors.py [--executors local processes:2 ray] [--seeds 2 --epochs 2 --steps 40]
    python benchmarks/bench_executors.py --data ../shared/data/fer2013/fer2013.csv.gz --synthetic 400

Demo size (default): the demo's experiment (``feraug demo``) without its GAN: 3,000 toy faces with
the demo's class weights, ``--synthetic`` mirrored Neutral training faces relabelled Disgust as the
synthetic set, the demo's fast classifier, standard protocol: 3 arms x ``--seeds`` jobs. Real-data
size (``--data``): the same on a FER2013 file (28,709 Training faces shipped to every worker), with
the classifier experiments train by default (``classifier-fast-cpu``) cut to ``--epochs`` x
``--steps``. Each executor runs it once
into a fresh folder (nothing cached), timed from the call to the last job's predictions. ``ray``
starts a local instance bound to 127.0.0.1 with ``os.cpu_count()`` CPUs before the clock starts
(attaching to a cluster is not what is measured) and stops it after. ``local`` trains at this
process's thread count (all cores for one job), ``processes:N`` at 1/N of the cores and ``ray`` at 1
core per job: where the last two run at the same thread count (``processes:2`` on 2 cores) they must
agree bitwise; they are compared and the result printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from feraug.config import ExperimentConfig
from feraug.data import FaceDataset, make_toy_faces
from feraug.demo import DEMO_CLASS_WEIGHTS
from feraug.evaluate.experiment.executors import parse_executor
from feraug.evaluate.experiment.protocols import standard_protocol
from feraug.evaluate.experiment.run import run_experiment
from feraug.evaluate.instrument.crossfit import judge_config

NEUTRAL, DISGUST = 6, 1


Inputs = tuple[FaceDataset, FaceDataset, dict[str, np.ndarray], ExperimentConfig]


def _experiment(real: FaceDataset, n_synthetic: int, seeds: int, classifier: object) -> Inputs:
    """``real``, mirrored Neutral training faces relabelled Disgust as the synthetic set (standing in for a GAN's
    translations, with their provenance), and the standard-protocol experiment of ``classifier``."""
    (fold,) = standard_protocol(real)
    sources = fold.train[real.labels.numpy()[fold.train] == NEUTRAL][:n_synthetic]
    syn = FaceDataset(real.images[torch.from_numpy(sources)].flip(-1), torch.full((len(sources),), DISGUST),
                      np.full(len(sources), "Training"), np.arange(len(sources)), source="mirror")  # fmt: skip
    prov = {"synthetic_row": np.arange(len(sources)), "source_row": real.rows[sources],
            "label": np.full(len(sources), DISGUST)}  # fmt: skip
    return real, syn, prov, ExperimentConfig(protocol="standard", seeds=seeds, classifier=classifier, n_boot=200)


def demo_experiment(n_synthetic: int, seeds: int, epochs: int, steps: int) -> Inputs:
    """The demo's toy faces and classifier."""
    clf = judge_config(("batch_size=64", "augment=false", "lr=1e-2", "device=cpu"), epochs=epochs,
                       steps_per_epoch=steps)  # fmt: skip
    return _experiment(make_toy_faces(n=3000, seed=0, class_weights=DEMO_CLASS_WEIGHTS), n_synthetic, seeds, clf)


def real_experiment(path: str, n_synthetic: int, seeds: int, epochs: int, steps: int) -> Inputs:
    """A FER2013 file and the classifier experiments train by default, cut to ``epochs`` x ``steps``."""
    from feraug.config.classifier import EXPERIMENT_CLASSIFIER
    from feraug.data import load_dataset

    clf = {"preset": EXPERIMENT_CLASSIFIER, "epochs": epochs, "steps_per_epoch": steps, "device": "cpu"}
    return _experiment(load_dataset(path), n_synthetic, seeds, clf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--executors", nargs="+", default=["local", "processes:2", "ray"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40, help="classifier steps per epoch")
    ap.add_argument("--synthetic", type=int, default=100)
    ap.add_argument("--data", default=None, help="a FER2013 file: the real-data-size experiment")
    args = ap.parse_args()
    make = demo_experiment if args.data is None else (lambda *a: real_experiment(args.data, *a))
    inputs = make(args.synthetic, args.seeds, args.epochs, args.steps)
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}; {3 * args.seeds} jobs of {args.epochs} "
          f"x {args.steps} steps; load: 1-minute load average")  # fmt: skip
    probs: dict[str, list[np.ndarray]] = {}
    print(f"{'executor':<14}{'wall s':>8}{'load before':>13}{'load after':>12}")  # other work on the machine shows
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.executors:
            executor = parse_executor(text)
            if text.startswith("ray"):
                import ray

                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False)  # fmt: skip
            try:
                load, start = os.getloadavg()[0], time.perf_counter()
                with executor:
                    done = run_experiment(*inputs, Path(tmp) / text.replace(":", "_"), executor=executor)
                wall = time.perf_counter() - start
            finally:
                if text.startswith("ray"):
                    ray.shutdown()
            probs[text] = [e.prob for r in done.runs for e in r.evals.values()]
            print(f"{text:<14}{wall:>8.1f}{load:>13.1f}{os.getloadavg()[0]:>12.1f}", flush=True)
    parallel = [t for t in probs if t != "local"]
    if len(parallel) > 1:
        same = all(np.array_equal(a, b) for t in parallel[1:] for a, b in zip(probs[parallel[0]], probs[t],
                                                                                strict=True))  # fmt: skip
        print(f"{' and '.join(parallel)}: predictions {'bitwise equal' if same else 'DIFFER'}")


if __name__ == "__main__":
    main()
