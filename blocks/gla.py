"""Gated linear attention (token "GLA"): Yang, Wang, Shen, Panda, Kim, "Gated Linear Attention
Transformers with Hardware-Efficient Training", ICML 2024 (arXiv:2312.06635).

    q, k, v, r = W x                     (D each; H heads of d = D / H channels)
    g  = logsigmoid(W_2 W_1 x + b) / 16  (a low-rank (16) gate, one log-decay per key channel)
    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T          (per head: S is d x d)
    o_t = S_t^T q_t / sqrt(d)
    out = W_o (RMSNorm_head(o) * SiLU(r))

As fla's GatedLinearAttention layer with expand_k = expand_v = 1 (the paper uses key width D/2).
`gla_recurrent` is the step-by-step reference, `gla_chunked` the same in chunks (tested equal);
the CUDA path calls fla's `chunk_gla` (blocks/linear_attention.py says which runs where).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icl.blocks.linear_attention import (KernelChoice, normal_, pad_tokens, rms_norm_heads,
                                         split_heads)
from icl.blocks.catalog import GLA_GATE_RANK as GATE_RANK  # the paper's low-rank gate (16)
from icl.blocks.stacked import StackedLinear

GATE_NORMALIZER = 16    # logsigmoid(.) / 16: decays near 1 at init, as the paper


def gla_recurrent(q: Tensor, k: Tensor, v: Tensor, g: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """q, k, g (b, t, h, dk), v (b, t, h, dv); g the log decay (<= 0)
    -> o (b, t, h, dv), final state (b, h, dk, dv)."""
    batch, length, heads, dk = q.shape
    state = q.new_zeros(batch, heads, dk, v.shape[-1])
    out = []
    for t in range(length):
        state = state * g[:, t].exp()[..., None] + k[:, t, :, :, None] * v[:, t, :, None, :]
        out.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, state))
    return torch.stack(out, dim=1), state


def gla_chunked(q: Tensor, k: Tensor, v: Tensor, g: Tensor, scale: float, chunk: int = 16) -> tuple[Tensor, Tensor]:
    """Same contract as `gla_recurrent`: quadratic inside chunks of `chunk` tokens, the state
    carried across chunks. Every exponent is a (non-positive) difference of cumulative log gates."""
    batch, length, heads, dk = q.shape
    dv = v.shape[-1]
    q, k, v, g = pad_tokens(length, chunk, q, k, v, g)  # g = 0, k = 0 on padding: state unchanged
    n = q.shape[1] // chunk
    q, k, g = (t.reshape(batch, n, chunk, heads, dk) for t in (q * scale, k, g))
    v = v.reshape(batch, n, chunk, heads, dv)
    cum = g.cumsum(dim=2)                                                   # (b, n, c, h, dk)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    diff = cum[:, :, :, None] - cum[:, :, None, :]                          # (b, n, i, j, h, dk)
    decay = torch.exp(diff.masked_fill(~causal[:, :, None, None], float("-inf")))
    scores = torch.einsum("bnihk,bnjhk,bnijhk->bnhij", q, k, decay)
    out = torch.einsum("bnhij,bnjhv->bnihv", scores, v)
    # each chunk's own contribution to the state at its end, then the scan across chunks
    own = torch.einsum("bnjhk,bnjhv->bnhkv", k * torch.exp(cum[:, :, -1:] - cum), v)
    state = q.new_zeros(batch, heads, dk, dv)
    entering = []
    for c in range(n):
        entering.append(state)
        state = torch.exp(cum[:, c, -1])[..., None] * state + own[:, c]
    entering = torch.stack(entering, dim=1)                                 # (b, n, h, dk, dv)
    out = out + torch.einsum("bnihk,bnhkv->bnihv", q * torch.exp(cum), entering)
    return out.reshape(batch, n * chunk, heads, dv)[:, :length], state


FLA_SHORT_FP32 = 64   # fla's chunk: fp32 inputs shorter than this are padded to it (below)


def gla_fla(q: Tensor, k: Tensor, v: Tensor, g: Tensor, scale: float, return_state: bool):
    from fla.ops.gla import chunk_gla  # CUDA only: imported when it runs
    length = q.shape[1]
    if q.dtype == torch.float32 and length < FLA_SHORT_FP32:
        # fla 0.6.0's chunk_gla faulted ("misaligned address") on fp32 inputs of 17 tokens on an
        # H100 and an H200 (Triton 3.6.0; 33, 63, 64 and 200 tokens ran, as did bf16 at 17:
        # benchmarks/gla_shape_check.py). Zeros appended (k = v = 0, log gate 0) change neither
        # the earlier outputs (causal) nor the final state, so the fault's shapes never reach fla.
        q, k, v, g = pad_tokens(length, FLA_SHORT_FP32, q, k, v, g)
    o, state = chunk_gla(q.contiguous(), k.contiguous(), v.contiguous(), g.contiguous(), scale=scale,
                         output_final_state=return_state)
    return o[:, :length], state


class GatedLinearAttention(KernelChoice, nn.Module):
    """Init: q, k, v, r and the gate's two factors N(0, init_std), the gate's bias 0, the output
    projection N(0, init_std / sqrt(n_layers)), the head norm's weight 1."""

    block_name = "GLA"

    def __init__(self, width: int, *, heads: int, mixer_backend: str = "auto", n_layers: int = 1,
                 init_std: float = 0.02):
        super().__init__()
        if width % heads:
            raise ValueError(f"GLA: heads={heads} does not divide width={width}")
        self.init_kernel(mixer_backend)
        self.width, self.heads, self.head_dim = width, heads, width // heads
        self.qkvr = StackedLinear(width, 4 * width, bias=False)
        self.gate_down = StackedLinear(width, GATE_RANK, bias=False)
        self.gate_up = StackedLinear(GATE_RANK, width, bias=True)
        self.norm_weight = nn.Parameter(torch.ones(1, self.head_dim))
        self.out_proj = StackedLinear(width, width, bias=False)
        for w in (self.qkvr.weight, self.gate_down.weight, self.gate_up.weight):
            normal_(w, init_std)
        nn.init.zeros_(self.gate_up.bias)
        normal_(self.out_proj.weight, init_std / math.sqrt(n_layers))

    def forward(self, x: Tensor, return_state: bool = False):
        """x (K, B, T, D) -> (K, B, T, D) [and the final states (K, B, H, d, d)]."""
        runs, batch = x.shape[:2]
        q, k, v, r = self.qkvr(x).chunk(4, dim=-1)
        g = F.logsigmoid(self.gate_up(self.gate_down(x))) / GATE_NORMALIZER
        q, k, v, g = (split_heads(t, self.heads) for t in (q, k, v, g))
        scale = self.head_dim ** -0.5
        if self.pick_kernel(x) == "fla":
            o, state = gla_fla(q, k, v, g, scale, return_state)
        else:
            o, state = gla_chunked(q.float(), k.float(), v.float(), g.float(), scale)
        o = o.to(x.dtype).reshape(runs, batch, *o.shape[1:])                 # (K, B, T, H, d)
        o = rms_norm_heads(o, self.norm_weight).flatten(-2) * F.silu(r)
        out = self.out_proj(o)
        if return_state:
            return out, state.reshape(runs, batch, *state.shape[1:])
        return out
