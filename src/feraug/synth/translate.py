"""Translate real faces with a trained CycleGAN or expression GAN into a synthetic FER2013-format set with provenance.

Source faces come from the run's *training* split only (a synthetic face inherits its source's
identity, so drawing sources from a test split would leak it into training). Every output row is
traceable: the provenance CSV beside it names the source row in the original data, the direction,
the checkpoint's SHA-256 and whether EMA weights were used; the augmentation experiment uses it to
drop synthetic faces whose source lands in a held-out fold.

A CycleGAN run translates between its two emotions (the target is implied by the source); an
expression run (``feraug train expression``) translates any emotion into any other (``target``).
With attention output, the grid beside the CSV shows what changed (``1 − A``) under the faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from feraug.config import CycleGANConfig, ExpressionGANConfig
from feraug.core.checkpoint import CheckpointError, file_sha256, load_checkpoint
from feraug.core.seeding import SELECT, derive_seed
from feraug.data.augment import to_float, to_uint8
from feraug.data.classes import emotion_index, emotion_name
from feraug.data.dataset import FaceDataset
from feraug.data.fer2013 import write_fer2013_csv
from feraug.data.load import load_dataset, without_filtered_rows
from feraug.figures.grid import labelled_grid, save_image
from feraug.nets.registry import build_gan_net
from feraug.synth.sample import draw
from feraug.synth.synthetic_set import NO_SOURCE, write_provenance
from feraug.train.run_folder import last_checkpoint

#: Families whose runs ``translate`` reads.
TRANSLATING_FAMILIES = ("cyclegan", "expression")


@dataclass(frozen=True)
class TranslationResult:
    """Paths written and what they hold."""

    csv: Path
    provenance: Path
    grid: Path
    n: int
    direction: str


class ToEmotion(nn.Module):
    """An expression generator fixed to one target emotion: ``faces -> faces`` like a CycleGAN generator."""

    def __init__(self, generator: nn.Module, target: int) -> None:
        super().__init__()
        self.generator, self.target = generator, target

    def forward_with_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.generator.forward_with_mask(x, torch.full((x.shape[0],), self.target, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_mask(x)[0]


@dataclass(frozen=True)
class Translator:
    """One direction of a trained CycleGAN or expression GAN, ready to apply to ``uint8`` faces."""

    net: torch.nn.Module
    config: CycleGANConfig | ExpressionGANConfig
    source: str
    target: str
    weights: str
    checkpoint: Path
    step: int

    @property
    def direction(self) -> str:
        return f"{self.source}->{self.target}".lower()

    @property
    def has_masks(self) -> bool:
        """Whether the generator draws an attention mask (expression runs with ``net.output: attention``)."""
        return isinstance(self.net, ToEmotion) and self.net.generator.output == "attention"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """``uint8 [N,H,W]`` -> translated ``uint8 [N,H,W]``."""
        return torch.cat([to_uint8(self.net(to_float(images[i : i + batch_size])))
                          for i in range(0, images.shape[0], batch_size)])  # fmt: skip

    @torch.no_grad()
    def changed(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor | None:
        """What the attention generator redraws, ``1 − A`` as ``uint8 [N,H,W]`` (255: redrawn, 0: the input
        kept); ``None`` for generators without a mask."""
        if not self.has_masks:
            return None
        return torch.cat([to_uint8(1.0 - 2.0 * self.net.forward_with_mask(to_float(images[i : i + batch_size]))[1])
                          for i in range(0, images.shape[0], batch_size)])  # fmt: skip


def load_translator(run: str | Path, source: str, *, target: str | None = None, use_ema: bool = True) -> Translator:
    """The generator of ``run`` that turns ``source`` faces into ``target`` faces.

    A CycleGAN run's target is implied (its other emotion; ``target``, if given, must be it); an
    expression run's ``target`` is required and may be any emotion but ``source``. EMA weights are used
    when the run kept them (they are smoother than the raw generator).
    """
    ckpt = last_checkpoint(Path(run))
    state = load_checkpoint(ckpt)
    family = state.get("family")
    if family not in TRANSLATING_FAMILIES:
        raise CheckpointError(f"{ckpt}: checkpoint of a {family!r} model, expected "
                              f"{' or '.join(map(repr, TRANSLATING_FAMILIES))}")  # fmt: skip
    label = emotion_index(source)
    cfg: CycleGANConfig | ExpressionGANConfig
    if family == "expression":
        cfg = ExpressionGANConfig.model_validate(state["config"])
        if target is None:
            raise ValueError(f"run {run} translates any emotion into any other: name the target emotion (--to)")
        name, src, tgt = "G", emotion_name(label), emotion_name(emotion_index(target))
        if src == tgt:
            raise ValueError(f"source and target are both {src!r}: pick a target emotion other than the source")
    else:
        cfg = CycleGANConfig.model_validate(state["config"])
        if label == emotion_index(cfg.data.source):
            name, src, tgt = "G", cfg.data.source, cfg.data.target
        elif label == emotion_index(cfg.data.target):
            name, src, tgt = "F", cfg.data.target, cfg.data.source
        else:
            raise ValueError(
                f"run {run} translates {cfg.data.source} <-> {cfg.data.target}; cannot translate from {source!r}"
            )
        if target is not None and emotion_index(target) != emotion_index(tgt):
            raise ValueError(f"run {run} translates {cfg.data.source} <-> {cfg.data.target}: from {src} it "
                             f"translates to {tgt}, not {emotion_name(emotion_index(target))}")  # fmt: skip
    weights = "ema" if use_ema and name in state["ema"] else "raw"
    net = build_gan_net(state["arch"][name])
    net.load_state_dict(state["ema" if weights == "ema" else "networks"][name])
    if family == "expression":
        net = ToEmotion(net, emotion_index(tgt))
    return Translator(net.eval(), cfg, src, tgt, weights, ckpt, int(state["step"]))


def translate(
    run: str | Path,
    n: int,
    source: str,
    out: str | Path,
    *,
    seed: int = 0,
    use_ema: bool = True,
    data: FaceDataset | None = None,
    sources: str | Path | None = None,
    target: str | None = None,
) -> TranslationResult:
    """Translate ``n`` seeded training faces of emotion ``source`` with the generator of ``run``.

    CycleGAN runs: ``source`` must be one of the run's two domains; the faces become the other domain's
    emotion (``target`` may name it). Expression runs: ``target`` is required, any emotion but ``source``.
    ``data`` overrides loading the run's dataset (it must be the same data the run trained on).
    ``sources``: a noise-GAN run (``feraug train dcgan``) that samples the ``source`` faces instead
    (Birenbaum's "Fake GAN as part of the CycleGAN": no real face is consumed, no real identity
    copied); their provenance ``source_row`` is -1, as for sampled faces.
    """
    run = Path(run)
    tr = load_translator(run, source, target=target, use_ema=use_ema)
    cfg = tr.config
    src_label, target_label = emotion_index(tr.source), emotion_index(tr.target)
    direction = tr.direction
    if sources is not None:
        drawn = draw(sources, n, tr.source, seed=seed, use_ema=use_ema)
        if drawn.faces.shape[-1] != cfg.data.size:
            raise ValueError(f"{sources} samples {drawn.faces.shape[-1]}px faces but {run} translates "
                             f"{cfg.data.size}px ones")  # fmt: skip
        images, source_rows, direction = drawn.faces, np.full(n, NO_SOURCE), f"noise->{direction}"
    else:
        full = data if data is not None else load_dataset(cfg.data.data, size=cfg.data.size)
        if cfg.data.exclude is not None:  # sources come from the faces the generator trained on
            full = without_filtered_rows(full, cfg.data.exclude)
        pool = full.split(cfg.data.split) if full.splits else full
        faces = pool.of_class(src_label)
        if not 1 <= n <= len(faces):
            raise ValueError(f"asked for {n} translations but the {cfg.data.split} split has {len(faces)} "
                             f"{faces.classes[src_label]} faces")  # fmt: skip
        rng = np.random.default_rng(derive_seed(seed, SELECT))
        faces = faces.subset(np.sort(rng.choice(len(faces), size=n, replace=False)))
        images, source_rows = faces.images, faces.rows
    fakes = tr(images)

    synthetic = FaceDataset(fakes, torch.full((n,), target_label, dtype=torch.int64),
                            np.full(n, "Training", dtype="<U11"), np.arange(n, dtype=np.int64),
                            source=f"translate({run}, {direction})")  # fmt: skip
    out = Path(out)
    write_fer2013_csv(synthetic, out)
    sha = file_sha256(tr.checkpoint)
    prov = write_provenance(out, ([i, int(source_rows[i]), src_label, target_label, direction, sha, tr.weights,
                                   str(run), tr.step, cfg.data.data] for i in range(n)))  # fmt: skip
    k = min(n, 16)
    kind = "real" if sources is None else "sampled"
    rows, labels = [images[:k], fakes[:k]], [f"{kind} {tr.source.lower()}", f"fake {tr.target.lower()}"]
    changed = tr.changed(images[:k])
    if changed is not None:  # attention: what the generator redrew (white) and kept (black)
        rows.append(changed)
        labels.append("changed")
    grid = labelled_grid(rows, labels, scale=2, label_width=100)
    grid_path = save_image(grid, out.with_name(out.name.removesuffix(".gz").removesuffix(".csv") + ".png"))
    return TranslationResult(out, prov, grid_path, n, direction)
