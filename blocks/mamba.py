"""Mamba-1 mixer (token "M"), numerically the same as mamba_ssm's `Mamba` (its unfused path).

    x, z  = in_proj(u)                      (2 * E channels, E = expand * D)
    x     = SiLU(causal depthwise conv(x))  (kernel d_conv)
    dt, B, C = x_proj(x)                    (dt_rank, d_state, d_state)
    dt    = dt_proj(dt)                     (softplus and dt_proj's bias inside the scan)
    y     = selective_scan(x, dt, A, B, C, D, z)   with A = -exp(A_log); y *= SiLU(z) there
    out   = out_proj(y)

Parameter names equal mamba_ssm's, so its state_dict loads as is (tests/gpu). The scan is
`icl.kernels.selective_scan`; `backend` (auto | triton | reference) is passed down to it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def inverse_softplus(x: Tensor) -> Tensor:
    """y with softplus(y) = x (x > 0)."""
    return x + torch.log(-torch.expm1(-x))


def init_dt_bias(bias: Tensor, dt_min: float, dt_max: float, floor: float = 1e-4) -> None:
    """Mamba's dt initialisation: softplus(bias) log-uniform in [dt_min, dt_max]."""
    with torch.no_grad():
        log_dt = torch.rand_like(bias) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        bias.copy_(inverse_softplus(torch.exp(log_dt).clamp(min=floor)))


def causal_depthwise_conv(x: Tensor, conv: nn.Conv1d) -> Tensor:
    """x (B, C, L) -> (B, C, L); conv is padded by kernel-1 on both sides, keep the causal part."""
    return conv(x)[..., : x.shape[-1]]


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
        self.backend: str | None = None  # set by ICLModel.set_backend
        self.in_proj = nn.Linear(width, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, width, bias=False)

        dt_std = dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -dt_std, dt_std)
        init_dt_bias(self.dt_proj.bias, dt_min, dt_max)
        with torch.no_grad():
            self.out_proj.weight /= math.sqrt(n_layers)

    def forward(self, u: Tensor, return_state: bool = False):
        """u (B, L, D) -> (B, L, D) [and the final scan state (B, E, N) when return_state]."""
        from icl.kernels import selective_scan  # kernels may import triton: keep it off import time

        # Views, not copies, into the scan: it reads any strides. x and z are split on the last
        # axis so that their gradients meet in one contiguous (B, L, 2E) buffer for in_proj.
        x, z = self.in_proj(u).chunk(2, dim=-1)                      # (B, L, E) each
        x = F.silu(causal_depthwise_conv(x.transpose(1, 2), self.conv1d))  # (B, E, L)
        dt, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = dt @ self.dt_proj.weight.t()                            # (B, L, E), bias added in the scan
        # B and C are the exception: the scan reads them once per state, and strided along L
        # that costs more than these two small copies (H100: ~4 ms of a 24-layer step).
        B = B.transpose(1, 2).contiguous()                           # (B, N, L)
        C = C.transpose(1, 2).contiguous()
        A = -torch.exp(self.A_log.float())
        y = selective_scan(x, dt.transpose(1, 2), A, B, C, self.D.float(),
                           z=z.transpose(1, 2), delta_bias=self.dt_proj.bias.float(),
                           delta_softplus=True, return_last_state=return_state, backend=self.backend)
        y, state = y if return_state else (y, None)
        out = self.out_proj(y.transpose(1, 2))
        return (out, state) if return_state else out
