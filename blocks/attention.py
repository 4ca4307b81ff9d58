"""Causal multi-head self-attention (token "A"), GPT-2 style, through scaled_dot_product_attention."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from icl.blocks.stacked import StackedLinear


class CausalSelfAttention(nn.Module):
    """qkv = Linear(D, 3D); per-head causal softmax attention; proj = Linear(D, D).

    Initialised as GPT-2: weights N(0, init_std), the output projection N(0, init_std / sqrt(n_layers))
    (one residual branch per block of the layer string), biases zero.
    """

    def __init__(self, width: int, *, heads: int, bias: bool, n_layers: int = 1, init_std: float = 0.02):
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"attention: heads={heads} does not divide width={width}")
        self.width, self.heads = width, heads
        self.qkv = StackedLinear(width, 3 * width, bias=bias)
        self.proj = StackedLinear(width, width, bias=bias)
        nn.init.normal_(self.qkv.weight, std=init_std)
        nn.init.normal_(self.proj.weight, std=init_std / math.sqrt(n_layers))
        for linear in (self.qkv, self.proj):
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x (K, B, T, D) -> (K, B, T, D): the K runs' B sequences are one SDPA call of K*B."""
        runs, batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=-1)
        # (K, B, T, D) -> (K*B, heads, T, D / heads)
        q, k, v = (t.reshape(runs * batch, length, self.heads, width // self.heads).transpose(1, 2)
                   for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(runs, batch, length, width)
        return self.proj(y)
