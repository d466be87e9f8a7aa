"""Sample new faces of a class from a trained noise GAN into a synthetic FER2013-format set.

The provenance file has the same columns as a translation's (:mod:`feraug.synth.synthetic_set`);
a sampled face has no source face (:data:`~feraug.synth.synthetic_set.NO_SOURCE`). Which latent
vectors are drawn depends only on ``seed``: the same command writes the same faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from feraug.config import NoiseGANConfig
from feraug.core.checkpoint import file_sha256, load_checkpoint
from feraug.core.seeding import SAMPLE, generator
from feraug.data.augment import to_uint8
from feraug.data.classes import emotion_index, emotion_name
from feraug.data.dataset import FaceDataset
from feraug.data.fer2013 import write_fer2013_csv
from feraug.figures.grid import labelled_grid, save_image
from feraug.nets.registry import build_gan_net
from feraug.synth.synthetic_set import NO_SOURCE, write_provenance
from feraug.train.run_folder import last_checkpoint


@dataclass(frozen=True)
class SampleResult:
    """Paths written and what they hold."""

    csv: Path
    provenance: Path
    grid: Path
    n: int
    emotion: str


@dataclass(frozen=True)
class Drawn:
    """Faces drawn from a noise GAN, and what drew them (for provenance)."""

    faces: torch.Tensor  # uint8 [N, H, W]
    emotion: str
    config: NoiseGANConfig
    checkpoint: Path
    weights: str
    step: int


def draw(run: str | Path, n: int, emotion: str, *, seed: int = 0, use_ema: bool = True,
         batch_size: int = 256) -> Drawn:  # fmt: skip
    """``n`` faces of ``emotion`` from the noise GAN of ``run`` (EMA weights when kept), in eval mode."""
    if n < 1:
        raise ValueError(f"asked for {n} faces; need at least 1")
    ckpt = last_checkpoint(Path(run))
    state = load_checkpoint(ckpt, family="dcgan")
    cfg = NoiseGANConfig.model_validate(state["config"])
    name = emotion_name(emotion_index(emotion))
    if name not in cfg.data.classes:
        raise ValueError(f"run {run} learned {', '.join(cfg.data.classes)}; it cannot sample {name}")
    weights = "ema" if use_ema and "G" in state["ema"] else "raw"
    net = build_gan_net(state["arch"]["G"])
    net.load_state_dict(state["ema" if weights == "ema" else "networks"]["G"])
    net.eval()
    z = torch.randn(n, cfg.net.z_dim, generator=generator(seed, SAMPLE, n))
    k = cfg.data.classes.index(name)
    with torch.no_grad():
        faces = torch.cat([to_uint8(net(z[i : i + batch_size], torch.full((min(batch_size, n - i),), k)
                                        if cfg.net.conditional else None))
                           for i in range(0, n, batch_size)])  # fmt: skip
    return Drawn(faces, name, cfg, ckpt, weights, int(state["step"]))


def sample(run: str | Path, n: int, emotion: str, out: str | Path, *, seed: int = 0,
           use_ema: bool = True) -> SampleResult:  # fmt: skip
    """Write ``n`` faces of ``emotion`` drawn from ``run`` (see :func:`draw`) as a synthetic set with provenance."""
    run = Path(run)
    d = draw(run, n, emotion, seed=seed, use_ema=use_ema)
    label = emotion_index(d.emotion)
    synthetic = FaceDataset(d.faces, torch.full((n,), label, dtype=torch.int64), np.full(n, "Training", dtype="<U11"),
                            np.arange(n, dtype=np.int64), source=f"sample({run}, {d.emotion})")  # fmt: skip
    out = Path(out)
    write_fer2013_csv(synthetic, out)
    sha = file_sha256(d.checkpoint)
    direction = f"noise->{d.emotion}".lower()
    prov = write_provenance(out, ([i, NO_SOURCE, NO_SOURCE, label, direction, sha, d.weights, str(run), d.step,
                                   d.config.data.data] for i in range(n)))  # fmt: skip
    shown = min(n, 64)
    rows = [d.faces[i : i + 16] for i in range(0, shown, 16)]
    grid = labelled_grid(rows, [f"fake {d.emotion.lower()}"] + [""] * (len(rows) - 1), scale=2, label_width=100)
    grid_path = save_image(grid, out.with_name(out.name.removesuffix(".gz").removesuffix(".csv") + ".png"))
    return SampleResult(out, prov, grid_path, n, d.emotion)
