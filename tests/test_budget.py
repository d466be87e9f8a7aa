"""Time budgets: durations, the schedule they resolve to, exact resume/re-run, and a run that ends near its budget."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from feraug.api import train_cyclegan
from feraug.config import ClassifierConfig, CycleGANConfig, build_config, parse_override
from feraug.core.checkpoint import load_checkpoint
from feraug.data import make_toy_faces, standard_splits
from feraug.evaluate.classifier import train_classifier
from feraug.train.budget import OnTime, plan_schedule, resize_remaining
from feraug.train.budget import parse_duration as seconds
from feraug.train.run_folder import last_checkpoint
from feraug.train.trainer import Schedule

TINY = ["net.ngf=8", "net.n_blocks=1", "net.ndf=8", "optim.batch_size=4", "optim.pool_size=4", "optim.epochs=2",
        "optim.epochs_decay=2", "data.source=neutral", "data.target=happy", "train.device=cpu"]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One thread: a 2-thread tiny net slows down many-fold when anything else runs on the other core,
    which would make a budget measured at the start wrong by the end."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(*sets: str) -> CycleGANConfig:
    cfg = build_config(CycleGANConfig, preset="cyclegan", overrides=[parse_override(s) for s in (*TINY, *sets)])
    assert isinstance(cfg, CycleGANConfig)
    return cfg


def test_durations() -> None:
    assert seconds("90") == seconds("90s") == seconds(90) == 90.0
    assert seconds("45m") == 2700.0 and seconds("1.5h") == seconds("1h30m") == seconds("1h 30m") == 5400.0
    for bad in ("", "soon", "10x", "-5m", "0s", "1h-2m"):
        with pytest.raises(ValueError, match="time budget"):
            seconds(bad)


def test_plan_keeps_the_schedule_shape_and_fits_the_budget() -> None:
    common = {"elapsed_s": 10.0, "seconds_per_step": 1.0, "checkpoint_s": 0.0, "sample_s": 0.0,
              "checkpoint_every": 1000, "margin": 0.0}  # fmt: skip
    # 90 s left, 1 s per step: 90 steps over 2+2 epochs -> 22 per epoch (the full pass has 100)
    p = plan_schedule(100, epochs=2, epochs_decay=2, full_steps_per_epoch=100, **common)
    assert (p.epochs, p.epochs_decay, p.steps_per_epoch, p.total_steps) == (2, 2, 22, 88)
    # a full pass is 10 steps: room for 9 passes -> 9 epochs of 10 steps, constant and decay split 2:2 -> 4 + 5
    p = plan_schedule(100, epochs=2, epochs_decay=2, full_steps_per_epoch=10, **common)
    assert (p.epochs, p.epochs_decay, p.steps_per_epoch) == (4, 5, 10)
    # room for 1.5 passes per configured epoch: 6 epochs of 10 (not 4, which would waste a third of it)
    p = plan_schedule(70, epochs=2, epochs_decay=2, full_steps_per_epoch=10, **common)
    assert (p.epochs + p.epochs_decay, p.steps_per_epoch, p.total_steps) == (6, 10, 60)
    # with 5 s + 5 s per epoch end, 4 x 10 or 5 x 9 steps beat 6 x 6: the longest is kept
    p = plan_schedule(110, epochs=2, epochs_decay=2, full_steps_per_epoch=10, **{**common, "checkpoint_s": 5.0,
                                                                                  "sample_s": 5.0})  # fmt: skip
    assert p.total_steps == 45 and (p.epochs + p.epochs_decay, p.steps_per_epoch) == (5, 9)
    p = plan_schedule(100, epochs=3, epochs_decay=0, full_steps_per_epoch=10, **common)  # a classifier: no decay
    assert (p.epochs, p.epochs_decay, p.steps_per_epoch) == (9, 0, 10)
    # per-epoch costs: 4 epochs x (checkpoint 2 s + grid 3 s) = 20 s, and a checkpoint every 10 steps (+0.2 s/step)
    costs = {**common, "checkpoint_s": 2.0, "sample_s": 3.0, "checkpoint_every": 10}
    p = plan_schedule(100, epochs=2, epochs_decay=2, full_steps_per_epoch=100, **costs)
    assert p.total_steps == 4 * ((90 - 20) // 1.2 // 4)
    with pytest.raises(ValueError, match=r"room for 3 step\(s\).*fewer than the schedule's 4 epochs"):
        plan_schedule(13, epochs=2, epochs_decay=2, full_steps_per_epoch=100, **common)


def test_gan_budget_resumes_and_reruns_exactly(tmp_path: Path) -> None:
    faces = make_toy_faces(n=400, seed=1)
    split = tmp_path / "split"
    first = train_cyclegan(config(), split, data=faces, progress=False, time_budget=20, stop_at=2)
    plan = first.budget
    assert plan is not None and first.step == 2 and plan.total_steps > 4
    saved = yaml.safe_load((split / "config.yaml").read_text())
    assert saved["train"]["steps_per_epoch"] == plan.steps_per_epoch  # the resolved schedule is the run's config
    assert (saved["optim"]["epochs"], saved["optim"]["epochs_decay"]) == (plan.epochs, plan.epochs_decay)
    meta = json.loads((split / "meta.json").read_text())
    assert meta["budget"]["total_steps"] == plan.total_steps and meta["budget"]["seconds_per_step"] > 0
    with pytest.raises(ValueError, match="resolved once"):
        train_cyclegan(config(), split, resume=True, data=faces, progress=False, time_budget=20)
    resolved = build_config(CycleGANConfig, file=split / "config.yaml")
    train_cyclegan(resolved, split, resume=True, data=faces, progress=False)
    straight = train_cyclegan(resolved, tmp_path / "straight", data=faces, progress=False)  # a re-run, no budget
    assert straight.step == plan.total_steps
    a, b = (load_checkpoint(last_checkpoint(tmp_path / r)) for r in ("straight", "split"))
    for group in ("networks", "optimizers"):
        for name in a[group]:
            flat_a, flat_b = (torch.cat([v.flatten().float() for v in _tensors(x[group][name])]) for x in (a, b))
            assert torch.equal(flat_a, flat_b), f"{group}.{name} differs"


def _tensors(tree: object) -> list[torch.Tensor]:
    if torch.is_tensor(tree):
        return [tree]
    if isinstance(tree, dict):
        return [t for k in sorted(tree, key=str) for t in _tensors(tree[k])]
    if isinstance(tree, list | tuple):
        return [t for v in tree for t in _tensors(v)]
    return []


def test_classifier_budget_resolves_epochs_and_reruns_exactly(tmp_path: Path) -> None:
    ds = make_toy_faces(n=500, seed=0, size=32)
    train, val, _ = standard_splits(ds).datasets(ds)
    cfg = ClassifierConfig(arch="vgg", arch_kwargs={"width": 0.125, "fc": 32}, size=32, device="cpu", batch_size=32,
                           epochs=3)  # fmt: skip
    run = train_classifier(cfg, train, val, tmp_path / "a", progress=False, time_budget=8)
    assert run.budget is not None and run.config is not None and run.config.epochs == run.budget.epochs
    assert len(run.history) == run.budget.epochs and run.config.steps_per_epoch == run.budget.steps_per_epoch
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert (saved["epochs"], saved["steps_per_epoch"]) == (run.budget.epochs, run.budget.steps_per_epoch)
    again = train_classifier(ClassifierConfig(**saved), train, val, tmp_path / "b", progress=False)
    for x, y in zip(run.net.state_dict().values(), again.net.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_a_budget_run_ends_near_its_budget(tmp_path: Path) -> None:
    """Wall time of a whole 20 s run, measurement included. Bounds: identical rounds on these 2-core
    machines differ by +-20%, and a tiny net's per-step time swings more; what this pins is that the
    budget is honoured in scale (a run that ignored it would take ~4 s or ~80 s here), not to 5%:
    README gives the measured accuracy on a quiet machine."""
    start = time.perf_counter()
    faces = make_toy_faces(n=400, seed=1)
    trainer = train_cyclegan(config(), tmp_path / "run", data=faces, progress=False, time_budget=20, started=start)
    took = time.perf_counter() - start
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert trainer.step == trainer.schedule.total_steps == sum(saved["train"]["epoch_steps"])
    assert 0.6 * 20 <= took <= 1.5 * 20, (took, trainer.budget, saved["train"]["epoch_steps"])


def test_resize_remaining_on_hand_computed_values() -> None:
    # 3 epochs to come, 40 s left, 2 s per epoch end: (40 - 6) / 0.5 s = 68 steps -> 23 + 23 + 22
    assert resize_remaining([10, 10, 10, 10, 10], 2, left_s=40, seconds_per_step=0.5, epoch_end_s=2,
                            full_steps_per_epoch=100) == [10, 10, 23, 23, 22]  # fmt: skip
    # never more than a pass over the data, never fewer than one step; nothing left to re-size
    one = {"seconds_per_step": 1, "epoch_end_s": 0, "full_steps_per_epoch": 12}
    assert resize_remaining([10, 10], 0, left_s=1e6, **one) == [12, 12]
    assert resize_remaining([10, 10], 1, left_s=-5, **one) == [10, 1]
    assert resize_remaining([10, 10], 2, left_s=0, **one) == [10, 10]


def test_schedule_locates_steps_in_epochs_of_their_own_lengths() -> None:
    s = Schedule(2, 1, 10, (3, 5, 2))
    assert s.total_steps == 10 and [s.locate(t) for t in (0, 2, 3, 7, 8, 9)] == [(0, 0), (0, 2), (1, 0), (1, 4),
                                                                                 (2, 0), (2, 1)]  # fmt: skip
    assert [t for t in range(11) if s.ends_epoch(t)] == [3, 8, 10]
    # past the end (a budget's probe trains there) further epochs as long as the last: never an empty batch
    assert [s.locate(t) for t in (10, 11, 12, 13)] == [(3, 0), (3, 1), (4, 0), (4, 1)]
    # progress counts in epochs; uniform epochs give step / total exactly
    assert s.progress(3) == 1 / 3 and s.progress(4) == (5 + 1) / 15
    u = Schedule(2, 2, 7)
    assert all(u.progress(t) == t / 28 for t in range(28))
    with pytest.raises(ValueError, match="3 positive step counts"):
        Schedule(2, 1, 10, (3, 5))


def test_on_time_paces_by_the_recent_third_and_the_median_epoch_end() -> None:
    t = OnTime(deadline=100.0, full_steps_per_epoch=1000, epoch_end_s=4.0, reserve_s=10.0)
    assert t.epoch_end_s() == 4.0  # the probe's estimate until an epoch end was seen
    # 10 steps at 1 s/step, then 10 at 2 s/step: the last third of 30 s holds only the slow epoch
    t.epoch_done([10] * 4, 1, train_s=10.0, steps=10, now=12.0)
    for cost in (5.0, 1.0, 1.5):
        t.record_end(cost)
    steps = t.epoch_done([10] * 4, 2, train_s=20.0, steps=10, now=34.0)
    assert t.seconds_per_step() == 2.0 and t.epoch_end_s() == 1.5
    # left 100 - 34 - 10 (reserve) = 56 s; 2 epochs: (56 - 2 x 1.5) / (2 x 2 s) = 13.25 -> 13
    assert steps == [10, 10, 13, 13]


@pytest.mark.parametrize("kind", ["gan", "classifier"])
def test_corrected_schedules_rerun_and_resume_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      kind: str) -> None:  # fmt: skip
    """A deadline at half the budget forces OnTime to shorten the epochs to come; the per-epoch steps it
    wrote into config.yaml then repeat the run bit for bit, and a resume in the middle follows them."""
    if kind == "gan":
        monkeypatch.setattr("feraug.train.launch.END_MARGIN", 0.5)
        faces = make_toy_faces(n=400, seed=1)
        first = train_cyclegan(config(), tmp_path / "budget", data=faces, progress=False, time_budget=12)
        steps = yaml.safe_load((tmp_path / "budget" / "config.yaml").read_text())["train"]["epoch_steps"]
        assert len(set(steps)) > 1 and sum(steps) == first.step < first.budget.total_steps, steps
        resolved = build_config(CycleGANConfig, file=tmp_path / "budget" / "config.yaml")
        train_cyclegan(resolved, tmp_path / "split", data=faces, progress=False, stop_at=steps[0] + 1)
        train_cyclegan(resolved, tmp_path / "split", resume=True, data=faces, progress=False)
        states = [load_checkpoint(last_checkpoint(tmp_path / r)) for r in ("budget", "split")]
        for group in ("networks", "optimizers"):
            for name in states[0][group]:
                a, b = (torch.cat([v.flatten().float() for v in _tensors(x[group][name])]) for x in states)
                assert torch.equal(a, b), f"{group}.{name} differs"
        return
    monkeypatch.setattr("feraug.train.classifier.END_MARGIN", 0.5)
    ds = make_toy_faces(n=500, seed=0, size=32)
    train, val, _ = standard_splits(ds).datasets(ds)
    cfg = ClassifierConfig(arch="vgg", arch_kwargs={"width": 0.125, "fc": 32}, size=32, device="cpu", batch_size=32,
                           epochs=3)  # fmt: skip
    run = train_classifier(cfg, train, val, tmp_path / "a", progress=False, time_budget=10)
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert run.config is not None and run.config.epoch_steps == saved["epoch_steps"]
    assert len(set(saved["epoch_steps"])) > 1, saved["epoch_steps"]
    again = train_classifier(ClassifierConfig(**saved), train, val, tmp_path / "b", progress=False)
    for x, y in zip(run.net.state_dict().values(), again.net.state_dict().values(), strict=True):
        assert torch.equal(x, y)
