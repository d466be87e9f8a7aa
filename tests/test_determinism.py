"""One seed, one result: a GAN trained twice in fresh processes has the same weights, bit for bit.

Found in the demo (issue 32): two runs with one seed printed GAN bars of 63 % and 64 %. Their first
difference was the CycleGAN's image pool: when two images of a batch drew the same slot, the indexed
write (``pool[slot] = images`` with a repeated index) kept whichever write landed last, and on two CPU
threads that varied from run to run, so the discriminator trained on other fakes from then on. The
pool now writes one value per slot; these tests keep it, and everything else a seed fixes, exact.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import torch

from feraug.core.checkpoint import load_checkpoint
from feraug.gan.image_pool import ImagePool
from feraug.train.run_folder import last_checkpoint

# A tiny CycleGAN with every random stream on: augmentation, a small pool (so batches often draw one slot
# twice), DiffAugment and instance noise on D_B, EMA; two epochs (an epoch boundary, lr decay, a sample grid).
TINY = ["net.ngf=8", "net.n_blocks=1", "net.ndf=8", "optim.epochs=1", "optim.epochs_decay=1",
        "train.steps_per_epoch=12", "optim.batch_size=4", "optim.pool_size=5", "optim.augment=true",
        "regularize.diffaugment=[color,translation]", "regularize.noise_sigma=0.1", "train.ema_decay=0.9",
        "train.log_every=4", "train.seed=7"]  # fmt: skip


def feraug(*args: str) -> None:
    """``python -m feraug ARGS`` in a fresh process; must succeed."""
    done = subprocess.run([sys.executable, "-m", "feraug", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def train_and_translate(out: Path) -> Path:
    """A user's two commands: train the tiny CycleGAN into ``out/run``, translate 24 faces into ``out/fake.csv``."""
    args = ["train", "cyclegan", "--data", "toy:400:1", "--source", "neutral", "--target", "happy", "--quiet",
            "--device", "cpu", "--out", str(out / "run")]  # fmt: skip
    for s in TINY:
        args += ["--set", s]
    feraug(*args)
    feraug("translate", "--run", str(out / "run"), "--n", "24", "--from", "neutral", "--out", str(out / "fake.csv"),
           "--seed", "3")  # fmt: skip
    return out


def tensors(tree: object, where: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested checkpoint, by its path in it."""
    if isinstance(tree, torch.Tensor):
        return {where: tree}
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in tensors(sub, f"{where}/{key}").items()}
    if isinstance(tree, list | tuple):
        return {k: v for i, sub in enumerate(tree) for k, v in tensors(sub, f"{where}/{i}").items()}
    return {}


def losses(run: Path) -> list[dict[str, object]]:
    """The logged losses (not the throughput, which is a clock reading)."""
    return [{k: v for k, v in json.loads(ln).items() if k != "img_per_s"}
            for ln in (run / "metrics.jsonl").read_text().splitlines()]  # fmt: skip


def provenance(path: Path) -> list[dict[str, str]]:
    """Provenance rows without the run folder's path (the two runs live in different folders)."""
    with path.open(newline="") as f:
        return [{k: v for k, v in row.items() if k != "run"} for row in csv.DictReader(f)]


def test_a_gan_trained_twice_with_one_seed_is_bitwise_the_same(tmp_path: Path) -> None:
    """Fresh processes, the same seed: equal weights, EMA weights, optimizer moments, pools, losses, translations."""
    a, b = (train_and_translate(tmp_path / name) for name in ("a", "b"))
    sa, sb = (load_checkpoint(last_checkpoint(r / "run")) for r in (a, b))
    assert sa["step"] == sb["step"] == 24
    ta, tb = tensors({k: sa[k] for k in ("networks", "ema", "optimizers", "extra")}), tensors(
        {k: sb[k] for k in ("networks", "ema", "optimizers", "extra")})  # fmt: skip
    assert ta.keys() == tb.keys() and any(k.startswith("/extra/pools") for k in ta)
    differ = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not differ, f"two runs with one seed differ in {len(differ)} tensors, first {differ[:5]}"
    assert losses(a / "run") == losses(b / "run")
    assert (a / "fake.csv").read_bytes() == (b / "fake.csv").read_bytes()
    assert provenance(a / "fake.provenance.csv") == provenance(b / "fake.provenance.csv")


def sequential_pool(stored: torch.Tensor, images: torch.Tensor, swap: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """The pool's contents after a query, as a loop over the batch leaves them (the reference implementation)."""
    out = stored.clone()
    for i in range(images.shape[0]):
        if swap[i]:
            out[slot[i]] = images[i]
    return out


def test_the_pool_writes_one_value_per_slot_when_a_batch_draws_a_slot_twice() -> None:
    """Repeated slots in one query leave the same contents every time, those a sequential loop leaves.

    Face-sized images (48x48, a batch of 4): big enough that the indexed write runs on several threads,
    where repeated indices used to race.
    """
    swapped_twice = 0
    for seed in range(60):
        pool = ImagePool(size=3)
        pool.query(torch.rand(3, 1, 48, 48, generator=torch.Generator().manual_seed(1000 + seed)))  # fill it
        stored = pool.images.clone()  # type: ignore[union-attr]
        images = torch.rand(4, 1, 48, 48, generator=torch.Generator().manual_seed(2000 + seed))
        draws = torch.Generator().manual_seed(seed)  # the pool's own draws, repeated here
        swap, slot = torch.rand(4, generator=draws) < 0.5, torch.randint(0, 3, (4,), generator=draws)
        returned = pool.query(images, torch.Generator().manual_seed(seed))
        assert torch.equal(pool.images, sequential_pool(stored, images, swap, slot)), seed  # type: ignore[arg-type]
        assert torch.equal(returned, torch.where(swap.view(-1, 1, 1, 1), stored[slot], images)), seed
        swapped_twice += int(any(int((slot[swap] == s).sum()) > 1 for s in range(3)))
    assert swapped_twice > 10  # the case that raced was exercised
