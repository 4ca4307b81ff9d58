"""Gated DeltaNet (token "GDN"): the delta rule with a Mamba-2-style decay. Yang, Kautz,
Hatamizadeh, "Gated Delta Networks: Improving Mamba2 with Delta Rule", ICLR 2025 (arXiv:2412.06464).

    q, k, v = SiLU(causal depthwise conv(W x))          (D each; H heads of d = D / H)
    q, k    = q / |q|, k / |k|                          (per head)
    beta    = sigmoid(W_b x);  alpha = exp(g),  g = -exp(A_log) softplus(W_a x + dt_bias)  (per head)
    S_t = alpha_t (S_{t-1} - beta_t k_t k_t^T S_{t-1}) + beta_t k_t v_t^T
        (computed as fla does: S <- alpha_t S, then the delta rule on it)
    o_t = S_t^T q_t / sqrt(d)
    out = W_o (RMSNorm_head(o) * SiLU(W_r x))

As fla's GatedDeltaNet layer with head_dim = D / H and expand_v = 1. The recurrence is
blocks/deltanet.py's with its decay `g` (reference, chunked form, tested equal); the CUDA path
calls fla's `chunk_gated_delta_rule`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icl.blocks.deltanet import delta_chunked
from icl.blocks.linear_attention import KernelChoice, l2_normalize, normal_, rms_norm_heads, split_heads
from icl.blocks.mamba import init_dt_bias
from icl.blocks.stacked import StackedCausalConv, StackedLinear


class GatedDeltaNet(KernelChoice, nn.Module):
    """Init: the projections N(0, init_std), A_log = log U(1, 16) and dt_bias with softplus(dt_bias)
    log-uniform in [0.001, 0.1] (Mamba-2's, as the paper), the conv PyTorch's default, the output
    projection N(0, init_std / sqrt(n_layers)), the head norm's weight 1."""

    block_name = "GDN"

    def __init__(self, width: int, *, heads: int, d_conv: int, mixer_backend: str = "auto",
                 n_layers: int = 1, init_std: float = 0.02):
        super().__init__()
        if width % heads:
            raise ValueError(f"GDN: heads={heads} does not divide width={width}")
        self.init_kernel(mixer_backend)
        self.width, self.heads, self.head_dim = width, heads, width // heads
        self.qkv = StackedLinear(width, 3 * width, bias=False)
        self.conv = StackedCausalConv(3 * width, d_conv)
        self.gate_proj = StackedLinear(width, width, bias=False)            # the output gate r
        self.beta_decay = StackedLinear(width, 2 * heads, bias=False)       # W_b, W_a
        self.A_log = nn.Parameter(torch.log(torch.empty(1, heads).uniform_(1, 16)))
        self.dt_bias = nn.Parameter(torch.empty(1, heads))
        init_dt_bias(self.dt_bias, 0.001, 0.1)
        self.norm_weight = nn.Parameter(torch.ones(1, self.head_dim))
        self.out_proj = StackedLinear(width, width, bias=False)
        for w in (self.qkv.weight, self.gate_proj.weight, self.beta_decay.weight):
            normal_(w, init_std)
        normal_(self.out_proj.weight, init_std / math.sqrt(n_layers))

    def forward(self, x: Tensor, return_state: bool = False):
        """x (K, B, T, D) -> (K, B, T, D) [and the final states (K, B, H, d, d)]."""
        runs, batch = x.shape[:2]
        kernel = self.pick_kernel(x)
        qkv = self.conv(self.qkv(x), silu=True, fused=None if kernel == "fla" else False)
        q, k, v = (split_heads(t, self.heads) for t in qkv.chunk(3, dim=-1))
        q, k = l2_normalize(q), l2_normalize(k)
        beta, a = self.beta_decay(x).flatten(0, 1).float().chunk(2, dim=-1)  # (K * B, T, H)
        beta = torch.sigmoid(beta)
        dt_bias = self.dt_bias.float().repeat_interleave(batch, dim=0)[:, None, :]
        A = torch.exp(self.A_log.float()).repeat_interleave(batch, dim=0)[:, None, :]
        g = -A * F.softplus(a + dt_bias)                                     # log decay, per run's A
        scale = self.head_dim ** -0.5
        if kernel == "fla":
            from fla.ops.gated_delta_rule import chunk_gated_delta_rule  # CUDA only
            o, state = chunk_gated_delta_rule(q.contiguous(), k.contiguous(), v.contiguous(), g.contiguous(),
                                              beta.to(q.dtype).contiguous(), scale=scale,
                                              output_final_state=return_state)
        else:
            o, state = delta_chunked(q.float(), k.float(), v.float(), beta, scale, g=g)
        o = o.to(x.dtype).reshape(runs, batch, *o.shape[1:])
        o = rms_norm_heads(o, self.norm_weight).flatten(-2) * F.silu(self.gate_proj(x))
        out = self.out_proj(o)
        if return_state:
            return out, state.reshape(runs, batch, *state.shape[1:])
        return out
