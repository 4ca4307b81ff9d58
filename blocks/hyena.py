"""Hyena operator of order 2 (token "HY"): Poli, Massaroli, Nguyen, Fu, Dao, Baccus, Bengio,
Ermon, Re, "Hyena Hierarchy: Towards Larger Convolutional Language Models", ICML 2023
(arXiv:2302.10866).

    x0, x1, v = causal depthwise conv(W_in x)        (D each; a short conv, no activation)
    z   = x1 * v
    y   = x0 * (h * z + bias * z)                     (h * z: a causal long convolution per channel)
    out = W_out y

The long filter h (one per channel, as long as the prompt) is implicit: h_s = FFN(p(s)) * exp(-lambda_c s)
at lag s, p(s) = sin / cos of s at 4 frequencies (1, 1/10, 1/100, 1/1000), FFN = Linear(8, 64),
Sin, Linear(64, 64), Sin, Linear(64, D) with Sin(x) = sin(f x) and f learned (init 1), lambda_c
log-spaced per channel in [0.001, 0.5]. Unlike the released code, the lag is in tokens, not a
fraction of a maximum length, so the filter at lag s never depends on the prompt's length (the
block stays causal: a prefix computes what it computes inside a longer prompt).

`long_conv_recurrent` is the step-by-step reference (the state: the history of z); `long_conv_fft`
the FFT form the block runs on every device (tested equal). flash-linear-attention has no Hyena
kernel, so this block has no `mixer_backend`: it computes the same way everywhere.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from icl.blocks.catalog import HYENA_FILTER_HIDDEN as FILTER_HIDDEN, HYENA_FREQUENCIES
from icl.blocks.linear_attention import normal_
from icl.blocks.stacked import StackedCausalConv, StackedLinear

FREQUENCIES = tuple(10.0 ** -i for i in range(HYENA_FREQUENCIES))   # 1, 0.1, 0.01, 0.001
DECAY_RANGE = (0.001, 0.5)                 # per-channel window rates, per token


def long_conv_recurrent(z: Tensor, h: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """z (b, t, c), h (t, c) or one per sequence (b, t, c), bias (c,) or (b, c)
    -> y_t = sum_{s=0..t} h_s z_{t-s} + bias z_t, step by step, and the final state: the z history
    (b, t, c), newest first (what a next token would be convolved with)."""
    batch, length, channels = z.shape
    h = h.expand(batch, length, channels)
    bias = bias.expand(batch, channels)
    history = z.new_zeros(batch, 0, channels)
    out = []
    for t in range(length):
        history = torch.cat([z[:, t:t + 1], history], dim=1)              # z_t, z_{t-1}, ..., z_0
        out.append((h[:, :t + 1] * history).sum(1) + bias * z[:, t])
    return torch.stack(out, dim=1), history


def long_conv_fft(z: Tensor, h: Tensor, bias: Tensor) -> Tensor:
    """Same as `long_conv_recurrent`'s output, with real FFTs of size 2T (no wrap-around)."""
    length = z.shape[1]
    h = h.expand(z.shape[0], length, z.shape[2])
    spectrum = torch.fft.rfft(z, n=2 * length, dim=1) * torch.fft.rfft(h, n=2 * length, dim=1)
    return torch.fft.irfft(spectrum, n=2 * length, dim=1)[:, :length] + bias[:, None, :] * z


class Sin(nn.Module):
    """sin(f x) with one learned frequency per channel, f (K, C), init 1."""

    def __init__(self, channels: int):
        super().__init__()
        self.freq = nn.Parameter(torch.ones(1, channels))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.freq.view(x.shape[0], *(1,) * (x.dim() - 2), -1) * x)


class HyenaOperator(nn.Module):
    """Init: W_in and W_out N(0, init_std) and N(0, init_std / sqrt(n_layers)), biases 0; the short
    conv and the filter FFN PyTorch's default (Conv1d, Linear: as the released code); the filter's
    bias N(0, 1) (as released)."""

    def __init__(self, width: int, *, d_conv: int, n_layers: int = 1, init_std: float = 0.02):
        super().__init__()
        self.width = width
        self.in_proj = StackedLinear(width, 3 * width, bias=True)
        self.short_conv = StackedCausalConv(3 * width, d_conv)
        self.filter_ffn = nn.ModuleList([
            StackedLinear(2 * len(FREQUENCIES), FILTER_HIDDEN), Sin(FILTER_HIDDEN),
            StackedLinear(FILTER_HIDDEN, FILTER_HIDDEN), Sin(FILTER_HIDDEN),
            StackedLinear(FILTER_HIDDEN, width, bias=False)])
        self.filter_bias = nn.Parameter(torch.randn(1, width))
        self.out_proj = StackedLinear(width, width, bias=True)
        normal_(self.in_proj.weight, init_std)
        normal_(self.out_proj.weight, init_std / math.sqrt(n_layers))
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)
        rates = torch.exp(torch.linspace(math.log(DECAY_RANGE[0]), math.log(DECAY_RANGE[1]), width))
        # fixed, as the released code's; with the run axis (1, D) like every tensor of a block
        self.register_buffer("decay_rates", rates[None], persistent=False)

    def filter(self, length: int, runs: int, device, dtype=torch.float32) -> Tensor:
        """Each run's long filter over lags 0 .. length - 1: (K, length, D)."""
        lags = torch.arange(length, device=device, dtype=dtype)
        angles = lags[:, None] * torch.tensor(FREQUENCIES, device=device, dtype=dtype)
        features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)      # (T, 8)
        h = features.expand(runs, length, features.shape[-1])
        for layer in self.filter_ffn:
            h = layer(h)
        window = torch.exp(-lags[None, :, None] * self.decay_rates.to(dtype)[:, None, :])  # (K, T, D)
        return h * window

    def forward(self, x: Tensor, return_state: bool = False):
        """x (K, B, T, D) -> (K, B, T, D) [and the state: the z history, (K, B, T, D)]."""
        runs, batch, length, width = x.shape
        x0, x1, v = self.short_conv(self.in_proj(x)).chunk(3, dim=-1)
        z = (x1 * v).float().reshape(runs * batch, length, width)
        h = self.filter(length, runs, x.device).repeat_interleave(batch, dim=0)   # run k's filter
        bias = self.filter_bias.float().repeat_interleave(batch, dim=0)
        y = long_conv_fft(z, h, bias).reshape(runs, batch, length, width).to(x.dtype)
        out = self.out_proj(x0 * y)
        if return_state:
            return out, z.flip(1).reshape(runs, batch, length, width)
        return out
