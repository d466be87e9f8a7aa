"""FER+ loading, label-noise filtering and best-sample selection."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.stats import multivariate_normal
from sklearn.covariance import LedoitWolf

from feraug.cli import main
from feraug.data.dataset import FaceDataset
from feraug.data.ferplus import FerPlusFormatError, load_ferplus
from feraug.data.load import load_dataset
from feraug.data.toy import make_toy_faces
from feraug.evaluate.instrument import filtering
from feraug.evaluate.instrument.crossfit import judge_config
from feraug.evaluate.instrument.filtering import (
    _class_gaussian_loglik,
    confidence_scores,
    drop_mask,
    filter_dataset,
    precision_recall,
)
from feraug.evaluate.instrument.selection import percentile_rank, select_top
from feraug.synth.synthetic_set import load_synthetic_set

HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
#: The judge recipe the noisy-toy test uses: a small fast net, no augmentation, enough epochs to fit toy faces.
NOISE_JUDGE = ["epochs=12", "batch_size=64", "augment=false", "lr=1e-2"]


def _ferplus_file(tmp_path: Path, rows: list[str], gz: bool = True) -> Path:
    path = tmp_path / ("fp.csv.gz" if gz else "fp.csv")
    text = HEADER + "".join(r + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_ferplus_majority_soft_labels_and_label_errors(tmp_path: Path) -> None:
    rows = [
        "Training,a.png,6,0,0,1,3,0,0,0,0,0",  # neutral plurality
        "Training,b.png,0,5,5,0,0,0,0,0,0,0",  # happiness/surprise tie
        "Training,c.png,0,0,0,0,0,0,0,0,2,8",  # not a face
        "Training,,0,0,0,0,0,0,0,0,0,10",  # dropped by FER+
        "PublicTest,e.png,0,0,0,0,0,7,0,3,0,0",  # disgust
    ]
    fp = load_ferplus(_ferplus_file(tmp_path, rows))
    assert fp.majority().tolist() == [6, -1, -1, -1, 1]
    soft = fp.soft_labels()
    assert soft[0].tolist() == pytest.approx([0.3, 0, 0, 0, 0.1, 0, 0.6])  # FER2013 order: anger .. neutral
    assert np.isnan(soft[2]).all()
    fer_labels = np.array([0, 5, 3, 3, 1])  # angry (contradicted), surprise (in the tie), happy (NF), -, disgust
    assert fp.likely_label_errors(fer_labels).tolist() == [True, False, True, True, False]
    assert fp.usage.tolist()[-1] == "PublicTest"
    plain = load_ferplus(_ferplus_file(tmp_path, rows, gz=False))
    assert np.array_equal(plain.votes, fp.votes)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("Training,a.png,1,2,3", r"fp.csv.gz:3: 5 fields, expected 12"),
        ("Training,a.png,1,x,0,0,0,0,0,0,0,0", r"fp.csv.gz:3: a vote is not an integer"),
        ("Training,a.png,11,0,0,0,0,0,0,0,0,0", r"fp.csv.gz:3: vote counts must lie in 0..10"),
    ],
)
def test_ferplus_malformed_rows_are_rejected_by_line(tmp_path: Path, row: str, message: str) -> None:
    good = "Training,a.png,10,0,0,0,0,0,0,0,0,0"
    with pytest.raises(FerPlusFormatError, match=message):
        load_ferplus(_ferplus_file(tmp_path, [good, row]))


def test_ferplus_bad_header_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n0,1 2,Training\n")
    with pytest.raises(FerPlusFormatError, match=r"bad.csv:1: header"):
        load_ferplus(bad)
    with pytest.raises(FileNotFoundError, match=r"needs ferplus.csv.gz"):
        load_ferplus(tmp_path / "absent.csv.gz")


def test_drop_mask_per_class_fraction_threshold_and_ties() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.2, 0.2, 0.8, 0.3])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    # class 0: round(0.5 * 4) = 2 lowest (0.1, 0.2); class 1: round(1.5) = 2 lowest (0.2, 0.3)
    assert drop_mask(scores, labels, drop_fraction=0.5).tolist() == [False, True, False, True, True, False, True]
    assert drop_mask(scores, labels, threshold=0.25).tolist() == [False, True, False, True, True, False, False]
    tied = drop_mask(np.zeros(4), np.zeros(4, dtype=int), drop_fraction=0.5)
    assert tied.tolist() == [True, True, False, False]  # equal scores: the first positions go, always
    with pytest.raises(ValueError, match="exactly one"):
        drop_mask(scores, labels)


def test_precision_recall_hand_computed() -> None:
    dropped = np.array([True, True, True, False, False, False])
    truth = np.array([True, False, False, True, False, False])
    pr = precision_recall(dropped, truth)
    assert (pr["precision"], pr["recall"], pr["base_rate"]) == pytest.approx((1 / 3, 1 / 2, 1 / 3))


def test_gaussian_log_likelihood_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    fit_x = np.concatenate([rng.normal(size=(40, 3)), rng.normal(3, 1, size=(40, 3))])
    fit_y = np.repeat([0, 1], 40)
    x, y = rng.normal(size=(5, 3)), np.array([0, 1, 0, 1, 1])
    got = _class_gaussian_loglik(fit_x, fit_y, x, y, 2)
    for c in (0, 1):
        lw = LedoitWolf().fit(fit_x[fit_y == c])
        want = multivariate_normal(lw.location_, lw.covariance_).logpdf(x[y == c])
        assert got[y == c] == pytest.approx(want, rel=1e-9)


def test_confidence_filtering_finds_injected_label_noise_on_toy_faces() -> None:
    """Toy faces know their true labels: flip 10 % of them and the filter must find them (P and R >= 0.7)."""
    data = make_toy_faces(3000, seed=0, class_weights=[1] * 7, split_fractions=(1.0, 0.0, 0.0))
    rng = np.random.default_rng(0)
    labels = data.labels.numpy().copy()
    noisy = rng.random(len(labels)) < 0.1
    labels[noisy] = (labels[noisy] + rng.integers(1, 7, int(noisy.sum()))) % 7
    corrupted = FaceDataset(data.images, torch.from_numpy(labels), data.usage, data.rows, source="noisy toy")
    scores = confidence_scores(corrupted, judge_config(NOISE_JUDGE), k=2, cache_dir=None, progress=False)
    pr = precision_recall(drop_mask(scores, labels, drop_fraction=0.1), noisy)
    print(f"injected label noise found: precision {pr['precision']:.3f}, recall {pr['recall']:.3f}")  # pytest -s
    assert pr["precision"] >= 0.7 and pr["recall"] >= 0.7, pr


def test_filtering_never_touches_validation_or_test_faces(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_dataset("toy:700")
    seen: list[int] = []

    def fake_scores(pool, cfg, **kwargs):
        seen.extend(pool.rows.tolist())
        return np.random.default_rng(0).random(len(pool))

    monkeypatch.setattr(filtering, "confidence_scores", fake_scores)
    result = filter_dataset(data, "confidence", cfg=judge_config(), drop_fraction=0.5)
    training = set(data.rows[data.usage == "Training"].tolist())
    assert set(seen) == training
    kept = result.kept_positions(len(data))
    held_out = np.flatnonzero(data.usage != "Training")
    assert np.isin(held_out, kept).all()
    assert len(kept) == len(data) - int(result.dropped.sum()) and result.dropped.sum() > 0
    with pytest.raises(ValueError, match="ferplus method needs the FER\\+ votes"):
        filter_dataset(data, "ferplus", cfg=judge_config())


def test_filter_cli_ferplus_method_on_a_toy_file_with_votes(tmp_path: Path) -> None:
    data = load_dataset("toy:300")
    labels = data.labels.numpy()
    votes = np.zeros((len(data), 10), dtype=int)
    col = {0: 4, 1: 5, 2: 6, 3: 1, 4: 3, 5: 2, 6: 0}  # FER2013 label -> FER+ column
    wrong = np.zeros(len(data), dtype=bool)
    wrong[::7] = True
    for i, lab in enumerate(labels):
        votes[i, col[int((lab + 1) % 7) if wrong[i] else int(lab)]] = 10
    rows = [f"{u},f{i}.png," + ",".join(map(str, v)) for i, (u, v) in enumerate(zip(data.usage, votes, strict=True))]
    fp = _ferplus_file(tmp_path, rows)
    out = tmp_path / "clean.csv"
    r = CliRunner().invoke(main, ["filter", "--data", "toy:300", "--method", "ferplus", "--ferplus", str(fp),
                                  "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "clean.filter.json").read_text())
    training_wrong = wrong & (data.usage == "Training")
    assert record["ferplus_agreement"]["all"]["dropped"] == int(training_wrong.sum())
    assert record["ferplus_agreement"]["all"]["precision"] == 1.0
    assert sorted(record["dropped_rows"]) == data.rows[training_wrong].tolist()
    assert len(load_dataset(out)) == len(data) - int(training_wrong.sum())
    assert (tmp_path / "clean.lowest.png").is_file()
    r = CliRunner().invoke(main, ["filter", "--data", "toy:301", "--method", "ferplus", "--ferplus", str(fp),
                                  "--out", str(out)])  # fmt: skip
    assert r.exit_code != 0 and "300 rows but toy(n=301, seed=0) has 301 faces" in r.output


def test_select_top_returns_exactly_the_top_n_in_order() -> None:
    scores = np.array([0.2, 0.9, 0.5, 0.9, 0.1])
    assert select_top(scores, keep=3).tolist() == [1, 3, 2]  # ties by position
    assert select_top(scores, threshold=0.5).tolist() == [1, 3, 2]
    with pytest.raises(ValueError, match="cannot keep 6 of 5"):
        select_top(scores, keep=6)
    assert percentile_rank(np.array([3.0, 1.0, 2.0, 2.0])).tolist() == pytest.approx([0.875, 0.125, 0.5, 0.5])


def test_select_cli_keeps_provenance_the_experiment_can_guard(tmp_path: Path) -> None:
    from feraug.evaluate.experiment.arms import source_positions

    runner = CliRunner()
    gan = tmp_path / "gan"
    r = runner.invoke(main, ["train", "cyclegan", "--data", "toy:900", "--source", "neutral", "--target", "disgust",
                             "--set", "net.ngf=8", "--set", "net.n_blocks=1", "--epochs", "1", "--epochs-decay", "0",
                             "--steps-per-epoch", "2", "--out", str(gan), "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    syn = tmp_path / "syn.csv"
    assert runner.invoke(main, ["translate", "--run", str(gan), "--n", "30", "--from", "neutral",
                                "--out", str(syn)]).exit_code == 0  # fmt: skip
    judge = ["--judge-cache", str(tmp_path / "jc"), "--quiet"]
    for s in ("epochs=1", "steps_per_epoch=4", "batch_size=32"):
        judge += ["--judge-set", s]
    sel = tmp_path / "sel.csv"
    r = runner.invoke(main, ["select", "--synthetic", str(syn), "--keep", "12", "--out", str(sel), *judge])
    assert r.exit_code == 0, r.output
    kept, prov = load_synthetic_set(sel)
    original, original_prov = load_synthetic_set(syn)
    assert len(kept) == 12 and prov is not None and original_prov is not None
    report = json.loads((tmp_path / "sel.select.json").read_text())
    picked = np.array(report["kept_synthetic_rows"])
    assert np.array_equal(kept.images.numpy(), original.images[torch.from_numpy(picked)].numpy())
    assert np.array_equal(prov["source_row"], original_prov["source_row"][picked])
    ranks = np.array([float(x) for x in prov["score_combined"]])
    assert (np.diff(ranks) <= 0).all()  # best first
    data = load_dataset("toy:900")
    positions = source_positions(data, kept, prov)
    assert np.array_equal(data.rows[positions], prov["source_row"])
    r = runner.invoke(main, ["select", "--synthetic", str(syn), "--out", str(sel), *judge])
    assert r.exit_code != 0 and "exactly one of --keep N and --threshold T" in r.output


def test_a_gan_can_train_and_translate_without_the_filtered_rows(tmp_path: Path) -> None:
    """data.exclude keeps the original row numbers, so provenance still points into the unfiltered file."""
    from feraug.api import cyclegan_domains
    from feraug.config import CycleGANConfig, build_config, parse_override
    from feraug.data.load import without_filtered_rows

    data = load_dataset("toy:400")
    neutral_training = data.rows[(data.labels.numpy() == 6) & (data.usage == "Training")]
    report = tmp_path / "f.filter.json"
    report.write_text(json.dumps({"method": "confidence", "data": data.source,
                                  "dropped_rows": neutral_training[:5].tolist()}))  # fmt: skip
    sets = ["data.data=toy:400", "data.source=neutral", "data.target=happy", f"data.exclude={report}"]
    cfg = build_config(CycleGANConfig, overrides=[parse_override(s) for s in sets])
    a = cyclegan_domains(cfg)["a"]
    assert sorted(a.rows.tolist()) == sorted(neutral_training[5:].tolist())
    assert any("5 rows dropped" in note for note in without_filtered_rows(data, report).notes)
    report.write_text(json.dumps({"data": "other.csv", "dropped_rows": [1]}))
    with pytest.raises(ValueError, match=r"filtered other\.csv, not toy"):
        without_filtered_rows(data, report)
    report.write_text(json.dumps({"data": data.source, "dropped_rows": [10_000]}))
    with pytest.raises(ValueError, match="absent from"):
        without_filtered_rows(data, report)


def test_ferplus_majority_as_the_classifiers_label_source(tmp_path: Path) -> None:
    from feraug.config import ClassifierConfig
    from feraug.data.ferplus import relabel_with_majority

    data = load_dataset("toy:200")
    votes = np.zeros((len(data), 10), dtype=int)
    votes[:, 1] = 10  # every face: happiness ...
    votes[:20, 1], votes[:20, 9] = 0, 10  # ... except 20 FER+ calls not a face
    rows = [f"{u},f{i}.png," + ",".join(map(str, v)) for i, (u, v) in enumerate(zip(data.usage, votes, strict=True))]
    fp_path = _ferplus_file(tmp_path, rows)
    relabelled = relabel_with_majority(data.subset(np.arange(10, 200)), load_ferplus(fp_path))
    assert len(relabelled) == 180 and (relabelled.labels == 3).all()
    assert relabelled.rows.tolist() == list(range(20, 200)) and "10 faces without" in relabelled.notes[-1]
    with pytest.raises(ValueError, match="labels=ferplus-majority needs ferplus=PATH"):
        ClassifierConfig(labels="ferplus-majority")
    out = tmp_path / "clf"
    r = CliRunner().invoke(main, ["train", "classifier", "--data", "toy:200", "--arch", "fast", "--epochs", "1",
                                  "--steps-per-epoch", "1", "--set", "labels=ferplus-majority",
                                  "--set", f"ferplus={fp_path}", "--out", str(out), "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    test = json.loads((out / "test_metrics.json").read_text())
    assert test["per_class"]["Happy"]["support"] == sum(test["confusion_matrix"][3])  # every test face is Happy now
    assert sum(map(sum, test["confusion_matrix"])) == test["per_class"]["Happy"]["support"]


def test_filtering_scores_only_the_standard_training_part_when_validation_is_carved_from_training(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """FER2013's shared copy has Training + PublicTest: validation comes out of Training and must not be filtered."""
    from feraug.data.splits import standard_splits

    toy = load_dataset("toy:700")
    data = toy.subset(np.flatnonzero(toy.usage != "PrivateTest"))
    seen: list[int] = []

    def fake_scores(pool, cfg, **kwargs):
        seen.extend(pool.rows.tolist())
        return np.zeros(len(pool))

    monkeypatch.setattr(filtering, "confidence_scores", fake_scores)
    filter_dataset(data, "confidence", cfg=judge_config(), drop_fraction=0.2)
    splits = standard_splits(data)
    assert sorted(seen) == sorted(data.rows[splits.train].tolist())
    assert not set(seen) & set(data.rows[splits.val].tolist())


