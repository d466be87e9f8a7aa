"""Time one full CycleGAN training step (G and D updates): feraug vs. the reference implementation.

    python benchmarks/bench_cyclegan_step.py [--reference /path/to/pytorch-CycleGAN-and-pix2pix]
        [--batch 1 16] [--ngf 64] [--blocks 6] [--threads 2] [--steps 20] [--device cpu]

Same work on both sides: two ResNet generators, two PatchGAN discriminators, LSGAN, cycle (λ=10)
and identity (λ_idt=0.5) losses, image pool of 50, 48x48 grayscale, fp32 on CPU. Each
configuration runs in its own subprocess so peak memory (max RSS) is per implementation. The
reference is a plain checkout kept outside this repository (never vendored); only its
``optimize_parameters()`` is timed, on one fixed batch, as feraug's ``train_step`` is.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch


def feraug_step(batch: int, ngf: int, blocks: int, device: str, streams: str):
    from feraug.config import build_config, parse_override
    from feraug.models.base import StepContext
    from feraug.models.cyclegan import CycleGAN
    from feraug.train.device import default_streams

    sets = [f"net.ngf={ngf}", f"net.n_blocks={blocks}", f"optim.batch_size={batch}", f"train.streams={streams}"]
    cfg = build_config(preset="cyclegan", overrides=[parse_override(s) for s in sets])
    dev = torch.device(device)
    n_streams = default_streams(dev, batch, cfg.train.streams)
    if n_streams == 2:
        torch.set_num_threads(1)
    torch.manual_seed(0)
    model = CycleGAN(cfg, dev, streams=n_streams)
    data = {
        "a": torch.rand(batch, 1, 48, 48, device=dev) * 2 - 1,
        "b": torch.rand(batch, 1, 48, 48, device=dev) * 2 - 1,
    }
    state = {"step": 0}

    def step() -> None:
        g = tuple(torch.Generator(device=dev).manual_seed(state["step"] * 2 + k) for k in range(2))
        model.train_step(data, StepContext(state["step"], 0, 0.0, g, None))
        state["step"] += 1

    return step, f"feraug (streams={n_streams})"


def reference_step(root: Path, batch: int, ngf: int, blocks: int, device: str):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_cyclegan import make_reference_step

    return make_reference_step(root, batch, ngf=ngf, n_blocks=blocks, device=device), "reference"


def run_one(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if args.only == "reference":
        step, name = reference_step(args.reference, args.batch[0], args.ngf, args.blocks, args.device)
    else:
        step, name = feraug_step(args.batch[0], args.ngf, args.blocks, args.device, args.streams)
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
    print(
        json.dumps(
            {
                "impl": name,
                "batch": args.batch[0],
                "img_per_s": args.batch[0] / seconds,
                "ms_per_step": seconds * 1e3,
                "peak_rss_mb": peak_mb,
                "peak_gpu_mb": gpu_mb,
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
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--streams", default="auto", help="feraug: auto, 1 or 2")
    ap.add_argument("--only", choices=["feraug", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        run_one(args)
        return
    impls = ["feraug"] + (["reference"] if args.reference else [])
    rows = []
    for batch in args.batch:
        for impl in impls:
            cmd = [
                sys.executable,
                __file__,
                "--only",
                impl,
                "--batch",
                str(batch),
                "--ngf",
                str(args.ngf),
                "--blocks",
                str(args.blocks),
                "--threads",
                str(args.threads),
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--device",
                args.device,
                "--streams",
                args.streams,
            ]
            if args.reference:
                cmd += ["--reference", str(args.reference)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            rows.append(json.loads(out))
            print(out, flush=True)
    print(f"\n{'impl':24s} {'batch':>5s} {'img/s':>8s} {'ms/step':>9s} {'peak RSS MB':>12s}")
    for r in rows:
        print(f"{r['impl']:24s} {r['batch']:5d} {r['img_per_s']:8.2f} {r['ms_per_step']:9.1f} {r['peak_rss_mb']:12.0f}")
    if args.reference:
        for batch in args.batch:
            ours = next(r for r in rows if r["batch"] == batch and r["impl"] != "reference")
            ref = next(r for r in rows if r["batch"] == batch and r["impl"] == "reference")
            print(
                f"batch {batch}: feraug / reference = {ours['img_per_s'] / ref['img_per_s']:.2f}x images/s, "
                f"{ours['peak_rss_mb'] / ref['peak_rss_mb']:.2f}x peak RSS"
            )


if __name__ == "__main__":
    main()
