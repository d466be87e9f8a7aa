"""One classifier training run: its state, epoch loop, validation, checkpoints and log (what a run folder holds).

:func:`feraug.train.classifier.fit_classifier` builds a :class:`ClassifierFit` and calls
:meth:`~ClassifierFit.fit`; the design (stateless randomness, selection on validation only, the
divergence guard, precision and layout) is described in :mod:`feraug.train.classifier`.
"""


import copy
import dataclasses
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from tqdm.auto import tqdm

from feraug.config import ClassifierConfig
from feraug.core.checkpoint import load_checkpoint, save_checkpoint
from feraug.core.seeding import DEGRADE, INIT, ORDER, STEP, derive_seed, generator
from feraug.data.augment import classifier_augment, to_float
from feraug.data.dataset import FaceDataset
from feraug.data.degrade import degrade_batch
from feraug.nets.classifiers import ExpressionClassifier, build_classifier, classifier_from_arch
from feraug.train.budget import BudgetPlan, OnTime, synchronize
from feraug.train.device import autocast_dtype
from feraug.train.run_folder import (
    append_metrics,
    best_checkpoint,
    diverged,
    last_checkpoint,
    truncate_metrics,
)
from feraug.train.runinfo import write_config

#: ``family`` of classifier checkpoints; loading another family's checkpoint is a clear error.
FAMILY = "classifier"

#: Run convolutions in channels-last (NHWC) layout. Measured on this project's AVX2 CPU (torch 2.13,
#: fp32, one thread, 48x48, median of interleaved repeats; train step at batch 64 / inference at
#: batch 256, contiguous -> channels-last): ``simple`` 6.07 -> 5.17 s (1.17x) / 7.5 -> 6.1 s
#: (1.22x); ``surreal`` 0.98 -> 0.78 s (1.26x) / 1.94 -> 1.28 s (1.5x); ``vgg`` (width 0.125, fc 64)
#: 114 -> 87 ms (1.3x) / 216 -> 135 ms (1.6x). On CUDA it is the layout tensor-core convolutions use.
CHANNELS_LAST = True

# Purpose key of the per-epoch reseed of the global generator (dropout); distinct from the
# purposes in feraug.core.seeding so no two uses share a stream.
_DROPOUT = 1001


@dataclasses.dataclass
class ClassifierRun:
    """What :func:`feraug.train.classifier.fit_classifier` returns.

    Attributes:
        net: the best weights (by val ``select_metric``; the last epoch's when there is no val),
            in eval mode, on CPU.
        best_epoch: 1-based epoch those weights are from.
        best_score: their val ``select_metric`` (NaN without val).
        history: one dict per finished epoch, as in ``metrics.jsonl``.
        run_dir: the run folder, or None for an in-memory run.
        config: the configuration the run trained with (a time budget's resolved schedule included).
        budget: the resolved time budget, when one was given.
    """

    net: ExpressionClassifier
    best_epoch: int
    best_score: float
    history: list[dict[str, Any]]
    run_dir: Path | None
    config: ClassifierConfig | None = None
    budget: BudgetPlan | None = None


def default_tta_padding(size: int) -> int:
    """Shift of the ten-crop TTA views: 4 pixels at 48x48, scaled with the image size."""
    return max(1, round(size / 12))


def tta_padding_for(cfg: ClassifierConfig) -> int:
    """TTA shift of a run: its training crop padding, so the views match what training showed."""
    return cfg.augmentation.crop_padding or default_tta_padding(cfg.size)


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """Learning-rate multiplier at ``step`` of ``total_steps`` for the stateless schedules.

    ``cosine`` anneals from 1 towards 0 over the run; ``onecycle`` follows PyTorch's
    ``OneCycleLR`` (cosine warm-up from 1/25 over the first 30 % of steps, then cosine decay to
    1/(25 * 1e4)); ``constant`` (and ``plateau``, which the scheduler handles) is 1.
    """
    t = min(step, total_steps) / max(total_steps, 1)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "onecycle":
        start, end, warm = 1.0 / 25.0, 1.0 / 25.0 / 1e4, 0.3

        def anneal(a: float, b: float, frac: float) -> float:
            return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * frac))

        return anneal(start, 1.0, t / warm) if t < warm else anneal(1.0, end, (t - warm) / (1.0 - warm))
    return 1.0


