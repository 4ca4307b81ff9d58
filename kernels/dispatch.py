"""Backend choice for the selective scan: Triton on CUDA, the pure-PyTorch reference elsewhere.

Backends: "triton" (the chunked kernel, selective_scan_triton.py), "triton_seq" (the
sequential-over-L kernel, selective_scan_seq.py, made for short sequences and many packed
channels), "reference" (pure PyTorch), and "auto": on CUDA the Triton kernel named by
AUTO_CUDA_BACKEND, elsewhere the reference.

Order of precedence: the call's `backend=` (the run's train.backend), then the environment
variable ICL_SCAN_BACKEND, then "auto". A backend that cannot run here falls back to the
reference with a one-line warning, given once per process.
"""
from __future__ import annotations

import importlib.util
import os
import warnings

BACKENDS = ("auto", "triton", "triton_seq", "reference")
# What "auto" runs on CUDA: the sequential kernel, chosen from benchmarks/results/
# selective_scan_packed.md (H200, 2026-12-05, D 256, L 280, N 16, 1024 rows = a pack of 16):
# forward + backward 5.1 ms fp32 / 5.0 bf16 against the chunked kernel's 9.8 / 9.6 and
# mamba_ssm's 18.0 / 15.4; the Mamba M*8 step at 280 tokens, K = 16, went from 7.76 to 5.26 ms
# per run (train_step_packed.before-2026-12-07-h200.md). At 64 rows an earlier version of it was within 12% of the
# chunked kernel (fwd+bwd 0.89 vs 0.80 ms fp32), and the K = 1 step was faster with it (9.15 vs 9.94).
AUTO_CUDA_BACKEND = "triton_seq"
ENV_VAR = "ICL_SCAN_BACKEND"

_warned: set[str] = set()


def requested_backend(backend: str | None = None) -> str:
    """The backend asked for: the argument, else $ICL_SCAN_BACKEND, else "auto"."""
    name = backend if backend is not None else os.environ.get(ENV_VAR, "auto")
    name = name.strip().lower()
    if name not in BACKENDS:
        source = "backend=" if backend is not None else f"${ENV_VAR}"
        raise ValueError(f"selective_scan: {source} must be one of {', '.join(BACKENDS)}, got {name!r}")
    return name


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def resolve_backend(device_type: str, backend: str | None = None) -> str:
    """The backend that will run on a device of this type ("cuda", "cpu", ...): "triton",
    "triton_seq" or "reference"."""
    name = requested_backend(backend)
    if name == "reference":
        return "reference"
    if name == "auto":
        if device_type != "cuda":
            return "reference"
        if not triton_available():
            _warn_once("selective_scan: triton is not installed; using the reference backend")
            return "reference"
        return AUTO_CUDA_BACKEND
    # A forced Triton kernel: CUDA tensors, or CPU tensors under the Triton interpreter (tests).
    if not triton_available():
        _warn_once(f"selective_scan: backend '{name}' asked for but triton is not installed; "
                   "using the reference backend")
        return "reference"
    if device_type != "cuda" and not triton_interpreted():
        _warn_once(f"selective_scan: backend '{name}' needs a CUDA device (or TRITON_INTERPRET=1), "
                   f"got {device_type}; using the reference backend")
        return "reference"
    return name
