"""Time one expression-family training step (a D and a G update): feraug vs. the reference StarGAN.

    python benchmarks/bench_expression_step.py [--reference /path/to/stargan] [--batch 1 16] [--ngf 64]
        [--ndf 64] [--blocks 6] [--d-layers 4] [--threads 2] [--steps 20] [--device cpu] [--ceiling] [--breakdown]

The reference is yunjey/stargan, a plain checkout kept outside this repository (never vendored), driven by
``reference_stargan.py``: its own ``Solver.train()`` loop, one iteration per step, on one fixed batch, its
networks changed only to read and write one image channel. feraug's step is ``ExpressionGAN.train_step`` on one
fixed batch, as ``bench_cyclegan_step.py`` times CycleGAN's. Both at 48x48 grayscale, 7 domains, fp32, with the
same widths (G ``ngf``, D ``ndf``), residual blocks, D layers (four: 3x3 patches), batch, learning rates and Adam
betas (StarGAN's 1e-4, (0.5, 0.999)), loss weights λ_cls 1 and λ_rec 10, and the same update ratio: one D and one
G update per step (the reference's ``--n_critic`` is set to 1, its default being 5; feraug has no other ratio).
feraug's D runs without spectral norm and G with residual output (one output channel, no attention mask terms),
the closest of its options to StarGAN's plain D and tanh head.

What cannot be matched, because feraug's family has no option for it (printed with the results, see
:data:`DIFFERENCES`), makes the two steps do different arithmetic. So FLOPs are counted per step on both
sides (with ``torch.utils.flop_counter``'s formulas, as ``FlopCounterMode`` counts: convolutions and matrix
products, backward and double backward included; see :class:`FlopOps`), and GFLOP/s, the rate each sustains
over its own step, is comparable even where images/s is not.

Each configuration runs in its own subprocess so peak memory (max RSS) is per implementation; implementations
alternate for ``--rounds`` rounds and medians are reported. ``--ceiling`` also records every FLOP-bearing op of
one step (shapes, dtypes and arguments: what ``FlopCounterMode`` counts) and replays exactly those, bare, on
random tensors (one per distinct shape, so caches stay warm): their GFLOP/s is what the same library kernels
deliver on the same shapes with nothing else in between (no norms, activations, padding, optimizer, autograd
bookkeeping), a ceiling for that implementation's step. It replaces ``bench_conv_throughput.py``'s single
256-channel conv here because the two steps' shapes differ (the reference's transposed convs and 8-channel
stem, feraug's resize-convs and GEMM stem/head) and each is held to its own. The checkout's git commit is printed
before and after the results, with a warning when it is not the commit ``reference_stargan.py`` was written
against (or has local changes).

``--breakdown`` answers where the time outside the convolutions goes: after the timed steps, ``torch.profiler``
records ``--steps`` more and each op's own (self) CPU time is summed into :data:`CATEGORIES` (convolutions and
matrix products, instance norm, padding, elementwise and activations, the optimizer, copies, the rest), in ms per
step, for both implementations side by side. The profiler adds a little to every op, so compare the categories
with each other, not with the timed ms/step.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import flop_registry

DIFFERENCES = (
    "adversarial loss: reference WGAN-GP (critic scores; gradient penalty on random interpolates: one more D "
    "forward on the batch and a double backward through it); feraug non-saturating BCE + R1 on the real faces "
    "every step (double backward through D's pass over the real half), as it offers only bce/lsgan",
    "order: reference D update first (its own G forward, graph kept), then G recomputes the fakes: 3 G forwards "
    "per step; feraug G update first, D reuses its fakes detached: 2 G forwards",
    "D passes: reference three forwards of the batch (real, fake, interpolates); feraug two (real, fake; one "
    "joint pass on steps without R1); in the G update the reference leaves D's weights trainable, so its "
    "backward also computes D's weight gradients (then zeroed), feraug freezes D",
    "G architecture: reference stem conv over [face; 7 label maps] (zero padding, no bias), affine instance norm "
    "with running stats, 4x4 stride-2 transposed-conv upsampling, tanh head; feraug stem over the face only "
    "(the label maps as a per-face shift after the stem's norm, 8x fewer stem FLOPs), reflection padding, plain "
    "instance norm, "
    "nearest x2 + 3x3 conv upsampling computed at low resolution (the transposed convs' FLOPs), head clamp(x + delta)",
    "D: same widths and layers; LeakyReLU 0.01 vs 0.2, heads without vs with bias",
    "targets: reference a permutation of the batch's labels (at batch 1 the source itself), feraug uniform over "
    "the six other emotions; reference reads seven losses to the host (.item()) every step, feraug returns them "
    "as tensors; Adam: reference PyTorch's default implementation, feraug fused",
)


#: Op-name fragments -> the category ``--breakdown`` sums an op's self time into (first match wins; op names are
#: ``aten::...`` as the profiler reports them). Convolutions first, so ``convolution_backward`` is not "copies".
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("convolutions + matmuls", ("conv", "mm", "matmul", "linear", "_slow_conv")),
    ("instance norm", ("norm", "var_mean", "native_batch")),
    ("padding", ("pad",)),
    ("optimizer", ("adam", "_foreach", "addcdiv", "addcmul", "lerp")),
    ("elementwise + activations", ("relu", "threshold", "add", "mul", "sub", "div", "clamp", "tanh", "sigmoid",
                                   "exp", "log", "neg", "where", "pow", "sqrt", "rsub", "sum", "mean")),
    ("copies + allocation", ("copy", "clone", "contiguous", "cat", "empty", "zero", "fill", "to", "stack",
                             "unfold", "fold", "col2im", "im2col", "upsample", "index", "select", "slice", "view")),
)  # fmt: skip


def categorize(op: str) -> str:
    """The :data:`CATEGORIES` entry an op name falls in (``other`` when none)."""
    name = op.removeprefix("aten::").lower()
    return next((cat for cat, frags in CATEGORIES if any(f in name for f in frags)), "other")


def profile_breakdown(step, sync, steps: int) -> dict[str, float]:
    """ms per step of self CPU time by :data:`CATEGORIES`, over ``steps`` profiled steps."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
        sync()
    out: dict[str, float] = {}
    for evt in prof.key_averages():
        if evt.key.startswith("aten::") or evt.key.startswith("feraug::"):
            cat = categorize(evt.key)
            out[cat] = out.get(cat, 0.0) + evt.self_cpu_time_total / 1e3 / steps
    return out


