"""Model families by name: what ``feraug train FAMILY`` builds, and how its runs make faces.

A family is one config class (its ``data``/``net``/``loss`` sections; ``optim`` and ``train``
follow the shared shape), one model class satisfying :class:`~feraug.models.base.GANModel`, a
function that loads the faces it trains on and one that batches them for the trainer, what a run
records beyond its networks, and the synthesizer its runs feed (``translate`` for translators,
``sample`` for noise GANs). Adding a GAN family is one module plus one entry here; the trainer,
budgets, resume, torchrun, the CLI's ``train`` group and checkpoint checks do not change.

The table lives beside the trainer that uses it, not beside the models: it opens the data files
and the perceptual loss's network, and builds the samplers, which the models are handed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from feraug.config import CycleGANConfig, ExpressionGANConfig, NoiseGANConfig, Strict
from feraug.data.classes import EMOTIONS, emotion_index
from feraug.data.dataset import FaceDataset
from feraug.data.load import load_dataset, without_filtered_rows
from feraug.train.feature_extractor import load_feature_extractor, perceptual_records
from feraug.train.sampler import DomainSampler, LabelledSampler


@dataclass(frozen=True)
class Family:
    """One trainable GAN family."""

    name: str
    config: type[Strict]
    model: Callable[[Any, torch.device], Any]
    load: Callable[[Any, FaceDataset | None], dict[str, FaceDataset]]
    sampler: Callable[..., Any]
    synthesizer: Literal["translate", "sample"]
    summary: str
    #: ``(model, data source) -> (meta.json entries, extra training rows)``: what the run learned from besides
    #: its training faces (e.g. a perceptual loss's network); None for a family that learns from nothing else.
    records: Callable[[Any, str | None], tuple[dict[str, Any], list[int]]] | None = None


def _training_faces(data_cfg: Any, data: FaceDataset | None) -> FaceDataset:
    """The configured split of the configured data, without a filter report's dropped rows."""
    data = data if data is not None else load_dataset(data_cfg.data, size=data_cfg.size)
    if data_cfg.exclude is not None:
        data = without_filtered_rows(data, data_cfg.exclude)
    return data.split(data_cfg.split) if data.splits else data


def cyclegan_domains(cfg: CycleGANConfig, data: FaceDataset | None = None) -> dict[str, FaceDataset]:
    """The source (``a``) and target (``b``) faces of the configured training split."""
    d = cfg.data
    pool = _training_faces(d, data)
    out = {}
    for key, emotion in (("a", d.source), ("b", d.target)):
        faces = pool.of_class(emotion_index(emotion))
        if d.max_per_domain is not None and len(faces) > d.max_per_domain:
            faces = faces.subset(range(d.max_per_domain))
        out[key] = faces
    return out


def noise_gan_faces(cfg: NoiseGANConfig, data: FaceDataset | None = None) -> dict[str, FaceDataset]:
    """``{"faces": ...}``: the configured classes' training faces, labels renumbered to positions in ``classes``."""
    pool = _training_faces(cfg.data, data)
    labels = pool.labels.numpy()
    wanted = [emotion_index(c) for c in cfg.data.classes]
    keep = [i for i, y in enumerate(labels) if y in wanted]
    faces = pool.subset(keep)
    for c, k in zip(cfg.data.classes, wanted, strict=True):
        if not (faces.labels == k).any():
            raise ValueError(f"no {c} faces in the {cfg.data.split} split of {cfg.data.data}: nothing to learn")
    position = {k: i for i, k in enumerate(wanted)}
    renumbered = torch.tensor([position[int(y)] for y in faces.labels], dtype=torch.long)
    return {"faces": FaceDataset(faces.images, renumbered, faces.usage, faces.rows, source=faces.source)}


def expression_faces(cfg: ExpressionGANConfig, data: FaceDataset | None = None) -> dict[str, FaceDataset]:
    """``{"faces": ...}``: every training face of the configured split, labels the FER2013 emotions (0-6)."""
    faces = _training_faces(cfg.data, data)
    counts = torch.bincount(faces.labels, minlength=len(EMOTIONS))
    missing = [name for name, n in zip(EMOTIONS, counts.tolist(), strict=True) if n == 0]
    if missing:
        raise ValueError(f"no {', '.join(missing)} faces in the {cfg.data.split} split of {cfg.data.data}: the "
                         "expression family learns all seven emotions")  # fmt: skip
    return {"faces": faces}


