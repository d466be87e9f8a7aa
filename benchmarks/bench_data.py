"""Time loading the real FER2013 CSV: a cold parse (no data cache) and a cached load.

    python benchmarks/bench_data.py [--csv ../shared/data/fer2013/fer2013.csv.gz] [--repeat 3]

"Cold" means no parsed-data cache; the numba kernel is compiled once before timing (its machine
code is cached on disk after the first run, as it is for users). Prints median and best seconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from isal import igzip

from feraug.data import load_fer2013_csv

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with args.csv.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with igzip.open(args.csv) if gzipped else args.csv.open("rb") as f:
        text_mb = sum(len(block) for block in iter(lambda: f.read(1 << 24), b"")) / 1e6
    print(f"torch threads: {torch.get_num_threads()}, file: {args.csv} ({args.csv.stat().st_size / 1e6:.1f} MB, "
          f"{text_mb:.1f} MB of text)")  # fmt: skip
    load_fer2013_csv(args.csv, cache_dir=False)  # compile / load the parser kernel
    cold = timed(lambda: load_fer2013_csv(args.csv, cache_dir=False), args.repeat)
    with tempfile.TemporaryDirectory() as cache:
        ds = load_fer2013_csv(args.csv, cache_dir=cache)
        warm = timed(lambda: load_fer2013_csv(args.csv, cache_dir=cache), args.repeat)
        entry_mb = sum(f.stat().st_size for f in Path(cache).glob("*.npz")) / 1e6
    n = len(ds)
    print(f"cache entry: {entry_mb:.1f} MB")
    for name, times in (("cold parse", cold), ("cached load", warm)):
        med = statistics.median(times)
        print(f"{name:12s} median {med:6.3f} s  best {min(times):6.3f} s  ({n / med:,.0f} faces/s, {n:,} faces)")


if __name__ == "__main__":
    main()
