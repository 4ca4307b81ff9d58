"""The primitives every block is built from, with a leading run axis K.

A model holds the weights of K independent runs stacked on a first axis: a linear layer's weight
is (K, out, in) and is applied to activations (K, ..., in) with one batched matmul, a norm's
weight is (K, D), an embedding table (K, V, D). A lone run is K = 1. Modules are built for one
run (K = 1) and packed by concatenating the parameters of runs built alone
(`icl.blocks.model.stack_models`), so a packed run starts from exactly the weights it would have
alone. Nothing here caches K: it is read from the weights at every call.

Each primitive draws its init as the PyTorch module it replaces would (nn.Linear, nn.LayerNorm,
nn.Embedding, nn.Conv1d), from the same random stream in the same order, so a K = 1 model has the
weights an unstacked model of the same seed had.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def runs_of(x: Tensor) -> int:
    return x.shape[0]


class StackedLinear(nn.Module):
    """y = x W_k^T + b_k for run k: weight (K, out, in), bias (K, out) or None."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(1, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(1, out_features)) if bias else None
        self.default_init()

    def default_init(self) -> None:
        """nn.Linear's init (kaiming uniform, a = sqrt(5); bias U(+-1/sqrt(fan_in))), drawn on the
        first run's (out, in) slice so that fan-in is the layer's."""
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.weight[0], a=math.sqrt(5))
            if self.bias is not None:
                bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
                nn.init.uniform_(self.bias[0], -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """x (K, ..., in) -> (K, ..., out)."""
        runs, shape = x.shape[0], x.shape[1:-1]
        flat = x.reshape(runs, -1, self.in_features)
        w = self.weight.transpose(1, 2).to(flat.dtype)
        if self.bias is None:
            y = torch.bmm(flat, w)
        else:
            y = torch.baddbmm(self.bias.to(flat.dtype).unsqueeze(1), flat, w)
        return y.reshape(runs, *shape, self.out_features)

    def rows(self, x: Tensor, start: int, stop: int) -> Tensor:
        """Output features start .. stop - 1 only (weight rows): (K, ..., stop - start), contiguous."""
        runs, shape = x.shape[0], x.shape[1:-1]
        flat = x.reshape(runs, -1, self.in_features)
        w = self.weight[:, start:stop].transpose(1, 2).to(flat.dtype)
        if self.bias is None:
            y = torch.bmm(flat, w)
        else:
            y = torch.baddbmm(self.bias[:, start:stop].to(flat.dtype).unsqueeze(1), flat, w)
        return y.reshape(runs, *shape, stop - start)


def pytorch_default_init(module: nn.Module, zero_bias: bool = True) -> None:
    """Every StackedLinear in `module` back to nn.Linear's default weight init (kaiming uniform,
    a = sqrt(5), per run). zero_bias: the bias zeroed, what mamba-ssm's MixerModel (_init_weights)
    leaves in the blocks it does not re-initialise, the released code's hybrid attention among
    them; else nn.Linear's own U(+-1/sqrt(fan_in)) (`init = pytorch`)."""
    with torch.no_grad():
        for linear in module.modules():
            if not isinstance(linear, StackedLinear):
                continue
            if not zero_bias:
                linear.default_init()  # blocks are built one run at a time
                continue
            for k in range(linear.weight.shape[0]):
                nn.init.kaiming_uniform_(linear.weight[k], a=math.sqrt(5))
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)


