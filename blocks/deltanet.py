"""DeltaNet (token "DN"): linear attention updated by the delta rule. Schlag, Irie, Schmidhuber,
"Linear Transformers Are Secretly Fast Weight Programmers", ICML 2021 (arXiv:2102.11174); the
parallel form of Yang, Wang, Zhang, Shen, Kim, "Parallelizing Linear Transformers with the Delta
Rule over Sequence Length", NeurIPS 2024 (arXiv:2406.06484).

    q, k, v = SiLU(causal depthwise conv(W x))          (D each; H heads of d = D / H)
    q, k    = q / |q|, k / |k|                          (per head)
    beta    = sigmoid(W_b x)                            (one per head)
    S_t = S_{t-1} + beta_t k_t (v_t - S_{t-1}^T k_t)^T  (per head: S is d x d)
    o_t = S_t^T q_t / sqrt(d)
    out = W_o RMSNorm_head(o)

As fla's DeltaNet layer (short conv, SiLU, L2-normalised q and k, per-head output norm, no output
gate). `delta_recurrent` is the step-by-step reference; `delta_chunked` the chunked form (the WY
form of Yang et al.: a unit-triangular solve per chunk, tested equal). Both take an optional
per-head log decay `g`, which Gated DeltaNet (blocks/gated_deltanet.py) uses.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from icl.blocks.linear_attention import (KernelChoice, l2_normalize, normal_, pad_tokens, rms_norm_heads,
                                         split_heads)
from icl.blocks.stacked import StackedCausalConv, StackedLinear


def delta_recurrent(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, scale: float,
                    g: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """q, k (b, t, h, dk), v (b, t, h, dv), beta and the optional log decay g (b, t, h)
    -> o (b, t, h, dv), final state (b, h, dk, dv). With g: S <- exp(g_t) S first."""
    batch, length, heads, dk = q.shape
    state = q.new_zeros(batch, heads, dk, v.shape[-1])
    out = []
    for t in range(length):
        if g is not None:
            state = state * g[:, t].exp()[..., None, None]
        recalled = torch.einsum("bhk,bhkv->bhv", k[:, t], state)          # what the state holds at k_t
        update = beta[:, t, :, None] * (v[:, t] - recalled)
        state = state + k[:, t, :, :, None] * update[:, :, None, :]
        out.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, state))
    return torch.stack(out, dim=1), state


def delta_chunked(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, scale: float, g: Tensor | None = None,
                  chunk: int = 16) -> tuple[Tensor, Tensor]:
    """Same contract as `delta_recurrent`, in chunks. Inside a chunk with cumulative log decay
    c_i and the state S0 entering it, the updates u_i = beta_i (v_i - (decayed S)^T k_i) solve
        u_i + beta_i sum_{j<i} exp(c_i - c_j) (k_i . k_j) u_j = beta_i (v_i - exp(c_i) S0^T k_i),
    a unit lower-triangular system L U = beta V - beta exp(c) K S0, so U = U0 - W S0 with
    U0 = L^-1 beta V and W = L^-1 beta exp(c) K for all chunks at once; then
        o_i   = scale (exp(c_i) q_i^T S0 + sum_{j<=i} exp(c_i - c_j) (q_i . k_j) u_j)
        S_end = exp(c_last) S0 + sum_j exp(c_last - c_j) k_j u_j^T."""
    batch, length, heads, dk = q.shape
    dv = v.shape[-1]
    if g is None:
        g = beta.new_zeros(beta.shape)
    q, k, v, beta, g = pad_tokens(length, chunk, q, k, v, beta, g)  # beta = 0 on padding: no update
    n = q.shape[1] // chunk
    to_chunks = lambda t: t.reshape(batch, n, chunk, heads, -1).transpose(2, 3)   # (b, n, h, c, d)
    q, k, v = to_chunks(q * scale), to_chunks(k), to_chunks(v)
    beta, g = (t.reshape(batch, n, chunk, heads).transpose(2, 3) for t in (beta, g))  # (b, n, h, c)
    cum = g.cumsum(dim=-1)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    ratio = torch.exp((cum[..., :, None] - cum[..., None, :]).masked_fill(~causal, float("-inf")))
    strict = (beta[..., None] * ratio * (k @ k.transpose(-1, -2))).tril(-1)
    system = strict + torch.eye(chunk, dtype=q.dtype, device=q.device)
    u0 = torch.linalg.solve_triangular(system, beta[..., None] * v, upper=False, unitriangular=True)
    w = torch.linalg.solve_triangular(system, (beta * cum.exp())[..., None] * k, upper=False, unitriangular=True)
    scores = ratio * (q @ k.transpose(-1, -2))                             # (b, n, h, i, j), causal
    to_end = torch.exp(cum[..., -1:] - cum)[..., None] * k                  # (b, n, h, c, dk)
    state = q.new_zeros(batch, heads, dk, dv)
    out = []
    for c in range(n):
        u = u0[:, c] - w[:, c] @ state
        out.append(cum[:, c].exp()[..., None] * (q[:, c] @ state) + scores[:, c] @ u)
        state = cum[:, c, :, -1].exp()[..., None, None] * state + to_end[:, c].transpose(-1, -2) @ u
    out = torch.stack(out, dim=1).transpose(2, 3).reshape(batch, n * chunk, heads, dv)
    return out[:, :length], state


class DeltaNet(KernelChoice, nn.Module):
    """Init: q, k, v and beta projections N(0, init_std), the conv PyTorch's default (Conv1d), the
    output projection N(0, init_std / sqrt(n_layers)), the head norm's weight 1."""

    block_name = "DN"

    def __init__(self, width: int, *, heads: int, d_conv: int, mixer_backend: str = "auto",
                 n_layers: int = 1, init_std: float = 0.02):
        super().__init__()
        if width % heads:
            raise ValueError(f"DN: heads={heads} does not divide width={width}")
        self.init_kernel(mixer_backend)
        self.width, self.heads, self.head_dim = width, heads, width // heads
        self.qkv = StackedLinear(width, 3 * width, bias=False)
        self.conv = StackedCausalConv(3 * width, d_conv)
        self.beta_proj = StackedLinear(width, heads, bias=False)
        self.norm_weight = nn.Parameter(torch.ones(1, self.head_dim))
        self.out_proj = StackedLinear(width, width, bias=False)
        normal_(self.qkv.weight, init_std)
        normal_(self.beta_proj.weight, init_std)
        normal_(self.out_proj.weight, init_std / math.sqrt(n_layers))

    def qkv_beta(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The per-token inputs of the recurrence, in (K * B, T, H, d) and (K * B, T, H)."""
        kernel = self.backend_ran
        qkv = self.conv(self.qkv(x), silu=True, fused=None if kernel == "fla" else False)
        q, k, v = (split_heads(t, self.heads) for t in qkv.chunk(3, dim=-1))
        beta = torch.sigmoid(self.beta_proj(x)).flatten(0, 1)
        return l2_normalize(q), l2_normalize(k), v, beta

    def forward(self, x: Tensor, return_state: bool = False):
        """x (K, B, T, D) -> (K, B, T, D) [and the final states (K, B, H, d, d)]."""
        runs, batch = x.shape[:2]
        kernel = self.pick_kernel(x)
        q, k, v, beta = self.qkv_beta(x)
        scale = self.head_dim ** -0.5
        if kernel == "fla":
            # CUDA only: imported when it runs. fla's chunked kernel refuses fp32 inputs; its
            # fused recurrent one (same recurrence, a step per token) takes them.
            from fla.ops.delta_rule import chunk_delta_rule, fused_recurrent_delta_rule
            delta_rule = fused_recurrent_delta_rule if q.dtype == torch.float32 else chunk_delta_rule
            o, state = delta_rule(q.contiguous(), k.contiguous(), v.contiguous(), beta.contiguous(),
                                  scale=scale, output_final_state=return_state)
        else:
            o, state = delta_chunked(q.float(), k.float(), v.float(), beta.float(), scale)
        o = o.to(x.dtype).reshape(runs, batch, *o.shape[1:])
        out = self.out_proj(rms_norm_heads(o, self.norm_weight).flatten(-2))
        if return_state:
            return out, state.reshape(runs, batch, *state.shape[1:])
        return out
