"""GAN networks by name, so a checkpoint rebuilds any of its networks from its ``arch`` alone.

Every GAN network records its constructor arguments in ``.arch``; the noise-GAN networks, the
expression networks and the RDNB generator also record their registry ``name`` there. CycleGAN's
networks predate the registry: their ``arch`` has no name (checkpoints of existing runs must keep
resuming, and the arch is compared on resume), so a nameless arch is recognised by its fields.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from feraug.nets.expression_nets import ExpressionDiscriminator, ExpressionGenerator
from feraug.nets.gan_nets import PatchDiscriminator, RDNBGenerator, ResnetGenerator
from feraug.nets.noise_gan_nets import NoiseDiscriminator, NoiseGenerator

GAN_NETS: dict[str, type[nn.Module]] = {
    "resnet-generator": ResnetGenerator,
    "rdnb-generator": RDNBGenerator,
    "patch-discriminator": PatchDiscriminator,
    "dcgan-generator": NoiseGenerator,
    "dcgan-discriminator": NoiseDiscriminator,
    "expression-generator": ExpressionGenerator,
    "expression-discriminator": ExpressionDiscriminator,
}


def build_gan_net(arch: dict[str, Any]) -> nn.Module:
    """The network ``arch`` describes (weights uninitialised: load a state dict into it)."""
    kwargs = dict(arch)
    name = kwargs.pop("name", None)
    if name is None:
        name = "resnet-generator" if "n_blocks" in kwargs else "patch-discriminator" if "n_layers" in kwargs else ""
    if name not in GAN_NETS:
        raise ValueError(f"unknown GAN network {name!r} in a checkpoint's arch: expected one of {', '.join(GAN_NETS)}")
    return GAN_NETS[name](**kwargs)
