"""Causal multi-head self-attention (token "A"), GPT-2 style, through scaled_dot_product_attention.

Under TF32 (train.precision tf32, CUDA) the attention itself runs on fp16 copies of q, k, v:
PyTorch has no TF32 attention kernel, and its fp32 one (cutlass, no tensor cores) was 52% of
a Transformer pack's step at 280 tokens on an H200 (benchmarks/results/train_step_packed_profile.txt);
fp16 keeps TF32's 10-bit mantissa (softmax and sums stay fp32 inside the kernel) and ran the
attention's forward + backward 3.6x faster there, relative error 4e-4 against fp64 (fp32: 3e-7).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icl.blocks.stacked import StackedLinear


def tf32_attention(q: Tensor) -> bool:
    """Whether this call runs the attention in fp16: fp32 CUDA activations with TF32 products on
    (training/precision.py's matmul_precision) and no autocast (which picks its own dtype)."""
    return (q.is_cuda and q.dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32
            and not torch.is_autocast_enabled("cuda"))


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
        qkv = self.qkv(x)
        dtype = qkv.dtype  # bf16 under autocast
        if tf32_attention(qkv):
            qkv = qkv.half()  # one cast of the dense product, not three of strided views
        # (K, B, T, D) -> (K*B, heads, T, D / heads), views
        q, k, v = (t.reshape(runs * batch, length, self.heads, width // self.heads).transpose(1, 2)
                   for t in qkv.split(width, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        # back to (K, B, T, D) in the product's dtype: the transpose and the cast in one copy
        y = y.transpose(1, 2).to(dtype, memory_format=torch.contiguous_format)
        return self.proj(y.view(runs, batch, length, width))
