"""One config per GAN family: its ``data``, ``net``, ``loss`` and ``optim`` sections and the shared ``train`` section.

CycleGAN (seeds 000 and 002, :mod:`feraug.models.cyclegan`), the noise GANs (DCGAN, WGAN-GP,
class-conditional: :mod:`feraug.models.noise_gan`) and the expression family
(:mod:`feraug.models.expression`). Presets (``feraug/presets/*.yaml``) fill them in.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from feraug.config.base import Strict
from feraug.data.classes import emotion_index, emotion_name
from feraug.gan.losses import GanMode
from feraug.nets.gan_nets import Norm, Output


class DataConfig(Strict):
    """Which faces a translation model learns from."""

    data: str = Field("toy", description="FER2013 CSV, image folder, or toy[:N[:SEED]]")
    source: str = Field("neutral", description="emotion of domain A")
    target: str = Field("happy", description="emotion of domain B")
    size: int = Field(48, ge=8, description="image side length; multiple of 4")
    split: str = Field("Training", description="split to train on (never the test split)")
    max_per_domain: int | None = Field(None, ge=1, description="cap on faces per domain (quick runs)")
    exclude: str | None = Field(None, description="a `feraug filter` report (.filter.json) of this data: its "
                                "dropped rows are left out of training and translation sources")  # fmt: skip

    @field_validator("source", "target")
    @classmethod
    def _emotion(cls, value: str) -> str:
        return emotion_name(emotion_index(value))

    @field_validator("size")
    @classmethod
    def _multiple_of_4(cls, value: int) -> int:
        if value % 4:
            raise ValueError(f"size must be a multiple of 4 (two stride-2 downsamplings), got {value}")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> DataConfig:
        if self.source == self.target:
            raise ValueError(f"source and target are both {self.source!r}")
        return self


class NetConfig(Strict):
    """Generator and discriminator sizes (CycleGAN defaults; the ``rdnb`` body is Pasini et al.'s ECycleGAN)."""

    generator: Literal["resnet", "rdnb"] = Field("resnet", description="generator body: ResNet blocks (CycleGAN) "
                                                 "or residual-in-residual dense blocks (Enhanced CycleGAN)")
    ngf: int = Field(64, ge=1)
    n_blocks: int = Field(6, ge=0, description="resnet: residual blocks")
    n_rdnb: int = Field(3, ge=0, description="rdnb: residual-in-residual dense blocks")
    n_dense_blocks: int = Field(3, ge=1, description="rdnb: dense blocks per RDNB (paper 3, Pasini et al.: 2)")
    n_sub_blocks: int = Field(5, ge=1, description="rdnb: densely connected convs per dense block (paper 5, seed 3)")
    growth: int = Field(32, ge=1, description="rdnb: growth channels of each dense conv")
    res_scale: float = Field(0.2, ge=0.0, description="rdnb: residual scaling alpha (Pasini et al. tried 0.3/0.5/0.7)")
    ndf: int = Field(64, ge=1)
    n_layers: int = Field(3, ge=1)
    norm: Norm = "instance"
    d_norm: Norm | None = Field(None, description="discriminator norm if not `norm` (none for WGAN-GP critics)")
    output: Output = Field("image", description="image (CycleGAN: tanh) or residual (input + predicted change)")


class LossConfig(Strict):
    """The objective: adversarial mode, cycle / identity weights, Birenbaum's weighted cycle loss."""

    gan_mode: GanMode = "lsgan"
    real_label: float = Field(1.0, gt=0.0, le=1.0, description="soft real label for D (0.9 in the improved preset)")
    lambda_cyc: float = Field(10.0, ge=0.0)
    lambda_idt: float = Field(0.5, ge=0.0, description="identity weight, relative to lambda_cyc as in CycleGAN")
    weighted_cycle: bool = Field(False, description="Birenbaum's D-weighted feature/pixel cycle loss")
    lambda_gp: float = Field(10.0, ge=0.0, description="gradient penalty weight (wgan-gp)")
    n_critic: int = Field(1, ge=1, description="discriminator steps per generator step")
    perceptual: str | None = Field(None, description="Pasini et al.'s perceptual cycle/identity loss: a feraug "
                                   "classifier checkpoint or run folder, or a VGG19 state-dict file (the frozen φ); "
                                   "used when perceptual_alpha > 0, so one path can be set for a whole sweep")
    perceptual_layer: str | int = Field("last_conv", description="layer of φ: last_conv, features, trunk.K, an "
                                        "index, or a VGG19 name (relu4_4)")  # fmt: skip
    perceptual_alpha: float = Field(0.0, ge=0.0, description="weight of ‖φ(x̂) − φ(x)‖₁ in the cycle and identity "
                                    "terms (Pasini et al.: 0.5); > 0 needs loss.perceptual")  # fmt: skip
    perceptual_beta: float = Field(1.0, ge=0.0, description="weight of ‖x̂ − x‖₁ beside it (Pasini et al.: 0.5)")


class RegularizeConfig(Strict):
    """Discriminator regularizers for a small (minority) domain: Pasini et al.'s three and DiffAugment / ADA.

    Each is off by default and applies to the discriminators named by ``domains``: ``B`` (the target
    emotion's, e.g. Disgust with 436 faces), ``A`` or ``both``.
    """

    domains: Literal["A", "B", "both"] = Field("B", description="whose discriminator: A, B (the target) or both")
    flip_p: float = Field(0.0, ge=0.0, lt=1.0, description="flip each real face's label to fake with this "
                          "probability (Pasini et al.: 0.01)")  # fmt: skip
    flip_fake_p: float = Field(0.0, ge=0.0, lt=1.0, description="flip each fake face's label to real with this "
                               "probability (two-sided flipping; Pasini et al.'s is one-sided: 0)")  # fmt: skip
    noise_sigma: float = Field(0.0, ge=0.0, description="instance noise: Gaussian σ on D's inputs, decaying "
                               "linearly to 0 (Pasini et al.: 0.1, 0.05)")  # fmt: skip
    noise_end: float = Field(1.0, gt=0.0, le=1.0, description="fraction of training at which σ reaches 0")
    alternate_from_epoch: int | None = Field(None, ge=0, description="from this epoch (0-based) on, update D once "
                                             "every alternate_every steps (Pasini et al.: 10:1, 5:1)")  # fmt: skip
    alternate_every: int = Field(1, ge=1, description="D updates once per this many steps when alternating")
    diffaugment: list[str] = Field(default_factory=list, description="DiffAugment ops on everything D sees "
                                   "(translation, cutout, brightness, contrast, color); [] = off")  # fmt: skip
    ada: bool = Field(False, description="adaptive augmentation: the ops' probability p steered by D's overfitting")
    ada_target: float = Field(0.6, gt=0.0, lt=1.0, description="ADA: target of E[sign(D(real) − centre)]")
    ada_interval: int = Field(4, ge=1, description="ADA: D steps between updates of p")
    ada_speed_images: float = Field(20_000, gt=0.0, description="ADA: real images over which p may go 0 -> 1")

    @field_validator("diffaugment")
    @classmethod
    def _policy(cls, value: list[str]) -> list[str]:
        from feraug.gan.regularizers import expand_policy

        expand_policy(value)  # names every unknown op
        return value

    @model_validator(mode="after")
    def _ada_needs_ops(self) -> RegularizeConfig:
        if self.ada and not self.diffaugment:
            raise ValueError("ada steers the probability of the diffaugment ops: list them (e.g. diffaugment: "
                             "[translation, cutout, color])")  # fmt: skip
        return self

    def applies_to(self, domain: str) -> bool:
        """Whether the discriminator of ``domain`` (A or B) is regularized."""
        return self.domains in (domain, "both")


class GanOptimConfig(Strict):
    """What every GAN family's ``optim`` section holds: optimizers, schedule, batch, augmentation."""

    lr_g: float = Field(2e-4, gt=0.0)
    lr_d: float = Field(2e-4, gt=0.0)
    beta1: float = Field(0.5, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    epochs: int = Field(10, ge=1, description="epochs at constant learning rate")
    epochs_decay: int = Field(10, ge=0, description="further epochs with linear decay to 0")
    batch_size: int = Field(1, ge=1)
    augment: bool = Field(False, description="random flip and small affine jitter on the training device")


class OptimConfig(GanOptimConfig):
    """CycleGAN's optimizers, schedule, batch and augmentation, plus its image pool."""

    pool_size: int = Field(50, ge=0)


class TrainConfig(Strict):
    """How the shared trainer runs: seed, device, precision, logging, checkpoints."""

    seed: int = 0
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    amp: bool | Literal["auto"] = Field("auto", description="bf16 autocast; auto = on for CUDA only")
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0, description="EMA of generator weights; 0 disables")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (quick runs)")
    epoch_steps: list[PositiveInt] | None = Field(
        None, description="each epoch's own step count (epochs + epochs_decay of them, each at most two passes "
        "over the data); a time budget writes it to keep the run on time")  # fmt: skip
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(1000, ge=1, description="steps between checkpoints (also at epoch ends)")
    sample_every: int = Field(1, ge=1, description="epochs between sample grids")
    max_loss: float = Field(1e4, gt=0.0, description="stop when a loss exceeds this (divergence guard)")


class CycleGANConfig(Strict):
    """A complete CycleGAN run."""

    preset: str = "cyclegan"
    data: DataConfig = DataConfig()
    net: NetConfig = NetConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    regularize: RegularizeConfig = RegularizeConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _consistent(self) -> CycleGANConfig:
        if self.loss.gan_mode == "wgan-gp" and self.loss.real_label != 1.0:
            raise ValueError("loss.real_label must be 1.0 with gan_mode wgan-gp (critics have no labels)")
        if self.loss.gan_mode == "wgan-gp" and (self.regularize.flip_p > 0 or self.regularize.flip_fake_p > 0):
            raise ValueError("regularize.flip_p / flip_fake_p flip labels, which a wgan-gp critic does not have; "
                             "set them to 0")  # fmt: skip
        loss = self.loss
        if loss.perceptual_alpha > 0 and loss.perceptual is None:
            raise ValueError(f"loss.perceptual_alpha={loss.perceptual_alpha:g} weighs a perceptual term: set "
                             "loss.perceptual=PATH (a feraug classifier checkpoint or run folder, e.g. from `feraug "
                             "train classifier`, or a VGG19 state-dict file)")  # fmt: skip
        if loss.perceptual_alpha > 0 and loss.weighted_cycle:
            raise ValueError("loss.perceptual and loss.weighted_cycle both replace the L1 cycle loss; pick one")
        return self


class NoiseDataConfig(Strict):
    """Which faces a noise GAN learns to sample."""

    data: str = Field("toy", description="FER2013 CSV, image folder, or toy[:N[:SEED]]")
    classes: list[str] = Field(["neutral"], min_length=1, description="emotions to learn, or [all]")
    size: int = Field(48, ge=8, description="image side length; multiple of 8")
    split: str = Field("Training", description="split to train on (never the test split)")
    balanced: bool = Field(False, description="draw every class equally often (class-conditional training)")
    exclude: str | None = Field(None, description="a `feraug filter` report (.filter.json) of this data: its "
                                "dropped rows are left out of training")  # fmt: skip

    @field_validator("classes")
    @classmethod
    def _emotions(cls, value: list[str]) -> list[str]:
        if [v.lower() for v in value] == ["all"]:
            return [emotion_name(k) for k in range(7)]
        names = [emotion_name(emotion_index(v)) for v in value]
        if len(set(names)) != len(names):
            raise ValueError(f"classes lists an emotion twice: {names}")
        return names

    @field_validator("size")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"size must be a multiple of 8 (three stride-2 stages), got {value}")
        return value


