"""Causal multi-head self-attention (token "A"), GPT-2 style, through scaled_dot_product_attention.

Under TF32 (train.precision tf32, CUDA) the attention itself runs on fp16 copies of q, k, v:
PyTorch has no TF32 attention kernel, and its fp32 one (cutlass, no tensor cores) was 52% of
a Transformer pack's step at 280 tokens on an H200 (benchmarks/results/train_step_packed_profile.txt);
fp16 keeps TF32's 10-bit mantissa (softmax and sums stay fp32 inside the kernel) and ran the
attention's forward + backward 3.6x faster there, relative error 4e-4 against fp64 (fp32: 3e-7).
fp16's range is the catch: its smallest normal number is 6e-5, and the gradients that reach the
attention while a model sits on a loss plateau are far smaller. Unscaled, they flushed to zero:
on the quick token MQAR (specs/quick/mqar.icl) a model started from the plain GPT's weights
(benchmarks/plain_mqar.py) stayed on the plateau for 7,000 steps, and reached 98% at step 2,300
with the attention in fp32 and PyTorch's LayerNorm (H100, benchmarks/results/mqar_bisect.md; the
Triton LayerNorm's gradients match PyTorch's, the fp16 attention's were 8% off). So the backward runs on the incoming gradient scaled by
a power of two that brings its largest element to 1 (exact, as fp16 AMP's loss scaling, but per
call and per run and without overflow checks), and the scale is divided out again in fp32.
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


class _GradientScale(torch.autograd.Function):
    """Identity forward on (K, ...) activations; `scale` (K, 1, ...) is shared by the two ends of
    the fp16 attention. Backward at the output end (pick=True): picks, per run k, the power of two
    that brings the incoming gradient's largest element to 1, writes it to `scale` and multiplies
    the gradient by it. At the input end (pick=False), which autograd reaches later (it lies
    upstream): divides the gradient by it."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor, pick: bool) -> Tensor:
        ctx.scale, ctx.pick = scale, pick
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if not ctx.pick:
            return grad / ctx.scale, None, None
        largest = grad.abs().amax(dim=tuple(range(1, grad.dim())), keepdim=True).float()
        exponent = torch.where(largest > 0, -torch.ceil(torch.log2(largest)), torch.zeros_like(largest))
        ctx.scale.copy_(torch.exp2(exponent.clamp(-100, 100)))  # no host sync: CUDA graphs capture it
        return grad * ctx.scale, None, None


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
        half = tf32_attention(qkv)
        if half:  # one cast of the dense product, not three of strided views
            scale = torch.ones(runs, 1, 1, 1, device=qkv.device)  # each run's gradient scale
            qkv = _GradientScale.apply(qkv, scale, False).half()
        # (K, B, T, D) -> (K*B, heads, T, D / heads), views
        q, k, v = (t.reshape(runs * batch, length, self.heads, width // self.heads).transpose(1, 2)
                   for t in qkv.split(width, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        # back to (K, B, T, D) in the product's dtype: the transpose and the cast in one copy
        y = y.transpose(1, 2).to(dtype, memory_format=torch.contiguous_format).view(runs, batch, length, width)
        if half:
            y = _GradientScale.apply(y, scale, True)
        return self.proj(y)