def feraug_step(batch: int, ngf: int, ndf: int, blocks: int, d_layers: int, device: str):
    from feraug.config import ExpressionGANConfig, build_config, parse_override
    from feraug.models.base import StepContext
    from feraug.models.expression import ExpressionGAN

    sets = [
        f"net.ngf={ngf}", f"net.n_blocks={blocks}", f"net.ndf={ndf}", f"net.d_layers={d_layers}",
        "net.output=residual", "net.spectral_norm=false",
        "loss.gan_mode=bce", "loss.lambda_cls=1", "loss.lambda_rec=10", "loss.lambda_r1=10", "loss.r1_every=1",
        "loss.diffaugment=[]",
        f"optim.batch_size={batch}", "optim.lr_g=1e-4", "optim.lr_d=1e-4", "optim.beta1=0.5", "optim.beta2=0.999",
    ]  # fmt: skip
    cfg = build_config(ExpressionGANConfig, preset="expression", family="expression",
                       overrides=[parse_override(s) for s in sets])  # fmt: skip
    dev = torch.device(device)
    torch.manual_seed(0)
    model = ExpressionGAN(cfg, dev)
    gen = torch.Generator().manual_seed(0)
    data = {
        "image": (torch.rand(batch, 1, 48, 48, generator=gen) * 2 - 1).to(dev),
        "label": torch.randint(7, (batch,), generator=gen).to(dev),
    }
    state = {"step": 0}

    def step() -> None:
        g = tuple(torch.Generator(device=dev).manual_seed(state["step"] * 2 + k) for k in range(2))
        model.train_step(data, StepContext(state["step"], 0, 0.0, g, None))
        state["step"] += 1

    return step, "feraug"


def reference_step(root: Path, batch: int, ngf: int, ndf: int, blocks: int, d_layers: int, device: str):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_stargan import make_reference_step

    step = make_reference_step(root, batch, ngf=ngf, ndf=ndf, n_blocks=blocks, d_layers=d_layers, n_critic=1,
                               device=device)  # fmt: skip
    return step, "reference"


