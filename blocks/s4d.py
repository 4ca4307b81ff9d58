"""S4D: a diagonal state-space layer applied as a causal convolution computed by FFT, and the
S4 block of the study (token "S"): S4D -> GELU -> 1x1 conv to 2D -> GLU.

Each of H channels holds N/2 complex modes (so N real numbers of state, N = d_state):
    A_n = -exp(log_A_real_n) + i * A_imag_n,   dt = exp(log_dt)
and the zero-order-hold discretisation with B = 1 gives the kernel
    K[l] = 2 Re( sum_n C_n (exp(dt A_n) - 1) / A_n * exp(dt A_n l) ),   l = 0 .. L-1
    y    = K * u (causal) + D u.
Initialisation (S4D-Lin, as the study's s4d.py): log_A_real = log 1/2, A_imag = pi n,
C ~ complex N(0, 1), log_dt ~ U(log 0.001, log 0.1), D ~ N(0, 1).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class S4DKernel(nn.Module):
    """Diagonal SSM parameters of H channels and the convolution kernel they define."""

    def __init__(self, channels: int, d_state: int, dt_min: float = 0.001, dt_max: float = 0.1):
        super().__init__()
        if d_state % 2 != 0:
            raise ValueError(f"S4D: d_state={d_state} must be even (complex modes come in pairs)")
        modes = d_state // 2
        self.log_dt = nn.Parameter(torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, modes, dtype=torch.cfloat)).clone())
        self.log_A_real = nn.Parameter(torch.full((channels, modes), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(modes, dtype=torch.float32).repeat(channels, 1))
        self.D = nn.Parameter(torch.randn(channels))

    def discretised(self) -> tuple[Tensor, Tensor, Tensor]:
        """dt*A, B_bar = (exp(dt A) - 1) / A and C, each (H, N/2) complex."""
        dt = torch.exp(self.log_dt.float())                                   # (H,)
        C = torch.view_as_complex(self.C.float().contiguous())                # (H, N/2)
        A = torch.complex(-torch.exp(self.log_A_real.float()), self.A_imag.float())
        dtA = A * dt[:, None]
        return dtA, (torch.exp(dtA) - 1.0) / A, C

    def kernel(self, length: int) -> Tensor:
        """K (H, L) in fp32."""
        dtA, B_bar, C = self.discretised()
        steps = torch.arange(length, device=dtA.device, dtype=torch.float32)
        powers = torch.exp(dtA[:, :, None] * steps)                          # (H, N/2, L)
        return 2 * torch.einsum("hn,hnl->hl", C * B_bar, powers).real

    def final_state(self, u: Tensor) -> Tensor:
        """State after the last step, x_L = sum_l exp(dt A (L-1-l)) B_bar u_l, as (B, H, N) reals."""
        dtA, B_bar, _ = self.discretised()
        length = u.shape[-1]
        steps = torch.arange(length - 1, -1, -1, device=dtA.device, dtype=torch.float32)
        powers = torch.exp(dtA[:, :, None] * steps) * B_bar[:, :, None]       # (H, N/2, L)
        state = torch.einsum("bhl,hnl->bhn", u.float().to(powers.dtype), powers)
        return torch.view_as_real(state).flatten(-2)

    def forward(self, u: Tensor, return_state: bool = False):
        """u (B, H, L) -> y (B, H, L) = causal conv(u, K) + D u, by FFT of size 2L (no wrap-around)
        [and the final state (B, H, N) when return_state]."""
        length = u.shape[-1]
        dtype = u.dtype
        u32 = u.float()
        k_f = torch.fft.rfft(self.kernel(length), n=2 * length)
        u_f = torch.fft.rfft(u32, n=2 * length)
        y = torch.fft.irfft(u_f * k_f, n=2 * length)[..., :length]
        y = (y + u32 * self.D.float()[:, None]).to(dtype)
        return (y, self.final_state(u32)) if return_state else y


class S4Block(nn.Module):
    """S4D over the D channels, GELU, Linear(D, 2D) (the study's 1x1 conv), GLU."""

    def __init__(self, width: int, *, d_state: int, n_layers: int = 1):
        super().__init__()
        self.s4d = S4DKernel(width, d_state)
        self.output_linear = nn.Linear(width, 2 * width, bias=True)

    def forward(self, x: Tensor, return_state: bool = False):
        y = self.s4d(x.transpose(1, 2), return_state=return_state)
        y, state = y if return_state else (y, None)
        out = F.glu(self.output_linear(F.gelu(y.transpose(1, 2))), dim=-1)
        return (out, state) if return_state else out
