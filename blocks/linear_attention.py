"""What the linear-attention mixers (GLA, DN, GDN, R7) share: the choice of implementation, the
head layout, and small pieces (L2 norm, per-head norms).

Implementation (the model option `mixer_backend`, recorded in the run's status as `backend_ran`):
- "reference": the plain-PyTorch form of the block's recurrence (its chunked form where it has
  one, tested equal to the step-by-step recurrence), on any device;
- "fla": flash-linear-attention's Triton kernels (`pip install 'icl-compiler[fla]'`), CUDA only;
- "auto" (default): fla's kernels on CUDA tensors, the reference on every other device, and the
  reference where fla is known to compute wrongly (`fla_declines`: the gated delta rule's
  backward on a Hopper GPU with Triton 3.4 to 3.7.0), with a one-line warning.
fla asked for (or "auto" on CUDA) without fla installed is a one-line error naming the install
command, not a quiet fallback to the reference; fla asked for where it declines is a one-line
error saying why. `backend_ran` (the run's status) records what ran.

Every block takes (K, B, T, D) activations (K runs stacked, blocks/stacked.py); the recurrences
take the K * B sequences as one batch in fla's layout (batch, tokens, heads, head_dim), so the
fla path folds K into fla's batch axis and each run's q / k / v / gates come from its own weights.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icl.blocks.catalog import BLOCK_OPTIONS, FLA_INSTALL
from icl.errors import IclError

KERNELS = BLOCK_OPTIONS["mixer_backend"].choices  # auto, fla, reference


class FlaMissing(IclError):
    """flash-linear-attention was asked for and is not installed: the command line prints it as
    one line naming the install."""


def fla_installed() -> bool:
    return importlib.util.find_spec("fla") is not None


def require_fla(block: str) -> None:
    if not fla_installed():
        raise FlaMissing(f"{block}: mixer_backend = fla needs flash-linear-attention, which is not "
                         f"installed: {FLA_INSTALL}")


# Blocks whose fla kernel's backward runs fla's gated chunk_bwd_dqkwg, which fla 0.6 refuses on
# Hopper with Triton >= 3.4 and < 3.7.1 (wrong results, fla issue #640) unless tilelang is installed.
GATED_CHUNK_BACKWARD = {"GDN"}


@functools.lru_cache(maxsize=None)
def fla_declines(block: str) -> str | None:
    """Why fla's kernel cannot run `block` correctly on the current CUDA device, or None."""
    if block not in GATED_CHUNK_BACKWARD or importlib.util.find_spec("tilelang") is not None:
        return None
    import triton

    version = tuple(int(part) for part in triton.__version__.split("+")[0].split(".")[:3] if part.isdigit())
    if torch.cuda.get_device_capability()[0] == 9 and (3, 4, 0) <= version < (3, 7, 1):
        return (f"flash-linear-attention's gated delta-rule backward computes wrongly on Hopper GPUs "
                f"with Triton {triton.__version__} (fla issue #640): needs Triton >= 3.7.1 or "
                f"`pip install tilelang`")
    return None


_told_autotune: set[str] = set()


def _fla(block: str) -> str:
    """"fla", saying once per process and block that fla's kernels tune themselves first: on a
    new machine a GLA or R7 run's first steps took minutes (an H100, 2026-12-06: 470 s for GLA's
    first 2 tests and R7's first 4, 170 s for all once Triton's cache held them)."""
    if block not in _told_autotune:
        _told_autotune.add(block)
        print(f"{block}: flash-linear-attention tunes its kernels on their first call; on a new "
              "machine the first steps can take minutes (Triton's cache keeps them for later runs)",
              file=sys.stderr, flush=True)
    return "fla"


