"""Causal depthwise convolution + bias + SiLU of K runs' activations (K, B, L, C), forward and
backward in one Triton kernel each: the Mamba blocks' `silu(conv1d(x))`. Pure-PyTorch reference:
blocks/stacked.py's StackedCausalConv (its loop over the taps), which tests/test_kernels.py
compares this against (output and the gradients of x, weight and bias).

Why: in PyTorch the convolution is a mul and an add per tap over the whole activation, and its
backward as many again plus the zero-fill and copy of a padded gradient; at the reduced study's
sparse_parity shape (K 16, B 64, L 280, C 256) on an H200 that was 7.1 ms per layer forward +
backward, ~30% of a Mamba pack's step; 1.7 ms here (benchmarks/block_kernels.py). Each
element is read once per tap from cache and written once; the backward recomputes the
pre-activation rather than saving it.

    y[t, c] = silu(bias[c] + sum_j w[c, j] x[t - (W - 1) + j, c])     (x[t < 0] = 0)

Layout: one program per (block of BLOCK_C channels, sequence, block of BLOCK_L tokens) forward;
the backward's programs walk the whole sequence (its weight and bias gradients are one partial
sum per sequence, added per run on the host: deterministic, no atomics). Channels are the
contiguous axis of the block's activations, so loads are coalesced.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from icl.kernels.selective_scan_triton import new_buffer  # tests poison it here (kernels/testing.py)

BLOCK_C = 64
BLOCK_L = 32


@triton.jit
def _conv_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, batch, length, channels,
                     sxk, sxb, sxl, sxc, WIDTH: tl.constexpr, SILU: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr):
    pid_c, row, pid_l = tl.program_id(0), tl.program_id(1).to(tl.int64), tl.program_id(2)
    run, seq = row // batch, row % batch
    cs = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    ls = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    cmask = cs < channels
    x_row = x_ptr + run * sxk + seq * sxb
    acc = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32)
    acc += tl.load(b_ptr + run * channels + cs, mask=cmask, other=0.0).to(tl.float32)[None, :]
    for j in tl.static_range(WIDTH):
        pos = ls - (WIDTH - 1) + j
        m = ((pos >= 0) & (pos < length))[:, None] & cmask[None, :]
        xv = tl.load(x_row + pos[:, None] * sxl + cs[None, :] * sxc, mask=m, other=0.0).to(tl.float32)
        wj = tl.load(w_ptr + (run * channels + cs) * WIDTH + j, mask=cmask, other=0.0).to(tl.float32)
        acc += xv * wj[None, :]
    if SILU:
        acc = acc * tl.sigmoid(acc)
    out = y_ptr + row * length * channels + ls[:, None] * channels + cs[None, :]
    tl.store(out, acc.to(y_ptr.dtype.element_ty), mask=(ls < length)[:, None] & cmask[None, :])


@triton.jit
def _conv_bwd_kernel(x_ptr, w_ptr, b_ptr, dy_ptr, dx_ptr, dw_ptr, db_ptr, batch, length, channels,
                     sxk, sxb, sxl, sxc, WIDTH: tl.constexpr, WP: tl.constexpr, SILU: tl.constexpr,
                     BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr):
    """dy: gradient of the output (contiguous (K B, L, C)); dx like it; dw (K B, C, WIDTH) and
    db (K B, C): this sequence's partial sums.

    For the tokens t of a block, dx[t] = sum_m ds[t + m] w[W - 1 - m], and ds[t + m] needs the
    pre-activation s[t + m], a sum over x[t + m - (W - 1) .. t + m]: the block's x at the
    2W - 1 offsets -(W - 1) .. W - 1 are loaded once (a tuple of tiles) and every s is summed
    from them. (The first version loaded x afresh for each (m, j) pair, W^2 + W loads per
    token instead of 2W - 1, and ran 6x its forward on an H200.)"""
    pid_c, row = tl.program_id(0), tl.program_id(1).to(tl.int64)
    run, seq = row // batch, row % batch
    cs = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cs < channels
    taps = tl.arange(0, WP)
    x_row = x_ptr + run * sxk + seq * sxb
    dy_row = dy_ptr + row * length * channels
    bias = tl.load(b_ptr + run * channels + cs, mask=cmask, other=0.0).to(tl.float32)
    w = ()
    for j in tl.static_range(WIDTH):
        w = w + (tl.load(w_ptr + (run * channels + cs) * WIDTH + j, mask=cmask, other=0.0).to(tl.float32),)
    dw = tl.zeros((BLOCK_C, WP), dtype=tl.float32)
    db = tl.zeros((BLOCK_C,), dtype=tl.float32)
    for l0 in range(0, length, BLOCK_L):
        ls = l0 + tl.arange(0, BLOCK_L)
        xs = ()  # xs[o] = x[t + o - (W - 1)], o = 0 .. 2W - 2 (zero outside the sequence)
        for o in tl.static_range(2 * WIDTH - 1):
            p = ls + (o - (WIDTH - 1))
            mo = ((p >= 0) & (p < length))[:, None] & cmask[None, :]
            xs = xs + (tl.load(x_row + p[:, None] * sxl + cs[None, :] * sxc, mask=mo, other=0.0).to(tl.float32),)
        dx = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32)
        for m in tl.static_range(WIDTH):
            pos = ls + m
            inside = (pos < length)[:, None] & cmask[None, :]
            s = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32) + bias[None, :]
            for j in tl.static_range(WIDTH):
                s += xs[m + j] * w[j][None, :]
            dyv = tl.load(dy_row + pos[:, None] * channels + cs[None, :], mask=inside, other=0.0).to(tl.float32)
            if SILU:
                sig = tl.sigmoid(s)
                ds = dyv * sig * (1.0 + s * (1.0 - sig))
            else:
                ds = dyv
            ds = tl.where(inside, ds, 0.0)
            dx += ds * w[WIDTH - 1 - m][None, :]
            if m == 0:  # bias and weight gradients: ds[t] and ds[t] x[t - (W - 1) + j], t in this block
                db += tl.sum(ds, axis=0)
                for j in tl.static_range(WIDTH):
                    dw += tl.where(taps[None, :] == j, tl.sum(ds * xs[j], axis=0)[:, None], 0.0)
        out = dx_ptr + row * length * channels + ls[:, None] * channels + cs[None, :]
        tl.store(out, dx.to(dx_ptr.dtype.element_ty), mask=(ls < length)[:, None] & cmask[None, :])
    tl.store(dw_ptr + (row * channels + cs)[:, None] * WIDTH + taps[None, :], dw,
             mask=cmask[:, None] & (taps < WIDTH)[None, :])
    tl.store(db_ptr + row * channels + cs, db, mask=cmask)


class _CausalConvSilu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, silu):
        runs, batch, length, channels = x.shape
        width = weight.shape[-1]
        w, b = weight.contiguous(), bias.contiguous()
        y = new_buffer((runs, batch, length, channels), x.dtype, x.device)
        grid = (triton.cdiv(channels, BLOCK_C), runs * batch, triton.cdiv(length, BLOCK_L))
        _conv_fwd_kernel[grid](x, w, b, y, batch, length, channels, *x.stride(), WIDTH=width,
                               SILU=silu, BLOCK_C=BLOCK_C, BLOCK_L=BLOCK_L)
        ctx.save_for_backward(x, w, b)
        ctx.silu = silu
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w, b = ctx.saved_tensors
        runs, batch, length, channels = x.shape
        width = w.shape[-1]
        dy = dy.contiguous()
        dx = new_buffer((runs, batch, length, channels), x.dtype, x.device)
        dw = new_buffer((runs * batch, channels, width), torch.float32, x.device)
        db = new_buffer((runs * batch, channels), torch.float32, x.device)
        grid = (triton.cdiv(channels, BLOCK_C), runs * batch)
        _conv_bwd_kernel[grid](x, w, b, dy, dx, dw, db, batch, length, channels, *x.stride(),
                               WIDTH=width, WP=triton.next_power_of_2(width), SILU=ctx.silu,
                               BLOCK_C=BLOCK_C, BLOCK_L=BLOCK_L)
        dw = dw.view(runs, batch, channels, width).sum(1).to(w.dtype)
        db = db.view(runs, batch, channels).sum(1).to(b.dtype)
        return dx, dw, db, None


def causal_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, silu: bool = True) -> torch.Tensor:
    """x (K, B, L, C), any strides; weight (K, C, W); bias (K, C) -> (K, B, L, C) contiguous, in
    x's dtype (computed in fp32): silu(causal depthwise conv(x) + bias), or without the SiLU."""
    if x.dim() != 4 or weight.shape != (x.shape[0], x.shape[3], weight.shape[-1]) or bias.shape != x.shape[::3]:
        raise ValueError(f"causal_conv: x (K, B, L, C), weight (K, C, W), bias (K, C); got "
                         f"{tuple(x.shape)}, {tuple(weight.shape)}, {tuple(bias.shape)}")
    return _CausalConvSilu.apply(x, weight, bias, silu)
