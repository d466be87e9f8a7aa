"""Typed, validated run configurations, presets and overrides.

A run is described by one pydantic object. Presets are YAML files of field values
(``feraug/presets/*.yaml``); a user's YAML file and ``--set section.key=value`` overrides are
applied on top, in that order. Unknown keys and bad values are errors that name the key and the
value, so a typo never silently falls back to a default. The resolved configuration is saved in
every run folder and is the single source of truth for what the run did.

Where each lives: :mod:`~feraug.config.base` (the strict base and its error),
:mod:`~feraug.config.gan` (one config per GAN family), :mod:`~feraug.config.classifier` (the
classifier and the augmentation experiment) and :mod:`~feraug.config.loading` (presets, files,
overrides). The names users build configs with are importable from ``feraug.config`` itself.
"""

from __future__ import annotations

from feraug.config.base import ConfigError, Strict
from feraug.config.classifier import ClassifierAugmentConfig, ClassifierConfig, ExperimentConfig
from feraug.config.gan import CycleGANConfig, ExpressionGANConfig, NoiseGANConfig
from feraug.config.loading import available_presets, build_config, parse_override

__all__ = [
    "ClassifierAugmentConfig", "ClassifierConfig", "ConfigError", "CycleGANConfig", "ExperimentConfig",
    "ExpressionGANConfig", "NoiseGANConfig", "Strict", "available_presets", "build_config", "parse_override",
]  # fmt: skip
