"""RWKV-7 time mixing (token "R7"): Peng et al., "RWKV-7 'Goose' with Expressive Dynamic State
Evolution", 2025 (arXiv:2503.14456). A generalised delta rule with a per-channel decay and a
per-channel in-context learning rate.

    x_c  = x_t + (x_{t-1} - x_t) * mu_c            (token shift, c in r w k v a g)
    r, k, v = W_r x_r, W_k x_k, W_v x_v             (D each; H heads of d = D / H)
    w    = -exp(-1/2) sigmoid(w0 + tanh(x_w W_w1) W_w2)   (log decay per channel, in (-0.61, 0))
    a    = sigmoid(a0 + x_a W_a1 W_a2)              (in-context learning rate per channel)
    kk   = normalize_head(k * k_k);   k <- k * (1 + (a - 1) * k_a)
    S_t  = diag(exp(w_t)) S_{t-1} - (kk_t * a_t) (kk_t^T S_{t-1}) + k_t v_t^T      (S is d x d)
    o_t  = S_t^T r_t;   o <- GroupNorm_head(o) + (sum_head r * k * r_k) v
    out  = W_o (o * (sigmoid(x_g W_g1) W_g2))

As fla's RWKV7Attention without the value residual across layers (v_first: a block here sees only
its own input) and with every low-rank size 32. `rwkv7_recurrent` is the step-by-step reference
(fla's DPLR form S_t = diag(exp(w)) S + b (a^T S) + k v^T with a = -kk, b = kk * a); the CUDA
path calls fla's `chunk_rwkv7`. There is no chunked PyTorch form here (the DPLR chunking is not
cheap to write plainly); the reference runs step by step.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icl.blocks.linear_attention import KernelChoice, l2_normalize, normal_, split_heads
from icl.blocks.catalog import R7_LORA_RANK as LORA_RANK  # RWKV-7's smallest low-rank size (32)
from icl.blocks.stacked import StackedLinear
from icl.kernels.stretches import run_in_stretches

DECAY_SCALE = math.exp(-0.5)
GROUP_NORM_EPS = 64e-5  # RWKV-7's ln_x: 1e-5 * head_size_divisor^2


# Steps per checkpointed stretch of the reference (kernels/stretches.py): autograd keeps the
# state entering each stretch, not one per token, and recomputes a stretch in the backward (same
# values). Without it the zoo's R7 on sparse parity (280 tokens, 8 layers) peaked at 22.5 GB on
# the CPU.
CHECKPOINT_STEPS = 32


def rwkv7_recurrent(r: Tensor, w: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor,
                    scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """r, w, k, a, b (b, t, h, dk), v (b, t, h, dv); w the log decay
    -> o (b, t, h, dv), final state (b, h, dk, dv), for
    S_t = diag(exp(w_t)) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T,  o_t = scale S_t^T r_t."""
    batch, length, heads, dk = r.shape
    state = r.new_zeros(batch, heads, dk, v.shape[-1])
    out, state = run_in_stretches(_steps, state, (r, w, k, v, a, b), axis=1, steps=CHECKPOINT_STEPS,
                                  extra=(scale,))
    return torch.cat(out, dim=1), state


def _steps(state, r, w, k, v, a, b, scale):
    """The recurrence over one stretch of tokens from `state`: (o of the stretch, state after it)."""
    out = []
    for t in range(r.shape[1]):
        removed = torch.einsum("bhk,bhkv->bhv", a[:, t], state)            # a_t^T S_{t-1}
        state = (state * w[:, t].exp()[..., None] + b[:, t, :, :, None] * removed[:, :, None, :]
                 + k[:, t, :, :, None] * v[:, t, :, None, :])
        out.append(torch.einsum("bhk,bhkv->bhv", r[:, t] * scale, state))
    return torch.stack(out, dim=1), state


class RWKV7TimeMix(KernelChoice, nn.Module):
    """Init (RWKV-7's, for a first layer; it has no layer index here): mu_c = 1 - (i/D)^p with p
    0.2 (r, g), 0.7 (k, v), 0.9 (w, a); w0 = -7 + 5 (i/(D-1))^0.85 + 1/2; a0 = 0; the low-rank
    factors' first half 0 and their second half orthogonal x 0.1; k_k = 0.85, k_a = 1, r_k = 0;
    the group norm's weight 1 and bias 0. r, k, v N(0, init_std); W_o N(0, init_std / sqrt(n_layers))."""

    block_name = "R7"

    def __init__(self, width: int, *, heads: int, mixer_backend: str = "auto", n_layers: int = 1,
                 init_std: float = 0.02):
        super().__init__()
        if width % heads:
            raise ValueError(f"R7: heads={heads} does not divide width={width}")
        self.init_kernel(mixer_backend)
        self.width, self.heads, self.head_dim = width, heads, width // heads
        ramp = torch.arange(width, dtype=torch.float32) / width
        self.mu = nn.Parameter(torch.stack([1 - ramp ** p for p in (0.2, 0.9, 0.7, 0.7, 0.9, 0.2)])[None])
        self.rkv = StackedLinear(width, 3 * width, bias=False)
        self.w0 = nn.Parameter((-7 + 5 * (torch.arange(width) / max(1, width - 1)) ** 0.85 + 0.5)[None].float())
        self.a0 = nn.Parameter(torch.zeros(1, width))
        self.w_down, self.a_down, self.g_down = (StackedLinear(width, LORA_RANK, bias=False) for _ in range(3))
        self.w_up, self.a_up, self.g_up = (StackedLinear(LORA_RANK, width, bias=False) for _ in range(3))
        self.k_k = nn.Parameter(torch.full((1, width), 0.85))
        self.k_a = nn.Parameter(torch.ones(1, width))
        self.r_k = nn.Parameter(torch.zeros(1, width))
        self.ln_weight = nn.Parameter(torch.ones(1, width))
        self.ln_bias = nn.Parameter(torch.zeros(1, width))
        self.out_proj = StackedLinear(width, width, bias=False)
        with torch.no_grad():
            for down, up in ((self.w_down, self.w_up), (self.a_down, self.a_up), (self.g_down, self.g_up)):
                down.weight.zero_()
                nn.init.orthogonal_(up.weight[0])
                up.weight.mul_(0.1)
        normal_(self.rkv.weight, init_std)
        normal_(self.out_proj.weight, init_std / math.sqrt(n_layers))

    def forward(self, x: Tensor, return_state: bool = False):
        """x (K, B, T, D) -> (K, B, T, D) [and the final states (K, B, H, d, d)]."""
        runs, batch, length, width = x.shape
        kernel = self.pick_kernel(x)
        view = lambda p: p.to(x.dtype).view(runs, 1, 1, width)           # a (K, D) parameter
        shifted = F.pad(x, (0, 0, 1, 0))[:, :, :length] - x               # x_{t-1} - x_t, x_{-1} = 0
        xr, xw, xk, xv, xa, xg = (x + shifted * self.mu[:, i].to(x.dtype).view(runs, 1, 1, width)
                                  for i in range(6))
        r, k, v = self.rkv.rows(xr, 0, width), self.rkv.rows(xk, width, 2 * width), self.rkv.rows(xv, 2 * width, 3 * width)
        w = -DECAY_SCALE * torch.sigmoid(view(self.w0) + self.w_up(torch.tanh(self.w_down(xw))))
        a = torch.sigmoid(view(self.a0) + self.a_up(self.a_down(xa)))
        gate = self.g_up(torch.sigmoid(self.g_down(xg)))
        kk = l2_normalize((k * view(self.k_k)).view(runs, batch, length, self.heads, -1)).flatten(-2)
        k = k * (1 + (a - 1) * view(self.k_a))
        r_h, w_h, k_h, v_h, kk_h, a_h = (split_heads(t, self.heads) for t in (r, w, k, v, kk, a))
        if kernel == "fla":
            from fla.ops.rwkv7 import chunk_rwkv7  # CUDA only: imported when it runs
            o, state = chunk_rwkv7(r_h.contiguous(), w_h.contiguous(), k_h.contiguous(), v_h.contiguous(),
                                   (-kk_h).contiguous(), (kk_h * a_h).contiguous(), scale=1.0,
                                   output_final_state=return_state)
        else:
            o, state = rwkv7_recurrent(*(t.float() for t in (r_h, w_h, k_h, v_h, -kk_h, kk_h * a_h)))
        o = o.to(x.dtype).reshape(runs, batch, length, self.heads, self.head_dim)
        # GroupNorm of each head's channels (RWKV-7's ln_x), each run's own affine
        o = F.layer_norm(o, (self.head_dim,), eps=GROUP_NORM_EPS).flatten(-2)
        o = o * view(self.ln_weight) + view(self.ln_bias)
        bonus = (r * k * view(self.r_k)).view(runs, batch, length, self.heads, -1).sum(-1, keepdim=True)
        o = o + (bonus * v.view(runs, batch, length, self.heads, -1)).flatten(-2)
        out = self.out_proj(o * gate)
        if return_state:
            return out, state.reshape(runs, batch, *state.shape[1:])
        return out
