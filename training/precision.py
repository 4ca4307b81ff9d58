"""Numeric precision of a run's matrix products on CUDA: `train { precision = fp32 | tf32 | bf16 }`.

- fp32  every product in full fp32 (PyTorch's own default);
- tf32  products on the tensor cores with TF32 inputs (10-bit mantissa), fp32 storage and
        accumulation: several times faster than fp32 at width 256, and what most training
        code runs on Ampere and later GPUs (the default);
- bf16  the forward pass under bf16 autocast; weights, gradients and Adam stay fp32.

The CPU always computes in fp32: the setting only changes how a GPU runs a run, but it
is part of the run's id (a bf16 run is a different experiment), as `device` is not.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from icl.compiler.runs import train_settings
from icl.run import Run


def precision_of(run: Run) -> str:
    return str(train_settings(run)["precision"])


@contextlib.contextmanager
def matmul_precision(precision: str, dev: torch.device) -> Iterator[None]:
    """TF32 tensor-core products while inside (CUDA and precision tf32 or bf16); restored after."""
    if dev.type != "cuda":
        yield
        return
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    tf32 = precision != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def autocast(precision: str, dev: torch.device):
    """The forward pass's autocast context: bf16 on CUDA for precision bf16, else nothing.

    The autocast cache stays off: it would keep bf16 copies of weights across a CUDA graph."""
    if dev.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
