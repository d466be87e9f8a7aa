"""Precision selection: bf16 autocast on CUDA; GAN training never runs fp16 (it has no loss scaling)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import feraug.train.device as device_module
from feraug.api import build_cyclegan_trainer
from feraug.config import CycleGANConfig, build_config, parse_override
from feraug.data import make_toy_faces
from feraug.train.device import autocast_dtype, gan_autocast_dtype

FP32_FALLBACK = "has no bf16 and GAN training has no fp16 loss scaling: training in fp32"


def test_a_gpu_without_bf16_trains_gans_in_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # device objects only: nothing runs on them
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_a, **_k: False)
    assert autocast_dtype(cuda, "auto") == torch.float16  # classifiers: fp16, with their GradScaler
    with pytest.warns(UserWarning, match=FP32_FALLBACK):
        assert gan_autocast_dtype(cuda, "auto") is None
    with pytest.warns(UserWarning, match=FP32_FALLBACK):
        assert gan_autocast_dtype(cuda, True) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gan_autocast_dtype(cuda, False) is None  # asked for fp32: nothing to say
        assert gan_autocast_dtype(cpu, "auto") is None
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_a, **_k: True)
        assert gan_autocast_dtype(cuda, "auto") == torch.bfloat16


def test_the_gan_trainer_gets_the_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What ``train_cyclegan`` builds: fp16 from the device rules (as on a GPU without bf16) becomes fp32."""
    monkeypatch.setattr(device_module, "autocast_dtype", lambda *_args: torch.float16)
    sets = ["net.ngf=4", "net.n_blocks=0", "net.ndf=4", "train.device=cpu"]
    cfg = build_config(CycleGANConfig, preset="cyclegan", overrides=[parse_override(s) for s in sets])
    assert isinstance(cfg, CycleGANConfig)
    with pytest.warns(UserWarning, match=FP32_FALLBACK):
        trainer = build_cyclegan_trainer(cfg, tmp_path, data=make_toy_faces(n=200, seed=1), progress=False)
    assert trainer.autocast_dtype is None
