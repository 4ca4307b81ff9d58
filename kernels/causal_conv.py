"""Causal depthwise convolution + bias + SiLU of K runs' activations (K, B, L, C), forward and
backward in one Triton kernel each: the Mamba blocks' `silu(conv1d(x))`. Pure-PyTorch reference:
blocks/stacked.py's StackedCausalConv (its loop over the taps), which tests/test_kernels.py
compares this against (output and the gradients of x, weight and bias).

Why: in PyTorch the convolution is a mul and an add per tap over the whole activation, and its
backward as many again plus the zero-fill and copy of a padded gradient; at the reduced study's
sparse_parity shape (K 16, B 64, L 280, C 256) on an H200 that was 7.1 ms per layer forward +
backward, ~30% of a Mamba pack's step; 1.7 ms with the first fused kernels
(benchmarks/block_kernels.py, H200). Each element is read once per tap from cache and written
once; the backward recomputes the pre-activation rather than saving it.

    y[t, c] = silu(bias[c] + sum_j w[c, j] x[t - (W - 1) + j, c])     (x[t < 0] = 0)

Layout: one program per (block of BLOCK_C channels, sequence, block of BLOCK_L tokens) forward;
the backward's programs (BLOCK_C_BWD channels, one a thread) walk the whole sequence backwards a
token at a time with sliding register windows of x and ds (its weight and bias gradients are one
partial sum per sequence, added per run on the host: deterministic, no atomics). Channels are
the contiguous axis of the block's activations, so loads are coalesced. The backward's present
form (offline SASS, sm_90: 61 instructions per token and channel, 40 registers, against about
150 and 255 of the tiled form that took the 1.7 ms above) takes 0.42 ms a call on an H100 at
that shape, 1.9x its forward, where the tiled form took 6.1x (forward + backward 1.33 ms;
benchmarks/results/scan_variants_2026-12-07.md).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from icl.kernels.selective_scan_triton import new_buffer  # tests poison it here (kernels/testing.py)

BLOCK_C = 64
BLOCK_L = 32
BLOCK_C_BWD = 128  # the backward's channels per program: one a thread (4 warps)


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
                     sxk, sxb, sxl, sxc, WIDTH: tl.constexpr, SILU: tl.constexpr, BLOCK_C: tl.constexpr):
    """dy: gradient of the output (contiguous (K B, L, C)); dx like it; dw (K B, C, WIDTH) and
    db (K B, C): this sequence's partial sums.

    dx[t] = sum_m ds[t + m] w[W - 1 - m], with ds[t] = dy[t] silu'(s[t]) and s[t] = bias +
    sum_j w[j] x[t - (W - 1) + j]. The program walks its sequence backwards one token at a time,
    each thread holding its channels' last W - 1 values of ds and W values of x as register
    vectors (tuples, shifted by one each step): every token's s and ds is computed once, and x
    and dy are each loaded once (the next token's during this one's arithmetic). (A version on
    (32 tokens x 64 channels) tiles recomputed s and its sigmoid for each of the W shifts, as
    tiles cannot be shifted in registers: about 150 SASS instructions per element (sm_90), and
    1.01 ms per call on an H200 against the forward's 0.165 at K 16, B 64, L 280, C 256.)"""
    pid_c, row = tl.program_id(0), tl.program_id(1).to(tl.int64)
    run, seq = row // batch, row % batch
    cs = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cs < channels
    x_row = x_ptr + run * sxk + seq * sxb + cs * sxc
    dy_row = dy_ptr + row * length * channels + cs
    dx_row = dx_ptr + row * length * channels + cs
    bias = tl.load(b_ptr + run * channels + cs, mask=cmask, other=0.0).to(tl.float32)
    w = ()
    for j in tl.static_range(WIDTH):
        w = w + (tl.load(w_ptr + (run * channels + cs) * WIDTH + j, mask=cmask, other=0.0).to(tl.float32),)
    zero = tl.zeros((BLOCK_C,), dtype=tl.float32)
    # At token t: xw[j] = x[t - (W - 1) + j] (j < W), dsw[m] = ds[t + 1 + m] (m < W - 1); 0 outside
    # the sequence.
    t_last = length - 1
    xw = ()
    for j in tl.static_range(WIDTH):
        p = t_last - (WIDTH - 1) + j
        xw = xw + (tl.load(x_row + p * sxl, mask=cmask & (cs * 0 + p >= 0), other=0.0).to(tl.float32),)
    dsw = ()
    for m in tl.static_range(WIDTH - 1):
        dsw = dsw + (zero,)
    dw = ()
    for j in tl.static_range(WIDTH):
        dw = dw + (zero,)
    db = zero
    dy_nx = tl.load(dy_row + t_last * channels, mask=cmask, other=0.0)
    for i in range(length):
        t = t_last - i
        # the next (earlier) token's loads first: x[t - W] enters the window, dy[t - 1]
        p_in = t - WIDTH
        x_in = tl.load(x_row + p_in * sxl, mask=cmask & (cs * 0 + p_in >= 0), other=0.0)
        dy_t = dy_nx.to(tl.float32)
        dy_nx = tl.load(dy_row + (t - 1) * channels, mask=cmask & (cs * 0 + t >= 1), other=0.0)
        s = bias
        for j in tl.static_range(WIDTH):
            s += w[j] * xw[j]
        if SILU:
            sig = tl.sigmoid(s)
            ds = dy_t * sig * (1.0 + s * (1.0 - sig))
        else:
            ds = dy_t
        dx = ds * w[WIDTH - 1]
        for m in tl.static_range(WIDTH - 1):
            dx += dsw[m] * w[WIDTH - 2 - m]
        tl.store(dx_row + t * channels, dx.to(dx_ptr.dtype.element_ty), mask=cmask)
        db += ds
        new_dw = ()
        for j in tl.static_range(WIDTH):
            new_dw = new_dw + (dw[j] + ds * xw[j],)
        dw = new_dw
        new_xw = (x_in.to(tl.float32),)
        for j in tl.static_range(WIDTH - 1):
            new_xw = new_xw + (xw[j],)
        xw = new_xw
        new_dsw = (ds,)
        for m in tl.static_range(WIDTH - 2):
            new_dsw = new_dsw + (dsw[m],)
        dsw = new_dsw
    for j in tl.static_range(WIDTH):
        tl.store(dw_ptr + (row * channels + cs) * WIDTH + j, dw[j], mask=cmask)
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
        grid = (triton.cdiv(channels, BLOCK_C_BWD), runs * batch)
        _conv_bwd_kernel[grid](x, w, b, dy, dx, dw, db, batch, length, channels, *x.stride(),
                               WIDTH=width, SILU=ctx.silu, BLOCK_C=BLOCK_C_BWD, num_warps=BLOCK_C_BWD // 32)
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
