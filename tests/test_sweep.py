"""`feraug sweep`: several CycleGAN presets, the same source faces, one experiment each, one comparison table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from feraug.cli import main
from feraug.config import ConfigError
from feraug.data import make_toy_faces, write_fer2013_csv
from feraug.demo import DEMO_CLASS_WEIGHTS
from feraug.pipelines import sweep as sweep_module
from feraug.pipelines.sweep import Entry, entry_configs, parse_entry
from feraug.synth.synthetic_set import read_provenance

TINY_GAN = ["net.ngf=8", "net.n_blocks=1", "net.ndf=8", "optim.epochs=1", "optim.epochs_decay=0",
            "train.steps_per_epoch=2", "optim.pool_size=4", "train.log_every=1"]  # fmt: skip
TINY_EXP = ["classifier.arch=fast", "classifier.arch_kwargs={stem: 4, widths: [8, 8, 8], depth: 1, fc: 8}",
            "classifier.batch_size=16", "n_boot=200"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 toy faces with Disgust tripled (as the demo's), so the test split holds Disgust faces (AUC defined)."""
    faces = make_toy_faces(n=400, seed=0, class_weights=DEMO_CLASS_WEIGHTS)
    return write_fer2013_csv(faces, tmp_path_factory.mktemp("sweep-data") / "toy.csv")


def sweep_args(data: Path, out: Path, *entries: str) -> list[str]:
    args = ["sweep", "--data", str(data), "--n", "10", "--more", "14", "--seeds", "2", "--epochs", "1",
            "--steps-per-epoch", "2", "--device", "cpu", "--out", str(out), "--quiet"]  # fmt: skip
    for e in entries:
        args += ["--entry", e]
    for s in TINY_GAN:
        args += ["--set", s]
    for s in TINY_EXP:
        args += ["--exp-set", s]
    return args


def test_sweep_compares_presets_on_the_same_faces_and_resumes(data_csv: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from feraug.evaluate import classifier

    trained: list[int] = []
    train = classifier.train_classifier
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: trained.append(1) or train(*a, **k))
    out = tmp_path / "sweep"
    args = sweep_args(data_csv, out, "plain=cyclegan", "diffaug=cyclegan-diffaug")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output

    record = json.loads((out / "comparison.json").read_text())
    rows = record["rows"]
    best = record["best"]
    assert best in ("plain", "diffaug")
    preset = {"plain": "cyclegan", "diffaug": "cyclegan-diffaug"}
    assert [(r["entry"], r["preset"], r["n"]) for r in rows] == [(e, preset[e], 10) for e in preset] + [
        (best, preset[best], 14)]  # fmt: skip
    for r in rows:
        values = (r["macro_f1"]["synthetic"]["mean"], r["macro_f1"]["oversample"]["mean"], r["vs_baseline"]["diff"],
                  r["vs_oversample"]["diff"], r["target"]["f1"]["synthetic"]["mean"],
                  r["target"]["precision"]["synthetic"]["mean"], r["target"]["auc"]["synthetic"]["mean"])  # fmt: skip
        for value in values:
            assert value is not None and math.isfinite(value)
        assert r["vs_oversample"]["answer"] in ("yes", "no", "worse", "not_shown", "not_informative")
        assert r["target"]["class"] == "Disgust"
        assert r["seeds"] == 2 and (out / r["entry"] / f"experiment_{r['n']}" / "results.json").is_file()
        # Every number comes from the experiment's own results.json
        results = json.loads((Path(r["experiment"]) / "results.json").read_text())
        assert r["vs_oversample"]["diff"] == results["verdict"]["synthetic_vs_oversample"]["diff"]
        assert r["target"]["auc"]["synthetic"]["mean"] == results["sets"]["test"]["arms"]["synthetic"]["per_class"][
            "Disgust"]["auc"]["mean"]  # fmt: skip
    assert best == max(rows[:2], key=lambda r: r["vs_oversample"]["diff"])["entry"]

    # The same Neutral faces for both entries, by provenance; the best entry's 14 came from the same seeded draw.
    prov = {name: read_provenance(out / name / "synthetic_10.provenance.csv") for name in ("plain", "diffaug")}
    assert np.array_equal(prov["plain"]["source_row"], prov["diffaug"]["source_row"])
    assert (prov["plain"]["source_label"] == 6).all() and len(prov["plain"]["source_row"]) == 10
    assert prov["plain"]["checkpoint_sha256"][0] != prov["diffaug"]["checkpoint_sha256"][0]  # two generators
    # Baseline trained once (2 seeds), oversample once per face count: 6 + 2 (diffaug: synthetic) + 4 (best at 14)
    assert len(trained) == 6 + 2 + 4
    for name in ("baseline-seed0-standard.npz", "oversample-seed1-standard.npz"):
        assert (out / "plain" / "experiment_10" / "predictions" / name).read_bytes() == (
            out / "diffaug" / "experiment_10" / "predictions" / name).read_bytes()  # fmt: skip

    md = (out / "comparison.md").read_text()
    assert md.count("| plain") == 1 + (best == "plain") and md.count("| diffaug") == 1 + (best == "diffaug")
    assert "Δ macro-F1 vs oversampling [95% CI]" in md and "Disgust AUC syn / over" in md and "**(best)**" in md
    assert "| plain" in result.output and (out / "comparison.png").stat().st_size > 0
    assert (out / "sweep.yaml").is_file()

    # Re-running the same command finishes at once: no GAN, translation or experiment runs again.
    calls: list[str] = []
    for stage in ("train_gan", "translate", "run_augmentation_experiment"):
        monkeypatch.setattr(sweep_module, stage, lambda *a, stage=stage, **k: calls.append(stage))
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".pt", ".csv", ".npz")}
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert calls == [] and len(trained) == 12
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    assert json.loads((out / "comparison.json").read_text())["rows"] == rows

    # Other GAN settings on the same folder are refused, naming the run, never overwriting it.
    changed = CliRunner().invoke(main, [*args, "--set", "net.ngf=16"])
    assert changed.exit_code == 1 and "holds a GAN trained with other settings" in changed.output
    assert "net.ngf: 8 there, 16 now" in changed.output and calls == []


