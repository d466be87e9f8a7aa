"""Trace the cdcgan collapse on real FER2013: how much each class's faces vary with the noise, per variant.

    python benchmarks/cdcgan_collapse_probe.py --variant preset|first|no-label-input|no-projection|d-layer-norm
        [--steps 300] [--data fer2013.csv.gz] [--out runs/cdcgan-probe]

Trains the ``cdcgan`` preset for ``--steps`` steps (epochs of 60 steps) with one change, then draws
64 faces per class from the same 64 noise vectors and prints, per class, the per-pixel standard
deviation across them in grey levels (a collapsed model: a few; real faces: ~50). Variants:
``preset`` as shipped (no label input, AC-GAN class head); ``first`` the first cdcgan (G reads
``[z, embed(y)]``, no class head, no mode-seeking term), which collapsed;
``no-label-input`` the first without the label input (``net.label_input=false``);
``no-projection`` the first without the discriminator's projection term (an unconditional
discriminator; patched in this process only: a diagnostic, not an option of feraug);
``d-layer-norm`` the first with layer norm in the discriminator.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import feraug.nets.noise_gan_nets as nets
from feraug.api import train
from feraug.config import NoiseGANConfig, build_config, parse_override
from feraug.data.classes import EMOTIONS
from feraug.synth.sample import draw

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


FIRST = ["net.label_input=true", "loss.lambda_cls=0", "loss.lambda_ms=0"]


def patch(variant: str) -> list[str]:
    """Apply ``variant`` (to the network classes of this process if need be); returns its config overrides."""
    if variant == "no-projection":
        init = nets.NoiseDiscriminator.__init__

        def without_projection(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self.embed = None

        nets.NoiseDiscriminator.__init__ = without_projection  # type: ignore[method-assign]
        return FIRST
    overrides = {"preset": [], "first": FIRST, "no-label-input": ["net.label_input=false", *FIRST[1:]],
                 "d-layer-norm": [*FIRST, "net.d_norm=layer"]}  # fmt: skip
    if variant not in overrides:
        raise SystemExit(f"unknown variant {variant!r}")
    return overrides[variant]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="preset")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--data", default=str(DEFAULT_CSV))
    ap.add_argument("--out", type=Path, default=Path("runs/cdcgan-probe"))
    args = ap.parse_args()
    sets = [f"data.data={args.data}", "optim.epochs=1000", "optim.epochs_decay=0", "train.steps_per_epoch=60",
            *patch(args.variant)]  # fmt: skip
    cfg = build_config(NoiseGANConfig, preset="cdcgan", family="dcgan", overrides=[parse_override(s) for s in sets])
    run = args.out / args.variant
    shutil.rmtree(run, ignore_errors=True)
    train(cfg, run, progress=False, stop_at=args.steps)
    spread = {e: draw(run, 64, e, seed=5).faces.float().std(0).mean().item() for e in EMOTIONS}
    print(args.variant, " ".join(f"{e} {v:.1f}" for e, v in spread.items()))


if __name__ == "__main__":
    main()
