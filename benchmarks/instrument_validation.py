"""Can degraded faces fool feraug's judges? The instrument's validation, on real FER2013 and on toy faces.

    python benchmarks/instrument_validation.py --data ../shared/data/fer2013/fer2013.csv.gz \\
        --ferplus ../shared/data/fer2013/ferplus.csv.gz --out runs/instrument [--k 2] [--n 400]
    python benchmarks/instrument_validation.py --toy-only --out runs/instrument-toy

Real faces: both judges of ``feraug quality`` (:func:`feraug.evaluate.instrument.judges.build_judges`) are
cross-fitted on FER2013's Training faces (cached under ``--out``; an interrupted run resumes). Then
``--n`` Training Neutral faces (the faces ``translate --n N --from neutral`` would draw from) are
scored untouched, under every control of :data:`feraug.data.degrade.CONTROLS` and under degradations
*outside* the family (JPEG, salt and pepper, sharpening, gamma, motion blur, pixelation,
posterization), beside real Disgust / Happy / Surprise faces: for each, the share each judge calls
Disgust, Happy and Surprise, and its distance to the untouched row. No expression changed in any
degraded row, so each should read like the untouched one.

Toy faces (ground truth): identities rendered Neutral and, the same identity, Disgust
(:func:`feraug.data.render_pairs`). Sets in which a fraction f of the faces is replaced by its true
Disgust render, the rest left Neutral, scored by judges cross-fitted on toy faces, with their
controls: transfer above control should grow with f, and be ~0 at f = 0.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image

from feraug.data import load_dataset, make_toy_faces, render_pairs
from feraug.data.augment import to_float, to_uint8
from feraug.data.degrade import blur
from feraug.data.ferplus import load_ferplus
from feraug.demo import DEMO_JUDGE
from feraug.evaluate.instrument.controls import above_control, control_faces
from feraug.evaluate.instrument.judges import FALSE_ALARM, OBJECTIVES, PRIOR_OBJECTIVE, build_judges

TARGETS = {"Disgust": 1, "Happy": 3, "Surprise": 5}


def jpeg(faces: torch.Tensor, quality: int) -> torch.Tensor:
    out = []
    for f in faces.numpy():
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L")))
    return torch.from_numpy(np.stack(out))


def outside_family(faces: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Degradations that neither the controls nor the judges' training augmentation use."""
    g = torch.Generator().manual_seed(seed)
    x = to_float(faces)
    salt = torch.rand(x.shape, generator=g)
    sp = torch.where(salt < 0.02, -1.0, torch.where(salt > 0.98, 1.0, x))
    soft = blur(x, torch.full((len(x),), 1.0))
    sharp = (x + 1.0 * (x - soft)).clamp(-1, 1)
    kernel = torch.full((1, 1, 1, 5), 0.2)
    motion = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), kernel)
    small = F.interpolate(x, scale_factor=0.25, mode="nearest")
    pixel = F.interpolate(small, size=x.shape[-2:], mode="nearest")
    gamma = ((x + 1) / 2).pow(0.6) * 2 - 1
    poster = torch.round((x + 1) / 2 * 7) / 7 * 2 - 1
    return {"[outside] JPEG q15": jpeg(faces, 15), "[outside] salt and pepper 4%": to_uint8(sp),
            "[outside] sharpen": to_uint8(sharp), "[outside] gamma 0.6": to_uint8(gamma),
            "[outside] motion blur 5px": to_uint8(motion), "[outside] pixelate x4": to_uint8(pixel),
            "[outside] posterize 8 levels": to_uint8(poster)}  # fmt: skip


NEUTRAL, DISGUST = 6, 1


