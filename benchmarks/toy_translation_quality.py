"""How good are CycleGAN translations? Measured against ground truth on toy faces.

    python benchmarks/toy_translation_quality.py --out runs/toy-quality [--preset cyclegan-improved]
        [--source neutral --target happy] [--epochs 4 --epochs-decay 4 --steps-per-epoch 150 --batch 4]

Toy faces render one identity under any expression, so for held-out identities we know exactly
what the translated face should look like. Reported, for the translations and for the untranslated
inputs (the identity baseline) and the ground-truth targets (the ceiling):

* mean SSIM and mean absolute error to the ground-truth target face, and the mean absolute error
  inside the expression region (eyes, brows, mouth: where source and target faces differ), and how
  much an image changed its input outside that region;
* the share that an expression classifier trained on other toy faces labels as the target emotion;
* paired over identities: the share of translations closer to their ground truth than their input
  was (by SSIM and by MAE), with a Wilcoxon signed-rank test of the paired differences.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wilcoxon

from feraug.api import train_cyclegan
from feraug.config import ClassifierConfig, CycleGANConfig, build_config, parse_override
from feraug.data import emotion_index, make_toy_faces, render_pairs
from feraug.data.toy_drawing import expression_mask
from feraug.evaluate.classifier import predict_proba, train_classifier
from feraug.evaluate.instrument.image_quality import mean_abs_error, ssim
from feraug.figures.grid import labelled_grid, save_image
from feraug.synth.translate import load_translator
from feraug.train.run_folder import last_checkpoint


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/toy-quality"))
    ap.add_argument("--preset", default="cyclegan-improved")
    ap.add_argument("--source", default="neutral")
    ap.add_argument("--target", default="happy")
    ap.add_argument("--n-faces", type=int, default=6000, help="toy faces to train the CycleGAN on")
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--epochs-decay", type=int, default=4)
    ap.add_argument("--steps-per-epoch", type=int, default=120)
    ap.add_argument("--pairs", type=int, default=500, help="held-out identities to evaluate on")
    ap.add_argument("--classifier-epochs", type=int, default=6)
    ap.add_argument("--threads", type=_positive, default=2, help="CPU threads (1 lets two runs share 2 cores)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra CycleGAN overrides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    run = args.out / "cyclegan"
    t0 = time.perf_counter()
    sets = [f"data.data=toy:{args.n_faces}:0", f"data.source={args.source}", f"data.target={args.target}",
            f"net.ngf={args.ngf}", f"net.n_blocks={args.blocks}", f"optim.batch_size={args.batch}",
            f"optim.epochs={args.epochs}", f"optim.epochs_decay={args.epochs_decay}",
            f"train.steps_per_epoch={args.steps_per_epoch}", "train.ema_decay=0.99", *args.sets]  # fmt: skip
    cfg = build_config(CycleGANConfig, preset=args.preset, overrides=[parse_override(s) for s in sets])
    # An interrupted run continues where it stopped (a finished one returns at once) instead of being
    # evaluated half-trained; the seconds below then count only this invocation's training.
    train_cyclegan(cfg, run, resume=last_checkpoint(run).exists())
    gan_seconds = time.perf_counter() - t0

    # An expression classifier trained on *other* toy faces (different seed, so different identities).
    t1 = time.perf_counter()
    clf_data = make_toy_faces(n=6000, seed=101)
    train, val = clf_data.split("Training"), clf_data.split("PublicTest")
    clf_cfg = ClassifierConfig(
        arch="vgg", arch_kwargs={"width": 0.25, "fc": 256}, epochs=args.classifier_epochs, seed=0
    )
    clf_run = args.out / "classifier"
    net = train_classifier(clf_cfg, train, val, clf_run, resume=last_checkpoint(clf_run).exists()).net
    clf_seconds = time.perf_counter() - t1
    val_acc = float((predict_proba(net, val).argmax(1) == val.labels.numpy()).mean())

    inputs, truth = render_pairs(args.pairs, args.source, args.target, seed=202)
    translator = load_translator(run, args.source)
    fakes = translator(inputs)
    target = emotion_index(args.target)
    region = torch.from_numpy(expression_mask(inputs.shape[-1]))
    rows = {"input (identity baseline)": inputs, "translated": fakes, "ground truth": truth}
    results = {"direction": translator.direction, "weights": translator.weights, "pairs": args.pairs,
               "classifier_val_accuracy": val_acc, "gan_train_seconds": gan_seconds,
               "classifier_train_seconds": clf_seconds, "config": vars(args) | {"out": str(args.out)}}  # fmt: skip
    for name, images in rows.items():
        pred = predict_proba(net, images).argmax(1)
        results[name] = {
            "ssim_to_truth": float(ssim(images, truth).mean()),
            "mae_to_truth": float(mean_abs_error(images, truth).mean()),
            "mae_to_truth_expression_region": float((images.float() - truth.float()).abs()[:, region].mean()),
            "classified_as_target": float((pred == target).mean()),
            # how much of the rest of the face (identity, lighting, noise) the image no longer keeps
            "mae_to_input_outside_expression_region": float((images.float() - inputs.float()).abs()[:, ~region].mean()),
        }
    # Paired over the same identities: is a translation closer to its ground truth than its own input was?
    for name, metric, closer in (("ssim", ssim, np.greater), ("mae", mean_abs_error, np.less)):
        ours, base = metric(fakes, truth).numpy(), metric(inputs, truth).numpy()
        results[f"paired_{name}"] = {"share_translated_closer": float(closer(ours, base).mean()),
                                     "wilcoxon_p": float(wilcoxon(ours, base).pvalue)}  # fmt: skip
    (args.out / "quality.json").write_text(json.dumps(results, indent=2))
    k = 12
    grid = labelled_grid([inputs[:k], fakes[:k], truth[:k]], ["input", "translated", "ground truth"], scale=2)
    save_image(grid, args.out / "quality_grid.png")
    print(f"{'':28s} {'SSIM to truth':>14s} {'MAE to truth':>13s} {'MAE expr.':>10s} {'as ' + args.target:>12s}")
    for name in rows:
        r = results[name]
        print(
            f"{name:28s} {r['ssim_to_truth']:14.3f} {r['mae_to_truth']:13.1f} "
            f"{r['mae_to_truth_expression_region']:10.1f} {r['classified_as_target']:12.1%}"
        )
    for name in ("ssim", "mae"):
        r = results[f"paired_{name}"]
        print(
            f"paired {name.upper()}: translated closer to ground truth than its input for "
            f"{r['share_translated_closer']:.1%} of identities (Wilcoxon signed-rank p = {r['wilcoxon_p']:.2g})"
        )
    print(
        f"translated faces differ from their inputs outside the expression region by "
        f"{results['translated']['mae_to_input_outside_expression_region']:.2f} grey levels on average"
    )
    print(f"classifier val accuracy on toy faces: {val_acc:.1%}; grid: {args.out / 'quality_grid.png'}")


if __name__ == "__main__":
    main()
