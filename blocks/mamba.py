"""Mamba-1 mixer (token "M"), numerically the same as mamba_ssm's `Mamba` (its unfused path).

    x, z  = in_proj(u)                      (2 * E channels, E = expand * D)
    x     = SiLU(causal depthwise conv(x))  (kernel d_conv)
    dt, B, C = x_proj(x)                    (dt_rank, d_state, d_state)
    dt    = dt_proj(dt)                     (softplus and dt_proj's bias inside the scan)
    y     = selective_scan(x, dt, A, B, C, D, z)   with A = -exp(A_log); y *= SiLU(z) there
    out   = out_proj(y)

Parameter names equal mamba_ssm's, so its state_dict loads as is (tests/gpu). The scan is
`icl.kernels.selective_scan`; `backend` (auto | triton | triton_seq | reference) is passed down
to it, and `backend_ran` names the backend the last forward ran, for the run's status.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from icl.blocks.stacked import StackedCausalConv, StackedLinear
from icl.kernels.dispatch import resolve_backend


def inverse_softplus(x: Tensor) -> Tensor:
    """y with softplus(y) = x (x > 0)."""
    return x + torch.log(-torch.expm1(-x))


def init_dt_bias(bias: Tensor, dt_min: float, dt_max: float, floor: float = 1e-4) -> None:
    """Mamba's dt initialisation: softplus(bias) log-uniform in [dt_min, dt_max]."""
    with torch.no_grad():
        log_dt = torch.rand_like(bias) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        bias.copy_(inverse_softplus(torch.exp(log_dt).clamp(min=floor)))


def scan_runs(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, z: Tensor,
              delta_bias: Tensor, return_state: bool, backend: str):
    """The selective scan of K runs in one call: activations (K, B, L, E) and B, C (K, B, L, N),
    each run with its own A (K, E, N), D and delta_bias (K, E). The K batches become one batch
    of K B rows and the parameters K groups (the kernels' grouped layout), so a pack is one
    launch: the many channels a pack brings are what keep the GPU busy at the study's shapes.
    Returns y (K, B, L, E) [and states (K, B, E, N)]."""
    from icl.kernels import selective_scan  # kernels may import triton: keep it off import time

    runs = x.shape[0]

    def rows(t: Tensor) -> Tensor:  # (K, B, L, C) -> (K B, C, L): a view, the scan reads any strides
        return t.flatten(0, 1).transpose(1, 2)

    # B and C: the chunked kernel ("triton") reads them once per state, and strided along L
    # that costs more than these two small copies (H100: ~4 ms of a 24-layer step); the
    # sequential one ("triton_seq") reads each step's N values of B_t and C_t, contiguous in
    # the (K, B, L, N) views as they are.
    if backend != "triton_seq":
        B, C = (t.transpose(2, 3).contiguous().transpose(2, 3) for t in (B, C))
    out = selective_scan(rows(x), rows(dt), A, rows(B), rows(C), D,
                         z=rows(z), delta_bias=delta_bias, delta_softplus=True,
                         return_last_state=return_state, backend=backend)
    y, state = out if return_state else (out, None)
    y = y.transpose(1, 2).unflatten(0, (runs, -1))
    return (y, state.unflatten(0, (runs, -1))) if return_state else y


class MambaMixer(nn.Module):
    """Init as mamba_ssm + the study's MixerModel: in_proj and x_proj PyTorch's default,
    out_proj PyTorch's default divided by sqrt(n_layers), dt_proj weight U(+-dt_rank^-0.5),
    A_log = log(1..N) (S4D-real), D = 1, conv PyTorch's default."""

    def __init__(self, width: int, *, d_state: int, d_conv: int, expand: int, dt_rank: int | None,
                 dt_min: float, dt_max: float, n_layers: int = 1):
        super().__init__()
        inner = expand * width
        dt_rank = math.ceil(width / 16) if dt_rank is None else dt_rank
        self.width, self.inner, self.d_state, self.dt_rank = width, inner, d_state, dt_rank
        self.backend: str | None = None  # asked for: set by ICLModel.set_backend
        self.backend_ran: str | None = None  # what the last forward ran (the run's status)
        self.in_proj = StackedLinear(width, 2 * inner, bias=False)
        self.conv1d = StackedCausalConv(inner, d_conv)
        self.x_proj = StackedLinear(inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = StackedLinear(dt_rank, inner, bias=True)
        A_log = torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1)
        self.A_log = nn.Parameter(A_log.unsqueeze(0))                 # (K, E, N)
        self.D = nn.Parameter(torch.ones(1, inner))                   # (K, E)
        self.out_proj = StackedLinear(inner, width, bias=False)

        dt_std = dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -dt_std, dt_std)
        init_dt_bias(self.dt_proj.bias, dt_min, dt_max)
        with torch.no_grad():
            self.out_proj.weight /= math.sqrt(n_layers)

    def forward(self, u: Tensor, return_state: bool = False):
        """u (K, B, L, D) -> (K, B, L, D) [and the final scan states (K, B, E, N) when return_state]."""
        # x and z as two products, not chunks of one: chunk's backward zero-fills and copies
        # the whole (K, B, L, 2E) gradient
        x, z = (self.in_proj.rows(u, part * self.inner, (part + 1) * self.inner) for part in (0, 1))
        self.backend_ran = resolve_backend(x.device.type, self.backend)
        x = self.conv1d(x, silu=True, fused=self.backend_ran != "reference")
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = torch.matmul(dt, self.dt_proj.weight.transpose(1, 2).unsqueeze(1))  # bias: in the scan
        A = -torch.exp(self.A_log.float())
        out = scan_runs(x, dt, A, B, C, self.D.float(), z, self.dt_proj.bias.float(), return_state,
                        self.backend_ran)
        y, state = out if return_state else (out, None)
        out = self.out_proj(y)
        return (out, state) if return_state else out
