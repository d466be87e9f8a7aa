"""Python API: train any registered GAN family and read what ``feraug augment`` wrote, the calls the CLI makes.

``train(cfg, run_dir)`` trains the family ``cfg`` belongs to (:mod:`feraug.train.families`):
a :class:`~feraug.config.CycleGANConfig` trains a CycleGAN, a :class:`~feraug.config.NoiseGANConfig`
a DCGAN / WGAN-GP / class-conditional GAN. ``train_cyclegan`` and ``build_cyclegan_trainer`` are the
same functions under their first names. :class:`AugmentedFaces` reads back what ``feraug augment`` wrote.
"""

from __future__ import annotations

from feraug.data.augmented import AugmentedFaces
from feraug.train.families import cyclegan_domains
from feraug.train.launch import build_trainer, train

__all__ = ["AugmentedFaces", "build_cyclegan_trainer", "build_trainer", "cyclegan_domains", "train", "train_cyclegan"]

#: The first names of :func:`build_trainer` and :func:`train`, from when CycleGAN was the only family.
build_cyclegan_trainer = build_trainer
train_cyclegan = train
