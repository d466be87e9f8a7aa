"""What this CPU's convolution library delivers on the CycleGAN generator's dominant layer.

    python benchmarks/bench_conv_throughput.py [--threads 2] [--faces 1 2 3 6 16]

Times forward + backward (input and weight gradients) of the 256 -> 256 3x3 convolution that the
residual blocks run at 12x12 (48x48 faces, ngf=64): 12 of them per generator pass are ~80% of a
CycleGAN step's arithmetic. The GFLOP/s it reaches in isolation, with warm caches and nothing
else running, is a ceiling for a whole training step built from the same library kernels, which
also normalizes, pads, applies activations and steps Adam; ``bench_cyclegan_step.py`` prints the
GFLOP/s a step must sustain to reach a given speed-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F  # noqa: N812


def conv_rates(n: int, *, repeats: int = 20, rounds: int = 7) -> tuple[float, float]:
    """(forward, forward + backward) GFLOP/s of the 256 -> 256 3x3 conv on ``n`` faces' 12x12 maps (medians)."""
    x = torch.randn(n, 256, 14, 14, requires_grad=True)  # reflection-padded 12x12 map
    w = torch.randn(256, 256, 3, 3, requires_grad=True)
    grad = torch.randn(n, 256, 12, 12)
    flop = 2 * n * 256 * 256 * 9 * 144  # one pass; the backward is twice that

    def forward() -> None:
        with torch.no_grad():
            F.conv2d(x, w)

    def both() -> None:
        torch.autograd.grad(F.conv2d(x, w), (x, w), grad)

    rates = []
    for fn, work in ((forward, flop), (both, 3 * flop)):
        for _ in range(3):
            fn()
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(repeats):
                fn()
            times.append((time.perf_counter() - t) / repeats)
        rates.append(work / statistics.median(times) / 1e9)
    return rates[0], rates[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--faces", type=int, nargs="+", default=[1, 2, 3, 6, 16])
    ap.add_argument("--repeats", type=int, default=20, help="calls per timing")
    ap.add_argument("--rounds", type=int, default=7, help="timings per size (median reported)")
    ap.add_argument("--json", action="store_true", help="one JSON line {faces: [fwd, fwd+bwd]} instead of a table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {n: conv_rates(n, repeats=args.repeats, rounds=args.rounds) for n in args.faces}
    if args.json:
        print(json.dumps({str(n): list(r) for n, r in results.items()}))
        return
    print(f"{'faces':>5s} {'fwd GFLOP/s':>12s} {'fwd+bwd GFLOP/s':>16s}")
    for n, (fwd, both) in results.items():
        print(f"{n:5d} {fwd:12.1f} {both:16.1f}")


if __name__ == "__main__":
    main()