class NoiseNetConfig(Strict):
    """DCGAN generator / discriminator sizes (:mod:`feraug.nets.noise_gan_nets`)."""

    z_dim: int = Field(100, ge=1)
    ngf: int = Field(64, ge=1)
    ndf: int = Field(64, ge=1)
    d_norm: Literal["batch", "layer", "none"] = Field("batch", description="none or layer for WGAN-GP critics")
    conditional: bool = Field(False, description="one model for all classes: conditional BN in G, projection D")
    label_input: bool = Field(True, description="conditional G reads [z, embed(y)] besides its conditional batch "
                              "norms (without lambda_ms it collapsed to one face per class on FER2013)")  # fmt: skip


class NoiseLossConfig(Strict):
    """The adversarial objective of a noise GAN."""

    gan_mode: GanMode = "bce"
    real_label: float = Field(1.0, gt=0.0, le=1.0, description="one-sided label smoothing for D")
    lambda_gp: float = Field(10.0, ge=0.0, description="gradient penalty weight (wgan-gp)")
    n_critic: int = Field(1, ge=1, description="discriminator steps per generator step (each on a fresh batch)")
    lambda_ms: float = Field(0.0, ge=0.0, description="weight of the mode-seeking term (MSGAN): pushes two noise "
                             "vectors' faces apart; against per-class collapse")  # fmt: skip
    lambda_cls: float = Field(0.0, ge=0.0, description="conditional only: weight of an auxiliary class "
                              "head's cross-entropy in D (real faces) and G (its faces), AC-GAN; 0 = none")  # fmt: skip


