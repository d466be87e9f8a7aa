"""Device and precision selection."""

from __future__ import annotations

import warnings

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available")
    return device


def autocast_dtype(device: torch.device, amp: bool | str) -> torch.dtype | None:
    """bf16 autocast on CUDA when ``amp`` is on or ``auto``; never by default on CPU.

    On AVX2-only CPUs bf16 convolutions are ~30x slower than fp32, so ``auto`` keeps CPU in fp32.
    """
    if amp == "auto":
        amp = device.type == "cuda"
    if not amp:
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def gan_autocast_dtype(device: torch.device, amp: bool | str) -> torch.dtype | None:
    """:func:`autocast_dtype` for GAN training, which has no loss scaling: fp16 falls back to fp32 with a warning.

    On a CUDA GPU without bf16, :func:`autocast_dtype` picks fp16, whose gradients underflow without a
    ``GradScaler``; the classifiers have one, the GAN trainer (several optimizers per step, gradient
    penalties) does not, so it trains such GPUs in fp32 instead.
    """
    dtype = autocast_dtype(device, amp)
    if dtype == torch.float16:
        warnings.warn(f"{device} has no bf16 and GAN training has no fp16 loss scaling: training in fp32 "
                      "(set train.amp=false to silence this)", stacklevel=2)  # fmt: skip
        return None
    return dtype
