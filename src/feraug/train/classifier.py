"""Training expression classifiers, the yardstick every augmentation arm is judged by: the design and its entry.

Design, and why:

* **Data on the device.** The whole training set sits on the training device as ``uint8``
  (FER2013 at 48x48 is ~66 MB); a batch is an index into it, converted to float and augmented
  there (:func:`feraug.data.augment.classifier_augment`). No files, no DataLoader workers.
* **Stateless randomness** (:mod:`feraug.core.seeding`). The order of epoch ``e`` depends only
  on ``(seed, e)``, step ``k``'s augmentation only on ``(seed, k)``, and the global generator that
  dropout draws from is re-seeded from ``(seed, e)`` at each epoch start. A run resumed from
  ``checkpoints/last.pt`` (written at every epoch end) therefore replays the interrupted epoch
  exactly: on CPU, 2 epochs straight and 1 + resume + 1 give bitwise equal weights. The caller's
  global RNG state is restored afterwards.
* **Selection on validation only.** After each epoch the net is scored on ``val`` by the
  caller's validator (:func:`feraug.evaluate.classifier.train_classifier` passes prediction and
  metrics on plain faces; ``cfg.tta`` applies when the trained net predicts), and the weights with the best
  ``select_metric`` are kept (``checkpoints/best.pt``) and returned. The test split is never seen
  during training.
* **Learning rate as a function of the step** for ``cosine``/``onecycle``/``constant`` (nothing
  to restore); ``plateau`` is PyTorch's ``ReduceLROnPlateau`` on the val metric, whose state is
  checkpointed.
* **Divergence guard.** Losses stay on the device and are checked once per ``log_every`` steps
  and at every epoch end (no per-step host sync); a non-finite loss stops training with an error
  naming its epoch and step before anything is written, so ``last.pt`` stays the last good state.
* **Precision.** fp32 on CPU (bf16 autocast is ~30x slower there, see
  :func:`feraug.train.device.autocast_dtype`), autocast on CUDA. Convolutions run in
  channels-last layout on CPU and CUDA (measured 1.2-1.3x faster training and 1.2-1.6x faster
  inference on this project's CPU, see :data:`CHANNELS_LAST`).

Run folder::

    config.yaml  meta.json  metrics.jsonl  checkpoints/last.pt  checkpoints/best.pt

``metrics.jsonl`` has ``"kind": "step"`` lines (mean train loss of the last ``log_every`` steps,
lr, img/s) and one ``"kind": "epoch"`` line per epoch (train loss/accuracy, val loss and metrics,
lr, img/s, best so far); the epoch lines are also
:attr:`~feraug.train.classifier_run.ClassifierRun.history`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from feraug.config import ClassifierConfig
from feraug.data.dataset import FaceDataset
from feraug.train.budget import END_MARGIN, HEADROOM, OnTime, plan_schedule
from feraug.train.classifier_run import ClassifierFit, ClassifierRun, Validator
from feraug.train.device import resolve_device
from feraug.train.run_folder import check_start
from feraug.train.runinfo import write_run_info


def _check_data(cfg: ClassifierConfig, train: FaceDataset, val: FaceDataset | None) -> None:
    """Fail before any work with a message that says what to change."""
    for what, data in (("training", train), ("validation", val)):
        if data is None:
            continue
        if len(data) == 0:
            raise ValueError(f"the {what} set is empty")
        if data.size != cfg.size:
            raise ValueError(f"{what} images are {data.size}x{data.size} but the config has size={cfg.size}; "
                             f"load the data at size {cfg.size} or set size={data.size}")  # fmt: skip
        if data.classes != train.classes:
            raise ValueError(f"{what} classes {list(data.classes)} differ from the training classes")
    if cfg.early_stopping_patience is not None and val is None:
        raise ValueError("early_stopping_patience needs a validation set (val is None)")



def fit_classifier(
    cfg: ClassifierConfig,
    train: FaceDataset,
    val: FaceDataset | None,
    run_dir: str | Path | None = None,
    *,
    validate: Validator,
    resume: bool = False,
    progress: bool = True,
    time_budget: float | None = None,
    started: float | None = None,
    reserve_validations: float = 0.0,
) -> ClassifierRun:
    """Train a classifier on ``train``, selecting the best epoch on ``val``; see the module docstring.

    Args:
        cfg: the run's configuration (saved to ``run_dir/config.yaml``).
        train: training faces (at ``cfg.size``); all of them are moved to the device.
        val: selection faces, or None: then the last epoch is "best" and ``best_score`` is NaN.
        validate: scores the net on ``val`` after every epoch (and once while a time budget measures).
        run_dir: run folder for logs and checkpoints; None trains in memory only.
        resume: continue the run in ``run_dir`` from ``checkpoints/last.pt``. The interrupted epoch
            is replayed from its start; ``cfg.epochs`` may be raised to train longer. A run that
            stopped early stays stopped.
        progress: show a progress bar.
        time_budget: seconds the whole run may take, counted from ``started`` (a ``time.perf_counter()``
            value; default: this call): a throwaway copy trains for a few seconds, then ``epochs`` and
            ``steps_per_epoch`` are fixed so that the schedule ends within it (:mod:`feraug.train.budget`);
            the run's ``config.yaml`` and ``ClassifierRun.config`` hold the resolved values, ``meta.json``
            the measurements. While it trains, the epochs still to come are re-sized at each epoch end to
            keep it on time (:class:`feraug.train.budget.OnTime`; ``epoch_steps`` in the config).
        reserve_validations: with a time budget, the work the caller does after training, in validation
            passes (the CLI's test pass: test faces / val faces), kept free at the end of the budget.

    Raises:
        FileExistsError: ``run_dir`` already holds a run and ``resume`` is off.
        TrainingDivergedError: a training loss became NaN/inf (the message names epoch and step).
    """
    _check_data(cfg, train, val)
    run_dir = Path(run_dir) if run_dir is not None else None
    check_start(run_dir, resume=resume, time_budget=time_budget)
    start = time.perf_counter() if started is None else started
    device = resolve_device(cfg.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
        plan = None
        if time_budget is not None:
            probe = ClassifierFit(cfg, train, val, None, device, False, validate)
            per_step, per_checkpoint, per_validation = probe.measure(min(max(0.05 * time_budget, 3.0), 90.0))
            full = len(train) // probe.batch_size
            del probe
            reserve = reserve_validations * per_validation
            plan = plan_schedule(time_budget, elapsed_s=time.perf_counter() - start + reserve,
                                 seconds_per_step=per_step, checkpoint_s=per_checkpoint, sample_s=per_validation,
                                 epochs=cfg.epochs, epochs_decay=0, full_steps_per_epoch=full,
                                 checkpoint_every=10**9, headroom=HEADROOM)  # fmt: skip
            cfg = cfg.model_copy(update={"epochs": plan.epochs, "steps_per_epoch": plan.steps_per_epoch,
                                         "epoch_steps": [plan.steps_per_epoch] * plan.epochs})  # fmt: skip
            cfg = type(cfg).model_validate(cfg.model_dump())
        fit = ClassifierFit(cfg, train, val, run_dir, device, progress, validate)
        if plan is not None:
            fit.on_time = OnTime(start + time_budget * (1 - END_MARGIN), 2 * fit.full_steps_per_epoch,
                                 epoch_end_s=plan.checkpoint_s + plan.sample_s, reserve_s=reserve)  # fmt: skip
        if resume:
            fit.resume()
        elif run_dir is not None:
            write_run_info(run_dir, cfg.model_dump(mode="json"), cfg.seed, device,
                           extra={"budget": plan.as_dict()} if plan is not None else None)  # fmt: skip
        fit.fit()
        return dataclasses.replace(fit.result(), budget=plan)