def rates(judges: list, images: torch.Tensor, rows: np.ndarray) -> dict[str, dict[str, float]]:
    """Per judge, the share of faces called each of :data:`TARGETS`, each at the judge's operating point for
    Neutral -> that target (as ``feraug quality`` judges a Neutral -> target set)."""
    out = {}
    for j in judges:
        proba = j.proba(images, rows)  # one pass; each target's pinned offset only shifts its logit
        out[j.name] = {}
        for name, c in TARGETS.items():
            shift = j.for_target(c, NEUTRAL).bias - j.bias
            out[j.name][name] = float(((np.log(np.clip(proba, 1e-12, None)) + shift).argmax(1) == c).mean())
    return out


def real_faces(args: argparse.Namespace) -> dict:
    data = load_dataset(args.data)
    pool = data.split("Training")
    fp = load_ferplus(args.ferplus) if args.ferplus else None
    t0 = time.perf_counter()
    judges = build_judges(pool, k=args.k, seed=0, ferplus=fp, cache_dir=args.out / "judges", progress=True,
                          objective=args.objective, log=print)  # fmt: skip
    print(f"judges ready in {time.perf_counter() - t0:.0f} s")
    if args.old_judge:  # the recipe these judges replace, scored the same way: what the hardening changed
        from feraug.evaluate.instrument.crossfit import cross_fit, judge_config
        from feraug.evaluate.instrument.judges import Judge

        old = cross_fit(pool, judge_config(("class_weights=balanced",)), k=args.k, seed=0,
                        cache_dir=args.out / "judges", progress=True, log=print)  # fmt: skip
        judges.append(Judge("old", old, np.zeros(len(pool.classes)), "FER2013", "fast",
                            {"describe": "old", "accuracy": float("nan"), "macro_f1": float("nan")}))  # fmt: skip
    labels = pool.labels.numpy()
    rng = np.random.default_rng(0)
    neutral = np.sort(rng.choice(np.flatnonzero(labels == 6), size=args.n, replace=False))
    sources, rows = pool.images[torch.from_numpy(neutral)], pool.rows[neutral]
    sets = {name: (faces, rows) for name, faces in control_faces(sources, seed=0).items()}
    sets.update({name: (faces, rows) for name, faces in outside_family(sources, seed=0).items()})
    public = data.split("PublicTest")
    for name, c in TARGETS.items():
        idx = np.flatnonzero(labels == c)
        sets[f"[real] Training {name} (out of fold)"] = (pool.images[torch.from_numpy(idx)], pool.rows[idx])
        pidx = np.flatnonzero(public.labels.numpy() == c)
        sets[f"[real] PublicTest {name}"] = (public.images[torch.from_numpy(pidx)], np.full(len(pidx), -1))
    table = {}
    for name, (faces, r) in sets.items():
        change = float((faces.float() - sources.float()).abs().mean()) if faces.shape == sources.shape else None
        table[name] = {"n": len(faces), "change": change, "rates": rates(judges, faces, r)}
    described = [{"name": j.name, "describe": j.describe(), **j.oof,
                  "pinned": {name: j.for_target(c, NEUTRAL).oof for name, c in TARGETS.items()}}
                 for j in judges if j.name != "old"]  # fmt: skip
    if args.old_judge:
        described.append({"name": "old", "describe": "judge old: the earlier recipe (class-balanced loss weights, no "
                          "degradation augmentation, no prior correction), 2 cross-fitted fast classifiers",
                          "recall": None})  # fmt: skip
    return {"judges": described, "rows": table}