def balanced_class_weights(data: FaceDataset) -> torch.Tensor:
    """``N / (K * count_k)`` per class (scikit-learn's "balanced"); 0 for classes with no faces."""
    counts = torch.as_tensor(data.class_counts(), dtype=torch.float32)
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (int(present.sum()) * counts[present])
    return weights


def memory_format(device: torch.device) -> torch.memory_format:
    """The layout convolutions run in on ``device`` (:data:`CHANNELS_LAST` where it pays)."""
    return torch.channels_last if CHANNELS_LAST and device.type in ("cpu", "cuda") else torch.contiguous_format



def _state_to_cpu(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.state_dict().items()}


#: Scores a net on the validation faces: ``(net, val, device) -> (metrics, val loss)``. The metrics hold
#: ``accuracy``, ``macro_f1`` and ``macro_auc`` (:func:`feraug.evaluate.metrics.classification_metrics`);
#: the loop only selects and logs by them, the caller decides how faces are predicted.
Validator = Callable[[ExpressionClassifier, FaceDataset, torch.device], tuple[dict[str, Any], float]]


class ClassifierFit:
    """One training run's state and loop (see :mod:`feraug.train.classifier` for the design)."""

    def __init__(self, cfg: ClassifierConfig, train: FaceDataset, val: FaceDataset | None, run_dir: Path | None,
                 device: torch.device, progress: bool, validate: Validator) -> None:  # fmt: skip
        self.cfg, self.val, self.run_dir, self.device, self.progress = cfg, val, run_dir, device, progress
        self.validate = validate
        self.classes = train.classes
        self.amp_dtype = autocast_dtype(device, cfg.amp)
        self.memory_format = memory_format(device)
        torch.manual_seed(derive_seed(cfg.seed, INIT))
        net = build_classifier(cfg.arch, n_classes=len(train.classes), in_channels=1, size=cfg.size, **cfg.arch_kwargs)
        self.net = net.to(device, memory_format=self.memory_format)
        self.arch = net.arch
        # the averaged copy that validation, selection and best.pt see (cfg.ema > 0)
        self.ema = copy.deepcopy(self.net).requires_grad_(False) if cfg.ema > 0 else None
        # the tensors the average moves, paired once (state_dict views share storage; loads copy in place)
        self._ema_pairs = ([(a, b) for a, b in zip(self.ema.state_dict().values(), self.net.state_dict().values(),
                                                   strict=True) if a.is_floating_point()]
                           if self.ema is not None else [])  # fmt: skip
        params = self.net.parameters()
        if cfg.optimizer == "sgd":
            self.opt: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay
            )
        else:
            self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.plateau = None
        if cfg.schedule == "plateau":  # on the val metric (higher is better), else on the train loss
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.opt, mode="max" if val is not None else "min", factor=cfg.plateau_factor,
                patience=cfg.plateau_patience,
            )  # fmt: skip
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.images = train.images.to(device)
        self.labels = train.labels.to(device)
        self.batch_size = min(cfg.batch_size, len(train))
        full = len(train) // self.batch_size  # drop the ragged last batch: every step has the same size
        self.steps_per_epoch = min(full, cfg.steps_per_epoch) if cfg.steps_per_epoch else full
        self.full_steps_per_epoch = full
        self.epoch_steps = list(cfg.epoch_steps) if cfg.epoch_steps else [self.steps_per_epoch] * cfg.epochs
        if len(self.epoch_steps) != cfg.epochs or max(self.epoch_steps) > 2 * full:
            raise ValueError(f"epoch_steps must hold {cfg.epochs} step counts (one per epoch), each at most two passes "
                             f"over the data ({2 * full} steps at batch {self.batch_size}); got {self.epoch_steps}")
        self.total_steps = sum(self.epoch_steps)
        self.on_time: OnTime | None = None  # keeps a budgeted run on time (the call that resolved the budget)
        self.loss_weight = balanced_class_weights(train).to(device) if cfg.class_weights == "balanced" else None
        self.tta_padding = tta_padding_for(cfg)
        # progress
        self.epoch = 0  # finished epochs
        self.step = 0
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_metrics: dict[str, Any] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.history: list[dict[str, Any]] = []
        self.bar: Any = None
        self._epoch_start = 0  # global step at which the running epoch began

    # -- checkpoints ------------------------------------------------------------------------------

    def _common(self) -> dict[str, Any]:
        return {"family": FAMILY, "arch": self.arch, "config": self.cfg.model_dump(mode="json"),
                "classes": list(self.classes), "tta_padding": self.tta_padding}  # fmt: skip

    def last_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly at the next epoch."""
        return {
            **self._common(),
            "kind": "last",
            "weights": self.net.state_dict(),
            "ema_weights": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.plateau.state_dict() if self.plateau is not None else None,
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "history": self.history,
        }

    def resume(self) -> None:
        """Restore ``last.pt`` (and the best weights from ``best.pt``); truncate the log to match."""
        assert self.run_dir is not None
        state = load_checkpoint(last_checkpoint(self.run_dir), family=FAMILY, arch=self.arch,
                                map_location=str(self.device))  # fmt: skip
        self.net.load_state_dict(state["weights"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema_weights"])
        self.opt.load_state_dict(state["optimizer"])
        if self.plateau is not None and state["scheduler"] is not None:
            self.plateau.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.bad_epochs, self.stopped_early = int(state["bad_epochs"]), bool(state["stopped_early"])
        self.history = list(state["history"])
        if self.best_epoch:
            best = load_checkpoint(best_checkpoint(self.run_dir), family=FAMILY, arch=self.arch)
            self.best_state, self.best_metrics = best["weights"], best["metrics"]
            # best.pt is self-consistent (weights and their score); it wins if the two ever disagree
            self.best_epoch, self.best_score = int(best["epoch"]), float(best["score"])
        truncate_metrics(self.run_dir, self.step)

    def _save_best(self) -> None:
        if self.run_dir is None:
            return
        save_checkpoint({**self._common(), "kind": "best", "weights": self.best_state, "epoch": self.best_epoch,
                         "step": self.step, "score": self.best_score, "select_metric": self.cfg.select_metric,
                         "metrics": self.best_metrics}, best_checkpoint(self.run_dir))  # fmt: skip

    # -- loop -------------------------------------------------------------------------------------

    def fit(self) -> None:
        """Train epoch by epoch until ``cfg.epochs`` or early stopping."""
        self.bar = tqdm(total=self.total_steps, initial=min(self.step, self.total_steps), unit="step",
                        disable=not self.progress, dynamic_ncols=True)  # fmt: skip
        try:
            while self.epoch < self.cfg.epochs and not self.stopped_early:
                self._epoch()
        finally:
            self.bar.close()

    def _batch(self, order: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = order[index * self.batch_size : (index + 1) * self.batch_size]
        x = to_float(self.images[idx])
        if self.cfg.augment:
            a = self.cfg.augmentation
            x = classifier_augment(x, generator(self.cfg.seed, STEP, self.step, device=self.device),
                                   crop_padding=a.crop_padding, flip=a.flip, max_degrees=a.max_degrees,
                                   erase_p=a.erase_p, erase_area=a.erase_area)  # fmt: skip
        if self.cfg.augmentation.degrade_p > 0:  # a judge's robustness, wanted with or without geometric jitter
            x = degrade_batch(x, self.cfg.augmentation.degrade_p,
                              generator(self.cfg.seed, DEGRADE, self.step, device=self.device))  # fmt: skip
        return x.contiguous(memory_format=self.memory_format), self.labels[idx]

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.plateau is None:
            # counted in epochs, so epochs that a time budget re-sizes later change nothing that already ran
            n, index = self.epoch_steps[min(self.epoch, len(self.epoch_steps) - 1)], self.step - self._epoch_start
            lr = self.cfg.lr * lr_factor(self.cfg.schedule, self.epoch * n + index, len(self.epoch_steps) * n)
            for group in self.opt.param_groups:
                group["lr"] = lr
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):  # fmt: skip
            logits = self.net(x)
        loss = F.cross_entropy(logits.float(), y, weight=self.loss_weight, label_smoothing=self.cfg.label_smoothing)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.ema is not None:
            self._update_ema()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """Move the average toward the live weights, batch-norm statistics included: an averaged net
        with the live net's statistics would normalise with numbers that belong to other weights.

        The decay warms up as ``(1 + t) / (10 + t)`` so the first steps' random weights fade fast
        (a 10-minute run has a few thousand steps; a fixed 0.999 would still remember the start).
        """
        assert self.ema is not None
        decay = min(self.cfg.ema, (1.0 + self.step) / (10.0 + self.step))
        torch._foreach_lerp_([a for a, _ in self._ema_pairs], [b for _, b in self._ema_pairs], 1.0 - decay)
        for a, b in zip(self.ema.buffers(), self.net.buffers(), strict=True):
            if not a.is_floating_point():
                a.copy_(b)

    def _check(self, losses: list[torch.Tensor], first_step: int) -> np.ndarray:
        """One host sync per window: the losses, or an error naming the first non-finite one."""
        values = torch.stack(losses).float().cpu().numpy()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            step = first_step + int(bad[0])
            index = step - self._epoch_start  # within the epoch now running (self.epoch finished before it)
            kept = (f"{last_checkpoint(self.run_dir)} (epoch {self.epoch}) is intact" if self.run_dir and self.epoch
                    else "no checkpoint was written yet")  # fmt: skip
            raise diverged(f"epoch {self.epoch + 1}, step {index + 1} of {self.epoch_steps[self.epoch]} (global step "
                           f"{step + 1})", f"the training loss is non-finite ({values[bad[0]]})", kept)  # fmt: skip
        return values

    def _epoch(self) -> None:
        cfg, epoch = self.cfg, self.epoch
        spe = self.epoch_steps[epoch]
        self._epoch_start = self.step
        g = generator(cfg.seed, ORDER, epoch)
        # an epoch that a time budget lengthened past one pass goes on into a second permutation
        order = torch.cat([torch.randperm(len(self.images), generator=g)
                           for _ in range(1 if spe <= self.full_steps_per_epoch else 2)]).to(self.device)  # fmt: skip
        torch.manual_seed(derive_seed(cfg.seed, _DROPOUT, epoch))
        self.net.train()
        start_time = time.perf_counter()
        window: list[torch.Tensor] = []
        window_start, window_time = self.step, start_time
        loss_sum, correct = 0.0, torch.zeros((), dtype=torch.int64, device=self.device)
        for index in range(spe):
            loss, hits = self._train_step(*self._batch(order, index))
            window.append(loss)
            correct += hits
            self.step += 1
            self.bar.update(1)
            if self.step % cfg.log_every == 0 or index == spe - 1:
                values = self._check(window, window_start)
                loss_sum += float(values.sum())
                now = time.perf_counter()
                if index < spe - 1:  # the epoch line carries the end-of-epoch window
                    self._log({"kind": "step", "step": self.step, "epoch": epoch + (index + 1) / spe,
                               "loss": float(values.mean()), "lr": self.opt.param_groups[0]["lr"],
                               "img_per_s": len(values) * self.batch_size / max(now - window_time, 1e-9)})  # fmt: skip
                    self.bar.set_postfix(self._postfix(float(values.mean())), refresh=False)
                window, window_start, window_time = [], self.step, now
        train_seconds = time.perf_counter() - start_time
        record: dict[str, Any] = {
            "kind": "epoch", "step": self.step, "epoch": epoch + 1, "train_loss": loss_sum / spe,
            "train_accuracy": int(correct) / (spe * self.batch_size), "lr": self.opt.param_groups[0]["lr"],
            "img_per_s": spe * self.batch_size / max(train_seconds, 1e-9),
        }  # fmt: skip
        improved = True
        end_start = time.perf_counter()
        if self.val is not None:
            metrics, val_loss = self._validate()
            score = float(metrics[cfg.select_metric])
            record.update({"val_loss": val_loss, "val_accuracy": metrics["accuracy"],
                           "val_macro_f1": metrics["macro_f1"], "val_macro_auc": metrics["macro_auc"]})  # fmt: skip
            improved = score > self.best_score
            if self.plateau is not None:
                self.plateau.step(score)
        else:
            metrics, score = None, math.nan
            if self.plateau is not None:
                self.plateau.step(record["train_loss"])
        self.epoch = epoch + 1
        if improved:
            self.best_score, self.best_epoch, self.best_metrics = score, self.epoch, metrics
            self.best_state = _state_to_cpu(self.ema if self.ema is not None else self.net)
            self.bad_epochs = 0
            self._save_best()
        else:
            self.bad_epochs += 1
            if cfg.early_stopping_patience is not None and self.bad_epochs >= cfg.early_stopping_patience:
                self.stopped_early = True
        record.update({"epoch_seconds": time.perf_counter() - start_time, "best_epoch": self.best_epoch,
                       "best_score": self.best_score if self.val is not None else None, "improved": improved,
                       "stopped_early": self.stopped_early})  # fmt: skip
        self.history.append(record)
        if self.on_time is not None and not self.stopped_early:
            self._keep_on_time(spe, train_seconds)
        if self.run_dir is not None:  # best.pt first: a crash in between replays this epoch
            save_checkpoint(self.last_state(), last_checkpoint(self.run_dir))
        if self.on_time is not None:
            self.on_time.record_end(time.perf_counter() - end_start)
        self._log(record)
        self.bar.set_postfix(self._postfix(record["train_loss"]), refresh=False)
        if self.stopped_early and self.progress:
            self.bar.write(
                f"early stopping after epoch {self.epoch}: no val {cfg.select_metric} improvement in "
                f"{self.bad_epochs} epochs (best {self.best_score:.4f} at epoch {self.best_epoch})"
            )

    def measure(self, seconds: float, min_steps: int = 3) -> tuple[float, float, float]:
        """Train for about ``seconds`` (after one untimed step), validate once and write one checkpoint:
        seconds per step, per epoch-end checkpoint (last and best), per validation.

        For time budgets, on a throwaway run (its weights move; a later run re-seeds everything it uses).
        """
        order = torch.randperm(len(self.images), generator=generator(self.cfg.seed, ORDER, 0)).to(self.device)
        self.net.train()
        self._train_step(*self._batch(order, 0))
        synchronize(self.device)
        start, steps = time.perf_counter(), 0
        while steps < min_steps or time.perf_counter() - start < seconds:
            self._train_step(*self._batch(order, (steps + 1) % self.steps_per_epoch))
            steps += 1
        synchronize(self.device)
        per_step = (time.perf_counter() - start) / steps
        t0 = time.perf_counter()
        if self.val is not None:
            self._validate()
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="feraug-budget-") as scratch:
            save_checkpoint(self.last_state(), Path(scratch) / "last.pt")
        t2 = time.perf_counter()
        return per_step, 2 * (t2 - t1), t1 - t0

    def _keep_on_time(self, steps: int, train_s: float) -> None:
        """Re-size the epochs still to come so the run ends at its budget's deadline
        (:class:`feraug.train.budget.OnTime`); the new lengths go into the config and ``config.yaml``."""
        assert self.on_time is not None
        new = self.on_time.epoch_done(self.epoch_steps, self.epoch, train_s=train_s, steps=steps,
                                      now=time.perf_counter())  # fmt: skip
        if new == self.epoch_steps:
            return
        self.epoch_steps, self.total_steps = new, sum(new)
        self.cfg = self.cfg.model_copy(update={"epoch_steps": new})
        if self.run_dir is not None:
            write_config(self.run_dir, self.cfg.model_dump(mode="json"))
        self.bar.total = self.total_steps

    def _validate(self) -> tuple[dict[str, Any], float]:
        """Val metrics (by the caller's validator) and the val loss."""
        assert self.val is not None
        return self.validate(self.ema if self.ema is not None else self.net, self.val, self.device)

    def _postfix(self, loss: float) -> dict[str, str]:
        shown = {"loss": f"{loss:.3g}"}
        if self.val is not None and self.best_epoch:
            last = self.history[-1] if self.history else {}
            if f"val_{self.cfg.select_metric}" in last:
                shown[f"val_{self.cfg.select_metric}"] = f"{last[f'val_{self.cfg.select_metric}']:.3f}"
            shown["best"] = f"{self.best_score:.3f}@{self.best_epoch}"
        return shown

    def _log(self, record: dict[str, Any]) -> None:
        if self.run_dir is not None:
            append_metrics(self.run_dir, record)

    def result(self) -> ClassifierRun:
        """The best weights as a fresh CPU net in eval mode."""
        net = classifier_from_arch(self.arch)
        live = self.ema if self.ema is not None else self.net
        net.load_state_dict(self.best_state if self.best_state is not None else _state_to_cpu(live))
        best_score = self.best_score if self.best_epoch else math.nan
        return ClassifierRun(net.eval(), self.best_epoch, best_score, list(self.history), self.run_dir, self.cfg)