def _sampler_length(train: Any) -> dict[str, Any]:
    """The sampler's epoch length. When epochs have their own lengths (a time budget may lengthen those
    still to come, up to two passes over the data) every epoch's order is drawn for two full passes, so
    that it does not depend on how long the epoch turns out."""
    if train.epoch_steps:
        return {"steps_per_epoch": None, "passes": 2}
    return {"steps_per_epoch": train.steps_per_epoch}


def _domain_sampler(cfg: CycleGANConfig, faces: dict[str, FaceDataset], *, device: torch.device,
                    shard: slice) -> DomainSampler:  # fmt: skip
    return DomainSampler({k: v.images for k, v in faces.items()}, cfg.optim.batch_size, seed=cfg.train.seed,
                         device=device, augment=cfg.optim.augment, **_sampler_length(cfg.train),
                         shard=shard)  # fmt: skip


def _labelled_sampler(cfg: NoiseGANConfig | ExpressionGANConfig, faces: dict[str, FaceDataset], *, device: torch.device,
                      shard: slice) -> LabelledSampler:  # fmt: skip
    f = faces["faces"]
    return LabelledSampler(f.images, f.labels, cfg.optim.batch_size, seed=cfg.train.seed, device=device,
                           balanced=cfg.data.balanced, augment=cfg.optim.augment,
                           **_sampler_length(cfg.train), shard=shard)  # fmt: skip


def _cyclegan(cfg: CycleGANConfig, device: torch.device) -> Any:
    from feraug.models.cyclegan import CycleGAN

    loss, perceptual = cfg.loss, None
    if loss.perceptual_alpha > 0:
        assert loss.perceptual is not None  # the config refuses α > 0 without it
        # φ's layers are built (randomly initialized, then overwritten) before the run's networks: on a fork of
        # the random state, so that the networks start from the run's seed exactly as without φ
        with torch.random.fork_rng(devices=[]):
            perceptual = load_feature_extractor(loss.perceptual, loss.perceptual_layer)
        size = perceptual.provenance.get("input_size")
        if perceptual.kind == "feraug-classifier" and size != cfg.data.size:
            raise ValueError(f"loss.perceptual: {loss.perceptual} is a classifier of {size}x{size} faces, the run "
                             f"trains on {cfg.data.size}x{cfg.data.size}: train φ at data.size")  # fmt: skip
    return CycleGAN(cfg, device, perceptual)


def _cyclegan_records(model: Any, source: str | None) -> tuple[dict[str, Any], list[int]]:
    return perceptual_records(model.perceptual, source)


def _noise_gan(cfg: NoiseGANConfig, device: torch.device) -> Any:
    from feraug.models.noise_gan import NoiseGAN

    return NoiseGAN(cfg, device)


def _expression(cfg: ExpressionGANConfig, device: torch.device) -> Any:
    from feraug.models.expression import ExpressionGAN

    return ExpressionGAN(cfg, device)


FAMILIES: dict[str, Family] = {
    "cyclegan": Family("cyclegan", CycleGANConfig, _cyclegan, cyclegan_domains, _domain_sampler, "translate",
                       "translate SOURCE faces into TARGET faces (Birenbaum's CycleGANs)", _cyclegan_records),
    "dcgan": Family("dcgan", NoiseGANConfig, _noise_gan, noise_gan_faces, _labelled_sampler, "sample",
                    "sample new faces of a class from noise (Birenbaum's Fake GAN: DCGAN, WGAN-GP, conditional)"),
    "expression": Family("expression", ExpressionGANConfig, _expression, expression_faces, _labelled_sampler,
                         "translate", "edit a face into any of the seven emotions (StarGAN-style, one generator)"),
}  # fmt: skip


def get_family(name: str) -> Family:
    """The family called ``name``, or an error listing the known ones."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}: expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_of(cfg: Strict) -> Family:
    """The family whose config class ``cfg`` is."""
    for family in FAMILIES.values():
        if type(cfg) is family.config:
            return family
    raise TypeError(f"{type(cfg).__name__} is not the config of a registered model family")