class NoiseOptimConfig(GanOptimConfig):
    """A noise GAN's optimizers and schedule: the shared fields with DCGAN's defaults."""

    epochs: int = Field(25, ge=1, description="epochs at constant learning rate")
    epochs_decay: int = Field(0, ge=0, description="further epochs with linear decay to 0")
    batch_size: int = Field(64, ge=2, description="batch norm needs at least 2 faces")


class NoiseGANConfig(Strict):
    """A complete noise-GAN run (DCGAN, WGAN-GP or class-conditional): z -> a face of a class."""

    preset: str = "dcgan"
    data: NoiseDataConfig = NoiseDataConfig()
    net: NoiseNetConfig = NoiseNetConfig()
    loss: NoiseLossConfig = NoiseLossConfig()
    optim: NoiseOptimConfig = NoiseOptimConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _consistent(self) -> NoiseGANConfig:
        if self.loss.gan_mode == "wgan-gp":
            if self.loss.real_label != 1.0:
                raise ValueError("loss.real_label must be 1.0 with gan_mode wgan-gp (critics have no labels)")
            if self.net.d_norm == "batch":
                raise ValueError("net.d_norm=batch with gan_mode wgan-gp: the gradient penalty is per face, batch "
                                 "norm makes each score depend on the batch; use none or layer")  # fmt: skip
        if self.loss.lambda_cls > 0 and not self.net.conditional:
            raise ValueError("loss.lambda_cls > 0 needs net.conditional=true (the class head learns the labels "
                             "the generator is asked for)")  # fmt: skip
        return self