class StackedNorm(nn.Module):
    """LayerNorm (weight and bias) or RMSNorm (weight only) over the last axis, eps 1e-5 as GPT-2
    and Mamba, with each run's own affine: weight and bias (K, D)."""

    def __init__(self, kind: str, width: int):
        super().__init__()
        if kind not in ("layernorm", "rmsnorm"):
            raise ValueError(f"unknown norm {kind!r} (layernorm | rmsnorm)")
        self.kind, self.width, self.eps = kind, width, 1e-5
        self.weight = nn.Parameter(torch.ones(1, width))
        self.bias = nn.Parameter(torch.zeros(1, width)) if kind == "layernorm" else None

    def forward(self, x: Tensor, fused: bool | None = None) -> Tensor:
        """x (K, ..., D) -> (K, ..., D). `fused`: through the Triton kernel (kernels/layer_norm.py),
        else this PyTorch reference; None: the kernel on CUDA when Triton is there."""
        if fused is None:
            from icl.kernels.dispatch import triton_available
            fused = x.is_cuda and triton_available() and self.width <= 4096
        if fused:
            from icl.kernels.layer_norm import stacked_norm  # kernels import triton: not at import time
            return stacked_norm(x, self.weight, self.bias, self.eps)
        affine = (x.shape[0],) + (1,) * (x.dim() - 2) + (self.width,)
        if self.kind == "layernorm":
            y = F.layer_norm(x, (self.width,), eps=self.eps)
            return y * self.weight.view(affine) + self.bias.view(affine)
        return F.rms_norm(x, (self.width,), eps=self.eps) * self.weight.view(affine)


class StackedEmbedding(nn.Module):
    """Each run's own table: weight (K, V, D), N(0, 1) as nn.Embedding unless re-initialised."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = nn.Parameter(torch.empty(1, num_embeddings, embedding_dim))
        with torch.no_grad():
            nn.init.normal_(self.weight[0])

    def forward(self, ids: Tensor) -> Tensor:
        """ids (K, ...) int -> (K, ..., D): run k looks its ids up in its own table."""
        runs = ids.shape[0]
        offsets = torch.arange(runs, device=ids.device).view(runs, *(1,) * (ids.dim() - 1))
        flat = self.weight.reshape(runs * self.num_embeddings, self.embedding_dim)
        return F.embedding(ids + offsets * self.num_embeddings, flat)


class StackedCausalConv(nn.Module):
    """Causal depthwise convolution along the token axis of (K, B, L, C) activations, each run
    with its own taps: weight (K, C, width), bias (K, C). Token t sees tokens t - width + 1 .. t.
    Init as nn.Conv1d(C, C, width, groups=C)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.channels, self.width = channels, width
        self.weight = nn.Parameter(torch.empty(1, channels, width))
        self.bias = nn.Parameter(torch.empty(1, channels))
        with torch.no_grad():  # nn.Conv1d's init: fan_in = width (one input channel per group)
            nn.init.kaiming_uniform_(self.weight[0].unsqueeze(1), a=math.sqrt(5))
            bound = 1 / math.sqrt(width)
            nn.init.uniform_(self.bias[0], -bound, bound)

    def forward(self, x: Tensor, silu: bool = False, fused: bool | None = None) -> Tensor:
        """x (K, B, L, C) -> (K, B, L, C), followed by SiLU when `silu`. `fused`: through the
        Triton kernel (kernels/causal_conv.py), else this PyTorch reference; None: the kernel
        on CUDA when Triton is there."""
        if fused is None:
            from icl.kernels.dispatch import triton_available
            fused = x.is_cuda and triton_available()
        if fused:
            from icl.kernels.causal_conv import causal_conv  # kernels import triton: not at import time
            return causal_conv(x, self.weight, self.bias, silu=silu)
        y = self.reference(x)
        return F.silu(y) if silu else y

    def reference(self, x: Tensor) -> Tensor:
        """The sum over the taps of shifted copies (the convolution is short: Mamba's is 4 wide)."""
        runs, length = x.shape[0], x.shape[2]
        padded = F.pad(x, (0, 0, self.width - 1, 0))
        w = self.weight.to(x.dtype).view(runs, 1, 1, self.channels, self.width)
        y = self.bias.to(x.dtype).view(runs, 1, 1, self.channels).expand_as(x)
        for j in range(self.width):
            y = y + padded[:, :, j:j + length] * w[..., j]
        return y
