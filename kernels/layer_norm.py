"""LayerNorm / RMSNorm over the last axis of K runs' activations (K, ..., D), each run with its
own affine weight and bias (K, D): forward and backward in one Triton kernel each. Pure-PyTorch
reference: blocks/stacked.py's StackedNorm (F.layer_norm, then the run's affine as a multiply
and an add), which tests/test_kernels.py compares this against.

Why: at the reduced study's width (D 128) PyTorch's layer-norm kernel took 0.43 ms for the
287k rows of a pack of 16 at 280 tokens on an H200 (~1/6 of the memory bandwidth), and the
run-wise affine adds two passes forward and four (with their reductions) backward: 1.46 ms
forward + backward per norm, against 0.55-0.71 ms here (benchmarks/block_kernels.py, two
runs); with it the Transformer's graphed step went from 3.26 to 2.71 ms per run at K 16 and
from 4.44 to 3.66 at K 1. Eager at K 1 its launches cost more than PyTorch's (0.47 against
0.28 ms): CUDA graphs, which training uses on a GPU, hide that.
A program normalises BLOCK_R rows at once, and the backward writes the weight and bias
gradients as one partial sum per program, added per run on the host (deterministic, no
atomics).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from icl.kernels.selective_scan_triton import new_buffer  # tests poison it here (kernels/testing.py)

BLOCK_R = 16


@triton.jit
def _norm_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, mean_ptr, rstd_ptr, rows, width, eps,
                     RMS: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr):
    run, pid_r = tl.program_id(1).to(tl.int64), tl.program_id(0)
    rs = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    cs = tl.arange(0, BLOCK_N)
    rmask, cmask = rs < rows, cs < width
    mask = rmask[:, None] & cmask[None, :]
    offsets = (run * rows + rs)[:, None] * width + cs[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    if RMS:
        mean = tl.zeros((BLOCK_R,), tl.float32)
        xc = x
    else:
        mean = tl.sum(x, axis=1) / width
        xc = tl.where(mask, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=1) / width + eps)
    w = tl.load(w_ptr + run * width + cs, mask=cmask, other=0.0).to(tl.float32)
    y = xc * rstd[:, None] * w[None, :]
    if HAS_BIAS:
        y += tl.load(b_ptr + run * width + cs, mask=cmask, other=0.0).to(tl.float32)[None, :]
    tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(mean_ptr + run * rows + rs, mean, mask=rmask)
    tl.store(rstd_ptr + run * rows + rs, rstd, mask=rmask)


@triton.jit
def _norm_bwd_kernel(x_ptr, w_ptr, dy_ptr, mean_ptr, rstd_ptr, dx_ptr, dw_ptr, db_ptr, rows, width,
                     RMS: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr):
    """dw, db: (K, programs per run, D) partial sums."""
    run, pid_r = tl.program_id(1).to(tl.int64), tl.program_id(0)
    rs = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    cs = tl.arange(0, BLOCK_N)
    rmask, cmask = rs < rows, cs < width
    mask = rmask[:, None] & cmask[None, :]
    offsets = (run * rows + rs)[:, None] * width + cs[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    dy = tl.load(dy_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    mean = tl.load(mean_ptr + run * rows + rs, mask=rmask, other=0.0)
    rstd = tl.load(rstd_ptr + run * rows + rs, mask=rmask, other=0.0)
    w = tl.load(w_ptr + run * width + cs, mask=cmask, other=0.0).to(tl.float32)
    xhat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
    g = dy * w[None, :]
    # dx = rstd (g - mean(g) - xhat mean(g xhat)); RMSNorm has no mean(g) term
    dx = g - xhat * (tl.sum(g * xhat, axis=1) / width)[:, None]
    if not RMS:
        dx -= (tl.sum(g, axis=1) / width)[:, None]
    dx = dx * rstd[:, None]
    tl.store(dx_ptr + offsets, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    partial = (run * tl.num_programs(0) + pid_r) * width + cs
    tl.store(dw_ptr + partial, tl.sum(dy * xhat, axis=0), mask=cmask)
    tl.store(db_ptr + partial, tl.sum(dy, axis=0), mask=cmask)


def _launch(x):
    runs, width = x.shape[0], x.shape[-1]
    rows = x.numel() // (runs * width)
    block_n = triton.next_power_of_2(width)
    warps = 4 if block_n * BLOCK_R <= 4096 else 8
    return runs, rows, width, block_n, warps, (triton.cdiv(rows, BLOCK_R), runs)


class _StackedNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        x = x.contiguous()
        runs, rows, width, block_n, warps, grid = _launch(x)
        y = new_buffer(x.shape, x.dtype, x.device)
        mean = new_buffer((runs, rows), torch.float32, x.device)
        rstd = new_buffer((runs, rows), torch.float32, x.device)
        _norm_fwd_kernel[grid](x, weight, bias if bias is not None else weight, y, mean, rstd, rows, width, eps,
                               RMS=bias is None, HAS_BIAS=bias is not None, BLOCK_R=BLOCK_R,
                               BLOCK_N=block_n, num_warps=warps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        runs, rows, width, block_n, warps, grid = _launch(x)
        dy = dy.contiguous()
        dx = new_buffer(x.shape, x.dtype, x.device)
        dw = new_buffer((runs, grid[0], width), torch.float32, x.device)
        db = new_buffer((runs, grid[0], width), torch.float32, x.device)
        _norm_bwd_kernel[grid](x, weight, dy, mean, rstd, dx, dw, db, rows, width, RMS=not ctx.has_bias,
                               BLOCK_R=BLOCK_R, BLOCK_N=block_n, num_warps=warps)
        dbias = db.sum(1).to(weight.dtype) if ctx.has_bias else None
        return dx, dw.sum(1).to(weight.dtype), dbias, None


def stacked_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """x (K, ..., D); weight (K, D); bias (K, D) (LayerNorm) or None (RMSNorm) -> x's shape and
    dtype, computed in fp32."""
    if weight.shape != (x.shape[0], x.shape[-1]) or (bias is not None and bias.shape != weight.shape):
        raise ValueError(f"stacked_norm: x (K, ..., D), weight and bias (K, D); got {tuple(x.shape)}, "
                         f"{tuple(weight.shape)}, {None if bias is None else tuple(bias.shape)}")
    return _StackedNorm.apply(x, weight.contiguous(), None if bias is None else bias.contiguous(), eps)
