"""Expression classifiers, built by name: the seeds' two baselines, a strong VGG-style reference, a CPU-fast net.

Every classifier takes ``float [N, in_channels, size, size]`` images scaled to [-1, 1] — the
range the GAN generators emit (tanh), so real and synthetic faces enter in one format — and
splits into ``trunk`` (convolutions) -> ``neck`` (fully connected layers up to the penultimate
layer) -> ``head`` (a linear layer to ``n_classes`` logits). :meth:`ExpressionClassifier.features`
returns the penultimate activations, the feature space used later for perceptual losses and
quality metrics.

=========  ==================================================  ===========================
name       follows                                             parameters (48x48, 7 classes)
=========  ==================================================  ===========================
simple     Birenbaum's Keras "simple classifier" (~65 %)        5,905,863 Keras-counted
surreal    Birenbaum's small "Surreal (paper)" classifier       4,860,935
vgg        Khaireddin & Chen 2021 VGGNet (73.28 % reported)    40,376,519 (29,890,759 at 40)
fast       feraug's CPU-throughput design (see FastClassifier)  308,791
=========  ==================================================  ===========================

Each instance carries ``arch = {"name": ..., "kwargs": ...}``: everything needed to rebuild it
(:func:`classifier_from_arch`), so a checkpoint that stores ``arch`` next to its state dict can
be loaded from its path alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from torch import nn


class ExpressionClassifier(nn.Module):
    """Base class: ``trunk`` -> flatten -> ``neck`` (penultimate features) -> ``head`` (logits).

    Subclasses build the three parts and call :meth:`_set_arch`; the shared ``forward`` and
    ``features`` then guarantee that every registered classifier has the same interface.
    """

    name: ClassVar[str]
    trunk: nn.Module
    neck: nn.Module
    head: nn.Linear

    def __init__(self, *, n_classes: int, in_channels: int, size: int) -> None:
        super().__init__()
        if n_classes < 2 or in_channels < 1:
            raise ValueError(f"need n_classes >= 2 and in_channels >= 1, got {n_classes} and {in_channels}")
        self.n_classes = n_classes
        self.in_channels = in_channels
        self.size = size
        self.arch: dict[str, Any] = {}

    def _set_arch(self, **kwargs: Any) -> None:
        """Record the constructor arguments so that ``classifier_from_arch(self.arch)`` rebuilds this net."""
        self.arch = {"name": self.name, "kwargs": {"n_classes": self.n_classes, "in_channels": self.in_channels,
                                                   "size": self.size, **kwargs}}  # fmt: skip

    @property
    def feature_dim(self) -> int:
        """Length D of the vectors returned by :meth:`features`."""
        return self.head.in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``[N, D]`` (the input of the final linear layer)."""
        expected = (self.in_channels, self.size, self.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"{self.name} classifier expects input [N, {', '.join(map(str, expected))}], "
                             f"got {list(x.shape)}")  # fmt: skip
        return self.neck(torch.flatten(self.trunk(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[N, n_classes]`` (no softmax: losses and metrics apply it themselves)."""
        return self.head(self.features(x))


def _check_size(name: str, size: int, spatial: int, minimum: int) -> None:
    """Fail at construction, not at the first batch, when the image is too small for the pooling stack."""
    if spatial < 1:
        raise ValueError(f"{name} classifier needs size >= {minimum}, got {size}")


def _keras_bn(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with Keras' defaults: epsilon 1e-3 and moving-average momentum 0.99 (= PyTorch 0.01)."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def _keras_init(module: nn.Module) -> None:
    """Keras' default initialization (Glorot-uniform kernels, zero biases) for a faithful reproduction."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class SimpleClassifier(ExpressionClassifier):
    """Birenbaum's "simple classifier": the widely copied Keras FER2013 CNN (about 65 % test accuracy).

    Layer table (Birenbaum, input 48x48x1): a 'valid' 3x3 conv 1->64 (46x46), then four stages of
    'same' 3x3 convs with ReLU then BatchNorm — (64), (128, 128), (256, 256), (512, 512), the first
    stage's BN following its second conv only — each ending in 2x2 max-pool and dropout 0.5
    (46 -> 23 -> 11 -> 5 -> 2); flatten 2048; dense 512, 256, 128 with ReLU and dropout 0.4, 0.4,
    0.5; dense ``n_classes``. The dropout rates, the conv -> ReLU -> BN order, Keras' BN constants
    and Glorot init are those of the Keras source this table comes from. Its L2(0.01) penalty on
    the first conv kernel is a loss term and belongs to the training recipe (as do Adam at 1e-3,
    batch 64, ReduceLROnPlateau(factor 0.9, patience 3) and early stopping with patience 8).

    Parameter count: 5,905,863 as Keras reports it, i.e. 5,902,151 trainable + 3,712 BN moving
    means/variances; PyTorch keeps the latter as buffers, so compare with
    ``count_parameters(net, keras=True)``.
    """

    name = "simple"

    def __init__(self, n_classes: int = 7, in_channels: int = 1, size: int = 48, conv_dropout: float = 0.5,
                 dense_dropout: Sequence[float] = (0.4, 0.4, 0.5)) -> None:  # fmt: skip
        super().__init__(n_classes=n_classes, in_channels=in_channels, size=size)
        if len(dense_dropout) != 3:
            raise ValueError(f"dense_dropout needs 3 rates (after dense 512, 256, 128), got {list(dense_dropout)}")
        self._set_arch(conv_dropout=conv_dropout, dense_dropout=list(dense_dropout))
        spatial = (size - 2) // 16  # 'valid' 3x3 conv, then four 2x2 pools
        _check_size(self.name, size, spatial, 18)

        def conv(cin: int, cout: int, padding: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=padding), nn.ReLU(inplace=True)]

        layers: list[nn.Module] = [*conv(in_channels, 64, 0), *conv(64, 64, 1), _keras_bn(64)]
        layers += [nn.MaxPool2d(2), nn.Dropout(conv_dropout)]
        for cin, cout in ((64, 128), (128, 256), (256, 512)):
            layers += [*conv(cin, cout, 1), _keras_bn(cout), *conv(cout, cout, 1), _keras_bn(cout)]
            layers += [nn.MaxPool2d(2), nn.Dropout(conv_dropout)]
        self.trunk = nn.Sequential(*layers)
        dense: list[nn.Module] = []
        for cin, cout, p in zip((512 * spatial**2, 512, 256), (512, 256, 128), dense_dropout, strict=True):
            dense += [nn.Linear(cin, cout), nn.ReLU(inplace=True), nn.Dropout(p)]
        self.neck = nn.Sequential(*dense)
        self.head = nn.Linear(128, n_classes)
        _keras_init(self)


class SurrealClassifier(ExpressionClassifier):
    """Birenbaum's small "Surreal (paper)" classifier: two conv/pool/norm stages and two FC-256 layers.

    Seed table: conv 3x3 1->64 + ReLU; max-pool 3x3 stride 2 + norm; conv 3x3 64->128 + ReLU;
    max-pool 3x3 stride 2 + norm; FC 256 x 2; linear to the classes. Convs and pools pad like
    TensorFlow's 'SAME' (48 -> 24 -> 12), the layout this table was written in.

    ``norm="lrn"`` (default) is what "Norm" meant in that conv-pool-norm design: local response
    normalization with TensorFlow's CIFAR-10-tutorial constants (depth radius 4, bias 1,
    alpha 0.001/9, beta 0.75). PyTorch divides alpha by the window size n = 9, hence
    ``alpha=0.001`` below. ``norm="batch"`` swaps in BatchNorm, which usually trains faster and is
    offered as a documented deviation. The FC layers use ReLU and ``dropout`` (0.5; Birenbaum gives
    no rate).
    """

    name = "surreal"

    def __init__(self, n_classes: int = 7, in_channels: int = 1, size: int = 48, norm: Literal["lrn", "batch"] = "lrn",
                 hidden: int = 256, dropout: float = 0.5) -> None:  # fmt: skip
        super().__init__(n_classes=n_classes, in_channels=in_channels, size=size)
        if norm not in ("lrn", "batch"):
            raise ValueError(f"unknown norm {norm!r}: expected 'lrn' or 'batch'")
        self._set_arch(norm=norm, hidden=hidden, dropout=dropout)
        spatial = -(-size // 4)  # two 'SAME' stride-2 pools: ceil(ceil(size / 2) / 2)
        _check_size(self.name, size, spatial, 1)

        def norm_layer(channels: int) -> nn.Module:
            if norm == "lrn":
                return nn.LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1.0)
            return nn.BatchNorm2d(channels)

        layers: list[nn.Module] = []
        for cin, cout in ((in_channels, 64), (64, 128)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                       nn.MaxPool2d(3, stride=2, padding=1), norm_layer(cout)]  # fmt: skip
        self.trunk = nn.Sequential(*layers)
        self.neck = nn.Sequential(
            nn.Linear(128 * spatial**2, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )  # fmt: skip
        self.head = nn.Linear(hidden, n_classes)


class VGGClassifier(ExpressionClassifier):
    """VGG-style FER net of Khaireddin & Chen 2021, the strongest single network trained from scratch here.

    Reference: Y. Khaireddin, Z. Chen, "Facial Emotion Recognition: State of the Art Performance on
    FER2013", arXiv:2105.03588 (2021): 73.28 % single-network test accuracy on FER2013 without extra
    data. Architecture as in the authors' code (github.com/usef-kh/fer, ``models/vgg.py``): four
    stages of two [conv 3x3 (pad 1, with bias) -> BatchNorm -> ReLU] blocks with 64, 128, 256, 512
    channels, each stage ending in 2x2 max-pooling; then FC 4096 -> ReLU -> dropout, FC 4096 ->
    ReLU -> dropout, and a linear classifier. Dropout 0.2 is that model's default.

    Deviations and choices, all optional:

    * The authors train on random 40x40 crops (2x2x512 = 2048 features into the first FC) and
      average ten 40x40 crops at test time. ``size`` sets the input size and the first FC grows
      with it: ``size=40`` is their network exactly (29,890,759 parameters); at the default 48 the
      first FC sees 3x3x512 = 4608 features (40,376,519 parameters).
    * ``width`` scales the conv channels and ``fc`` the hidden FC width (for fast experiments);
      ``width=1, fc=4096`` is the reference.
    * Input in [-1, 1] instead of their [0, 1]; the BatchNorm after the first conv absorbs this.

    Their recipe (train.py / data/fer2013.py, for the trainer to follow): SGD, Nesterov momentum 0.9,
    lr 0.01, weight decay 1e-4, ReduceLROnPlateau(mode="max", factor 0.75, patience 5) on validation
    accuracy, batch 64, 300 epochs; augmentation by random resized crop (scale 0.8-1.2), random
    shift up to 20 %, horizontal flip, rotation up to 10 degrees, ten-crop 40 and random erasing
    (p 0.5). The paper then fine-tunes on train + validation with cosine annealing for its best
    number.
    """

    name = "vgg"

    def __init__(self, n_classes: int = 7, in_channels: int = 1, size: int = 48, width: float = 1.0,
                 fc: int = 4096, dropout: float = 0.2) -> None:  # fmt: skip
        super().__init__(n_classes=n_classes, in_channels=in_channels, size=size)
        if width <= 0 or fc < 1:
            raise ValueError(f"need width > 0 and fc >= 1, got width={width}, fc={fc}")
        self._set_arch(width=width, fc=fc, dropout=dropout)
        spatial = size // 16  # four 2x2 pools
        _check_size(self.name, size, spatial, 16)
        layers: list[nn.Module] = []
        cin = in_channels
        for base in (64, 128, 256, 512):
            cout = max(1, round(base * width))
            for c in (cin, cout):
                layers += [nn.Conv2d(c, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(2))
            cin = cout
        self.trunk = nn.Sequential(*layers)
        self.neck = nn.Sequential(
            nn.Linear(cin * spatial**2, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )  # fmt: skip
        self.head = nn.Linear(fc, n_classes)


class FastClassifier(ExpressionClassifier):
    """A small all-convolutional net designed for CPU training throughput on 48x48 grayscale faces.

    Why this shape: on a 2-core CPU the seeds' classifiers train at 30-40 images/s (``simple``: 645 s
    per FER2013 epoch), so a 3-arm x 7-seed experiment takes days. Here a 3x3 stem at full
    resolution with few channels, then ``len(widths)`` stages that each halve the resolution with a
    strided 3x3 conv and add ``depth - 1`` more 3x3 convs (BatchNorm + ReLU after each), then global
    average pooling, one hidden FC layer (the penultimate features) and the linear head. Nearly all
    compute sits at 24x24 and below; no max-pool, no large FC. ``work_size`` resizes the input
    (antialiased) as the first layer: the net reads 48x48 faces and computes at fewer pixels. At 10
    CPU minutes it underfits and is compute-bound, so steps buy more than width: at 40x40 it trains
    at ~1,450 images/s (batch 128, 2 cores; 1.4x the 48x48 rate) and reaches 65.4-65.8 % PublicTest
    (the ``classifier-fast-cpu`` preset; wider stages and 36x36 measured worse, docs/classifiers.md).
    """

    name = "fast"

    def __init__(self, n_classes: int = 7, in_channels: int = 1, size: int = 48, stem: int = 16,
                 widths: Sequence[int] = (32, 64, 128), depth: int = 2, fc: int = 128,
                 dropout: float = 0.3, work_size: int | None = None) -> None:  # fmt: skip
        super().__init__(n_classes=n_classes, in_channels=in_channels, size=size)
        if stem < 1 or not widths or min(widths) < 1 or depth < 1 or fc < 1:
            raise ValueError(f"need stem, widths, depth, fc >= 1, got {stem}, {list(widths)}, {depth}, {fc}")
        resized = {"work_size": work_size} if work_size is not None else {}  # archs saved before it stay equal
        self._set_arch(stem=stem, widths=list(widths), depth=depth, fc=fc, dropout=dropout, **resized)
        work = size if work_size is None else work_size
        _check_size(self.name, work, work // 2 ** len(widths), 2 ** len(widths))

        def conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        layers = ([] if work == size else [_Resize(work)]) + conv(in_channels, stem, 1)
        cin = stem
        for w in widths:
            layers += conv(cin, w, 2)
            for _ in range(depth - 1):
                layers += conv(w, w, 1)
            cin = w
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.neck = nn.Sequential(nn.Linear(cin, fc), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.head = nn.Linear(fc, n_classes)


class _Resize(nn.Module):
    """Antialiased bilinear resize to ``size x size``: a net that reads 48x48 faces and computes at fewer pixels."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)


class _BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with an identity (or strided 1x1 projection) skip, ReLU after the sum."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                  nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))  # fmt: skip
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))  # fmt: skip
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.skip(x))


class ResNetClassifier(ExpressionClassifier):
    """A small residual net (He et al. 2016), the second opinion beside ``fast`` in ``feraug quality``.

    Why another shape: a second judge should not share the first one's blind spots, so it differs
    in what matters for artefacts — a max-pooled stem instead of strided convolutions, residual
    skips, no hidden FC layer — at a cost of the same order on a CPU. A 3x3 stem at full resolution,
    a 2x2 max-pool, then one stage of ``blocks`` basic blocks per width (the first block of each
    later stage halves the resolution), global average pooling and dropout before the head.
    """

    name = "resnet"

    def __init__(self, n_classes: int = 7, in_channels: int = 1, size: int = 48, stem: int = 24,
                 widths: Sequence[int] = (32, 64, 128), blocks: int = 1, dropout: float = 0.3) -> None:  # fmt: skip
        super().__init__(n_classes=n_classes, in_channels=in_channels, size=size)
        if stem < 1 or not widths or min(widths) < 1 or blocks < 1:
            raise ValueError(f"need stem, widths, blocks >= 1, got {stem}, {list(widths)}, {blocks}")
        self._set_arch(stem=stem, widths=list(widths), blocks=blocks, dropout=dropout)
        _check_size(self.name, size, size // 2 ** len(widths), 2 ** len(widths))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem),
                                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]  # fmt: skip
        cin = stem
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(_BasicBlock(cin, w, 2 if (i > 0 and b == 0) else 1))
                cin = w
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.neck = nn.Dropout(dropout)
        self.head = nn.Linear(cin, n_classes)


CLASSIFIERS: dict[str, type[ExpressionClassifier]] = {
    cls.name: cls for cls in (SimpleClassifier, SurrealClassifier, VGGClassifier, FastClassifier, ResNetClassifier)
}


def build_classifier(name: str, *, n_classes: int = 7, in_channels: int = 1, size: int = 48,
                     **kwargs: Any) -> ExpressionClassifier:  # fmt: skip
    """Build the classifier registered as ``name`` (case-insensitive); ``kwargs`` go to its constructor."""
    key = name.strip().lower()
    if key not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}: expected one of {', '.join(sorted(CLASSIFIERS))}")
    return CLASSIFIERS[key](n_classes=n_classes, in_channels=in_channels, size=size, **kwargs)


def classifier_from_arch(arch: dict[str, Any]) -> ExpressionClassifier:
    """Rebuild an (untrained) classifier from its ``arch`` dict, e.g. one stored in a checkpoint."""
    return build_classifier(arch["name"], **arch["kwargs"])


def count_parameters(net: nn.Module, *, keras: bool = False) -> int:
    """Number of parameters; ``keras=True`` counts them as Keras' ``model.summary()`` does.

    Keras lists BatchNorm's moving mean and variance as non-trainable *parameters*; PyTorch keeps
    them as buffers (``running_mean``/``running_var``), so they are added back for the comparison
    (``num_batches_tracked`` has no Keras counterpart and is left out).
    """
    n = sum(p.numel() for p in net.parameters())
    if keras:
        n += sum(b.numel() for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var")))
    return n
