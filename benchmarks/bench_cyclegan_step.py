"""Time one full CycleGAN training step (G and D updates): feraug vs. the reference implementation.

    python benchmarks/bench_cyclegan_step.py [--reference /path/to/pytorch-CycleGAN-and-pix2pix]
        [--batch 1 16] [--ngf 64] [--blocks 6] [--threads 2] [--steps 20] [--device cpu] [--ceiling]

Same work on both sides: two ResNet generators, two PatchGAN discriminators, LSGAN, cycle (λ=10)
and identity (λ_idt=0.5) losses, image pool of 50, 48x48 grayscale, fp32 on CPU. Each
configuration runs in its own subprocess so peak memory (max RSS) is per implementation. The
reference is a plain checkout kept outside this repository (never vendored); only its
``optimize_parameters()`` is timed, on one fixed batch, as feraug's ``train_step`` is. The
checkout's git commit is printed before and after the results, with a warning when it is not the
commit ``reference_cyclegan.py`` was written against (or has local changes).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


def feraug_step(batch: int, ngf: int, blocks: int, device: str):
    from feraug.config import build_config, parse_override
    from feraug.models.base import StepContext
    from feraug.models.cyclegan import CycleGAN

    sets = [f"net.ngf={ngf}", f"net.n_blocks={blocks}", f"optim.batch_size={batch}"]
    cfg = build_config(preset="cyclegan", overrides=[parse_override(s) for s in sets])
    dev = torch.device(device)
    torch.manual_seed(0)
    model = CycleGAN(cfg, dev)
    data = {
        "a": torch.rand(batch, 1, 48, 48, device=dev) * 2 - 1,
        "b": torch.rand(batch, 1, 48, 48, device=dev) * 2 - 1,
    }
    state = {"step": 0}

    def step() -> None:
        g = tuple(torch.Generator(device=dev).manual_seed(state["step"] * 2 + k) for k in range(2))
        model.train_step(data, StepContext(state["step"], 0, 0.0, g, None))
        state["step"] += 1

    return step, "feraug"


def reference_step(root: Path, batch: int, ngf: int, blocks: int, device: str):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_cyclegan import make_reference_step

    return make_reference_step(root, batch, ngf=ngf, n_blocks=blocks, device=device), "reference"


def run_one(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if args.only == "reference":
        step, name = reference_step(args.reference, args.batch[0], args.ngf, args.blocks, args.device)
    else:
        step, name = feraug_step(args.batch[0], args.ngf, args.blocks, args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - t) / args.steps
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None
    gflop = None
    if name == "feraug":  # the work of one step (conv/matmul FLOPs), the same on both sides; counted after timing
        with FlopCounterMode(display=False) as counter:
            step()
        gflop = counter.get_total_flops() / 1e9
    print(
        json.dumps(
            {
                "impl": name,
                "batch": args.batch[0],
                "img_per_s": args.batch[0] / seconds,
                "ms_per_step": seconds * 1e3,
                "peak_rss_mb": peak_mb,
                "peak_gpu_mb": gpu_mb,
                "gflop_per_step": gflop,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--reference", type=Path, default=None, help="plain checkout of junyanz/pytorch-CycleGAN-and-pix2pix"
    )
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="alternating repeats per implementation (median reported)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ceiling", action="store_true",
                    help="also time the dominant conv alone (bench_conv_throughput.py) at the step's pass sizes, "
                         "1x/2x/3x the batch, in every round, so step and ceiling come from one run")  # fmt: skip
    ap.add_argument("--only", choices=["feraug", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        run_one(args)
        return
    impls = ["feraug"] + (["reference"] if args.reference else [])
    ref_line = ""
    if args.reference:  # which reference was measured goes with the results; a different commit is flagged
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from reference_cyclegan import describe_reference

        ref_line = describe_reference(args.reference)[0]
        print(ref_line, flush=True)
    runs: dict[tuple[int, str], list[dict]] = {}
    ceilings: dict[int, list[dict[str, list[float]]]] = {}
    for batch in args.batch:
        for _ in range(args.rounds):  # alternate implementations so machine noise hits both alike
            for impl in impls:
                cmd = [sys.executable, __file__, "--only", impl, "--batch", str(batch), "--ngf", str(args.ngf),
                       "--blocks", str(args.blocks), "--threads", str(args.threads), "--steps", str(args.steps),
                       "--warmup", str(args.warmup), "--device", args.device]  # fmt: skip
                if args.reference:
                    cmd += ["--reference", str(args.reference)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()
                print(out[-1], flush=True)
                runs.setdefault((batch, impl), []).append(json.loads(out[-1]))
            if args.ceiling:  # same round, same machine state: the conv alone at each pass size of the step
                cmd = [sys.executable, str(Path(__file__).with_name("bench_conv_throughput.py")), "--json",
                       "--threads", str(args.threads), "--rounds", "3", "--faces",
                       *(str(k * batch) for k in (1, 2, 3))]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()
                print(f"conv alone, GFLOP/s [fwd, fwd+bwd] by faces: {out[-1]}", flush=True)
                ceilings.setdefault(batch, []).append(json.loads(out[-1]))
    print(f"\n{'impl':10s} {'batch':>5s} {'img/s median':>13s} {'(min-max)':>14s} {'peak RSS MB':>12s} {'GFLOP/s':>8s}")
    median = {}
    for (batch, impl), rs in runs.items():
        ips = sorted(r["img_per_s"] for r in rs)
        median[batch, impl] = statistics.median(ips)
        rss = max(r["peak_rss_mb"] for r in rs)
        gflop = runs[batch, "feraug"][0]["gflop_per_step"]
        print(f"{impl:10s} {batch:5d} {median[batch, impl]:13.2f} {f'({ips[0]:.2f}-{ips[-1]:.2f})':>14s} {rss:12.0f} "
              f"{gflop * median[batch, impl] / batch:8.1f}")  # fmt: skip
    if args.reference:
        for batch in args.batch:
            ours_rss = max(r["peak_rss_mb"] for r in runs[batch, "feraug"])
            ref_rss = max(r["peak_rss_mb"] for r in runs[batch, "reference"])
            print(
                f"batch {batch}: feraug / reference = {median[batch, 'feraug'] / median[batch, 'reference']:.2f}x "
                f"images/s, {ours_rss / ref_rss:.2f}x peak RSS; {runs[batch, 'feraug'][0]['gflop_per_step']:.1f} "
                f"GFLOP per step, so 1.5x the reference means sustaining "
                f"{1.5 * runs[batch, 'feraug'][0]['gflop_per_step'] * median[batch, 'reference'] / batch:.1f} GFLOP/s "
                "over the whole step (compare benchmarks/bench_conv_throughput.py)"
            )
        print(ref_line)
    for batch, rounds in ceilings.items():
        med = {k: statistics.median(r[k][1] for r in rounds) for k in rounds[0]}
        parts = ", ".join(f"{k} faces {v:.1f}" for k, v in med.items())
        gflop = runs[batch, "feraug"][0]["gflop_per_step"]
        line = (f"batch {batch}: the 256-channel 3x3 conv alone, fwd+bwd, median of {len(rounds)} rounds: {parts} "
                f"GFLOP/s; feraug's step sustains {gflop * median[batch, 'feraug'] / batch:.1f}")
        if args.reference:
            need = 1.5 * gflop * median[batch, "reference"] / batch
            line += (f", the reference's {gflop * median[batch, 'reference'] / batch:.1f}; 1.5x the reference needs "
                     f"{need:.1f} over the whole step, {'above' if need > max(med.values()) else 'within'} the "
                     "largest pass's conv rate")
        print(line)


if __name__ == "__main__":
    main()