def resolve_kernel(block: str, requested: str, device_type: str) -> str:
    """The implementation a forward on a device of this type runs: "fla" or "reference"."""
    if requested not in KERNELS:
        raise ValueError(f"{block}: mixer_backend must be one of {', '.join(KERNELS)}, got {requested!r}")
    if requested == "reference":
        return "reference"
    if requested == "fla":
        require_fla(block)
        if device_type != "cuda":
            raise ValueError(f"{block}: mixer_backend = fla runs on CUDA only, got {device_type} tensors "
                             "(mixer_backend = auto runs the PyTorch reference off CUDA)")
        reason = fla_declines(block)
        if reason:
            raise IclError(f"{block}: mixer_backend = fla: {reason} (mixer_backend = auto runs the "
                           "PyTorch reference here)")
        return _fla(block)
    if device_type != "cuda":
        return "reference"
    if not fla_installed():
        raise FlaMissing(f"{block}: on CUDA, mixer_backend = auto runs flash-linear-attention's kernels, "
                         f"which are not installed: {FLA_INSTALL} (or set mixer_backend = reference "
                         "to run the PyTorch reference on the GPU)")
    reason = fla_declines(block)
    if reason:
        warnings.warn(f"{block}: mixer_backend = auto runs the PyTorch reference: {reason}", stacklevel=2)
        return "reference"
    return _fla(block)


class KernelChoice:
    """Mixin of the blocks with an fla path: `mixer_backend` asked for, `backend_ran` recorded
    (ICLModel.scan_backend collects it into the run's status). The attribute is not called
    `backend`: that one is train.backend, the selective scan's (ICLModel.set_backend)."""

    block_name = "mixer"

    def init_kernel(self, mixer_backend: str) -> None:
        if mixer_backend not in KERNELS:
            raise ValueError(f"{self.block_name}: mixer_backend must be one of {', '.join(KERNELS)}, "
                             f"got {mixer_backend!r}")
        if mixer_backend == "fla":
            require_fla(self.block_name)  # at build time, before any training
        self.mixer_backend = mixer_backend
        self.backend_ran: str | None = None

    def _apply(self, fn, *args, **kwargs):
        """Moving the block to CUDA (model.to(device), before any step) asks for fla under auto and
        fla: missing, that is the error here rather than at the first forward."""
        module = super()._apply(fn, *args, **kwargs)
        weight = next(self.parameters(), None)
        if weight is not None and weight.device.type == "cuda":
            resolve_kernel(self.block_name, self.mixer_backend, "cuda")
        return module

    def pick_kernel(self, x: Tensor) -> str:
        self.backend_ran = resolve_kernel(self.block_name, self.mixer_backend, x.device.type)
        return self.backend_ran


def split_heads(x: Tensor, heads: int) -> Tensor:
    """(K, B, T, H * d) -> (K * B, T, H, d): the runs' sequences as one batch (a view)."""
    runs, batch, length, channels = x.shape
    return x.reshape(runs * batch, length, heads, channels // heads)


def merge_heads(y: Tensor, runs: int) -> Tensor:
    """(K * B, T, H, d) -> (K, B, T, H * d)."""
    rows, length, heads, dim = y.shape
    return y.reshape(runs, rows // runs, length, heads * dim)


def l2_normalize(x: Tensor, eps: float = 1e-6) -> Tensor:
    """x / sqrt(sum x^2 + eps) over the last axis (fla's l2norm convention)."""
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + eps)


def rms_norm_heads(y: Tensor, weight: Tensor, eps: float = 1e-5) -> Tensor:
    """RMSNorm of each head's d channels, y (K, B, T, H, d), one weight (K, d) shared by the heads."""
    runs, dim = weight.shape
    return F.rms_norm(y, (dim,), eps=eps) * weight.view(runs, 1, 1, 1, dim).to(y.dtype)


def per_run(p: Tensor, batch: int) -> Tensor:
    """A per-run parameter (K, ...) repeated for the K * B sequences: (K * B, ...)."""
    return p.repeat_interleave(batch, dim=0)


def pad_tokens(length: int, chunk: int, *tensors: Tensor) -> list[Tensor]:
    """Zero-pad (b, t, ...) tensors along t to a multiple of `chunk`."""
    pad = (-length) % chunk
    if not pad:
        return list(tensors)
    return [F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in tensors]


def normal_(weight: Tensor, std: float) -> None:
    with torch.no_grad():
        nn.init.normal_(weight, std=std)
