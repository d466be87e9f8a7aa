"""FER2013 CSV loader: round trips, every bad-input case, skip mode and the cache."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from feraug.data import FaceDataset, Fer2013FormatError, load_fer2013_csv, write_fer2013_csv

PIX = " ".join(["7"] * 2303 + ["255"])


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def good_rows(n: int = 3) -> str:
    return "".join(f"{i % 7},{PIX},Training\n" for i in range(n))


def test_round_trip_toy_csv_and_gzip(toy: FaceDataset, tmp_path: Path) -> None:
    for name in ("toy.csv", "toy.csv.gz"):
        back = load_fer2013_csv(write_fer2013_csv(toy, tmp_path / name), cache_dir=False)
        assert torch.equal(back.images, toy.images)
        assert torch.equal(back.labels, toy.labels)
        assert back.usage.tolist() == toy.usage.tolist()
        assert back.rows.tolist() == list(range(len(toy)))
        assert back.images.dtype == torch.uint8 and back.labels.dtype == torch.int64


def test_reads_kaggle_layout_exactly(tmp_path: Path) -> None:
    pixels = np.arange(2304) % 256
    text = "emotion,pixels,Usage\n" + f"3,{' '.join(map(str, pixels))},PublicTest\r\n" + f"6,{PIX},PrivateTest\n\n"
    ds = load_fer2013_csv(write(tmp_path / "f.csv", text), cache_dir=False)
    assert ds.images.shape == (2, 48, 48)
    assert ds.images[0].flatten().tolist() == pixels.tolist()
    assert ds.labels.tolist() == [3, 6]
    assert ds.usage.tolist() == ["PublicTest", "PrivateTest"]


def test_header_without_usage_and_quoted_pixels(tmp_path: Path) -> None:
    ds = load_fer2013_csv(write(tmp_path / "f.csv", f'emotion,pixels\n1,"{PIX}"\n'), cache_dir=False)
    assert ds.labels.tolist() == [1] and ds.usage.tolist() == [""] and ds.splits == ()
    assert int(ds.images[0, 47, 47]) == 255


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"0,{PIX}", "f.csv:3: missing column: found 2 of 3 columns"),
        (f"0,{PIX},Training,extra", "f.csv:3: extra column: found 4 columns, expected 3"),
        ("0," + " ".join(["1"] * 2303) + ",Training", "f.csv:3: pixels field has 2303 values, expected 2304"),
        ("0," + " ".join(["1"] * 2305) + ",Training", "f.csv:3: pixels field has 2305 values, expected 2304"),
        ("0," + " ".join(["1"] * 2303 + ["256"]) + ",Training", "f.csv:3: pixel value 256 outside 0..255"),
        ("0," + " ".join(["1"] * 2303 + ["-1"]) + ",Training", "f.csv:3: pixels field contains '-'"),
        ("0," + " ".join(["1"] * 2303 + ["2.5"]) + ",Training", "f.csv:3: pixels field contains '.'"),
        (f"7,{PIX},Training", "f.csv:3: unknown emotion label 7; expected 0..6"),
        (f"happy,{PIX},Training", "f.csv:3: emotion label contains 'h'"),
        (f",{PIX},Training", "f.csv:3: empty emotion label"),
        (f"0,{PIX},Holdout", "f.csv:3: unknown Usage 'Holdout'"),
    ],
)
def test_bad_row_names_file_line_and_problem(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path / "f.csv", "emotion,pixels,Usage\n" + good_rows(1) + row + "\n" + good_rows(1))
    with pytest.raises(Fer2013FormatError, match="--skip-bad-rows") as err:
        load_fer2013_csv(path, cache_dir=False)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("emotion,pixels,Usage\n", "a header but no data rows"),
        ("emotion,Usage\n0,Training\n", "header has no 'pixels' column"),
        ("label,pixels\n0,1\n", "unknown column 'label'"),
    ],
)
def test_bad_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "f.csv", text)
    with pytest.raises(Fer2013FormatError, match=message) as err:
        load_fer2013_csv(path, cache_dir=False)
    assert str(path) in str(err.value)


def test_corrupt_gzip_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "f.csv.gz"
    bad.write_bytes(gzip.compress(b"emotion,pixels\n")[:12])
    with pytest.raises(Fer2013FormatError, match="not a readable gzip file"):
        load_fer2013_csv(bad, cache_dir=False)
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        load_fer2013_csv(tmp_path / "nope.csv")


def test_skip_bad_rows_warns_with_count(tmp_path: Path) -> None:
    bad = f"9,{PIX},Training\n" + f"0,{PIX}\n"
    path = write(tmp_path / "f.csv", "emotion,pixels,Usage\n" + good_rows(2) + bad + good_rows(3))
    with pytest.warns(UserWarning, match=r"skipped 2 bad rows in .*f\.csv:4: unknown emotion label 9"):
        ds = load_fer2013_csv(path, skip_bad_rows=True, cache_dir=False)
    assert len(ds) == 5
    assert ds.rows.tolist() == [0, 1, 4, 5, 6]  # source rows survive the filtering
    assert "skipped 2 bad rows" in ds.notes[0]


def test_cache_hit_and_invalidation_on_change(tmp_path: Path, toy: FaceDataset) -> None:
    cache = tmp_path / "cache"
    path = write_fer2013_csv(toy, tmp_path / "toy.csv")
    first = load_fer2013_csv(path, cache_dir=cache)
    entries = list(cache.glob("*.npz"))
    assert len(entries) == 1
    mtime = entries[0].stat().st_mtime_ns
    again = load_fer2013_csv(path, cache_dir=cache)
    assert torch.equal(again.images, first.images)
    assert entries[0].stat().st_mtime_ns == mtime and len(list(cache.glob("*.npz"))) == 1  # served, not rebuilt

    changed = toy.subset(np.arange(10))
    write_fer2013_csv(changed, path)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))  # even on a coarse-mtime filesystem
    reloaded = load_fer2013_csv(path, cache_dir=cache)
    assert len(reloaded) == 10 and torch.equal(reloaded.images, changed.images)


def test_cache_sees_a_same_size_in_place_edit(tmp_path: Path) -> None:
    """Same path, inode and size, only content and mtime change: the one case ``mtime_ns`` alone catches."""
    cache = tmp_path / "cache"
    header = "emotion,pixels,Usage\n"
    path = write(tmp_path / "f.csv", header + good_rows(3))
    first = load_fer2013_csv(path, cache_dir=cache)
    assert first.images[0, 0, 0].item() == 7
    before = path.stat()
    with path.open("r+b") as f:  # overwrite the first pixel of the first row in place: "7" -> "8"
        f.seek(len(header) + len("0,"))
        assert f.read(1) == b"7"
        f.seek(len(header) + len("0,"))
        f.write(b"8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # a later mtime, even on a coarse clock
    after = path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size) and after.st_mtime_ns != before.st_mtime_ns
    reloaded = load_fer2013_csv(path, cache_dir=cache)
    assert reloaded.images[0, 0, 0].item() == 8 and torch.equal(reloaded.images[1:], first.images[1:])
    assert len(list(cache.glob("*.npz"))) == 2  # a new entry; the old one is simply never asked for again


def test_real_fer2013_counts(real_fer2013: Path) -> None:
    ds = load_fer2013_csv(real_fer2013)
    assert len(ds) == 32_298
    assert ds.split("Training").class_counts().tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert ds.split("PublicTest").class_counts().tolist() == [467, 56, 496, 895, 653, 415, 607]
    assert ds.images[0, 0, :3].tolist() == [70, 80, 82]