def print_real(result: dict) -> None:
    for j in result["judges"]:
        if j["recall"] is None:
            print(j["describe"])
            continue
        print(f"{j['describe']}; at {FALSE_ALARM:.0%} of real Neutral faces called the target, out-of-fold recall "
              + ", ".join(f"{t} {j['pinned'][t]['recall'][c]:.1%}" for t, c in TARGETS.items()))  # fmt: skip
    base = result["rows"]["untouched"]["rates"]
    names = [j["name"] for j in result["judges"]]
    head = f"{'faces (Training Neutral sources unless [real])':<46}{'n':>6}{'change':>8}"
    head += "".join(f"{f'{t[:4]} {n}':>11}" for t in TARGETS for n in names)
    head += "".join(f"{f'Δdisg {n}':>10}" for n in names)
    print(head + "\n" + "-" * len(head))
    worst = {n: 0.0 for n in names}
    for name, row in result["rows"].items():
        change = "" if row["change"] is None else f"{row['change']:.1f}"
        line = f"{name:<46}{row['n']:>6}{change:>8}"
        line += "".join(f"{row['rates'][n][t]:>11.1%}" for t in TARGETS for n in names)
        if not name.startswith("[real]"):
            for n in names:
                d = row["rates"][n]["Disgust"] - base[n]["Disgust"]
                worst[n] = max(worst[n], abs(d))
                line += f"{d * 100:>+9.1f} "
        print(line)
    print("largest |change in Disgust rate| over every degraded row, per judge (points): "
          + ", ".join(f"{n} {w * 100:.1f}" for n, w in worst.items()))


def toy_faces(args: argparse.Namespace) -> dict:
    pool = make_toy_faces(n=3000, seed=0).split("Training")
    judges = build_judges(pool, k=2, seed=0, sets=DEMO_JUDGE, cache_dir=args.out / "toy-judges", progress=False)
    judges = [j.for_target(DISGUST, NEUTRAL) for j in judges]  # as quality judges a Neutral -> Disgust set
    neutral, disgust = render_pairs(args.n, "neutral", "disgust", seed=5)
    rows = np.full(args.n, -1)
    controls = control_faces(neutral, seed=0)
    ctrl_hits = {j.name: {c: j.proba(f, rows).argmax(1) == DISGUST for c, f in controls.items()} for j in judges}
    out = {}
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        changed = np.arange(args.n) < round(frac * args.n)
        faces = torch.where(torch.from_numpy(changed).view(-1, 1, 1), disgust, neutral)
        out[frac] = {j.name: above_control(j.proba(faces, rows).argmax(1) == DISGUST, ctrl_hits[j.name], paired=True)
                     for j in judges}  # fmt: skip
    return {"judges": [j.describe() for j in judges], "fractions": out}


def print_toy(result: dict) -> None:
    print("\n".join(result["judges"]))
    print(f"{'true share changed':>20}" + "".join(f"{f'above control {n}':>34}" for n in ("A", "B")))
    for frac, r in result["fractions"].items():
        cells = "".join(f"{r[n]['above']:>+12.1%} [{r[n]['ci95'][0]:+.1%}, {r[n]['ci95'][1]:+.1%}]"
                        for n in ("A", "B"))  # fmt: skip
        print(f"{float(frac):>20.2f}{cells}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/fer2013/fer2013.csv.gz")
    p.add_argument("--ferplus", default="../shared/data/fer2013/ferplus.csv.gz")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--k", type=int, default=2, help="folds of each judge")
    p.add_argument("--n", type=int, default=400, help="source faces")
    p.add_argument("--toy-only", action="store_true")
    p.add_argument("--skip-toy", action="store_true", help="real faces only")
    p.add_argument("--old-judge", action="store_true", help="also score with the earlier judge recipe")
    p.add_argument("--objective", default=PRIOR_OBJECTIVE, choices=sorted(OBJECTIVES),
                   help="what the judges' prior correction maximises")  # fmt: skip
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if not args.skip_toy:
        toy = toy_faces(args)
        (args.out / "toy.json").write_text(json.dumps(toy, indent=2, default=str))
        print("== toy faces: transfer above control against the true share of faces changed to Disgust ==")
        print_toy(toy)
    if args.toy_only:
        return
    real = real_faces(args)
    (args.out / f"real-{args.objective}.json").write_text(json.dumps(real, indent=2))
    print("\n== real FER2013: what the judges call faces whose expression did not change ==")
    print_real(real)


if __name__ == "__main__":
    main()
