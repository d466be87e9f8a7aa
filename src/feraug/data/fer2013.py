"""Read and write the Kaggle FER2013 CSV (``emotion,pixels,Usage``; plain or gzipped).

Reading is one compiled pass over the decompressed bytes (see ``_csvparse``) plus an optional
cache: the real file (32,298 rows, 85 MB gzipped, 271 MB of text) loads in 1.2-1.3 s cold and
0.05-0.06 s from the cache on a 2-core CPU (``python benchmarks/bench_data.py``). Every malformed row is
reported with file, line and problem; ``skip_bad_rows=True`` turns row errors into one counted
warning instead, and the dataset's ``notes`` say how many rows were dropped.
"""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import torch
from isal import igzip

from feraug.data import _csvformat as kernel
from feraug.data.cache import cached_arrays, default_cache_dir, file_fingerprint
from feraug.data.classes import EMOTIONS
from feraug.data.dataset import SPLITS, FaceDataset

_GZIP_MAGIC = b"\x1f\x8b"
_USAGE_NAMES = {s.lower(): s for s in SPLITS}
_MAX_REPORTED = 5


class Fer2013FormatError(ValueError):
    """A FER2013 CSV that cannot be read; the message names the file, the line and the problem."""


def _text_chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """Decompressed text in chunks that end on a line boundary (the last one may not)."""
    with path.open("rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    opener = igzip.open if gzipped else open  # ISA-L: ~3x faster than zlib on this file
    tail = b""
    try:
        with opener(path, "rb") as f:
            while block := f.read(chunk_bytes):
                block = tail + block
                cut = block.rfind(b"\n") + 1
                if cut == 0:
                    tail = block
                    continue
                tail = block[cut:]
                yield block[:cut]
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise Fer2013FormatError(f"{path}: not a readable gzip file ({e})") from e
    if tail:
        yield tail


def _parse_header(path: Path, header: bytes) -> np.ndarray:
    names = [c.strip().strip('"').strip().lower() for c in header.decode("utf-8", "replace").strip().split(",")]
    roles = {"emotion": kernel.ROLE_EMOTION, "pixels": kernel.ROLE_PIXELS, "usage": kernel.ROLE_USAGE}
    for name in names:
        if name not in roles:
            raise Fer2013FormatError(
                f"{path}:1: unknown column {name!r} in header {header.decode(errors='replace').strip()!r} "
                "(expected emotion,pixels[,Usage])"
            )
    for required in ("emotion", "pixels"):
        if required not in names:
            raise Fer2013FormatError(f"{path}:1: header has no {required!r} column (expected emotion,pixels[,Usage])")
    if len(set(names)) != len(names):
        raise Fer2013FormatError(f"{path}:1: duplicate column in header {names}")
    return np.array([roles[n] for n in names], dtype=np.int8)


def _row_problem(status: int, detail: int, n_cols: int, n_pixels: int) -> str:
    if status == kernel.MISSING_COLUMNS:
        return f"missing column: found {detail} of {n_cols} columns"
    if status == kernel.EXTRA_COLUMNS:
        return f"extra column: found {detail} columns, expected {n_cols}"
    if status == kernel.PIXEL_COUNT:
        return f"pixels field has {detail} values, expected {n_pixels}"
    if status == kernel.PIXEL_RANGE:
        return f"pixel value {detail} outside 0..255"
    if status == kernel.PIXEL_CHAR:
        return f"pixels field contains {chr(detail)!r}; expected space-separated integers"
    if status == kernel.BAD_LABEL:
        return "empty emotion label" if detail < 0 else f"emotion label contains {chr(detail)!r}; expected 0..6"
    if status == kernel.LABEL_RANGE:
        return f"unknown emotion label {detail}; expected 0..{len(EMOTIONS) - 1}"
    raise AssertionError(status)


@dataclass
class _Chunk:
    """The parser's output for one chunk of rows (arrays trimmed to the rows found)."""

    images: np.ndarray
    labels: np.ndarray
    status: np.ndarray
    detail: np.ndarray
    line_no: np.ndarray
    usage_code: np.ndarray
    usage_text: dict[int, str]  # one decoded Usage string per distinct code


def _parse_chunk(body: np.ndarray, roles: np.ndarray, n_pixels: int, first_line: int) -> _Chunk:
    cap = int(np.count_nonzero(body == 10)) + 1
    images = np.empty((cap, n_pixels), dtype=np.uint8)
    labels = np.empty(cap, dtype=np.int64)
    span = np.empty((cap, 2), dtype=np.int64)
    code = np.empty(cap, dtype=np.uint64)
    status = np.empty(cap, dtype=np.int8)
    detail = np.empty(cap, dtype=np.int64)
    line_no = np.empty(cap, dtype=np.int64)
    from feraug.data._csvparse import parse_rows  # imports numba (~0.7 s): only when a CSV is parsed

    n = parse_rows(
        body, roles, n_pixels, len(EMOTIONS), first_line, images, labels, span, code, status, detail, line_no
    )
    text: dict[int, str] = {}
    if kernel.ROLE_USAGE in roles:
        codes, first = np.unique(code[:n], return_index=True)
        for c, i in zip(codes.tolist(), first.tolist(), strict=True):
            text[c] = bytes(body[span[i, 0] : span[i, 1]]).strip(b' "\r\t').decode(errors="replace")
    return _Chunk(images[:n], labels[:n], status[:n], detail[:n], line_no[:n], code[:n], text)


def _parse(path: Path, size: int, skip_bad_rows: bool, chunk_bytes: int = 32 << 20) -> dict[str, np.ndarray]:
    """Parse ``path``; decompression (main thread) overlaps parsing (worker thread, GIL released)."""
    chunks = _text_chunks(path, chunk_bytes)
    first = next(chunks, b"").removeprefix(b"\xef\xbb\xbf")
    if not first.strip():
        raise Fer2013FormatError(f"{path}: empty file (expected a header emotion,pixels[,Usage] and data rows)")
    header_end = first.find(b"\n")
    header_end = len(first) if header_end < 0 else header_end
    roles = _parse_header(path, first[:header_end])
    n_pixels = size * size
    parts: list[Future[_Chunk]] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        line = 2
        for text in chain([first[header_end + 1 :]], chunks):
            body = np.frombuffer(text, dtype=np.uint8)
            parts.append(pool.submit(_parse_chunk, body, roles, n_pixels, line))
            line += text.count(b"\n")
        results = [p.result() for p in parts]
    n = sum(len(r.labels) for r in results)
    if n == 0:
        raise Fer2013FormatError(f"{path}: empty file: a header but no data rows")
    status = np.concatenate([r.status for r in results])
    detail = np.concatenate([r.detail for r in results])
    line_no = np.concatenate([r.line_no for r in results])
    usage = np.full(n, "", dtype="<U11")
    bad_usage: dict[int, str] = {}
    if kernel.ROLE_USAGE in roles:
        code = np.concatenate([r.usage_code for r in results])
        names = {c: t for r in results for c, t in r.usage_text.items()}
        for c, value in names.items():
            rows = np.flatnonzero(code == np.uint64(c))
            canonical = _USAGE_NAMES.get(value.lower())
            if canonical is not None:
                usage[rows] = canonical
                continue
            problem = f"unknown Usage {value!r}; expected one of {', '.join(SPLITS)}"
            bad_usage.update({int(i): problem for i in rows if status[i] == kernel.OK})
    problems = {int(i): _row_problem(int(status[i]), int(detail[i]), len(roles), n_pixels) for i in
                np.flatnonzero(status != kernel.OK)} | bad_usage  # fmt: skip
    bad = np.array(sorted(problems), dtype=np.int64)
    messages = [f"{path}:{line_no[i]}: {problems[i]}" for i in bad]
    if bad.size and not skip_bad_rows:
        more = f" (and {bad.size - 1} more bad rows)" if bad.size > 1 else ""
        raise Fer2013FormatError(messages[0] + more + "; pass skip_bad_rows / --skip-bad-rows to drop bad rows")
    good = np.setdiff1d(np.arange(n), bad)
    if good.size == 0:
        raise Fer2013FormatError(f"{path}: no valid rows ({bad.size} bad rows; first: {messages[0]})")
    images = np.concatenate([r.images for r in results]) if len(results) > 1 else results[0].images
    labels = np.concatenate([r.labels for r in results])
    if good.size != n:
        images, labels = images[good], labels[good]
    return {
        "images": images.reshape(-1, size, size),
        "labels": labels,
        "usage": usage[good],
        "rows": good.astype(np.int64),  # data-row index in the file (0 = first row after the header)
        "skipped": np.array(messages[:_MAX_REPORTED], dtype=str),
        "n_skipped": np.array(bad.size),
    }


def load_fer2013_csv(
    path: str | Path,
    *,
    size: int = 48,
    skip_bad_rows: bool = False,
    cache_dir: str | Path | bool | None = True,
) -> FaceDataset:
    """Load a FER2013-format CSV into memory.

    Args:
        path: ``fer2013.csv`` or ``fer2013.csv.gz`` (gzip is detected from the content).
        size: side length of the images in the file (48 for FER2013: 2,304 pixel values per row).
        skip_bad_rows: drop malformed rows with a warning instead of raising.
        cache_dir: ``True`` for the default cache directory, a path, or ``False``/``None`` for no cache.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        Fer2013FormatError: the header or a row is malformed (message names file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FER2013 CSV not found: {path}")
    if cache_dir is True:
        cache_dir = default_cache_dir()
    arrays = cached_arrays(
        "fer2013",
        {"source": file_fingerprint(path), "size": size, "skip_bad_rows": skip_bad_rows},
        lambda: _parse(path, size, skip_bad_rows),
        Path(cache_dir) if cache_dir else None,
    )
    notes: tuple[str, ...] = ()
    n_skipped = int(arrays["n_skipped"])
    if n_skipped:
        shown = "; ".join(arrays["skipped"][:_MAX_REPORTED].tolist())
        msg = f"skipped {n_skipped} bad rows in {path}: {shown}" + (" ..." if n_skipped > _MAX_REPORTED else "")
        warnings.warn(msg, stacklevel=2)
        notes = (msg,)
    return FaceDataset(
        images=torch.from_numpy(np.ascontiguousarray(arrays["images"])),
        labels=torch.from_numpy(arrays["labels"]),
        usage=arrays["usage"],
        rows=arrays["rows"],
        source=str(path),
        notes=notes,
    )


def format_fer2013_rows(images: np.ndarray, labels: np.ndarray, usage: np.ndarray | None) -> bytes:
    """FER2013 CSV data rows (no header) for ``uint8 [N,H,W]`` images, built with array ops.

    Why not ``" ".join(map(str, row))``: that costs ~1 s per 3,000 faces; formatting fixed-width
    digit columns and dropping the padding is ~20x faster.
    """
    n = images.shape[0]
    v = images.reshape(n, -1).astype(np.int16)
    chars = np.zeros((n, v.shape[1], 4), dtype=np.uint8)  # 3 digits + separator; 0 = padding to drop
    chars[..., 0] = np.where(v >= 100, v // 100 + 48, 0)
    chars[..., 1] = np.where(v >= 10, (v // 10) % 10 + 48, 0)
    chars[..., 2] = v % 10 + 48
    chars[..., 3] = 32
    chars[:, -1, 3] = 0
    chars = chars.reshape(n, -1)
    keep = chars != 0
    flat = chars[keep]
    ends = np.cumsum(keep.sum(axis=1))
    starts = ends - keep.sum(axis=1)
    parts: list[bytes] = []
    for i in range(n):
        parts.append(f"{int(labels[i])},".encode())
        parts.append(flat[starts[i] : ends[i]].tobytes())
        parts.append(f",{usage[i]}\n".encode() if usage is not None else b"\n")
    return b"".join(parts)


def write_fer2013_csv(dataset: FaceDataset, path: str | Path) -> Path:
    """Write ``dataset`` as a Kaggle-format CSV (gzipped when ``path`` ends in ``.gz``).

    The ``Usage`` column is written when the dataset has split information. The file is written
    to a temporary name first and renamed, so readers never see half a file.
    """
    path = Path(path)
    has_usage = bool(len(dataset)) and bool(dataset.usage[0])
    header = b"emotion,pixels,Usage\n" if has_usage else b"emotion,pixels\n"
    body = format_fer2013_rows(dataset.images.numpy(), dataset.labels.numpy(), dataset.usage if has_usage else None)
    data = header + body
    if path.suffix == ".gz":
        data = igzip.compress(data, compresslevel=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
