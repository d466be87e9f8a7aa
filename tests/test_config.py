"""Config validation: an unknown key or a bad value is an error that names it (API and CLI), never a default."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from feraug.cli import main
from feraug.config import ClassifierConfig, ConfigError, CycleGANConfig, ExperimentConfig, build_config, parse_override


def cyclegan(*sets: str) -> CycleGANConfig:
    cfg = build_config(CycleGANConfig, preset="cyclegan", overrides=[parse_override(s) for s in sets])
    assert isinstance(cfg, CycleGANConfig)
    return cfg


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^invalid configuration: net\.ngff: unknown key$"):
        cyclegan("net.ngff=1")
    with pytest.raises(ConfigError, match=r"netz: unknown key"):  # an unknown section, too
        cyclegan("netz.ngf=1")


def test_bad_value_is_named_with_the_value() -> None:
    with pytest.raises(ConfigError, match=r"optim\.lr_g: Input should be greater than 0 \(got -1\)"):
        cyclegan("optim.lr_g=-1")
    with pytest.raises(ConfigError, match=r"net\.ngf: .*\(got 'wide'\)"):
        cyclegan("net.ngf=wide")
    with pytest.raises(ConfigError, match=r"data\.size: .*multiple of 4.*got 50"):
        cyclegan("data.size=50")
    with pytest.raises(ConfigError, match=r"bad override 'optim\.lr_g': expected section\.key=value"):
        parse_override("optim.lr_g")
    assert cyclegan("optim.lr_g=1e-4", "net.ngf=16").optim.lr_g == 1e-4  # good values pass


def test_config_file_keys_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text("preset: cyclegan\nloss:\n  lambda_cycle: 5\n")
    with pytest.raises(ConfigError, match=r"loss\.lambda_cycle: unknown key"):
        build_config(CycleGANConfig, file=path)


def test_classifier_config_is_strict_too() -> None:
    with pytest.raises(ConfigError, match=r"lr_g: unknown key"):
        build_config(ClassifierConfig, overrides=[parse_override("lr_g=1")])
    with pytest.raises(ConfigError, match=r"label_smoothing: .*\(got 1\.5\)"):
        build_config(ClassifierConfig, overrides=[parse_override("label_smoothing=1.5")])


@pytest.mark.parametrize(
    ("override", "message"),
    [("net.ngff=1", "Error: invalid configuration: net.ngff: unknown key"),
     ("optim.lr_g=-1", "Error: invalid configuration: optim.lr_g: Input should be greater than 0 (got -1)")],
)  # fmt: skip
def test_cli_reports_the_key_and_stops_before_training(tmp_path: Path, override: str, message: str) -> None:
    out = tmp_path / "run"
    # if the override were ignored, this would train for 1 s and the test would fail, not hang
    tiny = ["--set", "net.ngf=4", "--set", "net.n_blocks=0", "--set", "net.ndf=4", "--set", "optim.epochs=1",
            "--set", "optim.epochs_decay=0", "--set", "train.steps_per_epoch=1"]  # fmt: skip
    result = CliRunner().invoke(main, ["train", "cyclegan", "--data", "toy:70", "--out", str(out), "--device", "cpu",
                                       "--quiet", *tiny, "--set", override])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.output.strip() == message
    assert not out.exists()  # nothing was started


def test_classifier_preset_fills_what_is_not_given() -> None:
    """A classifier preset is the base, given fields win, and an experiment's classifier starts from the CPU recipe
    even when given field by field (``--set classifier.lr=...``), unless it names ``preset: null``."""
    recipe = ClassifierConfig(preset="classifier-fast-cpu")
    assert (recipe.arch, recipe.batch_size, recipe.schedule, recipe.tta) == ("fast", 128, "onecycle", True)
    assert recipe.ema > 0 and recipe.epochs * (recipe.steps_per_epoch or 0) > 0
    assert ClassifierConfig(preset="classifier-fast-cpu", lr=1e-4).lr == 1e-4
    other = ClassifierConfig(preset="classifier-fast-cpu", arch="simple")  # the preset's arch_kwargs are fast's
    assert other.arch_kwargs == {} and other.ema == recipe.ema
    assert ExperimentConfig().classifier == recipe
    exp = build_config(ExperimentConfig, overrides=[parse_override("classifier.lr=1e-4")], family="experiment")
    assert isinstance(exp, ExperimentConfig)
    assert exp.classifier.arch == "fast" and exp.classifier.lr == 1e-4
    plain = build_config(ExperimentConfig, overrides=[parse_override("classifier.preset=null")], family="experiment")
    assert isinstance(plain, ExperimentConfig) and plain.classifier == ClassifierConfig()
    again = ClassifierConfig.model_validate(recipe.model_dump(mode="json"))  # a saved config.yaml reloads as itself
    assert again == recipe
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        ClassifierConfig(preset="nope")
    with pytest.raises(ValueError, match="not a classifier preset"):
        ClassifierConfig(preset="cyclegan")
