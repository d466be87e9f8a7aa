"""The augmented dataset a user takes home: written as CSV or folder, read back exactly, and the refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from feraug.api import train
from feraug.config import CycleGANConfig, build_config, parse_override
from feraug.data import FaceDataset, load_fer2013_csv, load_image_folder, make_toy_faces, write_fer2013_csv
from feraug.data.augmented import AugmentedFaces, csv_face_size
from feraug.synth.synthetic_set import provenance_path, read_provenance
from feraug.synth.takehome import augment
from feraug.synth.translate import translate

DATA = "toy:400:1"
TINY = ["net.ngf=4", "net.n_blocks=1", "net.ndf=4", "optim.epochs=1", "optim.epochs_decay=0",
        "train.steps_per_epoch=1", "train.ema_decay=0.5", f"data.data={DATA}", "data.source=neutral",
        "data.target=disgust"]  # fmt: skip


@pytest.fixture(scope="module")
def faces() -> FaceDataset:
    return make_toy_faces(n=400, seed=1)  # what toy:400:1 loads


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory, faces: FaceDataset, one_thread: None) -> Path:
    """Six Neutral->Disgust translations by a one-step CycleGAN, with their provenance."""
    cfg = build_config(preset="cyclegan", overrides=[parse_override(s) for s in TINY])
    assert isinstance(cfg, CycleGANConfig)
    root = tmp_path_factory.mktemp("takehome")
    train(cfg, root / "run", data=faces, progress=False)
    return translate(root / "run", 6, "neutral", root / "syn.csv", data=faces).csv


def copy_set(synthetic: Path, to: Path, edit_provenance: dict[str, str] | None = None) -> Path:
    """A copy of the synthetic set (CSV + provenance) in ``to``, optionally with one provenance row edited."""
    out = to / synthetic.name
    out.write_bytes(synthetic.read_bytes())
    with provenance_path(synthetic).open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0].update(edit_provenance or {})
    with provenance_path(out).open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


@pytest.mark.parametrize(("name", "fmt"), [("aug.csv", "csv"), ("aug.csv.gz", "csv"), ("aug", "folder")])
def test_round_trip_keeps_every_face_its_label_and_whether_it_is_synthetic(
    tmp_path: Path, faces: FaceDataset, synthetic: Path, name: str, fmt: str
) -> None:
    result = augment(DATA, synthetic, tmp_path / name, fmt=fmt)
    train_faces, syn = faces.split("Training"), load_fer2013_csv(synthetic, cache_dir=False)
    counts = result.record["counts"]
    assert counts["real"] == len(train_faces) and counts["synthetic"] == 6
    before = dict(zip(faces.classes, train_faces.class_counts().tolist(), strict=True))
    assert counts["before"] == before and counts["added"]["Disgust"] == 6 and sum(counts["added"].values()) == 6
    assert counts["after"] == {k: v + counts["added"][k] for k, v in before.items()}
    assert result.record["synthetic"]["provenance"]["constant"]["direction"] == "neutral->disgust"
    assert result.record["data"]["real_source_rows"] == train_faces.rows.tolist()

    ds = AugmentedFaces(tmp_path / name, cache_dir=False)
    assert len(ds) == len(train_faces) + 6 and int(ds.synthetic.sum()) == 6
    assert torch.equal(ds.images[~ds.synthetic], train_faces.images)
    assert torch.equal(ds.labels[~ds.synthetic], train_faces.labels)
    assert torch.equal(ds.images[ds.synthetic], syn.images) and torch.equal(ds.labels[ds.synthetic], syn.labels)
    assert set(ds.usage.tolist()) == {"Training"}
    image, label = ds[len(ds) - 1]
    assert image.shape == (1, 48, 48) and image.dtype == torch.uint8 and label == 1
    if fmt == "folder":  # any image-folder reader sees the faces, the training ones under train/
        plain = load_image_folder(tmp_path / name, cache_dir=False)
        assert len(plain) == len(ds) and plain.splits == ("Training",)
        assert len(list((tmp_path / name / "train" / "disgust").glob("*.png"))) == counts["after"]["Disgust"]


def test_dataset_gives_float_faces_to_a_dataloader_and_selects_a_split(
    tmp_path: Path, faces: FaceDataset, synthetic: Path
) -> None:
    augment(DATA, synthetic, tmp_path / "aug", fmt="folder", splits=("Training", "PrivateTest"))
    assert sorted(p.name for p in (tmp_path / "aug").iterdir()) == ["augment.json", "test", "train"]
    ds = AugmentedFaces(tmp_path / "aug" / "augment.json", dtype=torch.float32, cache_dir=False)
    x, y = next(iter(DataLoader(ds, batch_size=32)))
    assert x.shape == (32, 1, 48, 48) and x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert torch.equal(x[0, 0], ds.images[0].float() / 255) and y.dtype == torch.int64
    test = AugmentedFaces(tmp_path / "aug", split="PrivateTest", cache_dir=False)
    assert not test.synthetic.any() and torch.equal(test.images, faces.split("PrivateTest").images)


def test_refuses_faces_made_from_held_out_faces(tmp_path: Path, faces: FaceDataset, synthetic: Path) -> None:
    test_row = int(faces.rows[faces.usage == "PrivateTest"][0])
    leaked = copy_set(synthetic, tmp_path, {"source_row": str(test_row)})
    with pytest.raises(ValueError, match=f"synthetic row 0 of .* translated from row {test_row} of .*PrivateTest"):
        augment(DATA, leaked, tmp_path / "aug.csv")
    with pytest.raises(ValueError, match=r"translated from faces of toy:400:1, not of toy:400:2"):
        augment("toy:400:2", synthetic, tmp_path / "aug.csv")
    provenance_path(leaked).unlink()
    with pytest.raises(FileNotFoundError, match="has no provenance beside it"):
        augment(DATA, leaked, tmp_path / "aug.csv")
    assert not (tmp_path / "aug.csv").exists()


def test_refuses_other_sizes_unknown_classes_and_existing_outputs(
    tmp_path: Path, faces: FaceDataset, synthetic: Path
) -> None:
    small = write_fer2013_csv(make_toy_faces(n=100, seed=1, size=32), tmp_path / "small.csv")
    assert csv_face_size(small) == 32
    big = write_fer2013_csv(make_toy_faces(n=7, seed=0, size=160), tmp_path / "big.csv.gz")  # rows above 64 KiB
    assert csv_face_size(big) == 160
    with pytest.raises(ValueError, match=r"syn.csv holds 48x48 faces but .*small.csv holds 32x32 ones"):
        augment(str(small), synthetic, tmp_path / "aug.csv")
    no_disgust = faces.subset(np.flatnonzero(faces.labels.numpy() != 1))
    real = write_fer2013_csv(no_disgust, tmp_path / "real.csv")
    with pytest.raises(ValueError, match=r"adds Disgust faces but the chosen faces of .*real.csv have no Disgust"):
        augment(str(real), synthetic, tmp_path / "aug.csv")
    with pytest.raises(ValueError, match="unknown split 'Test'"):
        augment(DATA, synthetic, tmp_path / "aug.csv", splits=("Test",))
    out = tmp_path / "aug.csv"
    augment(DATA, synthetic, out)
    with pytest.raises(FileExistsError, match=r"aug\.csv exists: pick another --out or pass --force"):
        augment(DATA, synthetic, out)
    assert json.loads(augment(DATA, synthetic, out, force=True).record_path.read_text())["counts"]["synthetic"] == 6
    assert len(read_provenance(provenance_path(synthetic))["source_row"]) == 6


def test_the_command_prints_the_counts_and_names_the_culprit(tmp_path: Path, faces: FaceDataset,
                                                             synthetic: Path) -> None:  # fmt: skip
    from click.testing import CliRunner

    from feraug.cli import main
    from feraug.cli.augment import SPLIT_NAMES
    from feraug.data import SPLITS

    assert SPLIT_NAMES == SPLITS
    args = ["augment", "--data", DATA, "--synthetic", str(synthetic), "--out", str(tmp_path / "aug.csv.gz")]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    lines = [line.split() for line in done.output.splitlines()]
    train_faces = faces.split("Training")
    n, disgust = len(train_faces), int(train_faces.class_counts()[1])
    assert lines[0] == ["class", "real", "added", "after"]
    assert lines[2] == ["Disgust", str(disgust), "6", str(disgust + 6)]
    assert lines[8] == ["total", str(n), "6", str(n + 6)] and lines[9] == ["wrote", str(tmp_path / "aug.csv.gz")]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 1 and f"Error: {tmp_path / 'aug.csv.gz'} exists: pick another --out" in done.output
    done = CliRunner().invoke(main, [*args, "--force", "--split", "Training", "--split", "PublicTest"])
    assert done.exit_code == 0 and AugmentedFaces(tmp_path / "aug.csv.gz").record["data"]["splits"] == [
        "Training", "PublicTest"]  # fmt: skip
