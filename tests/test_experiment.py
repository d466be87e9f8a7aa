"""Augmentation experiment: provenance mapping, leakage guard, paired arms, statistics and reports from fixed
predictions (no training), and one tiny end-to-end run with all three arms."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from feraug.data import FaceDataset, make_toy_faces
from feraug.evaluate.experiment.arms import build_arms, concat, leakage_guard, source_positions
from feraug.evaluate.experiment.protocols import Fold, kfold_protocol, standard_protocol, tstr_protocol
from feraug.evaluate.experiment.statistics import paired_bootstrap, pooled_paired_bootstrap
from feraug.evaluate.experiment.summary import EvalSet, RunResult
from feraug.report.experiment_report import synthetic_faces_grid, write_report
from feraug.report.results import experiment_results

DISGUST = 1


@pytest.fixture(scope="module")
def real() -> FaceDataset:
    """700 toy faces in shuffled order, so positions and source rows differ."""
    toy = make_toy_faces(n=700, seed=3)
    return toy.subset(np.random.default_rng(0).permutation(len(toy)))


def synthetic_from(real: FaceDataset, sources: np.ndarray, label: int = DISGUST) -> tuple[FaceDataset, dict]:
    """Mirrored copies of ``real[sources]`` relabelled ``label``, with a provenance dict in shuffled row order."""
    n = len(sources)
    syn = FaceDataset(real.images[torch.from_numpy(sources)].flip(-1), torch.full((n,), label),
                      np.full(n, "Training"), np.arange(n), source="mirror")  # fmt: skip
    order = np.random.default_rng(1).permutation(n)
    prov = {"synthetic_row": order, "source_row": real.rows[sources][order], "label": np.full(n, label)}
    return syn, prov


def picks(fold: Fold) -> np.ndarray:
    """Sources: 6 training faces, 2 validation faces, 3 test faces."""
    return np.concatenate([fold.train[:6], fold.val[:2], fold.tests["test"][:3]])


def test_source_positions_follow_rows_not_positions(real: FaceDataset) -> None:
    sources = np.array([5, 0, 699, 42])
    syn, prov = synthetic_from(real, sources)
    assert source_positions(real, syn, prov).tolist() == sources.tolist()
    bad = dict(prov, source_row=prov["source_row"] + 10_000)
    with pytest.raises(ValueError, match="not rows of"):
        source_positions(real, syn, bad)
    with pytest.raises(ValueError, match="labels disagree"):
        source_positions(real, syn, dict(prov, label=prov["label"] + 1))
    with pytest.raises(ValueError, match="no provenance row"):
        source_positions(real, syn, {k: v[:3] for k, v in prov.items()})


def test_leakage_guard_drops_exactly_the_held_out_sources(real: FaceDataset) -> None:
    (fold,) = standard_protocol(real)
    sources = picks(fold)
    syn, prov = synthetic_from(real, sources)
    keep, dropped = leakage_guard(fold, source_positions(real, syn, prov))
    assert keep.tolist() == list(range(6)) and dropped.tolist() == list(range(6, 11))
    arms = build_arms(fold, real.labels.numpy(), syn.labels.numpy(), sources, balance=None, seed=0, n_classes=7)
    assert np.array_equal(arms.dropped, dropped)
    extra = np.setdiff1d(arms.train["synthetic"], fold.train)
    assert extra.tolist() == [len(real) + i for i in range(6)]  # only the guarded synthetic faces joined
    assert arms.added.tolist() == [0, 6, 0, 0, 0, 0, 0]


def test_oversample_adds_the_same_per_class_counts(real: FaceDataset) -> None:
    (fold,) = standard_protocol(real)
    labels = real.labels.numpy()
    # synthetic faces of two classes, all sources in training so that none is dropped
    disgust = synthetic_from(real, fold.train[:40], DISGUST)[0]
    fear = synthetic_from(real, fold.train[40:70], 2)[0]
    syn_labels = np.concatenate([disgust.labels.numpy(), fear.labels.numpy()])
    sources = fold.train[:70]
    n_train = np.bincount(labels[fold.train], minlength=7)
    for balance, expected in ((None, {1: 40, 2: 30}), (int(n_train[1]) + 25, {1: 25, 2: 0})):
        arms = build_arms(fold, labels, syn_labels, sources, balance=balance, seed=3, n_classes=7)
        all_labels = np.concatenate([labels, syn_labels])
        base = np.bincount(all_labels[arms.train["baseline"]], minlength=7)
        added_syn = np.bincount(all_labels[arms.train["synthetic"]], minlength=7) - base
        added_dup = np.bincount(all_labels[arms.train["oversample"]], minlength=7) - base
        assert added_syn.tolist() == added_dup.tolist() == arms.added.tolist()
        assert {k: int(arms.added[k]) for k in (1, 2)} == expected
        dup = arms.train["oversample"][fold.train.size :]
        assert np.isin(dup, fold.train).all()  # duplicates are real training faces, never held-out ones
    once, again, other = (build_arms(fold, labels, syn_labels, sources, balance=None, seed=seed, n_classes=7)
                          for seed in (3, 3, 4))  # fmt: skip
    assert np.array_equal(once.train["oversample"], again.train["oversample"])  # a function of the seed
    assert not np.array_equal(other.train["oversample"], again.train["oversample"])


def test_pooled_bootstrap_reduces_to_paired_bootstrap() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 200)
    pa = np.where(rng.random(200) < 0.6, y, rng.integers(0, 7, 200))
    pb = np.where(rng.random(200) < 0.7, y, rng.integers(0, 7, 200))
    for metric in ("accuracy", "macro_f1"):
        one = pooled_paired_bootstrap(y, pa[None], pb[None], metric, n_boot=500, seed=2, n_classes=7)
        ref = paired_bootstrap(y, pa, pb, metric, n_boot=500, seed=2, n_classes=7)
        for key in ("diff", "se", "p"):
            assert one[key] == pytest.approx(ref[key], abs=1e-12)
        assert one["ci95"] == pytest.approx(ref["ci95"], abs=1e-12)
        # two identical runs per arm: the run average is the single run
        two = pooled_paired_bootstrap(y, np.stack([pa, pa]), np.stack([pb, pb]), metric, n_boot=500, seed=2)
        assert two["ci95"] == pytest.approx(one["ci95"]) and two["runs"] == 2


# ----------------------------------------------------------------------------------------------------------------
# Reports from fixed predictions.
# ----------------------------------------------------------------------------------------------------------------


def fake_eval(index: np.ndarray, y: np.ndarray, accuracy: float, rng: np.random.Generator,
              target_accuracy: float | None = None) -> EvalSet:  # fmt: skip
    """Probabilities whose argmax is right with probability ``accuracy`` (``target_accuracy`` on TARGET faces)."""
    acc = np.where(y == TARGET, accuracy if target_accuracy is None else target_accuracy, accuracy)
    pred = np.where(rng.random(y.size) < acc, y, rng.integers(0, 7, y.size))
    prob = rng.random((y.size, 7)) * 0.5
    prob[np.arange(y.size), pred] += 1.0
    return EvalSet(index, y, prob / prob.sum(axis=1, keepdims=True))


ACCURACY = {"baseline": 0.55, "oversample": 0.57, "synthetic": 0.75}
#: The reports' target class: Happy, 17 faces of the toy test set. Toy Disgust has 1 test face, too few for any
#: positive control to show, so a Disgust set of these fixed predictions would be NOT INFORMATIVE (tested below).
TARGET = 3
#: Recall of TARGET per arm: the baseline predicts it, and oversampling lifts it (the positive control holds).
TARGET_ACCURACY = {"baseline": 0.25, "oversample": 0.75, "synthetic": 0.95}


def fake_runs(folds: list[Fold], labels: np.ndarray, seeds: int) -> list[RunResult]:
    runs = []
    for seed in range(seeds):
        for fold in folds:
            for arm, acc in ACCURACY.items():
                rng = np.random.default_rng([seed, fold.index, list(ACCURACY).index(arm)])
                evals = {name: fake_eval(idx, labels[idx], acc + 0.01 * seed, rng, TARGET_ACCURACY[arm])
                         for name, idx in fold.tests.items()}  # fmt: skip
                runs.append(RunResult(arm, seed, fold.name, np.bincount(labels[fold.train], minlength=7),
                                      fold.train.size + fold.val.size, evals, 3, 0.5))  # fmt: skip
    return runs


def test_standard_report_and_verdict_from_fixed_predictions(real: FaceDataset, tmp_path: Path) -> None:
    folds = standard_protocol(real)
    syn, _ = synthetic_from(real, folds[0].train[:20], TARGET)
    guard = {"n_synthetic": 20, "dropped_per_fold": {"standard": 2}, "added_per_fold": {"standard": {"Disgust": 18}}}
    results = experiment_results(fake_runs(folds, real.labels.numpy(), 3), protocol="standard", data=real,
                                 synthetic=syn, folds=folds, guard=guard, config={"protocol": "standard"},
                                 n_boot=300)  # fmt: skip
    json.dumps(results, allow_nan=False)
    test = results["sets"]["test"]
    assert results["primary_set"] == "test" and test["shared_images"]
    acc = test["arms"]["synthetic"]["accuracy"]
    assert len(acc["values"]) == 3 and acc["std"] is not None
    comp = {(t["b"], t["a"], t["metric"]): t for t in test["comparisons"]}
    vs_over = comp[("synthetic", "oversample", "accuracy")]
    assert vs_over["outcome"] == "yes" and vs_over["primary"]["ci95"][0] > 0 and vs_over["role"] == "secondary"
    assert vs_over["primary"]["method"] == "paired t-interval over 3 seeds (2 df), on this test set"
    assert vs_over["paired_test"]["n"] == 3 and len(vs_over["bootstrap_per_seed"]) == 3
    assert vs_over["bootstrap_pooled"]["runs"] == 3
    assert vs_over["diff"] == pytest.approx(np.mean(acc["values"]) - np.mean(test["arms"]["oversample"]["accuracy"]
                                                                              ["values"]))  # fmt: skip
    verdict = results["verdict"]
    assert verdict["synthetic_vs_oversample"]["answer"] == "yes"
    assert verdict["synthetic_vs_oversample"]["sentence"].startswith("Did synthetic faces beat oversampling real faces?"
                                                                     " YES: macro-F1 +")  # fmt: skip
    assert "secondary: accuracy +" in verdict["synthetic_vs_oversample"]["sentence"]
    assert verdict["synthetic_vs_baseline"]["answer"] == "yes"
    assert any(" recall " in line and "pt [95% CI " in line for line in results["delta_lines"]["synthetic"])
    changes = results["per_class_changes"]["synthetic"]
    assert [c["class"] for c in changes[:2]] == ["Happy", "Happy"] and len(changes) == 14  # the target class first
    assert all(c["ci95"][0] <= c["diff"] <= c["ci95"][1] for c in changes)
    d = test["deltas"]["synthetic"]["per_class"]["Disgust"]["recall"]
    assert d == pytest.approx(test["arms"]["synthetic"]["per_class"]["Disgust"]["recall"]["mean"]
                              - test["arms"]["baseline"]["per_class"]["Disgust"]["recall"]["mean"])  # fmt: skip

    versus = results["per_class_versus"]
    assert list(versus) == ["synthetic vs oversample", "synthetic vs baseline"]
    f1_vs_base = {c["class"]: c["diff"] for c in versus["synthetic vs baseline"] if c["metric"] == "f1"}
    assert f1_vs_base["Disgust"] == pytest.approx(d_f1 := test["deltas"]["synthetic"]["per_class"]["Disgust"]["f1"])
    assert f1_vs_base["Disgust"] != next(c["diff"] for c in versus["synthetic vs oversample"]
                                         if c["class"] == "Disgust" and c["metric"] == "f1") or d_f1 == 0  # fmt: skip

    paths = write_report(results, tmp_path)
    md = paths["markdown"].read_text()
    assert "## Verdict" in md and "YES" in md and "Leakage guard: of 20 synthetic faces, 2 were dropped" in md
    assert "report on PrivateTest" in md and "](plots/test_recall.png)" in md
    # The verdict in one line opens the report, then the per-class change figure, before any table.
    lead = md.split("\n\n")[1]
    assert lead.startswith("**Did synthetic faces beat oversampling real faces? YES: macro-F1 +")
    assert "3 seed(s)" in lead
    assert md.index("](plots/f1_change.png)") < md.index("| metric |")
    page = paths["html"].read_text()
    assert page.index('class="lead"') < page.index("<table>")
    n_figures = 1 + 2 + 3  # F1 change, recall and F1 bars, one confusion matrix per arm
    assert page.count('src="data:image/png;base64,') == n_figures
    assert "plots/" not in page.split("<body>")[1].replace("Per-class", "")  # nothing links outside the file


def test_verdict_says_no_when_synthetic_equals_oversampling(real: FaceDataset) -> None:
    folds = standard_protocol(real)
    runs = fake_runs(folds, real.labels.numpy(), 2)
    twins = {(r.seed, r.fold): r for r in runs if r.arm == "oversample"}
    runs = [RunResult("synthetic", r.seed, r.fold, r.train_counts, r.n_train_real, twins[(r.seed, r.fold)].evals)
            if r.arm == "synthetic" else r for r in runs]  # fmt: skip
    syn, _ = synthetic_from(real, folds[0].train[:5], TARGET)
    guard = {"n_synthetic": 5, "dropped_per_fold": {"standard": 0}}
    results = experiment_results(runs, protocol="standard", data=real, synthetic=syn, folds=folds, guard=guard,
                                 config={}, n_boot=200)  # fmt: skip
    v = results["verdict"]["synthetic_vs_oversample"]
    assert v["answer"] == "no" and " NO: macro-F1 +0.0 pt [97.5% CI +0.0, +0.0]" in v["sentence"]
    assert "a gain of +2.0 pt or more is ruled out" in v["sentence"]


def test_report_of_an_experiment_that_cannot_see_its_target_class(real: FaceDataset, tmp_path: Path) -> None:
    """Synthetic Disgust faces, but toy Disgust has 1 test face and the fake baseline never gets it right in 2
    seeds: every answer NOT INFORMATIVE, the report says why and what to change, and no interval leaves ±100 pt."""
    folds = standard_protocol(real)
    syn, _ = synthetic_from(real, folds[0].train[:20])
    guard = {"n_synthetic": 20, "dropped_per_fold": {"standard": 2}}
    config = {"classifier": {"arch": "fast", "epochs": 4}}
    results = experiment_results(fake_runs(folds, real.labels.numpy(), 2), protocol="standard", data=real,
                                 synthetic=syn, folds=folds, guard=guard, config=config, n_boot=200)  # fmt: skip
    checks = results["sets"]["test"]["checks"]
    assert checks["target"] == "Disgust" and checks["support"] == 1 and not checks["informative"]
    assert {v["answer"] for v in results["verdict"].values()} == {"not_informative"}
    assert set(results["verdict"]) == {"synthetic_vs_oversample", "synthetic_vs_baseline",
                                       "synthetic_vs_oversample_target_f1", "synthetic_vs_baseline_target_f1"}
    for changes in results["per_class_versus"].values():
        assert all(-1 <= c["ci95"][0] <= c["ci95"][1] <= 1 and "test-set noise only" in c["method"] for c in changes)
    md = write_report(results, tmp_path)["markdown"].read_text()
    lead = md.split("\n\n")[1]
    assert lead.startswith("**Did synthetic faces beat oversampling real faces? NOT INFORMATIVE: ")
    assert "### Target-class checks (Disgust)" in md and "more epochs" in md
    assert "| class | arm vs ref | change | interval | method |" in md and "Exploratory, not part" not in md
    assert "not_informative (interval: " in md
    assert not any(abs(float(x)) > 100 for x in re.findall(r"CI ([-+]\d+\.\d), ", md))


def test_kfold_uses_the_corrected_t_test_and_pools_the_fixed_test_set() -> None:
    data = make_toy_faces(n=350, seed=2, class_weights=[1.0] * 7)
    folds = kfold_protocol(data, n_per_class_test=10, repeats=2, folds=3)
    syn, _ = synthetic_from(data, folds[0].train[:5], TARGET)
    guard = {"n_synthetic": 5, "dropped_per_fold": {f.name: 1 for f in folds}}
    results = experiment_results(fake_runs(folds, data.labels.numpy(), 1), protocol="kfold", data=data,
                                 synthetic=syn, folds=folds, guard=guard, config={}, n_boot=200)  # fmt: skip
    assert results["primary_set"] == "heldout" and results["leakage_guard"]["total_dropped"] == 6
    held = results["sets"]["heldout"]
    assert not held["shared_images"] and len(held["arms"]["baseline"]["accuracy"]["values"]) == 6
    t = next(c for c in held["comparisons"] if c["a"] == "oversample" and c["metric"] == "accuracy")
    assert t["corrected_ttest"]["J"] == 6 and "bootstrap_pooled" not in t
    assert t["primary"]["method"].startswith("corrected resampled t-test over 6 folds")
    n_train = round(np.mean([f.train.size + f.val.size for f in folds]))
    assert f"n_train={n_train}" in t["primary"]["method"]
    assert t["outcome"] == "yes" and 0 < t["power"] < 1  # +18 pt accuracy; tiny folds: little power for +2 pt
    fixed = results["sets"]["fixed_test"]
    f = next(c for c in fixed["comparisons"] if c["a"] == "oversample" and c["metric"] == "macro_f1")
    assert fixed["shared_images"] and f["bootstrap_pooled"]["runs"] == 6 and "bootstrap_per_seed" not in f
    assert "n_test=" + str(round(np.mean([f.tests["heldout"].size for f in folds]))) + ")" in (
        results["verdict"]["synthetic_vs_oversample"]["sentence"])


def test_tstr_macro_metrics_over_present_classes(real: FaceDataset, tmp_path: Path) -> None:
    (std,) = standard_protocol(real)
    sources = std.train[:30]
    syn, _ = synthetic_from(real, sources)
    (fold,) = tstr_protocol(real, sources)
    labels = concat(real, syn).labels.numpy()
    runs = []
    for seed in range(2):
        for arm, train in (("baseline", std.train), ("synthetic_only", fold.train)):
            rng = np.random.default_rng(seed)
            evals = {"test": fake_eval(fold.tests["test"], labels[fold.tests["test"]], 0.6, rng)}
            runs.append(RunResult(arm, seed, "tstr", np.bincount(labels[train], minlength=7), std.train.size, evals))
    guard = {"n_synthetic": 30, "dropped_per_fold": {"tstr": 0}}
    results = experiment_results(runs, protocol="tstr", data=real, synthetic=syn, folds=[fold], guard=guard,
                                 config={}, n_boot=200)  # fmt: skip
    arms = results["sets"]["test"]["arms"]
    assert arms["synthetic_only"]["present_classes"] == ["Disgust"] and len(arms["baseline"]["present_classes"]) == 7
    recall = arms["synthetic_only"]["per_class"]["Disgust"]["recall"]["values"]
    assert arms["synthetic_only"]["macro_recall_present"]["values"] == pytest.approx(recall)
    assert "classes absent from the synthetic set: Angry, Fear" in results["notes"][0]
    assert results["verdict"] == {} and results["sets"]["test"]["comparisons"][0]["b"] == "synthetic_only"
    md = write_report(results, tmp_path)["markdown"].read_text()
    assert "macro-F1, present classes" in md and "no synthetic-vs-baseline" in md


def test_concat_places_synthetic_after_real(real: FaceDataset) -> None:
    syn, _ = synthetic_from(real, np.array([3, 4]))
    both = concat(real, syn)
    assert len(both) == len(real) + 2 and (both.usage[-2:] == "Synthetic").all()
    assert torch.equal(both.images[len(real)], syn.images[0])


# ----------------------------------------------------------------------------------------------------------------
# End to end: the CLI trains all three arms of a tiny classifier on toy faces.
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture
def one_thread():
    """Tiny nets train ~10x faster on one thread than on cores shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_end_to_end_cli_all_three_arms(tmp_path: Path) -> None:
    import csv

    from click.testing import CliRunner

    from feraug.cli import main
    from feraug.data import write_fer2013_csv
    from feraug.synth.synthetic_set import PROVENANCE_FIELDS

    toy = make_toy_faces(n=280, seed=4)
    real_csv = write_fer2013_csv(toy, tmp_path / "real.csv")
    neutral = np.flatnonzero(toy.labels.numpy() == 6)
    # 12 training sources and 2 validation (PublicTest) sources: the guard must drop the last 2
    sources = np.concatenate([neutral[toy.usage[neutral] == "Training"][:12],
                              neutral[toy.usage[neutral] == "PublicTest"][:2]])  # fmt: skip
    syn, _ = synthetic_from(toy, sources, DISGUST)
    syn_csv = write_fer2013_csv(syn, tmp_path / "neutral2disgust.csv")

    def write_provenance(path: Path, sources: np.ndarray) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(PROVENANCE_FIELDS)
            for i, s in enumerate(sources):
                w.writerow([i, int(toy.rows[s]), 6, DISGUST, "neutral->disgust", "0" * 64, "raw", "run", 2, "toy"])

    write_provenance(tmp_path / "neutral2disgust.provenance.csv", sources)
    out = tmp_path / "exp"
    args = ["experiment", "augment", "--data", str(real_csv), "--synthetic", str(syn_csv), "--classifier", "vgg",
            "--seeds", "2", "--epochs", "1", "--steps-per-epoch", "2", "--out", str(out), "--no-cache",
            "--set", "classifier.arch_kwargs={width: 0.125, fc: 32}", "--set", "classifier.batch_size=16",
            "--set", "n_boot=200", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Did synthetic faces beat oversampling real faces?" in result.output
    assert all(arm in result.output for arm in ("baseline", "synthetic", "oversample"))

    results = json.loads((out / "results.json").read_text())
    expected = [(arm, seed) for seed in (0, 1) for arm in ("baseline", "synthetic", "oversample")]
    assert [(r["arm"], r["seed"]) for r in results["runs"]] == expected
    n_base = results["runs"][0]["n_train"]
    assert [r["n_train"] for r in results["runs"][:3]] == [n_base, n_base + 12, n_base + 12]
    assert results["leakage_guard"]["total_dropped"] == 2
    assert results["sets"]["test"]["arms"]["synthetic"]["accuracy"]["n"] == 2
    assert {"synthetic_vs_oversample", "synthetic_vs_baseline"} <= set(results["verdict"])
    assert (out / "config.yaml").is_file() and (out / "meta.json").is_file()
    assert "## Verdict" in (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2 + 5  # F1 change and the faces first, then the rest
    assert "synthetic faces spread over the set" in results["synthetic_faces"]["caption"]  # no quality.json beside
    assert (out / "plots" / "synthetic_faces.png").is_file()

    # The same command again refuses to overwrite; --resume reuses every cached prediction without training.
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "already holds an experiment" in again.output
    resumed = CliRunner().invoke(main, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "results.json").read_text())["sets"] == results["sets"]
    # Resuming with another synthetic set must not reuse the synthetic arm's cached predictions.
    fewer = write_fer2013_csv(syn.subset(range(10)), tmp_path / "fewer.csv")
    write_provenance(tmp_path / "fewer.provenance.csv", sources[:10])
    other = CliRunner().invoke(main, [*args, "--resume", "--synthetic", str(fewer)])
    assert other.exit_code == 1 and "synthetic-seed0-standard.npz was computed on other faces" in other.output


def test_set_comparison_trains_the_baseline_once_and_asks_which_set_won(real: FaceDataset, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from feraug.config import ExperimentConfig, build_config, parse_override
    from feraug.evaluate import classifier
    from feraug.pipelines.experiment import run_set_comparison

    calls: list[int] = []
    train = classifier.train_classifier
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: calls.append(1) or train(*a, **k))

    (fold,) = standard_protocol(real)
    syn_all, prov_all = synthetic_from(real, fold.train[:40])
    syn_sel, prov_sel = synthetic_from(real, fold.train[:10])
    sets = ["classifier.arch=fast", "classifier.arch_kwargs={stem: 4, widths: [8, 8, 8], depth: 1, fc: 8}",
            "classifier.epochs=1", "classifier.steps_per_epoch=2", "classifier.batch_size=16", "seeds=2"]
    cfg = build_config(ExperimentConfig, overrides=[parse_override(s) for s in sets])
    lines: list[str] = []
    out = run_set_comparison(real, [("all", syn_all, prov_all), ("best", syn_sel, prov_sel)], cfg, tmp_path,
                             log=lines.append)  # fmt: skip
    assert len([line for line in lines if line.startswith("[")]) == 12  # 3 arms x 2 seeds per set
    assert len(calls) == 10  # ... but the second set's baselines come from the copied predictions
    for seed in (0, 1):
        name = f"baseline-seed{seed}-standard.npz"
        assert (tmp_path / "all" / "predictions" / name).read_bytes() == (tmp_path / "best" / "predictions" /
                                                                         name).read_bytes()  # fmt: skip
    assert set(out["verdict"]) == {"synthetic:best_vs_synthetic:all", "synthetic:best_vs_oversample:best"}
    own = json.loads((tmp_path / "all" / "results.json").read_text())
    assert not own["sets"][own["primary_set"]]["checks"]["informative"]  # two training steps learn no class ...
    for answer in out["verdict"].values():  # ... and then no cross-set question can be answered either
        assert answer["answer"] == "not_informative" and "in set 'all'" in answer["sentence"], answer
    assert out["sets"]["best"]["n_synthetic"] == 10
    assert set(out["arms"]) == {"baseline", "synthetic:all", "oversample:all", "synthetic:best", "oversample:best"}
    md = (tmp_path / "comparison.md").read_text()
    assert "Did the 'best' synthetic faces beat the 'all' ones?" in md
    assert (tmp_path / "best" / "report.html").is_file() and (tmp_path / "comparison.json").is_file()
    with pytest.raises(ValueError, match="distinct names"):
        run_set_comparison(real, [("x", syn_all, prov_all), ("x", syn_sel, prov_sel)], cfg, tmp_path / "again")


def test_report_grid_shows_the_best_and_worst_faces_when_quality_scored_the_set(real: FaceDataset,
                                                                                tmp_path: Path) -> None:  # fmt: skip
    """With ``feraug quality``'s quality.json beside the CSV, the grid ranks by p(target); without, it spreads."""
    from dataclasses import replace

    from PIL import Image

    sources = np.arange(30)
    syn, _ = synthetic_from(real, sources)
    syn = replace(syn, source=str(tmp_path / "syn.csv.gz"))
    plain = synthetic_faces_grid(real, syn, sources, tmp_path / "a", k=4)
    assert "spread over the set" in plain["caption"] and "feraug quality --synthetic" in plain["caption"]
    assert Image.open(tmp_path / "a" / plain["file"]).size[1] < 48 * 2 * 3  # two rows: sources, synthetic

    p_target = np.linspace(0.0, 1.0, 30)
    (tmp_path / "syn.quality").mkdir()
    (tmp_path / "syn.quality" / "quality.json").write_text(json.dumps({"per_face": {"p_target": p_target.tolist()}}))
    ranked = synthetic_faces_grid(real, syn, sources, tmp_path / "b", k=4)
    assert "most and least like their target class" in ranked["caption"]
    grid = np.asarray(Image.open(tmp_path / "b" / ranked["file"]))
    assert grid.shape[0] > 48 * 2 * 3  # four rows: best and worst, each under its sources
    # A stale quality.json (another set's scores) is ignored rather than mislabelling faces.
    (tmp_path / "syn.quality" / "quality.json").write_text(json.dumps({"per_face": {"p_target": [0.5] * 7}}))
    assert "spread over the set" in synthetic_faces_grid(real, syn, sources, tmp_path / "c", k=4)["caption"]


def test_kfold_report_states_the_generator_test_overlap(tmp_path: Path) -> None:
    data = make_toy_faces(n=350, seed=2, class_weights=[1.0] * 7)
    folds = kfold_protocol(data, n_per_class_test=10, repeats=1, folds=3)
    syn, _ = synthetic_from(data, folds[0].train[:5], TARGET)
    overlap = {f.name: {"runs/gan": {"test": 70 + i, "val": 4}, "runs/old": None} for i, f in enumerate(folds)}
    guard = {"n_synthetic": 5, "dropped_per_fold": {f.name: 1 for f in folds}, "generator_overlap": overlap,
             "generator_overlap_mode": "report"}  # fmt: skip
    results = experiment_results(fake_runs(folds, data.labels.numpy(), 1), protocol="kfold", data=data,
                                 synthetic=syn, folds=folds, guard=guard, config={}, n_boot=200)  # fmt: skip
    md = write_report(results, tmp_path)["markdown"].read_text()
    assert ("Generator provenance: the generator of runs/gan trained on 70-72 test faces per fold "
            "(generator_overlap=report: its faces were kept); it saw 4-4 validation faces") in md
    assert "runs/old records no training rows" in md
