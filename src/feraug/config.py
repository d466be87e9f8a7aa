"""Typed, validated run configurations, presets and overrides.

A run is described by one pydantic object. Presets are YAML files of field values
(``feraug/presets/*.yaml``); a user's YAML file and ``--set section.key=value`` overrides are
applied on top, in that order. Unknown keys and bad values are errors that name the key and the
value, so a typo never silently falls back to a default. The resolved configuration is saved in
every run folder and is the single source of truth for what the run did.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from feraug.data.classes import emotion_index, emotion_name
from feraug.gan.losses import GanMode
from feraug.nets.gan_nets import Norm


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and the value."""


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Strict):
    """Which faces a translation model learns from."""

    data: str = Field("toy", description="FER2013 CSV, image folder, or toy[:N[:SEED]]")
    source: str = Field("neutral", description="emotion of domain A")
    target: str = Field("happy", description="emotion of domain B")
    size: int = Field(48, ge=8, description="image side length; multiple of 4")
    split: str = Field("Training", description="split to train on (never the test split)")
    max_per_domain: int | None = Field(None, ge=1, description="cap on faces per domain (quick runs)")

    @field_validator("source", "target")
    @classmethod
    def _emotion(cls, value: str) -> str:
        return emotion_name(emotion_index(value))

    @field_validator("size")
    @classmethod
    def _multiple_of_4(cls, value: int) -> int:
        if value % 4:
            raise ValueError(f"size must be a multiple of 4 (two stride-2 downsamplings), got {value}")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> DataConfig:
        if self.source == self.target:
            raise ValueError(f"source and target are both {self.source!r}")
        return self


class NetConfig(Strict):
    """Generator and discriminator sizes (CycleGAN defaults)."""

    ngf: int = Field(64, ge=1)
    n_blocks: int = Field(6, ge=0)
    ndf: int = Field(64, ge=1)
    n_layers: int = Field(3, ge=1)
    norm: Norm = "instance"
    d_norm: Norm | None = Field(None, description="discriminator norm if not `norm` (none for WGAN-GP critics)")


class LossConfig(Strict):
    """The objective: adversarial mode, cycle / identity weights, seed 000's weighted cycle loss."""

    gan_mode: GanMode = "lsgan"
    real_label: float = Field(1.0, gt=0.0, le=1.0, description="soft real label for D (0.9 in the improved preset)")
    lambda_cyc: float = Field(10.0, ge=0.0)
    lambda_idt: float = Field(0.5, ge=0.0, description="identity weight, relative to lambda_cyc as in CycleGAN")
    weighted_cycle: bool = Field(False, description="seed 000's D-weighted feature/pixel cycle loss")
    lambda_gp: float = Field(10.0, ge=0.0, description="gradient penalty weight (wgan-gp)")
    n_critic: int = Field(1, ge=1, description="discriminator steps per generator step")


class OptimConfig(Strict):
    """Optimizers, schedule, batch, pool and train-time augmentation."""

    lr_g: float = Field(2e-4, gt=0.0)
    lr_d: float = Field(2e-4, gt=0.0)
    beta1: float = Field(0.5, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    epochs: int = Field(10, ge=1, description="epochs at constant learning rate")
    epochs_decay: int = Field(10, ge=0, description="further epochs with linear decay to 0")
    batch_size: int = Field(1, ge=1)
    pool_size: int = Field(50, ge=0)
    augment: bool = Field(False, description="random flip and small affine jitter on the training device")


class TrainConfig(Strict):
    """How the shared trainer runs: seed, device, precision, logging, checkpoints."""

    seed: int = 0
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    amp: bool | Literal["auto"] = Field("auto", description="bf16 autocast; auto = on for CUDA only")
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0, description="EMA of generator weights; 0 disables")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (quick runs)")
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(1000, ge=1, description="steps between checkpoints (also at epoch ends)")
    sample_every: int = Field(1, ge=1, description="epochs between sample grids")
    streams: int | Literal["auto"] = Field("auto", description="CPU: run the two cycle directions in 2 threads")
    max_loss: float = Field(1e4, gt=0.0, description="stop when a loss exceeds this (divergence guard)")


class CycleGANConfig(Strict):
    """A complete CycleGAN run."""

    preset: str = "cyclegan"
    data: DataConfig = DataConfig()
    net: NetConfig = NetConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _consistent(self) -> CycleGANConfig:
        if self.loss.gan_mode == "wgan-gp" and self.loss.real_label != 1.0:
            raise ValueError("loss.real_label must be 1.0 with gan_mode wgan-gp (critics have no labels)")
        return self


def available_presets(family: str = "cyclegan") -> list[str]:
    """Names of the shipped presets of a model family."""
    folder = resources.files("feraug") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")
                  and yaml.safe_load(p.read_text()).get("family") == family)  # fmt: skip


def _preset_values(name: str, family: str) -> dict[str, Any]:
    path = resources.files("feraug") / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}: expected one of {', '.join(available_presets(family))}")
    values = yaml.safe_load(path.read_text()) or {}
    if values.pop("family", family) != family:
        raise ConfigError(f"preset {name!r} is not a {family} preset")
    return {"preset": name, **values}


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(item: str) -> dict[str, Any]:
    """``"optim.lr_g=1e-4"`` -> ``{"optim": {"lr_g": 1e-4}}`` (the value is parsed as YAML)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"bad override {item!r}: expected section.key=value")
    value: Any = yaml.safe_load(raw) if raw.strip() else None
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value


def build_config(
    model: type[Strict] = CycleGANConfig,
    *,
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: list[dict[str, Any]] | None = None,
    family: str = "cyclegan",
) -> Strict:
    """Preset, then YAML file, then overrides; validated into ``model``."""
    values: dict[str, Any] = {}
    if file is not None:
        loaded = yaml.safe_load(Path(file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: expected a mapping of config sections, got {type(loaded).__name__}")
        preset = preset or loaded.get("preset")
    if preset is not None:
        values = _preset_values(preset, family)
    if file is not None:
        values = _merge(values, loaded)
    for update in overrides or []:
        values = _merge(values, update)
    try:
        return model.model_validate(values)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"]) or "config"
            if err["type"] == "extra_forbidden":
                problems.append(f"{where}: unknown key")
                continue
            shown = (
                f" (got {err['input']!r})" if err["type"] != "missing" and not isinstance(err["input"], dict) else ""
            )
            problems.append(f"{where}: {err['msg']}{shown}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