class ExpressionDataConfig(Strict):
    """Which faces the expression family learns from: every face of the split, all seven emotions."""

    data: str = Field("toy", description="FER2013 CSV, image folder, or toy[:N[:SEED]]")
    size: int = Field(48, ge=8, description="image side length; multiple of 4 (G) and of 2**net.d_layers (D)")
    split: str = Field("Training", description="split to train on (never the test split)")
    balanced: bool = Field(False, description="draw source faces class-balanced (target emotions always are)")
    exclude: str | None = Field(None, description="a `feraug filter` report (.filter.json) of this data: its "
                                "dropped rows are left out of training and translation sources")  # fmt: skip

    @field_validator("size")
    @classmethod
    def _multiple_of_4(cls, value: int) -> int:
        if value % 4:
            raise ValueError(f"size must be a multiple of 4 (two stride-2 downsamplings), got {value}")
        return value


class ExpressionNetConfig(Strict):
    """Generator and discriminator of the expression family (:mod:`feraug.nets.expression_nets`)."""

    ngf: int = Field(64, ge=1)
    n_blocks: int = Field(6, ge=0, description="residual blocks at H/4")
    ndf: int = Field(64, ge=1)
    d_layers: int = Field(4, ge=1, description="stride-2 convs of D (48 -> 3x3 patches at 4)")
    output: Literal["residual", "attention", "warp"] = Field(
        "attention", description="residual: clamp(x + delta); attention: A*x + (1-A)*C (GANimation), masks in "
        "the grids; warp: the face's pixels moved along a smooth field (H/4, at most max_shift px), nothing "
        "redrawn")  # fmt: skip
    max_shift: float = Field(3.0, gt=0.0, le=16.0, description="warp: the largest displacement, pixels per axis")
    spectral_norm: bool = Field(True, description="spectral norm on every conv of D")
    d_head: Literal["shared", "per-emotion"] = Field(
        "shared", description="D's real/fake head: shared (StarGAN: one map for every face) or per-emotion "
        "(StarGAN v2: a map per emotion, a face judged as a face of its own or its target emotion)")  # fmt: skip


