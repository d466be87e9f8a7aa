"""Data-parallel training under torchrun (two CPU processes over gloo): same update as one process, exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from feraug.api import train_cyclegan
from feraug.config import CycleGANConfig, build_config, parse_override
from feraug.data import make_toy_faces
from feraug.data.augment import to_float
from feraug.models.cyclegan import CycleGAN
from feraug.nets.gan_nets import ResnetGenerator
from feraug.train.checkpoint import CheckpointError, load_checkpoint
from feraug.train.distributed import DistInfo, shard
from feraug.train.sampler import DomainSampler
from feraug.train.trainer import checkpoint_path

TINY = ["net.ngf=8", "net.n_blocks=1", "net.ndf=8", "train.log_every=3", "train.ema_decay=0.9"]
SCHEDULE = ["optim.epochs=1", "optim.epochs_decay=1", "train.steps_per_epoch=3", "optim.batch_size=4"]


def cli_args(*sets: str) -> list[str]:
    args = ["train", "cyclegan", "--data", "toy:400:1", "--source", "neutral", "--target", "happy", "--quiet"]
    for s in (*TINY, *sets):
        args += ["--set", s]
    return args


def launch(*args: str) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` on CPU; on timeout the whole process group is killed."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def torchrun(out: Path, *args: str) -> None:
    """``torchrun ... -m feraug ARGS`` on CPU, as a user would launch it; must succeed."""
    done = launch("-m", "feraug", *args, "--out", str(out), "--device", "cpu")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def norm_fed_biases(cfg: CycleGANConfig) -> set[str]:
    """Biases of convs right before an instance norm: their true gradient is 0, and Adam turns the
    floating-point noise in it into full-size steps, so two summation orders give different values
    (which the norm then removes from every output)."""
    out = set()
    for name, net in CycleGAN(cfg, torch.device("cpu")).networks.items():
        for prefix, seq in net.named_modules():
            if isinstance(seq, nn.Sequential):
                for i in range(len(seq) - 1):
                    if isinstance(seq[i], nn.Conv2d | nn.ConvTranspose2d) and isinstance(seq[i + 1], nn.InstanceNorm2d):
                        out.add(f"{name}.{prefix}.{i}.bias")
    return out


def weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(checkpoint_path(run))
    return {f"{g}.{n}.{k}": v for g in ("networks", "ema") for n, sd in state[g].items() for k, v in sd.items()}


def test_two_processes_make_the_update_of_one(tmp_path: Path) -> None:
    sets = [*SCHEDULE, "optim.pool_size=0", "optim.augment=false"]  # pools are per process; the rest is exact
    torchrun(tmp_path / "two", *cli_args(*sets))
    cfg = build_config(CycleGANConfig, preset="cyclegan",
                       overrides=[parse_override(s) for s in (*TINY, *sets, "data.source=neutral",
                                                              "data.target=happy", "train.device=cpu")])  # fmt: skip
    train_cyclegan(cfg, tmp_path / "one", data=make_toy_faces(n=400, seed=1), progress=False)

    two, one = weights(tmp_path / "two"), weights(tmp_path / "one")
    assert two.keys() == one.keys()
    skip = {f"{g}.{k}" for k in norm_fed_biases(cfg) for g in ("networks", "ema")} & one.keys()
    assert len(skip) == 34  # 7 per generator, 3 per discriminator, and the generators' EMA copies
    worst = max((two[k] - one[k]).abs().max().item() for k in one.keys() - skip)
    assert worst < 1e-5, f"2-process run drifted from the 1-process run by {worst}"
    faces = make_toy_faces(n=400, seed=1)
    x = to_float(faces.of_class(6).images[:16])
    outputs = []
    for run in ("two", "one"):
        g = ResnetGenerator(1, 1, 8, 1)
        g.load_state_dict(load_checkpoint(checkpoint_path(tmp_path / run))["networks"]["G"])
        outputs.append(g(x))
    assert (outputs[0] - outputs[1]).abs().max().item() < 1e-4  # the translations agree
    logs = [[json.loads(ln) for ln in (tmp_path / r / "metrics.jsonl").read_text().splitlines()]
            for r in ("two", "one")]  # fmt: skip
    assert [r["step"] for r in logs[0]] == [3, 6]  # one log, written once (by rank 0)
    for a, b in zip(*logs, strict=True):
        assert a["G/total"] == pytest.approx(b["G/total"], rel=1e-5) and a["D/A"] == pytest.approx(b["D/A"], rel=1e-5)
    assert json.loads((tmp_path / "two" / "meta.json").read_text())["processes"] == 2


AVERAGE = """
import sys
from pathlib import Path
import torch, torch.distributed as dist
from feraug.train.distributed import average_gradients, init_distributed
info, _ = init_distributed(torch.device("cpu"))
p, q = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
p.grad = torch.tensor([1.0, 2.0, 3.0]) * (info.rank + 1)  # rank 0: g, rank 1: 2g -> mean 1.5g
q.grad = torch.full((2,), 10.0 * info.rank)
average_gradients(torch.optim.SGD([p, q], lr=1.0), info.world)
assert torch.equal(p.grad, torch.tensor([1.5, 3.0, 4.5])), p.grad
assert torch.equal(q.grad, torch.full((2,), 5.0)), q.grad
(Path(sys.argv[1]) / f"ok{info.rank}").touch()  # stdout of the two ranks interleaves
dist.destroy_process_group()
"""


def test_gradients_are_averaged_over_processes(tmp_path: Path) -> None:
    script = tmp_path / "average.py"
    script.write_text(AVERAGE)
    done = launch(str(script), str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "ok0").exists() and (tmp_path / "ok1").exists()


def test_divergence_stops_every_process(tmp_path: Path) -> None:
    done = launch("-m", "feraug", *cli_args(*SCHEDULE, "train.max_loss=1e-9"), "--preset", "wcyclegan",
                  "--out", str(tmp_path / "run"), "--device", "cpu")  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.count("training diverged at or before step 3") == 2  # both ranks, no hang
    assert not checkpoint_path(tmp_path / "run").exists()


def test_resume_under_two_processes_is_bitwise_exact(tmp_path: Path) -> None:
    # weighted cycle loss (γ logged from the CPU) and a generator step every 2nd step, pools, augmentation
    sets = [*SCHEDULE, "optim.pool_size=4", "optim.augment=true", "loss.n_critic=2"]
    args = ("--preset", "cyclegan-improved")
    torchrun(tmp_path / "straight", *cli_args(*sets), *args)
    torchrun(tmp_path / "split", *cli_args(*sets), *args, "--stop-at-step", "3")
    torchrun(tmp_path / "split", *cli_args(*sets), "--resume")

    a, b = load_checkpoint(checkpoint_path(tmp_path / "straight")), load_checkpoint(checkpoint_path(tmp_path / "split"))
    assert a["step"] == b["step"] == 6 and a["world"] == 2
    wa, wb = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    for r in range(2):  # each process's own image pool came back
        for name in ("A", "B"):
            pa, pb = a["extra_ranks"][r]["pools"][name], b["extra_ranks"][r]["pools"][name]
            assert pa["count"] == pb["count"] == 4 and torch.equal(pa["images"], pb["images"])
    assert not torch.equal(a["extra_ranks"][0]["pools"]["A"]["images"], a["extra_ranks"][1]["pools"]["A"]["images"])

    cfg = build_config(CycleGANConfig, preset="cyclegan-improved",
                       overrides=[parse_override(s) for s in (*TINY, *sets, "data.source=neutral",
                                                              "data.target=happy", "train.device=cpu")])  # fmt: skip
    with pytest.raises(CheckpointError, match="written by a run on 2 process"):
        train_cyclegan(cfg, tmp_path / "split", resume=True, data=make_toy_faces(n=400, seed=1), progress=False)


def test_shards_partition_the_global_batch() -> None:
    images = torch.arange(10 * 4, dtype=torch.uint8).view(10, 1, 2, 2).repeat(1, 1, 2, 2)
    full = DomainSampler({"a": images}, 4, seed=0, device=torch.device("cpu")).batch(0, 1, None)["a"]
    parts = [DomainSampler({"a": images}, 4, seed=0, device=torch.device("cpu"), shard=shard(4, DistInfo(r, 2)))
             .batch(0, 1, None)["a"] for r in range(2)]  # fmt: skip
    assert torch.equal(torch.cat(parts), full)


def test_batch_that_does_not_split_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size=5 does not split over 2 processes"):
        shard(5, DistInfo(0, 2))
