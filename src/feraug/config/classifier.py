"""The expression classifier's run and the augmentation experiment that trains it in every arm."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from feraug.config.base import Strict


class ClassifierAugmentConfig(Strict):
    """Train-time augmentation of a classifier (:func:`feraug.data.augment.classifier_augment`)."""

    crop_padding: int = Field(4, ge=0, description="random crop after padding by this many pixels (a shift)")
    flip: bool = Field(True, description="random horizontal flip")
    max_degrees: float = Field(10.0, ge=0.0, le=180.0, description="random rotation in [-max, max] degrees")
    erase_p: float = Field(0.5, ge=0.0, le=1.0, description="probability of random erasing per image")
    erase_area: tuple[float, float] = Field((0.02, 0.2), description="erased fraction of the image area (min, max)")
    degrade_p: float = Field(0.0, ge=0.0, le=1.0, description="probability a face also gets 1-2 random degradations "
                             "(blur, noise, textures, ...; feraug.data.degrade), also with augment=false: a judge "
                             "that artefacts do not fool")  # fmt: skip

    @field_validator("erase_area")
    @classmethod
    def _area(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < value[0] <= value[1] <= 1.0:
            raise ValueError(f"erase_area must satisfy 0 < min <= max <= 1, got {list(value)}")
        return value


class ClassifierConfig(Strict):
    """A complete expression-classifier run (:func:`feraug.train.classifier.fit_classifier`).

    Flat, because a classifier run has few knobs: ``--set lr=0.01`` or ``--set augmentation.erase_p=0``.
    """

    preset: str | None = Field(None, description="a classifier preset (feraug/presets/classifier-*.yaml) whose "
                               "values fill every field not given; None: the defaults below")  # fmt: skip
    data: str | None = Field(None, description="dataset the CLI splits with standard_splits (API: pass datasets)")
    arch: str = Field("simple", description="simple, surreal, vgg, fast or resnet (feraug.nets.classifiers)")
    arch_kwargs: dict[str, Any] = Field(default_factory=dict, description="extra constructor arguments of arch")
    size: int = Field(48, ge=16, description="image side length the classifier sees")
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum (Nesterov); ignored by adamw")
    schedule: Literal["cosine", "onecycle", "plateau", "constant"] = Field(
        "cosine", description="per-step cosine to 0, one-cycle, ReduceLROnPlateau on the val metric, or constant"
    )
    plateau_factor: float = Field(0.75, gt=0.0, lt=1.0, description="plateau: lr multiplier")
    plateau_patience: int = Field(5, ge=0, description="plateau: epochs without improvement before a cut")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="balanced: weight class k's loss by N / (K * count_k) of the training set"
    )
    augment: bool = Field(True, description="random crop, flip, rotation and erasing on the training device")
    augmentation: ClassifierAugmentConfig = ClassifierAugmentConfig()
    early_stopping_patience: int | None = Field(None, ge=1, description="epochs without val improvement; None = off")
    select_metric: Literal["macro_f1", "accuracy"] = Field("macro_f1", description="val metric that picks best.pt")
    ema: float = Field(0.0, ge=0.0, lt=1.0, description="decay of an exponential moving average of the weights "
                       "(and batch-norm statistics) that is validated, selected and saved in place of the raw "
                       "weights; 0 = off. Its warm-up (1+t)/(10+t) lets short runs use it")  # fmt: skip
    tta: bool = Field(False, description="ten-crop test-time augmentation when the trained net predicts (the final "
                      "test, an experiment's predictions); epoch selection on val sees plain faces")  # fmt: skip
    seed: int = 0
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    amp: bool | Literal["auto"] = Field("auto", description="autocast on CUDA; auto = on for CUDA only")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (quick runs)")
    epoch_steps: list[PositiveInt] | None = Field(
        None, description="each epoch's own step count (epochs of them, each at most two passes over the data); "
        "a time budget writes it to keep the run on time")  # fmt: skip
    log_every: int = Field(50, ge=1, description="steps between train-loss lines in metrics.jsonl")
    labels: Literal["fer2013", "ferplus-majority"] = Field(
        "fer2013", description="label source: the data's own labels, or the FER+ plurality vote (faces without one "
        "among the seven emotions are left out, in every split)")  # fmt: skip
    ferplus: str | None = Field(None, description="FER+ votes aligned with data (ferplus.csv.gz); labels=ferplus-*")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        """The preset's values under the given ones, so ``--set lr=...`` still wins over the preset.

        Another ``arch`` than the preset's drops the preset's ``arch_kwargs``: they are that net's arguments.
        """
        if isinstance(data, dict) and data.get("preset") is not None:
            from feraug.config.loading import merge, preset_values

            base = preset_values(str(data["preset"]), "classifier")
            if data.get("arch", base.get("arch")) != base.get("arch"):
                base.pop("arch_kwargs", None)
            return merge(base, data)
        return data

    @model_validator(mode="after")
    def _ferplus_file(self) -> ClassifierConfig:
        if self.labels != "fer2013" and self.ferplus is None:
            raise ValueError(f"labels={self.labels} needs ferplus=PATH (the FER+ votes file, ferplus.csv.gz)")
        return self


#: The preset an experiment's classifier starts from unless it names another (or ``preset: null``): the
#: recipe with the best measured PublicTest accuracy per CPU minute (docs/classifiers.md).
EXPERIMENT_CLASSIFIER = "classifier-fast-cpu"


class ExperimentConfig(Strict):
    """The augmentation experiment: protocol, seeds, the classifier every arm trains, balancing, statistics.

    See :mod:`feraug.evaluate.experiment.arms` for the arms and :mod:`feraug.evaluate.experiment.protocols`
    for the splits.
    """

    @model_validator(mode="before")
    @classmethod
    def _classifier_preset(cls, data: Any) -> Any:
        """A classifier given field by field (``--set classifier.lr=...``) still starts from the preset."""
        if isinstance(data, dict) and isinstance(data.get("classifier"), dict) and "preset" not in data["classifier"]:
            return {**data, "classifier": {"preset": EXPERIMENT_CLASSIFIER, **data["classifier"]}}
        return data

    protocol: Literal["standard", "kfold", "tstr", "trts"] = Field(
        "standard", description="standard (Usage splits), kfold (Pasini et al.: fixed test set + repeated k-fold), "
        "tstr (train synthetic, test real), trts (train real, test synthetic)")  # fmt: skip
    seeds: int = Field(7, ge=1, description="train every arm with seeds 0..seeds-1 (same seed = same init, order); "
                       "7 gives ~80% power for a +2 pt macro-F1 gain at FER2013-like seed spread (README)")
    classifier: ClassifierConfig = Field(
        default_factory=lambda: ClassifierConfig(preset=EXPERIMENT_CLASSIFIER),
        description=f"the classifier every arm trains; fields not given come from the {EXPERIMENT_CLASSIFIER} "
        "preset (classifier.preset=null: ClassifierConfig's own defaults)")  # fmt: skip
    balance: int | None = Field(None, ge=1, description="add synthetic faces per class up to this many training "
                                "faces (never more than exist); None adds them all")  # fmt: skip
    n_per_class_test: int = Field(100, ge=1, description="kfold: faces per class in the fixed test set")
    repeats: int = Field(3, ge=1, description="kfold: repeats of the stratified k-fold split")
    folds: int = Field(10, ge=2, description="kfold: k")
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="share of the training faces early stopping "
                                "selects on where no split provides a validation set (always, in kfold)")  # fmt: skip
    generator_overlap: Literal["refuse", "drop", "report"] = Field(
        "refuse", description="when a generator trained on faces a fold tests on (its run's training_rows.npy): "
        "refuse to run, drop its synthetic faces from that fold, or keep them and report the overlap")  # fmt: skip
    n_boot: int = Field(2000, ge=100, description="paired bootstrap resamples")
    primary_metric: Literal["macro_f1", "accuracy"] = Field(
        "macro_f1", description="the endpoint the verdict decides on; the other is reported as secondary")
    min_gain: float = Field(0.02, gt=0.0, lt=1.0, description="smallest gain in the primary metric worth finding "
                            "(0.02 = 2 points): NO means the interval rules out a gain this large")  # fmt: skip
    target_min_gain: float = Field(0.05, gt=0.0, lt=1.0, description="smallest gain in the target class's own F1 "
                                   "worth finding (0.05 = 5 points), the verdict's second pre-declared question; "
                                   "with macro-F1 it shares 5% error by Bonferroni (97.5% intervals)")  # fmt: skip

    @model_validator(mode="after")
    def _balance_needs_arms(self) -> ExperimentConfig:
        if self.balance is not None and self.protocol in ("tstr", "trts"):
            raise ValueError(f"balance applies to the standard and kfold protocols, not {self.protocol}")
        return self

