"""Training-step throughput of every GAN family and preset, on one fixed batch, side by side.

    python benchmarks/bench_gan_step.py [--threads 2] [--seconds 8] [--device cpu]

One row per preset at the batch size it trains with (the CycleGAN CPU recipe at its ngf 32 and
batch 4, and Pasini et al.'s presets at the same width and batch; the noise GANs at batch 64): real images per
second through ``model.train_step`` (every
update it makes, a generator update every ``n_critic`` steps included), after two untimed steps,
median of 1-second windows so a noisy neighbour moves the figure less. Families are built through
``feraug.train.families``, as ``feraug train FAMILY`` builds them. Compare rows of one invocation:
timings on a shared 2-core machine drift by ±20% between runs. The ecyclegan rows' φ is a
``fast`` expression classifier (its cost does not depend on its weights: it is trained for one
step on toy faces here, in a temporary folder).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from feraug.config import build_config, parse_override
from feraug.models.base import StepContext
from feraug.train.families import get_family

# (label, family, preset, overrides)
ROWS = [
    ("cyclegan (Birenbaum, ngf 64, batch 1)", "cyclegan", "cyclegan", []),
    ("cyclegan-improved CPU recipe (ngf 32, batch 4)", "cyclegan", "cyclegan-improved",
     ["net.ngf=32", "optim.batch_size=4"]),
    ("cyclegan (ngf 32, batch 4)", "cyclegan", "cyclegan", ["net.ngf=32", "optim.batch_size=4"]),
    ("cyclegan-diffaug (ngf 32, batch 4)", "cyclegan", "cyclegan-diffaug", ["net.ngf=32", "optim.batch_size=4"]),
    ("ecyclegan (ngf 32, batch 4, fast-classifier φ)", "cyclegan", "ecyclegan",
     ["net.ngf=32", "optim.batch_size=4", "loss.perceptual={phi}"]),
    ("ecyclegan, L1 instead of perceptual (ngf 32, batch 4)", "cyclegan", "ecyclegan",
     ["net.ngf=32", "optim.batch_size=4", "loss.perceptual_alpha=0", "loss.perceptual_beta=1"]),
    ("ecyclegan-wgangp (ngf 32, batch 4, n_critic 5)", "cyclegan", "ecyclegan-wgangp",
     ["net.ngf=32", "optim.batch_size=4", "loss.perceptual={phi}"]),
    ("dcgan (one class, batch 64)", "dcgan", "dcgan", []),
    ("wgan-gp (n_critic 5, batch 64)", "dcgan", "wgan-gp", []),
    ("cdcgan (7 classes, batch 64)", "dcgan", "cdcgan", []),
]  # fmt: skip


def batch_for(family: str, cfg: Any, device: torch.device) -> dict[str, torch.Tensor]:
    b = cfg.optim.batch_size
    g = torch.Generator().manual_seed(0)
    image = lambda: (torch.rand(b, 1, 48, 48, generator=g) * 2 - 1).to(device)  # noqa: E731
    if family == "cyclegan":
        return {"a": image(), "b": image()}
    return {"image": image(), "label": torch.randint(len(cfg.data.classes), (b,), generator=g).to(device)}


def fast_classifier(folder: Path) -> Path:
    """A ``fast`` classifier run folder (one step on toy faces): the perceptual loss's φ for timing."""
    from click.testing import CliRunner

    from feraug.cli import main

    out = folder / "phi"
    result = CliRunner().invoke(main, ["train", "classifier", "--data", "toy:200", "--arch", "fast", "--out", str(out),
                                       "--epochs", "1", "--steps-per-epoch", "1", "--quiet"])  # fmt: skip
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return out


def images_per_second(family: str, preset: str, sets: list[str], seconds: float, device: torch.device) -> float:
    fam = get_family(family)
    cfg = build_config(fam.config, preset=preset, family=family, overrides=[parse_override(s) for s in sets])
    torch.manual_seed(0)
    model = fam.model(cfg, device)
    batch = batch_for(family, cfg, device)
    step = 0

    def one() -> None:
        nonlocal step
        gens = tuple(torch.Generator(device=device).manual_seed(step * 2 + k) for k in range(2))
        model.train_step(batch, StepContext(step, 0, 0.0, gens, None))
        step += 1

    for _ in range(2):
        one()
    rates, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 3:
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < 1.0 or n < 1:
            one()
            n += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(n * cfg.optim.batch_size / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per row")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default="", help="run only the rows whose label contains this text")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.threads} threads, {device}")
    print(f"{'preset':<56}{'img/s':>9}")
    with tempfile.TemporaryDirectory(prefix="feraug-bench-") as scratch:
        phi = fast_classifier(Path(scratch))
        torch.set_num_threads(args.threads)  # the CLI run above may have changed it
        for label, family, preset, sets in ROWS:
            if args.only not in label:
                continue
            sets = [s.format(phi=phi) for s in sets]
            print(f"{label:<56}{images_per_second(family, preset, sets, args.seconds, device):>9.1f}", flush=True)


if __name__ == "__main__":
    main()
