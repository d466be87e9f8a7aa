"""A config from a preset, then a YAML file, then ``--set section.key=value`` overrides, validated in one go.

Errors name the key and the value (:class:`~feraug.config.base.ConfigError`), so a typo never
silently falls back to a default.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from feraug.config.base import ConfigError, Strict
from feraug.config.gan import CycleGANConfig


def available_presets(family: str = "cyclegan") -> list[str]:
    """Names of the shipped presets of a model family."""
    folder = resources.files("feraug") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")
                  and yaml.safe_load(p.read_text()).get("family") == family)  # fmt: skip


def preset_values(name: str, family: str) -> dict[str, Any]:
    """A shipped preset's field values (with ``preset: name``); an unknown name or another family's is an error."""
    path = resources.files("feraug") / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}: expected one of {', '.join(available_presets(family))}")
    values = yaml.safe_load(path.read_text()) or {}
    if values.pop("family", family) != family:
        raise ConfigError(f"preset {name!r} is not a {family} preset")
    return {"preset": name, **values}


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, section by section (nested mappings merge, anything else replaces)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
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
        values = preset_values(preset, family)
    if file is not None:
        values = merge(values, loaded)
    for update in overrides or []:
        values = merge(values, update)
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