class ExpressionLossConfig(Strict):
    """StarGAN's objective (adversarial + domain classification + reconstruction) with R1 and mask terms."""

    gan_mode: Literal["bce", "lsgan"] = Field("bce", description="bce: the non-saturating loss (with R1); lsgan")
    lambda_cls: float = Field(1.0, ge=0.0, description="emotion-classification CE: D's head on real faces' labels, "
                              "G's faces on their target emotions (StarGAN: 1)")  # fmt: skip
    lambda_rec: float = Field(1.0, ge=0.0, description="L1 of G(G(x, c), c_x) to x (US-GAN: 1; StarGAN: 10; "
                              "larger means smaller edits)")  # fmt: skip
    lambda_r1: float = Field(1.0, ge=0.0, description="R1: (lambda/2)·E|grad_x D(x)|^2 on real faces (StarGAN v2)")
    r1_every: int = Field(1, ge=1, description="lazy R1: every k-th step, weighted k (StyleGAN2: 16)")
    lambda_mask: float = Field(0.1, ge=0.0, description="attention: weight of mean(A); keeps A from saturating "
                               "at 1 (copying the input) (GANimation: 0.1)")  # fmt: skip
    lambda_tv: float = Field(1.0, ge=0.0, description="attention: total variation of A (mean |neighbour "
                             "differences|), a smooth mask")  # fmt: skip
    lambda_smooth: float = Field(10.0, ge=0.0, description="warp: mean squared difference of neighbouring "
                                 "displacements (a mean-squared-gradient penalty); keeps the field smooth, so it "
                                 "does not fold the face into smears")  # fmt: skip
    diffaugment: list[str] = Field(default_factory=list, description="DiffAugment ops on everything D sees "
                                   "(translation, cutout, brightness, contrast, color); [] = off")  # fmt: skip

    @field_validator("diffaugment")
    @classmethod
    def _policy(cls, value: list[str]) -> list[str]:
        from feraug.gan.regularizers import expand_policy

        expand_policy(value)  # names every unknown op
        return value


class ExpressionOptimConfig(GanOptimConfig):
    """The shared optimizer fields with StarGAN v2's defaults (Adam 1e-4, betas (0, 0.99))."""

    lr_g: float = Field(1e-4, gt=0.0)
    lr_d: float = Field(1e-4, gt=0.0)
    beta1: float = Field(0.0, ge=0.0, lt=1.0)
    beta2: float = Field(0.99, ge=0.0, lt=1.0)
    batch_size: int = Field(8, ge=1)


class ExpressionGANConfig(Strict):
    """A complete run of the multi-domain expression family: G(x, emotion) for all seven emotions."""

    preset: str = "expression"
    data: ExpressionDataConfig = ExpressionDataConfig()
    net: ExpressionNetConfig = ExpressionNetConfig()
    loss: ExpressionLossConfig = ExpressionLossConfig()
    optim: ExpressionOptimConfig = ExpressionOptimConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _consistent(self) -> ExpressionGANConfig:
        if self.data.size % 2**self.net.d_layers:
            raise ValueError(f"data.size={self.data.size} is not divisible by 2**net.d_layers="
                             f"{2**self.net.d_layers}: D halves the face net.d_layers times")  # fmt: skip
        return self
