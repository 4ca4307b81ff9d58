"""The device a training or an evaluation runs on: `resolve_device(requested, work)`.

Shared by training and evaluation (evaluation imports it, never the training loop); a `cuda`
without an index takes this process's GPU slot (icl.training.gpu_slots).
"""
from __future__ import annotations

import torch

from icl.training import gpu_slots
from icl.training.errors import RunError


def resolve_device(requested: str | None, work: float = 0.0) -> torch.device:
    """"auto" (or None) = cuda when available, else cpu; a clear error for unusable devices.

    A `cuda` without an index, with several GPUs visible, is this process's least busy GPU
    (icl.training.gpu_slots; `work`, a training's steps to go, is claimed with it), made the
    current device; `cuda:N` is taken as given."""
    name = (requested or "auto").strip()
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError):
            raise RunError(f"unknown device {name!r}; use auto, cpu or cuda") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RunError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
    if device.type == "cuda" and device.index is None:
        device = gpu_slots.cuda_device(work)
    return device