def test_bad_entry_is_named_before_any_training(data_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad"
    result = CliRunner().invoke(main, sweep_args(data_csv, out, "good=cyclegan", "oops=no-such-preset"))
    assert result.exit_code == 1
    assert "sweep entry 'oops' (preset 'no-such-preset')" in result.output and "unknown preset" in result.output
    assert not out.exists()  # nothing trained, nothing written
    missing = CliRunner().invoke(main, sweep_args(data_csv, out, "ecg=ecyclegan"))
    assert missing.exit_code == 1 and "sweep entry 'ecg'" in missing.output and "loss.perceptual" in missing.output
    too_many = CliRunner().invoke(main, [*sweep_args(data_csv, out, "cyclegan"), "--more", "500"])
    assert too_many.exit_code == 1 and "asked for 500 translations" in too_many.output and not out.exists()


def test_entries_parse_and_must_draw_the_same_sources() -> None:
    assert parse_entry("cyclegan") == Entry("cyclegan", "cyclegan")
    e = parse_entry("aug=cyclegan-diffaug,regularize.diffaugment=[translation,cutout], net.ngf=16")
    assert e == Entry("aug", "cyclegan-diffaug", ("regularize.diffaugment=[translation,cutout]", "net.ngf=16"))
    with pytest.raises(ValueError, match="bad sweep entry"):
        parse_entry("a b=cyclegan")
    common = {"data": "toy:100", "source": "neutral", "target": "disgust", "seed": 0}
    cfgs = entry_configs([e, Entry("plain", "cyclegan")], **common)
    assert cfgs["aug"].regularize.diffaugment == ["translation", "cutout"] and cfgs["aug"].net.ngf == 16
    with pytest.raises(ConfigError, match=r"'other' sets data\.split unlike 'plain'"):
        entry_configs([Entry("plain", "cyclegan"), Entry("other", "cyclegan", ("data.split=PublicTest",))], **common)
    with pytest.raises(ValueError, match="distinct"):
        entry_configs([Entry("x", "cyclegan"), Entry("x", "wcyclegan")], **common)


def test_different_source_faces_fail_loudly() -> None:
    same = {"a": np.array([3, 1, 2]), "b": np.array([1, 2, 3])}
    sweep_module._check_same_sources(same, 3)  # order does not matter
    with pytest.raises(ValueError, match=r"'a' and 'c' translated different source faces \(1 of 3"):
        sweep_module._check_same_sources({**same, "c": np.array([1, 2, 4])}, 3)
