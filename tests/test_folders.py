"""Image-folder loader: both layouts, case-insensitive class names, resizing, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from feraug.data import FaceDataset, ImageFolderError, load_image_folder, write_image_folder


def test_split_layout_round_trip(toy: FaceDataset, tmp_path: Path) -> None:
    root = write_image_folder(toy, tmp_path / "fer")
    assert sorted(p.name for p in root.iterdir()) == ["test", "train", "val"]
    back = load_image_folder(root, cache_dir=False)
    assert len(back) == len(toy)

    # Same multiset of (usage, label, image): compare after sorting by content.
    def key(ds: FaceDataset) -> list[tuple[str, int, bytes]]:
        return sorted(
            (str(u), int(y), x.numpy().tobytes()) for u, y, x in zip(ds.usage, ds.labels, ds.images, strict=True)
        )

    assert key(back) == key(toy)
    assert set(back.splits) == {"Training", "PublicTest", "PrivateTest"}


def test_plain_layout_case_insensitive_aliases_rgb_and_resize(tmp_path: Path) -> None:
    for name, value in (("HAPPY", 200), ("Surprised", 100), ("neutral", 10)):
        (tmp_path / name).mkdir()
        Image.fromarray(np.full((96, 64, 3), value, np.uint8)).save(tmp_path / name / "a.jpg", quality=100)
    ds = load_image_folder(tmp_path, size=48, cache_dir=False)
    assert ds.images.shape == (3, 48, 48) and ds.splits == ()
    assert ds.labels.tolist() == [3, 5, 6]
    assert abs(int(ds.images[0].float().mean()) - 200) <= 2


def test_unknown_class_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "happy").mkdir()
    (tmp_path / "contempt").mkdir()
    with pytest.raises(ImageFolderError, match=r"contempt: folder is not an emotion class .*expected one of angry"):
        load_image_folder(tmp_path, cache_dir=False)


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "train" / "disgust").mkdir(parents=True)
    with pytest.raises(ImageFolderError, match=r"disgust: class folder has no images"):
        load_image_folder(tmp_path, cache_dir=False)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    (tmp_path / "sad").mkdir()
    (tmp_path / "sad" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageFolderError, match=r"broken.png: cannot read image"):
        load_image_folder(tmp_path, cache_dir=False)


def test_folder_cache_sees_new_files(toy: FaceDataset, tmp_path: Path) -> None:
    root = write_image_folder(toy.subset(np.arange(20)), tmp_path / "d")
    cache = tmp_path / "cache"
    first = load_image_folder(root, cache_dir=cache)
    assert torch.equal(load_image_folder(root, cache_dir=cache).images, first.images)
    extra = next(root.glob("*/*"))
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(extra / "zz_new.png")
    assert len(load_image_folder(root, cache_dir=cache)) == 21