@dataclass(frozen=True)
class _Spec:
    """A tensor argument of a recorded op: what a stand-in for it needs (a leaf to pytrees, unlike a tuple)."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device


class FlopOps(TorchDispatchMode):
    """Counts the FLOPs of the ops ``FlopCounterMode`` counts, by its own formulas (``flop_registry``), and with
    ``record`` keeps each such call (op, arguments with tensors as :class:`_Spec`) for :func:`flop_ops_alone`.

    ``FlopCounterMode`` itself cannot count the reference's step: its module tracker hooks every module's inputs
    for backward, and the reference feeds a leaf (the interpolates ``x_hat``) straight to D and then takes
    ``autograd.grad`` with respect to it, which those hooks refuse ("A leaf node was passed to
    _will_engine_execute_node but we are currently running autograd.grad()"). Without the per-module breakdown
    the total is the same sum.
    """

    def __init__(self, *, record: bool = False) -> None:
        super().__init__()
        self.record = record
        self.flops = 0
        self.calls: list[tuple[Any, Any, Any]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func.overloadpacket)
        if count is not None:
            self.flops += count(*args, **kwargs, out_val=out)
            if self.record:
                spec = lambda t: _Spec(tuple(t.shape), t.dtype, t.device) if isinstance(t, torch.Tensor) else t  # noqa: E731
                self.calls.append((func, tree_map(spec, args), tree_map(spec, kwargs)))
        return out


def flop_ops_alone(step, sync, *, repeats: int = 3, rounds: int = 5) -> tuple[float, float]:
    """(GFLOP, median seconds) of one step's FLOP-bearing ops replayed bare on random tensors (warm caches)."""
    with FlopOps(record=True) as recorder:
        step()
    made: dict[_Spec, torch.Tensor] = {}

    def materialize(x):
        if not isinstance(x, _Spec):
            return x
        if x not in made:
            floating = x.dtype.is_floating_point
            made[x] = torch.randn(x.shape, dtype=x.dtype, device=x.device) if floating else torch.zeros(
                x.shape, dtype=x.dtype, device=x.device)  # fmt: skip
        return made[x]

    calls = [(func, tree_map(materialize, a), tree_map(materialize, k)) for func, a, k in recorder.calls]

    def replay() -> None:
        for func, a, k in calls:
            func(*a, **k)

    with FlopOps() as counter:
        replay()
    sync()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(repeats):
            replay()
        sync()
        times.append((time.perf_counter() - t) / repeats)
    return counter.flops / 1e9, statistics.median(times)


def run_one(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    shape = (args.batch[0], args.ngf, args.ndf, args.blocks, args.d_layers, args.device)
    if args.only == "reference":
        step, name = reference_step(args.reference, *shape)
    else:
        step, name = feraug_step(*shape)
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
    with FlopOps() as counter:  # this implementation's own work; counted after timing
        step()
    gflop = counter.flops / 1e9
    result = {"impl": name, "batch": args.batch[0], "img_per_s": args.batch[0] / seconds, "ms_per_step": seconds * 1e3,
              "peak_rss_mb": peak_mb, "peak_gpu_mb": gpu_mb, "gflop_per_step": gflop}  # fmt: skip
    if args.ceiling:
        ops_gflop, ops_s = flop_ops_alone(step, sync)
        result |= {"ops_alone_ms": ops_s * 1e3, "ops_alone_gflop": ops_gflop, "ceiling_gflop_s": ops_gflop / ops_s}
    if args.breakdown:
        result["breakdown_ms"] = profile_breakdown(step, sync, args.steps)
    print(json.dumps(result))


def print_breakdown(runs: dict[tuple[int, str], list[dict]]) -> None:
    """Median ms/step per op category of every (batch, implementation), as columns."""
    keys = list(runs)
    cats = [c for c, _ in CATEGORIES] + ["other"]
    print("\nself CPU time by op category, ms/step (torch.profiler; medians over rounds)")
    print(f"{'category':28s}" + "".join(f" {f'{impl} b{batch}':>16s}" for batch, impl in keys))
    for cat in [*cats, "total"]:
        cells = []
        for key in keys:
            per_round = [sum(r["breakdown_ms"].values()) if cat == "total" else r["breakdown_ms"].get(cat, 0.0)
                         for r in runs[key]]  # fmt: skip
            cells.append(f" {statistics.median(per_round):16.1f}")
        print(f"{cat:28s}" + "".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", type=Path, default=None, help="plain checkout of yunjey/stargan")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--ngf", type=int, default=64, help="G width (the reference's --g_conv_dim)")
    ap.add_argument("--ndf", type=int, default=64, help="D width (the reference's --d_conv_dim)")
    ap.add_argument("--blocks", type=int, default=6, help="G residual blocks (the reference's --g_repeat_num)")
    ap.add_argument("--d-layers", type=int, default=4, help="D stride-2 layers (the reference's --d_repeat_num)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="alternating repeats per implementation (median reported)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ceiling", action="store_true",
                    help="also replay each step's FLOP-bearing ops alone (same shapes, random tensors) in the same "
                         "subprocess, so step and ceiling come from one run")  # fmt: skip
    ap.add_argument("--breakdown", action="store_true",
                    help="also profile the steps and print each implementation's time per op category")  # fmt: skip
    ap.add_argument("--only", choices=["feraug", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        run_one(args)
        return
    impls = ["feraug"] + (["reference"] if args.reference else [])
    ref_line = ""
    if args.reference:  # which reference was measured goes with the results; a different commit is flagged
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from reference_stargan import describe_reference

        ref_line = describe_reference(args.reference)[0]
        print(ref_line, flush=True)
    print("matched: widths, blocks, D layers, batch, Adam lr/betas, λ_cls 1, λ_rec 10, one D + one G update per "
          "step, fp32; not matched (feraug has no option for it), so compare GFLOP/s as well as img/s:")  # fmt: skip
    for line in DIFFERENCES:
        print(f"  - {line}")
    runs: dict[tuple[int, str], list[dict]] = {}
    for batch in args.batch:
        for _ in range(args.rounds):  # alternate implementations so machine noise hits both alike
            for impl in impls:
                cmd = [sys.executable, __file__, "--only", impl, "--batch", str(batch), "--ngf", str(args.ngf),
                       "--ndf", str(args.ndf), "--blocks", str(args.blocks), "--d-layers", str(args.d_layers),
                       "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
                       "--device", args.device]  # fmt: skip
                if args.reference:
                    cmd += ["--reference", str(args.reference)]
                cmd += ["--ceiling"] * args.ceiling + ["--breakdown"] * args.breakdown
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()
                print(out[-1], flush=True)
                runs.setdefault((batch, impl), []).append(json.loads(out[-1]))
    head = (f"\n{'impl':10s} {'batch':>5s} {'ms/step':>9s} {'img/s median':>13s} {'(min-max)':>16s} "
            f"{'GFLOP/step':>11s} {'GFLOP/s':>8s} {'peak RSS MB':>12s}")  # fmt: skip
    if args.ceiling:
        head += f" {'ops alone ms':>13s} {'ceiling GFLOP/s':>16s} {'of ceiling':>11s}"
    print(head)
    median: dict[tuple[int, str], float] = {}
    rate: dict[tuple[int, str], float] = {}
    for (batch, impl), rs in runs.items():
        ips = sorted(r["img_per_s"] for r in rs)
        median[batch, impl] = statistics.median(ips)
        gflop = rs[0]["gflop_per_step"]
        rate[batch, impl] = gflop * median[batch, impl] / batch
        row = (f"{impl:10s} {batch:5d} {1e3 * batch / median[batch, impl]:9.1f} {median[batch, impl]:13.2f} "
               f"{f'({ips[0]:.2f}-{ips[-1]:.2f})':>16s} {gflop:11.2f} {rate[batch, impl]:8.1f} "
               f"{max(r['peak_rss_mb'] for r in rs):12.0f}")  # fmt: skip
        if args.ceiling:
            ceiling = statistics.median(r["ceiling_gflop_s"] for r in rs)
            alone = statistics.median(r["ops_alone_ms"] for r in rs)
            row += f" {alone:13.1f} {ceiling:16.1f} {rate[batch, impl] / ceiling:11.0%}"
        print(row)
    if args.breakdown:
        print_breakdown(runs)
    if args.reference:
        for batch in args.batch:
            ours_rss = max(r["peak_rss_mb"] for r in runs[batch, "feraug"])
            ref_rss = max(r["peak_rss_mb"] for r in runs[batch, "reference"])
            ours_gflop = runs[batch, "feraug"][0]["gflop_per_step"]
            ref_gflop = runs[batch, "reference"][0]["gflop_per_step"]
            print(f"batch {batch}: feraug / reference = {median[batch, 'feraug'] / median[batch, 'reference']:.2f}x "
                  f"images/s (speed), {rate[batch, 'feraug'] / rate[batch, 'reference']:.2f}x GFLOP/s, "
                  f"{ours_gflop / ref_gflop:.2f}x GFLOP per step, {ours_rss / ref_rss:.2f}x peak RSS")  # fmt: skip
        print(ref_line)


if __name__ == "__main__":
    main()
