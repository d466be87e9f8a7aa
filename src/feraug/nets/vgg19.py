"""VGG19's convolutional ``features`` stack, built without torchvision, and the input it expects.

The perceptual loss (:mod:`feraug.gan.perceptual`) may measure with a VGG19 when the user has its
weights; ImageNet weights cannot be downloaded at run time, so only the architecture lives here and
a state-dict file fills it (:mod:`feraug.train.feature_extractor`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from torch import nn

#: torchvision's VGG19 ``features`` (configuration "E"): channels of each 3x3 conv, "M" a 2x2 max-pool.
VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                    512, 512, 512, 512, "M", 512, 512, 512, 512, "M")  # fmt: skip

#: ImageNet statistics that torchvision's VGG weights were trained with (inputs in [0, 1], RGB).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_features() -> nn.Sequential:
    """An untrained VGG19 ``features`` stack, layer for layer (and state-dict key for key) torchvision's.

    Built here rather than by ``torchvision.models.vgg19``: the layout is fixed and tiny, and this
    way a VGG19 state dict works without torchvision installed (``load_state_dict(strict=True)``
    then checks every key and shape of the file against it).
    """
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


def vgg19_layer_names() -> dict[str, int]:
    """``conv{b}_{i}``, ``relu{b}_{i}``, ``pool{b}`` (the names of the perceptual-loss literature) -> index."""
    names: dict[str, int] = {}
    block, conv, index = 1, 0, 0
    for v in VGG19_CFG:
        if v == "M":
            names[f"pool{block}"] = index
            block, conv, index = block + 1, 0, index + 1
        else:
            conv += 1
            names[f"conv{block}_{conv}"], names[f"relu{block}_{conv}"] = index, index + 1
            index += 2
    return names


class ImageNetInput(nn.Module):
    """GAN faces (``[N, 1, H, W]`` in [-1, 1]) as VGG's input: [0, 1], gray to RGB, ImageNet mean/std.

    Upsampled (bilinear) only when ``H`` or ``W`` is below ``min_size``, the side at which the chosen
    layer's feature map would vanish after its max-pools; at FER's 48x48 every VGG19 layer works as is.
    """

    def __init__(self, min_size: int) -> None:
        super().__init__()
        self.min_size = min_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"VGG19 extractor expects faces [N, 1, H, W] (or RGB [N, 3, H, W]), got {list(x.shape)}")
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False)
        x = (x + 1.0) * 0.5
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
