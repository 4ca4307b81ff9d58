"""S4D: a diagonal state-space layer applied as a causal convolution (by FFT, as the study's code;
a Toeplitz matrix product up to TOEPLITZ_MAX_TOKENS tokens, off by default), and the S4 block of
the study (token "S"): S4D -> GELU -> 1x1 conv to 2D -> GLU.

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

from icl.blocks.stacked import StackedLinear


class S4DKernel(nn.Module):
    """Diagonal SSM parameters of H channels for each of K runs, and the convolution kernels they
    define: log_dt (K, H), C (K, H, N/2, 2) (complex as pairs), log_A_real and A_imag (K, H, N/2),
    D (K, H)."""

    def __init__(self, channels: int, d_state: int, dt_min: float = 0.001, dt_max: float = 0.1):
        super().__init__()
        if d_state % 2 != 0:
            raise ValueError(f"S4D: d_state={d_state} must be even (complex modes come in pairs)")
        modes = d_state // 2
        log_dt = torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        C = torch.view_as_real(torch.randn(channels, modes, dtype=torch.cfloat))
        self.log_dt = nn.Parameter(log_dt.unsqueeze(0))
        self.C = nn.Parameter(C.unsqueeze(0).clone())
        self.log_A_real = nn.Parameter(torch.full((1, channels, modes), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(modes, dtype=torch.float32).repeat(1, channels, 1))
        self.D = nn.Parameter(torch.randn(channels).unsqueeze(0))

    def discretised(self) -> tuple[Tensor, Tensor, Tensor]:
        """dt*A, B_bar = (exp(dt A) - 1) / A and C, each (K, H, N/2) complex."""
        dt = torch.exp(self.log_dt.float())                                   # (K, H)
        # torch.complex, not view_as_complex: C may be a view into the engine's flat parameter
        # buffer at an odd offset, which view_as_complex refuses
        C = torch.complex(self.C[..., 0].float(), self.C[..., 1].float())     # (K, H, N/2)
        A = torch.complex(-torch.exp(self.log_A_real.float()), self.A_imag.float())
        dtA = A * dt[..., None]
        return dtA, (torch.exp(dtA) - 1.0) / A, C

    def kernel(self, length: int) -> Tensor:
        """K (K, H, L) in fp32."""
        dtA, B_bar, C = self.discretised()
        steps = torch.arange(length, device=dtA.device, dtype=torch.float32)
        powers = torch.exp(dtA[..., None] * steps)                           # (K, H, N/2, L)
        return 2 * torch.einsum("khn,khnl->khl", C * B_bar, powers).real

    def final_state(self, u: Tensor) -> Tensor:
        """State after the last step, x_L = sum_l exp(dt A (L-1-l)) B_bar u_l, as (K, B, H, N)
        reals; u (K, B, L, H)."""
        dtA, B_bar, _ = self.discretised()
        length = u.shape[2]
        steps = torch.arange(length - 1, -1, -1, device=dtA.device, dtype=torch.float32)
        powers = torch.exp(dtA[..., None] * steps) * B_bar[..., None]       # (K, H, N/2, L)
        state = torch.einsum("kblh,khnl->kbhn", u.float().to(powers.dtype), powers)
        return torch.view_as_real(state).flatten(-2)

    def forward(self, u: Tensor, return_state: bool = False):
        """u (K, B, L, H) -> y (K, B, L, H) = causal conv(u, K) + D u, in fp32 [and the final state
        (K, B, H, N) when return_state]."""
        dtype = u.dtype
        u32 = u.float()
        y = causal_conv(u32, self.kernel(u.shape[2]))
        y = (y + u32 * self.D.float()[:, None, None, :]).to(dtype)
        return (y, self.final_state(u32)) if return_state else y


# Sequences up to this many tokens convolve as one matrix product with the kernel's Toeplitz
# matrix, longer ones by FFT. Off (0: FFT at every length, as the study's code) until measured
# on a GPU (benchmarks/s4_conv_run.sh compares both): the FFT path's layout copies and complex
# products took most of a paper-size S4 step (benchmarks/results/train_step_paper_profile.txt:
# aten::copy_ 34%, mul 16%, the FFTs 11%), and the product would replace them, but it costs L^2
# floats per channel (1024 tokens x 512 channels: 2 GB a layer) and, unlike the FFT, runs on
# TF32 tensor cores where the run's precision says tf32, in its backward too.
TOEPLITZ_MAX_TOKENS = 0


def causal_conv(u: Tensor, kernel: Tensor) -> Tensor:
    """y[l] = sum_{j <= l} kernel[l - j] u[j] per channel: u (K, B, L, H) fp32, kernel (K, H, L)
    -> (K, B, L, H) fp32 (fp32 operands under autocast too; matrix products follow the run's
    TF32 setting as every other one does)."""
    length = u.shape[2]
    if length > TOEPLITZ_MAX_TOKENS:
        # FFT of size 2L along the token axis: no wrap-around
        k_f = torch.fft.rfft(kernel, n=2 * length).transpose(1, 2).unsqueeze(1)      # (K, 1, F, H)
        u_f = torch.fft.rfft(u, n=2 * length, dim=2)
        return torch.fft.irfft(u_f * k_f, n=2 * length, dim=2)[:, :, :length]
    steps = torch.arange(length, device=u.device)
    lag = steps[None, :] - steps[:, None]                                   # [j, l] = l - j
    # T[j, l] = kernel[l - j] for l >= j, else the appended zero: y = u @ T per channel
    toeplitz = F.pad(kernel, (0, 1))[..., torch.where(lag >= 0, lag, length)]  # (K, H, L, L)
    with torch.autocast(u.device.type, enabled=False):
        y = torch.matmul(u.permute(0, 3, 1, 2), toeplitz)                  # (K, H, B, L)
    return y.permute(0, 2, 3, 1)


class S4Block(nn.Module):
    """S4D over the D channels, GELU, Linear(D, 2D) (the study's 1x1 conv), GLU."""

    def __init__(self, width: int, *, d_state: int, n_layers: int = 1):
        super().__init__()
        self.s4d = S4DKernel(width, d_state)
        self.output_linear = StackedLinear(width, 2 * width, bias=True)

    def forward(self, x: Tensor, return_state: bool = False):
        """x (K, B, L, D) -> (K, B, L, D) [and the final states (K, B, D, N)]."""
        y = self.s4d(x, return_state=return_state)
        y, state = y if return_state else (y, None)
        out = F.glu(self.output_linear(F.gelu(y)), dim=-1)
        return (out, state) if return_state else out