def test_out_of_fold_likelihood_ranks_within_fold_so_feature_scales_do_not_pick_the_fold(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Two fold models whose feature spaces differ 10x in scale: drops must still split evenly between the folds."""
    from feraug.evaluate.instrument.crossfit import CrossFit

    data = make_toy_faces(400, seed=0, class_weights=[1] * 7, split_fractions=(1.0, 0.0, 0.0))
    folds = np.arange(len(data)) % 2
    base = np.random.default_rng(0).normal(size=(len(data), 4))
    nets = [type("Net", (), {"scale": 1.0})(), type("Net", (), {"scale": 10.0})()]
    monkeypatch.setattr(filtering, "cross_fit", lambda *a, **k: CrossFit(nets, folds, data.rows.copy(), None))
    monkeypatch.setattr(filtering, "features", lambda net, images: base[: len(images)] * net.scale)
    scores = filtering.likelihood_scores(data, judge_config(), k=2)
    assert scores.min() > 0 and scores.max() < 1  # percentile ranks
    dropped = drop_mask(scores, data.labels.numpy(), drop_fraction=0.2)
    per_fold = [int(dropped[folds == f].sum()) for f in (0, 1)]
    assert abs(per_fold[0] - per_fold[1]) <= 7, per_fold  # one face per class of rounding at most


def test_experiment_drops_synthetic_faces_whose_source_the_label_source_left_out() -> None:
    from feraug.cli.experiment import _without_orphans

    real = load_dataset("toy:100").subset(np.arange(50, 100))  # rows 0..49 gone, as relabelling can do
    syn = FaceDataset(real.images[:4], torch.full((4,), 1), np.full(4, "Training"), np.arange(4), source="s")
    prov = {"synthetic_row": np.array([3, 2, 1, 0]), "source_row": np.array([60, 10, 70, 20]),
            "label": np.full(4, 1)}  # fmt: skip
    kept, kept_prov = _without_orphans(real, syn, prov, Path("syn.csv"))
    assert kept.rows.tolist() == [1, 3] and kept_prov["source_row"].tolist() == [60, 70]


def test_set_comparison_refuses_protocols_without_a_shared_baseline(tmp_path: Path) -> None:
    from feraug.config import ExperimentConfig
    from feraug.pipelines.experiment import run_set_comparison

    data = load_dataset("toy:100")
    with pytest.raises(ValueError, match="standard or kfold protocol"):
        run_set_comparison(data, [], ExperimentConfig(protocol="tstr"), tmp_path)
