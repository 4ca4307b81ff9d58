"""Mamba-2 mixer (token "M2"): state-space duality (SSD) with a scalar A per head.
An architecture beyond the study.

    z, xBC, dt = in_proj(u)                 (E, E + 2N, H channels; E = expand * D, H = E / headdim)
    xBC   = SiLU(causal depthwise conv(xBC));  x, B, C = split(xBC)   (one group: B, C shared by heads)
    dt    = softplus(dt + dt_bias);  A = -exp(A_log)                     (one scalar per head)
    h_t   = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T      (per head: h is headdim x N)
    y_t   = h_t C_t + D x_t
    out   = out_proj(RMSNorm(y * SiLU(z)))

`ssd_chunked` computes the recurrence in chunks (quadratic inside a chunk, a short scan across
chunks); `ssd_ref` is the plain sequential recurrence, its reference.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icl.blocks.mamba import init_dt_bias
from icl.blocks.stacked import StackedCausalConv, StackedLinear, StackedNorm


def ssd_ref(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """x (b, l, h, p), dt (b, l, h), A (h,) or one per sequence (b, h), B, C (b, l, n)
    -> y (b, l, h, p), final state (b, h, p, n)."""
    batch, length, heads, headdim = x.shape
    state = x.new_zeros(batch, heads, headdim, B.shape[-1])
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A)                                          # (b, h)
        state = decay[:, :, None, None] * state + torch.einsum(
            "bh,bhp,bn->bhpn", dt[:, t], x[:, t], B[:, t])
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1), state


def ssd_chunked(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int = 64) -> tuple[Tensor, Tensor]:
    """Same contract as `ssd_ref`, in chunks of `chunk` steps."""
    batch, length, heads, headdim = x.shape
    pad = (-length) % chunk
    if pad:  # dt = 0 on padding: decay 1 and no input, so states and earlier outputs are unchanged
        x, dt, B, C = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C))
    n_chunks = x.shape[1] // chunk
    x = x.reshape(batch, n_chunks, chunk, heads, headdim)
    dt = dt.reshape(batch, n_chunks, chunk, heads)
    B = B.reshape(batch, n_chunks, chunk, -1)
    C = C.reshape(batch, n_chunks, chunk, -1)
    x_dt = x * dt[..., None]
    A = A if A.dim() == 1 else A[:, None, None, :]                               # per sequence
    a_cum = torch.cumsum(dt * A, dim=2)                                          # (b, c, q, h)
    # Inside a chunk: y_i = sum_{j<=i} exp(a_cum_i - a_cum_j) (C_i . B_j) dt_j x_j
    diff = a_cum[:, :, :, None, :] - a_cum[:, :, None, :, :]                     # (b, c, q_i, q_j, h)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=x.device).tril()
    decay = torch.exp(diff.masked_fill(~causal[:, :, None], float("-inf")))
    scores = torch.einsum("bcin,bcjn->bcij", C, B)
    y = torch.einsum("bcij,bcijh,bcjhp->bcihp", scores, decay, x_dt)
    # State at the end of each chunk from its own inputs, then carried across chunks.
    to_end = torch.exp(a_cum[:, :, -1:] - a_cum)                                  # (b, c, q, h)
    chunk_states = torch.einsum("bcjn,bcjh,bcjhp->bchpn", B, to_end, x_dt)
    state = x.new_zeros(batch, heads, headdim, B.shape[-1])
    entering = []
    for c in range(n_chunks):
        entering.append(state)
        state = torch.exp(a_cum[:, c, -1])[:, :, None, None] * state + chunk_states[:, c]
    entering = torch.stack(entering, dim=1)                                       # (b, c, h, p, n)
    y = y + torch.einsum("bcin,bchpn,bcih->bcihp", C, entering, torch.exp(a_cum))
    y = y.reshape(batch, n_chunks * chunk, heads, headdim)[:, :length]
    return y, state


class Mamba2Mixer(nn.Module):
    """Init as mamba_ssm's Mamba2: dt_bias with softplus(dt_bias) log-uniform in [0.001, 0.1],
    A_log = log U(1, 16), D = 1, projections PyTorch's default, out_proj / sqrt(n_layers)."""

    def __init__(self, width: int, *, d_state: int, d_conv: int, expand: int, headdim: int,
                 n_layers: int = 1, dt_min: float = 0.001, dt_max: float = 0.1):
        super().__init__()
        inner = expand * width
        if inner % headdim != 0:
            raise ValueError(f"mamba2: headdim={headdim} does not divide expand*width={inner}")
        self.inner, self.d_state, self.headdim, self.heads = inner, d_state, headdim, inner // headdim
        self.in_proj = StackedLinear(width, 2 * inner + 2 * d_state + self.heads, bias=False)
        self.conv1d = StackedCausalConv(inner + 2 * d_state, d_conv)
        self.dt_bias = nn.Parameter(torch.empty(1, self.heads))                  # (K, H)
        init_dt_bias(self.dt_bias, dt_min, dt_max)
        self.A_log = nn.Parameter(torch.log(torch.empty(1, self.heads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(1, self.heads))
        self.norm = StackedNorm("rmsnorm", inner)
        self.out_proj = StackedLinear(inner, width, bias=False)
        with torch.no_grad():
            self.out_proj.weight /= math.sqrt(n_layers)

    def forward(self, u: Tensor, return_state: bool = False):
        """u (K, B, L, D) -> (K, B, L, D) [and the final states (K, B, heads, headdim, N)]."""
        runs, batch, length, _ = u.shape
        z, xBC, dt = self.in_proj(u).split([self.inner, self.inner + 2 * self.d_state, self.heads], dim=-1)
        xBC = self.conv1d(xBC, silu=True)
        x, B, C = xBC.split([self.inner, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(dt + self.dt_bias[:, None, None, :])
        # The runs' sequences as one batch of K*B; A and D follow each sequence's run.
        A = (-torch.exp(self.A_log.float())).repeat_interleave(batch, dim=0)      # (K*B, H)
        D = self.D.repeat_interleave(batch, dim=0)[:, None, :, None]
        x = x.reshape(runs * batch, length, self.heads, self.headdim)
        y, state = ssd_chunked(x.float(), dt.reshape(runs * batch, length, -1).float(), A,
                               B.reshape(runs * batch, length, -1).float(),
                               C.reshape(runs * batch, length, -1).float())
        y = y + x * D
        y = y.reshape(runs, batch, length, self.inner).to(u.dtype)
        out = self.out_proj(self.norm(y * F.silu(z)))
        state = state.reshape(runs, batch, *state.shape[1:])
        return (out, state) if return_state else out
