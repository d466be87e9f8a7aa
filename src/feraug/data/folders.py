"""Load image-folder datasets: ``root/<split>/<class>/*.png|jpg`` or ``root/<class>/*``.

This is the layout of the Kaggle image-folder variant of FER2013 (``train/angry/...``,
``test/angry/...``) and of most users' own data. Images are decoded once (in a thread pool,
PIL releases the GIL while decoding), converted to grayscale, resized to ``size`` and stacked
into one ``uint8`` tensor; the result is cached like the CSV loader's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from feraug.data.cache import cached_arrays, default_cache_dir
from feraug.data.classes import EMOTIONS, UnknownEmotionError, emotion_index
from feraug.data.dataset import FaceDataset

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

#: Folder names of splits, mapped to FER2013 ``Usage`` names. ``test`` is the final test split.
SPLIT_FOLDERS: dict[str, str] = {
    "train": "Training", "training": "Training",
    "val": "PublicTest", "valid": "PublicTest", "validation": "PublicTest", "publictest": "PublicTest",
    "test": "PrivateTest", "privatetest": "PrivateTest",
}  # fmt: skip


class ImageFolderError(ValueError):
    """An image folder whose layout or content cannot be used; the message names the path."""


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_folders(root: Path) -> list[tuple[int, Path]]:
    out = []
    for d in _subdirs(root):
        try:
            out.append((emotion_index(d.name), d))
        except UnknownEmotionError as e:
            raise ImageFolderError(f"{d}: folder is not an emotion class ({e})") from e
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        raise ImageFolderError(f"{root}: two folders name the same emotion: {[d.name for _, d in out]}")
    return out


def scan_image_folder(root: str | Path) -> list[tuple[Path, int, str]]:
    """``(file, label, usage)`` for every image under ``root``, in a deterministic order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    top = _subdirs(root)
    if not top:
        raise ImageFolderError(f"{root}: no class or split folders inside")
    if all(d.name.lower() in SPLIT_FOLDERS for d in top):
        layout = [(SPLIT_FOLDERS[d.name.lower()], d) for d in top]
    elif any(d.name.lower() in SPLIT_FOLDERS for d in top):
        names = [d.name for d in top]
        raise ImageFolderError(f"{root}: mixes split folders and other folders: {names}")
    else:
        layout = [("", root)]
    entries: list[tuple[Path, int, str]] = []
    for usage, split_dir in layout:
        for label, class_dir in _class_folders(split_dir):
            files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise ImageFolderError(f"{class_dir}: class folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            entries.extend((f, label, usage) for f in files)
    return entries


def _decode(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise ImageFolderError(f"{path}: cannot read image ({e})") from e


def load_image_folder(
    root: str | Path, *, size: int = 48, cache_dir: str | Path | bool | None = True, workers: int = 4
) -> FaceDataset:
    """Load every image under ``root`` as grayscale ``size x size``.

    Class folders are matched case-insensitively to the seven emotions (aliases such as
    ``happiness`` or ``surprised`` accepted); an unknown folder or a class folder without images
    is an error that names the folder. ``rows`` index the sorted file list.
    """
    root = Path(root)
    entries = scan_image_folder(root)
    if cache_dir is True:
        cache_dir = default_cache_dir()
    listing = [(str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns) for f, _, _ in entries]

    def build() -> dict[str, np.ndarray]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            images = list(pool.map(lambda e: _decode(e[0], size), entries))
        return {
            "images": np.stack(images),
            "labels": np.array([label for _, label, _ in entries], dtype=np.int64),
            "usage": np.array([usage for _, _, usage in entries], dtype="<U11"),
        }

    arrays = cached_arrays(
        "folder",
        {"root": str(root.resolve()), "size": size, "files": listing},
        build,
        Path(cache_dir) if cache_dir else None,
    )
    return FaceDataset(
        images=torch.from_numpy(arrays["images"]),
        labels=torch.from_numpy(arrays["labels"]),
        usage=arrays["usage"],
        rows=np.arange(len(entries), dtype=np.int64),
        classes=EMOTIONS,
        source=str(root),
    )


def write_image_folder(dataset: FaceDataset, root: str | Path) -> Path:
    """Write ``dataset`` as ``root/<split>/<class>/<row>.png`` (or ``root/<class>/...`` without splits)."""
    root = Path(root)
    split_dir = {v: k for k, v in SPLIT_FOLDERS.items() if k in ("train", "val", "test")}
    for i in range(len(dataset)):
        usage = str(dataset.usage[i])
        base = root / split_dir[usage] if usage else root
        folder = base / dataset.classes[int(dataset.labels[i])].lower()
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(dataset.images[i].numpy()).save(folder / f"{int(dataset.rows[i]):06d}.png")
    return root
