"""Triton selective scan (Mamba-1), forward and backward as one autograd function.

Layout: one program per (batch row, block of BLOCK_D channels). The sequence is cut into
chunks of T steps, and the state index n is a loop inside each chunk: every tensor is a
(BLOCK_D, T) tile with the layout of the coalesced loads, scanned along T with
`tl.associative_scan` (mostly inside each thread), and the fp32 states of the N state
dimensions are carried from chunk to chunk in the first N columns of such a tile (T >= N).
dB and dC, sums over channels, are reduced inside the program, then added with relaxed
atomics: the default acq_rel ones put a fence and an L1 flush before every add (on an H100,
fp32, L = 512, launch (32, 16, 4): 3.6 ms fwd+bwd with them, 2.5 ms without).

Strides: every (batch, dim, L) and (batch, N, L) tensor is read and written through its
own (batch, channel, time) strides, so the Mamba block passes views of its projections (a
chunk of in_proj's output, transposed (batch, L, dim) products) without copies. The output and
the gradients are allocated in the memory order of their inputs (the output in u's). B and C are best given with time stride 1: they are read
once per state n, and a strided (1, T) row touches T cache lines (on an H100, 24 Mamba
layers, L = 202: 4 ms per step more than copying them).

Memory: the forward writes the output and the state at the end of every chunk (the last
one is the final state): 1/T of the (batch, D, L, N) state, in fp32. The backward walks the
chunks in reverse, recomputes each chunk's states from the saved state at its start, and
runs the adjoint recurrence as a reverse scan, so the full state never touches memory.

Math (per channel d and state n; a_t = exp(delta_t A), b_t = delta_t B_t u_t):
    x_t = a_t x_{t-1} + b_t,   y_t = sum_n C_t x_t + D u_t,   out_t = y_t silu(z_t)
Backward with dy_t = dout_t silu(z_t) and the adjoint h_t = dL/dx_t:
    h_t = dy_t C_t + a_{t+1} h_{t+1}
    dB_t = sum_d h_t delta_t u_t,  dC_t = sum_d dy_t x_t,  du_t = D dy_t + delta_t sum_n h_t B_t
    ddelta_t = sum_n h_t (B_t u_t + A a_t x_{t-1}),   dA = sum_t h_t a_t x_{t-1} delta_t
with a_t x_{t-1} = x_t - b_t (no division by a_t, which may underflow to 0).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from icl.kernels.selective_scan_ref import check_scan_inputs



def new_buffer(shape, dtype, device, strides=None) -> torch.Tensor:
    """Allocate a buffer every element of which a kernel must write (tests poison it with NaN);
    `strides` for a layout other than the contiguous one."""
    if strides is None:
        return torch.empty(shape, dtype=dtype, device=device)
    return torch.empty_strided(shape, strides, dtype=dtype, device=device)


def dense_strides(t: torch.Tensor) -> tuple[int, ...]:
    """Strides of a dense tensor of t's shape with t's memory order of dimensions: t's own when t
    is a dense permutation, else those of its order packed (e.g. a chunk of a wider tensor)."""
    order = sorted(range(t.dim()), key=lambda i: t.stride(i), reverse=True)  # stable: ties keep order
    strides, step = [0] * t.dim(), 1
    for i in reversed(order):
        strides[i] = step
        step *= t.shape[i]
    return tuple(strides)


def _strides(t: torch.Tensor | None) -> tuple[int, int, int]:
    """The three strides of a (batch, dim or N, L) kernel operand (zeros for an absent one)."""
    return tuple(t.stride()) if t is not None else (0, 0, 0)


@triton.jit
def _softplus(x):
    # log1p(exp(x)) without losing digits for very negative x (Kahan's log1p trick);
    # the identity above 20, as torch.nn.functional.softplus does.
    e = tl.exp(x)
    w = 1.0 + e
    small = tl.where(w == 1.0, e, tl.log(w) * (e / (w - 1.0)))
    return tl.where(x > 20.0, x, small)


@triton.jit
def _combine_forward(a1, b1, a2, b2):
    # Compose x -> a1 x + b1 (earlier) with x -> a2 x + b2 (later).
    return a1 * a2, b1 * a2 + b2


@triton.jit
def _combine_adjoint(f2, q2, h2, f1, q1, h1):
    # Segment summary for h_t = g_t + a_{t+1} h_{t+1} scanned from the end: f is the first
    # step's a, q the product of the other steps' a, h the adjoint ignoring what follows.
    # A reverse scan passes the later segment (f2, q2, h2) first, the earlier one second.
    qf = q1 * f2
    return f1, qf * q2, h1 + qf * h2


@triton.jit
def _load_chunk(u_ptr, delta_ptr, bias, u_offsets, delta_offsets, mask2, HAS_BIAS: tl.constexpr,
                SOFTPLUS: tl.constexpr):
    u = tl.load(u_ptr + u_offsets, mask=mask2, other=0.0).to(tl.float32)
    delta_raw = tl.load(delta_ptr + delta_offsets, mask=mask2, other=0.0).to(tl.float32)
    if HAS_BIAS:
        delta_raw += bias[:, None]
    if SOFTPLUS:
        delta = _softplus(delta_raw)
    else:
        delta = delta_raw
    # Steps past the end become identity steps (a = 1, b = 0): the state flows through.
    delta = tl.where(mask2, delta, 0.0)
    return u, delta_raw, delta


@triton.jit
def _rows(pid_b, offs_d, stride_b, stride_d):
    """Offsets of the (BLOCK_D, 1) rows of a (batch, dim, L) tensor in batch row pid_b (int64);
    add t[None, :] * the time stride for a (BLOCK_D, T) tile. Declared not contiguous across
    channels even when stride_d is 1, so that the compiler keeps the time-major layout of the
    scans for every tile (on an H100, with the Mamba block's (batch, L, dim) views: without
    the hint the forward + backward take ~25% longer)."""
    return tl.max_contiguous(pid_b * stride_b + offs_d[:, None] * stride_d, [1, 1])


@triton.jit
def _column(tile, offs_t, n):
    """Column n of a (BLOCK_D, T) tile, as a (BLOCK_D,) vector."""
    return tl.sum(tl.where(offs_t[None, :] == n, tile, 0.0), axis=1)


@triton.jit
def _set_column(tile, offs_t, n, column):
    return tl.where(offs_t[None, :] == n, column[:, None], tile)


# Layout rule for both kernels: every per-channel quantity indexed by the state n (A, the
# carried states, dA) lives in the first N columns of a (BLOCK_D, T) tile, and B_n, C_n are
# loaded as broadcast (BLOCK_D, T) tiles. All tensors then share the coalesced layout of the
# u tile, so the loop over n needs no layout conversions (no shared memory, no barriers).
# This needs T >= N.


@triton.jit
def _channel_vectors(bias_ptr, D_ptr, offs_d, mask_d, HAS_BIAS: tl.constexpr, HAS_D: tl.constexpr,
                     BLOCK_D: tl.constexpr):
    """delta_bias and the D skip of a block of channels (zeros where not given), in fp32."""
    bias = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    d_skip = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_D:
        d_skip = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    return bias, d_skip


@triton.jit
def _program_block(A_ptr, D_ptr, bias_ptr, dim, rows_per_group, HAS_BIAS: tl.constexpr,
                   HAS_D: tl.constexpr, BLOCK_D: tl.constexpr, N: tl.constexpr, T: tl.constexpr):
    """This program's batch row (int64), channel and time offsets, masks, and the per-channel
    parameters of the row's group: A as a (BLOCK_D, T) tile (natural units), delta_bias, D.
    One group per model when a pack of models runs as one batch (blocks/mamba.py scan_runs),
    else one for all rows."""
    pid_b = tl.program_id(1).to(tl.int64)
    offs_d = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_t = tl.arange(0, T)
    mask_d = offs_d < dim
    mask_dn = mask_d[:, None] & (offs_t[None, :] < N)
    dn_offsets = offs_d[:, None] * N + offs_t[None, :]
    group = pid_b // rows_per_group
    a_tile = tl.load(A_ptr + group * dim * N + dn_offsets, mask=mask_dn, other=0.0).to(tl.float32)
    bias, d_skip = _channel_vectors(bias_ptr + group * dim, D_ptr + group * dim, offs_d, mask_d,
                                    HAS_BIAS, HAS_D, BLOCK_D)
    return pid_b, offs_d, offs_t, mask_d, mask_dn, dn_offsets, a_tile, bias, d_skip


@triton.jit
def _input_rows(pid_b, offs_d, su_b, su_d, sdt_b, sdt_d, sz_b, sz_d, sB_b, sC_b):
    """Row offsets of u, delta and z in batch row pid_b, and of B and C, whose time row is the
    same for every channel (broadcast (BLOCK_D, T) tiles)."""
    return (_rows(pid_b, offs_d, su_b, su_d), _rows(pid_b, offs_d, sdt_b, sdt_d),
            _rows(pid_b, offs_d, sz_b, sz_d), _rows(pid_b, offs_d, sB_b, 0), _rows(pid_b, offs_d, sC_b, 0))


@triton.jit
def _scan_forward_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,
                         out_ptr, states_ptr, dim, length, n_chunks, rows_per_group,
                         # (batch, channel or n, time) strides of each (batch, dim or N, L) tensor
                         su_b, su_d, su_t, sdt_b, sdt_d, sdt_t, sz_b, sz_d, sz_t, so_b, so_d, so_t,
                         sB_b, sB_n, sB_t, sC_b, sC_n, sC_t,
                         HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                         SOFTPLUS: tl.constexpr, BLOCK_D: tl.constexpr, N: tl.constexpr,
                         T: tl.constexpr):
    # The state index n is a loop, not a tile axis: every tile is (BLOCK_D, T), laid out like
    # the coalesced loads, so the scan along T runs mostly inside each thread.
    pid_b, offs_d, offs_t, mask_d, mask_dn, dn_offsets, a_tile, bias, d_skip = _program_block(
        A_ptr, D_ptr, bias_ptr, dim, rows_per_group, HAS_BIAS, HAS_D, BLOCK_D, N, T)
    a_tile = a_tile * 1.4426950408889634  # A in log2 units so that exp(delta A) is one exp2
    u_rows, delta_rows, z_rows, b_rows, c_rows = _input_rows(pid_b, offs_d, su_b, su_d, sdt_b, sdt_d,
                                                             sz_b, sz_d, sB_b, sC_b)
    out_rows = _rows(pid_b, offs_d, so_b, so_d)
    state_rows = pid_b * n_chunks * dim * N + dn_offsets
    x = tl.zeros((BLOCK_D, T), tl.float32)
    for c in range(n_chunks):
        t = c * T + offs_t
        tt = t[None, :]
        mask2 = mask_d[:, None] & (t < length)[None, :]
        u, delta_raw, delta = _load_chunk(u_ptr, delta_ptr, bias, u_rows + tt * su_t,
                                          delta_rows + tt * sdt_t, mask2, HAS_BIAS, SOFTPLUS)
        delta_u = delta * u
        y = u * d_skip[:, None]
        for n in range(N):
            b_n = tl.load(B_ptr + b_rows + n * sB_n + tt * sB_t, mask=mask2, other=0.0).to(tl.float32)
            c_n = tl.load(C_ptr + c_rows + n * sC_n + tt * sC_t, mask=mask2, other=0.0).to(tl.float32)
            step_a = tl.exp2(delta * _column(a_tile, offs_t, n)[:, None])
            step_b = delta_u * b_n
            cum_a, cum_b = tl.associative_scan((step_a, step_b), 1, _combine_forward)
            xs = cum_a * _column(x, offs_t, n)[:, None] + cum_b
            y += xs * c_n
            x = _set_column(x, offs_t, n, _column(xs, offs_t, T - 1))
        if HAS_Z:
            z = tl.load(z_ptr + z_rows + tt * sz_t, mask=mask2, other=0.0).to(tl.float32)
            y = y * z * tl.sigmoid(z)
        tl.store(out_ptr + out_rows + tt * so_t, y.to(out_ptr.dtype.element_ty), mask=mask2)
        tl.store(states_ptr + state_rows + c * dim * N, x, mask=mask_dn)


@triton.jit
def _scan_backward_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,
                          states_ptr, dout_ptr, dlast_ptr,
                          du_ptr, ddelta_ptr, dz_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, dbias_ptr,
                          dim, length, n_chunks, rows_per_group,
                          # (batch, channel or n, time) strides of each (batch, dim or N, L) tensor
                          su_b, su_d, su_t, sdt_b, sdt_d, sdt_t, sz_b, sz_d, sz_t,
                          sdo_b, sdo_d, sdo_t, sdu_b, sdu_d, sdu_t, sddt_b, sddt_d, sddt_t,
                          sdz_b, sdz_d, sdz_t, sB_b, sB_n, sB_t, sC_b, sC_n, sC_t,
                          sdB_b, sdB_n, sdB_t, sdC_b, sdC_n, sdC_t,
                          HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                          SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr,
                          BLOCK_D: tl.constexpr, N: tl.constexpr, T: tl.constexpr):
    pid_b, offs_d, offs_t, mask_d, mask_dn, dn_offsets, a_tile, bias, d_skip = _program_block(
        A_ptr, D_ptr, bias_ptr, dim, rows_per_group, HAS_BIAS, HAS_D, BLOCK_D, N, T)
    u_rows, delta_rows, z_rows, b_rows, c_rows = _input_rows(pid_b, offs_d, su_b, su_d, sdt_b, sdt_d,
                                                             sz_b, sz_d, sB_b, sC_b)
    dout_rows = _rows(pid_b, offs_d, sdo_b, sdo_d)
    du_rows = _rows(pid_b, offs_d, sdu_b, sdu_d)
    ddelta_rows = _rows(pid_b, offs_d, sddt_b, sddt_d)
    dz_rows = _rows(pid_b, offs_d, sdz_b, sdz_d)
    state_rows = pid_b * n_chunks * dim * N + dn_offsets
    # carry[:, n] = a_{t+1} h_{t+1} at the first step after the chunk (dL/d final state at the end).
    carry = tl.zeros((BLOCK_D, T), tl.float32)
    if HAS_DLAST:
        carry = tl.load(dlast_ptr + pid_b * dim * N + dn_offsets, mask=mask_dn, other=0.0)
    grad_a = tl.zeros((BLOCK_D, T), tl.float32)
    grad_d = tl.zeros((BLOCK_D,), tl.float32)
    grad_bias = tl.zeros((BLOCK_D,), tl.float32)
    for c_rev in range(n_chunks):
        c = n_chunks - 1 - c_rev
        t = c * T + offs_t
        mask_t = (t < length)[None, :]
        mask2 = mask_d[:, None] & mask_t
        tt = t[None, :]
        u, delta_raw, delta = _load_chunk(u_ptr, delta_ptr, bias, u_rows + tt * su_t,
                                          delta_rows + tt * sdt_t, mask2, HAS_BIAS, SOFTPLUS)
        delta_u = delta * u
        dout = tl.load(dout_ptr + dout_rows + tt * sdo_t, mask=mask2, other=0.0).to(tl.float32)
        if HAS_Z:
            z = tl.load(z_ptr + z_rows + tt * sz_t, mask=mask2, other=0.0).to(tl.float32)
            sig = tl.sigmoid(z)
            dy = dout * z * sig
        else:
            dy = dout
        # The chunk's start states, saved by the forward.
        has_prev = (tl.zeros((BLOCK_D, T), tl.int32) + c) > 0
        x0 = tl.load(states_ptr + state_rows + (c - 1) * dim * N, mask=mask_dn & has_prev, other=0.0)
        y = u * d_skip[:, None]
        ddelta = tl.zeros((BLOCK_D, T), tl.float32)
        h_b = tl.zeros((BLOCK_D, T), tl.float32)
        for n in range(N):
            b_n = tl.load(B_ptr + b_rows + n * sB_n + tt * sB_t, mask=mask2, other=0.0).to(tl.float32)
            c_n = tl.load(C_ptr + c_rows + n * sC_n + tt * sC_t, mask=mask2, other=0.0).to(tl.float32)
            a_n = _column(a_tile, offs_t, n)
            # Recompute this state's trajectory over the chunk.
            step_a = tl.exp2(delta * (a_n * 1.4426950408889634)[:, None])
            step_b = delta_u * b_n
            cum_a, cum_b = tl.associative_scan((step_a, step_b), 1, _combine_forward)
            xs = cum_a * _column(x0, offs_t, n)[:, None] + cum_b
            y += xs * c_n
            tl.atomic_add(dC_ptr + pid_b * sdC_b + n * sdC_n + tt * sdC_t,
                          tl.sum(dy * xs, axis=0, keep_dims=True), mask=mask_t, sem="relaxed")
            # Adjoint h_t = dy_t C_t + a_{t+1} h_{t+1}, scanned from the chunk's end.
            g = dy * c_n
            ones = tl.full(g.shape, 1.0, tl.float32)
            _, cum_q, cum_h = tl.associative_scan((step_a, ones, g), 1, _combine_adjoint, reverse=True)
            h = cum_h + cum_q * _column(carry, offs_t, n)[:, None]
            h_ax = h * (xs - step_b)  # h_t a_t x_{t-1}
            grad_a = _set_column(grad_a, offs_t, n, _column(grad_a, offs_t, n) + tl.sum(h_ax * delta, axis=1))
            hb_n = h * b_n
            h_b += hb_n
            ddelta += hb_n * u + h_ax * a_n[:, None]
            tl.atomic_add(dB_ptr + pid_b * sdB_b + n * sdB_n + tt * sdB_t,
                          tl.sum(h * delta_u, axis=0, keep_dims=True), mask=mask_t, sem="relaxed")
            carry = _set_column(carry, offs_t, n, _column(h * step_a, offs_t, 0))
        if HAS_Z:
            dz = dout * y * sig * (1.0 + z * (1.0 - sig))
            tl.store(dz_ptr + dz_rows + tt * sdz_t, dz.to(dz_ptr.dtype.element_ty), mask=mask2)
        grad_d += tl.sum(dy * u, axis=1)
        du = dy * d_skip[:, None] + h_b * delta
        if SOFTPLUS:
            ddelta = ddelta * tl.sigmoid(delta_raw)
        ddelta = tl.where(mask2, ddelta, 0.0)
        grad_bias += tl.sum(ddelta, axis=1)
        tl.store(du_ptr + du_rows + tt * sdu_t, du.to(du_ptr.dtype.element_ty), mask=mask2)
        tl.store(ddelta_ptr + ddelta_rows + tt * sddt_t, ddelta.to(ddelta_ptr.dtype.element_ty), mask=mask2)
    # Per-batch-row partial sums of the parameter gradients; the host sums over the batch.
    tl.store(dA_ptr + pid_b * dim * N + dn_offsets, grad_a, mask=mask_dn)
    tl.store(dD_ptr + pid_b * dim + offs_d, grad_d, mask=mask_d)
    tl.store(dbias_ptr + pid_b * dim + offs_d, grad_bias, mask=mask_d)


def launch_config(dim: int, length: int, n_state: int, batch: int | None = None) -> tuple[int, int, int]:
    """(BLOCK_D, T, num_warps) for a problem size (T >= N is required). From the H100 sweep in
    benchmarks/results/selective_scan.json (batch <= 64): one warp per 8 channels wins from
    L = 202 up; 4 warps per 32 channels at L <= 128. An H200 sweep at the Mamba block's layout,
    D 256, fwd + bwd (2026-12-04): at L 280 and batch 64, one warp per 16 channels ran 1.12 ms
    against 1.51 (8 channels) and at L 42 and a pack's batch of 1024, 1.98 ms against 2.29
    (32 channels, 4 warps); at L 280 and batch 1024 8 channels stay best (11.0 ms, 16: 11.3)."""
    chunk = max(16, n_state)
    rows = (batch or 0) * dim  # batch x channels; the H200 sweep covered 64 and 1024 x 256
    if length <= 128:
        return (16, chunk, 1) if rows >= 1024 * 256 else (32, chunk, 4)
    return (16, chunk, 1) if 0 < rows <= 64 * 256 else (8, chunk, 1)


def _launch(u: torch.Tensor, n_state: int, config) -> tuple[int, int, int, int]:
    """(BLOCK_D, T, num_warps, number of chunks) of a call."""
    batch, dim, length = u.shape
    block_d, chunk, num_warps = config or launch_config(dim, length, n_state, batch)
    return block_d, chunk, num_warps, max(1, triton.cdiv(length, chunk))


def _grouped(A, D, delta_bias):
    """The grouped parameters (A (G, dim, N), D and delta_bias (G, dim) or None) as dense
    arrays, the layout the kernels index (a no-op for the usual contiguous parameters)."""
    return tuple(t.contiguous() if t is not None else None for t in (A, D, delta_bias))


class SelectiveScanTriton(torch.autograd.Function):
    """The scan with grouped, dense per-channel parameters: A (G, dim, N), D and delta_bias
    (G, dim) (or None), where group g serves the batch rows [g R, (g + 1) R), R = batch / G. G is 1 for
    one model; a pack of K models runs as one launch with K groups (blocks/mamba.py scan_runs).
    Returns (out, final state, chunk-start states); the last is for the backward only."""

    @staticmethod
    def forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, config):
        batch, dim, length = u.shape
        groups, _, n_state = A.shape
        if batch % groups or any(t is not None and t.shape[0] != groups for t in (D, delta_bias)):
            raise ValueError(f"selective_scan (triton): {batch} batch rows do not split into the "
                             f"{groups} parameter groups of A, D and delta_bias")
        block_d, chunk, num_warps, n_chunks = _launch(u, n_state, config)
        # u, delta, z, B and C go in with their strides (views, no copies); the callers pass
        # the small per-channel parameters dense (`_grouped`), as the kernels index them.
        # The output in u's memory order: time-major for a (batch, dim, L) u, which keeps its
        # stores coalesced (a (batch, L, dim) output cost 25 % of the L = 80 fwd+bwd on an H100).
        out = new_buffer((batch, dim, length), u.dtype, u.device, strides=dense_strides(u))
        states = new_buffer((batch, n_chunks, dim, n_state), torch.float32, u.device)
        grid = (triton.cdiv(dim, block_d), batch)
        _scan_forward_kernel[grid](
            u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, out, states, dim, length, n_chunks,
            batch // groups,
            *_strides(u), *_strides(delta), *_strides(z), *_strides(out), *_strides(B), *_strides(C),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), BLOCK_D=block_d, N=n_state, T=chunk, num_warps=num_warps)
        return out, states[:, -1], states

    @staticmethod
    def setup_context(ctx, inputs, output):
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, config = inputs
        ctx.mark_non_differentiable(output[2])
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, output[2])
        ctx.delta_softplus = bool(delta_softplus)
        ctx.launch = _launch(u, A.shape[2], config)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, dout, dlast, _dstates):
        u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
        if torch._C._functorch.is_functorch_wrapped_tensor(u):
            # torch.func.grad / vjp / jacrev: the kernels cannot read functorch's wrapped tensors
            raise NotImplementedError("selective_scan (triton): torch.func.grad, vjp and jacrev are not "
                                      "supported; use torch.autograd, or backend='reference'")
        block_d, chunk, num_warps, n_chunks = ctx.launch
        batch, dim, length = u.shape
        groups, _, n_state = A.shape
        # Either gradient may be None when only the other output was used. dout goes in with
        # its strides; the gradients of u, delta, z, B and C are laid out in memory as their
        # inputs (packed when an input is not dense), so the views they flow back through
        # need no copies either.
        dout = dout if dout is not None else torch.zeros_like(u)
        dlast = dlast.float().contiguous() if dlast is not None else None
        du = new_buffer(u.shape, u.dtype, u.device, strides=dense_strides(u))
        ddelta = new_buffer(delta.shape, delta.dtype, u.device, strides=dense_strides(delta))
        dz = new_buffer(z.shape, z.dtype, u.device, strides=dense_strides(z)) if z is not None else None
        # Accumulated with atomics: zeros, not a new_buffer.
        dB, dC = (torch.empty_strided(t.shape, dense_strides(t), dtype=torch.float32, device=u.device).zero_()
                  for t in (B, C))
        dA_rows = new_buffer((batch, dim, n_state), torch.float32, u.device)
        dD_rows = new_buffer((batch, dim), torch.float32, u.device)
        dbias_rows = new_buffer((batch, dim), torch.float32, u.device)
        grid = (triton.cdiv(dim, block_d), batch)
        _scan_backward_kernel[grid](
            u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, states, dout,
            dlast if dlast is not None else states,
            du, ddelta, dz if dz is not None else du, dB, dC, dA_rows, dD_rows, dbias_rows,
            dim, length, n_chunks, batch // groups,
            *_strides(u), *_strides(delta), *_strides(z), *_strides(dout), *_strides(du),
            *_strides(ddelta), *_strides(dz), *_strides(B), *_strides(C), *_strides(dB), *_strides(dC),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=ctx.delta_softplus, HAS_DLAST=dlast is not None,
            BLOCK_D=block_d, N=n_state, T=chunk, num_warps=num_warps)

        def group_sums(rows, like):  # per-row partial sums -> one gradient per group
            return rows.unflatten(0, (groups, -1)).sum(1).to(like.dtype) if like is not None else None

        return (du, ddelta, group_sums(dA_rows, A), dB.to(B.dtype), dC.to(C.dtype),
                group_sums(dD_rows, D), dz, group_sums(dbias_rows, delta_bias), None, None)


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          return_last_state=False, config=None):
    """The Triton selective scan; same interface as selective_scan_ref (grouped parameters
    included). `config` overrides the launch shape (BLOCK_D, T, num_warps), for tests and
    benchmarks."""
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    if u.shape[2] == 0:
        raise ValueError("selective_scan: the sequence length L must be at least 1")
    n_state = A.shape[-1]
    if n_state & (n_state - 1) or n_state > 256:
        raise ValueError(f"selective_scan (triton): N={n_state} must be a power of two, at most 256")
    if config is not None and config[1] < n_state:
        raise ValueError(f"selective_scan (triton): chunk T={config[1]} must be at least N={n_state}")
    if A.dim() == 2:  # one model: the Function's grouped layout with G = 1
        A, D, delta_bias = (t[None] if t is not None else None for t in (A, D, delta_bias))
    A, D, delta_bias = _grouped(A, D, delta_bias)
    out, last_state, _ = SelectiveScanTriton.apply(u, delta, A, B, C, D, z, delta_bias,
                                                   delta_softplus, config)
    return (out, last_state) if return_last_state else out
