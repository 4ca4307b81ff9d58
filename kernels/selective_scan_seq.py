"""Sequential-over-L Triton selective scan (Mamba-1), forward and backward, fused with the
D skip and the silu(z) gate. Pure-PyTorch reference: selective_scan_ref.py beside it.

Made for the study's shapes (issue #24): short sequences (L 80-300), a small state (N 16) and
many channels (K runs packed into one batch of K*64 rows, 256 or 512 channels each).

Layout: one program per (block of BLOCK_D channels, batch row). The (BLOCK_D, N) fp32 state
lives in registers and the program walks the sequence one step at a time: each step loads
u_t, delta_t, z_t of BLOCK_D channels (coalesced when the channel stride is 1, i.e. the
tensors are (batch, L, dim) in memory, as the Mamba block's projections are) and B_t, C_t
(N values, the same for every channel). The inputs of a later step are loaded before the current
step is computed, two steps ahead (a software prefetch), so the loads' latency overlaps the arithmetic.

Forward: writes out_t = (<x_t, C_t> + D u_t) silu(z_t) and, when a gradient will be needed,
the state at the end of every chunk of T steps (checkpoints; the last one is the final state),
1/T of the (batch, dim, L, N) states in fp32.

Backward: one program per (channel block, batch row) again, walking the chunks in reverse.
For each chunk it reloads the checkpoint before it, recomputes the chunk's T states, holding
them in registers (the loop over the chunk is unrolled: T state tiles), then runs the adjoint
recurrence backwards through the chunk, recomputing the decays a_t = exp(delta_t A) (cheaper
than holding T more tiles: on an H200 the first version, which held them, spilled registers
and ran 3.6x slower than the chunked kernel) and using a_t x_{t-1} = x_t - delta_t B_t u_t:

    h_t = dy_t C_t + a_{t+1} h_{t+1}                       (h = dL/dx, carried between chunks)
    dA += h_t a_t x_{t-1} delta_t,   dD += dy_t u_t
    du_t = D dy_t + delta_t sum_n h_t B_t
    ddelta_t = (u_t sum_n h_t B_t + sum_n h_t A a_t x_{t-1}) softplus'(.)
    dB_t = sum_d h_t delta_t u_t,    dC_t = sum_d dy_t x_t      (dy_t = dout_t silu(z_t))

dB and dC, sums over channels, are reduced inside the program and written as one partial
sum per channel block (no atomics: deterministic); the host adds the partials when there is
more than one block per row. dA, dD and d(delta_bias) are written per batch row and summed
on the host, per parameter group (one group per model of a pack, as in
selective_scan_triton.py).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from icl.kernels.selective_scan_ref import check_scan_inputs
from icl.kernels.selective_scan_triton import _strides, dense_strides, new_buffer  # tests poison new_buffer here

LOG2E = 1.4426950408889634


class SeqConfig(NamedTuple):
    """Launch shape: channels per program and warps of each kernel, and the checkpoint
    interval T (the backward unrolls T steps and holds T state tiles in registers)."""
    block_d: int = 32
    warps: int = 4
    block_d_bwd: int = 16
    warps_bwd: int = 2
    chunk: int = 4


def launch_config(batch: int, dim: int, length: int, n_state: int) -> SeqConfig:
    """The default launch shape: the best of 7 tried on an H200 at D 256, L 280, fp32, B 64 and
    1024 (benchmarks/results/selective_scan_packed.json, "sweep"). The backward wants small
    programs and a short chunk (few registers, few barriers per step); T = 16 ran 3x slower."""
    return SeqConfig()


@triton.jit
def _program_setup(A_ptr, D_ptr, bias_ptr, dim, n_state, rows_per_group, HAS_BIAS: tl.constexpr,
                   HAS_D: tl.constexpr, BLOCK_D: tl.constexpr, NP: tl.constexpr):
    """This program's batch row (int64), channel and state offsets and masks, and the
    parameters of the row's group: A (BLOCK_D, NP) in log2 units, delta_bias, D (fp32)."""
    pid_b = tl.program_id(1).to(tl.int64)
    offs_d = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, NP)
    mask_d = offs_d < dim
    mask_n = offs_n < n_state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    group = pid_b // rows_per_group
    a2 = tl.load(A_ptr + group * dim * n_state + offs_d[:, None] * n_state + offs_n[None, :],
                 mask=mask_dn, other=0.0).to(tl.float32) * 1.4426950408889634
    bias = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + group * dim + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    d_skip = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_D:
        d_skip = tl.load(D_ptr + group * dim + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    return pid_b, offs_d, offs_n, mask_d, mask_n, mask_dn, a2, bias, d_skip


@triton.jit
def _delta(delta_raw, bias, mask, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """(delta_raw + bias, delta) with delta = softplus of it if asked; 0 where masked (an
    identity step: a = 1, b = 0)."""
    if HAS_BIAS:
        delta_raw = delta_raw + bias
    if SOFTPLUS:  # selective_scan_triton._softplus, inline (cheaper under the interpreter)
        e = tl.exp(delta_raw)
        w = 1.0 + e
        delta = tl.where(delta_raw > 20.0, delta_raw, tl.where(w == 1.0, e, tl.log(w) * (e / (w - 1.0))))
    else:
        delta = delta_raw
    return delta_raw, tl.where(mask, delta, 0.0)


@triton.jit
def _seq_forward_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,
                        out_ptr, ckpt_ptr, dim, length, n_state, n_saved, rows_per_group,
                        su_b, su_d, su_t, sdt_b, sdt_d, sdt_t, sz_b, sz_d, sz_t, so_b, so_d, so_t,
                        sB_b, sB_n, sB_t, sC_b, sC_n, sC_t,
                        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                        SOFTPLUS: tl.constexpr, SAVE: tl.constexpr, BLOCK_D: tl.constexpr,
                        NP: tl.constexpr, T: tl.constexpr):
    pid_b, offs_d, offs_n, mask_d, mask_n, mask_dn, a2, bias, d_skip = _program_setup(
        A_ptr, D_ptr, bias_ptr, dim, n_state, rows_per_group, HAS_BIAS, HAS_D, BLOCK_D, NP)
    u_p = u_ptr + pid_b * su_b + offs_d * su_d
    dt_p = delta_ptr + pid_b * sdt_b + offs_d * sdt_d
    z_p = z_ptr + pid_b * sz_b + offs_d * sz_d
    o_p = out_ptr + pid_b * so_b + offs_d * so_d
    b_p = B_ptr + pid_b * sB_b + offs_n * sB_n
    c_p = C_ptr + pid_b * sC_b + offs_n * sC_n
    ck_p = ckpt_ptr + pid_b * n_saved * dim * n_state + offs_d[:, None] * n_state + offs_n[None, :]
    # Steps 0 and 1's inputs; each iteration then loads those of two steps ahead before
    # computing its own (a software prefetch of depth 2).
    more_d = mask_d & ((offs_d * 0 + 1) < length)
    more_n = mask_n & ((offs_n * 0 + 1) < length)
    u_n1 = tl.load(u_p, mask=mask_d, other=0.0)
    dt_n1 = tl.load(dt_p, mask=mask_d, other=0.0)
    u_n2 = tl.load(u_p + su_t, mask=more_d, other=0.0)
    dt_n2 = tl.load(dt_p + sdt_t, mask=more_d, other=0.0)
    z_n1 = u_n1
    z_n2 = u_n2
    if HAS_Z:
        z_n1 = tl.load(z_p, mask=mask_d, other=0.0)
        z_n2 = tl.load(z_p + sz_t, mask=more_d, other=0.0)
    b_n1 = tl.load(b_p, mask=mask_n, other=0.0)
    c_n1 = tl.load(c_p, mask=mask_n, other=0.0)
    b_n2 = tl.load(b_p + sB_t, mask=more_n, other=0.0)
    c_n2 = tl.load(c_p + sC_t, mask=more_n, other=0.0)
    x = tl.zeros((BLOCK_D, NP), tl.float32)
    for t in range(length):
        u = u_n1.to(tl.float32)
        delta_raw = dt_n1.to(tl.float32)
        z = z_n1.to(tl.float32)
        b = b_n1.to(tl.float32)
        c = c_n1.to(tl.float32)
        u_n1, dt_n1, z_n1, b_n1, c_n1 = u_n2, dt_n2, z_n2, b_n2, c_n2
        nx = t + 2
        more_d = mask_d & ((offs_d * 0 + nx) < length)
        more_n = mask_n & ((offs_n * 0 + nx) < length)
        u_n2 = tl.load(u_p + nx * su_t, mask=more_d, other=0.0)
        dt_n2 = tl.load(dt_p + nx * sdt_t, mask=more_d, other=0.0)
        if HAS_Z:
            z_n2 = tl.load(z_p + nx * sz_t, mask=more_d, other=0.0)
        b_n2 = tl.load(b_p + nx * sB_t, mask=more_n, other=0.0)
        c_n2 = tl.load(c_p + nx * sC_t, mask=more_n, other=0.0)

        _, delta = _delta(delta_raw, bias, mask_d, HAS_BIAS, SOFTPLUS)
        decay = tl.exp2(delta[:, None] * a2)
        x = decay * x + (delta * u)[:, None] * b[None, :]
        y = tl.sum(x * c[None, :], axis=1) + d_skip * u
        if HAS_Z:
            y = y * z * tl.sigmoid(z)
        tl.store(o_p + t * so_t, y.to(out_ptr.dtype.element_ty), mask=mask_d)
        if SAVE:
            if (t % T == T - 1) | (t == length - 1):
                tl.store(ck_p + (t // T) * dim * n_state, x, mask=mask_dn)
    if not SAVE:
        tl.store(ck_p, x, mask=mask_dn)


@triton.jit
def _seq_backward_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,
                         ckpt_ptr, dout_ptr, dlast_ptr,
                         du_ptr, ddelta_ptr, dz_ptr, dBp_ptr, dCp_ptr, dA_ptr, dD_ptr, dbias_ptr,
                         dim, length, n_state, n_chunks, rows_per_group,
                         su_b, su_d, su_t, sdt_b, sdt_d, sdt_t, sz_b, sz_d, sz_t,
                         sdo_b, sdo_d, sdo_t, sdu_b, sdu_d, sdu_t, sddt_b, sddt_d, sddt_t,
                         sdz_b, sdz_d, sdz_t, sB_b, sB_n, sB_t, sC_b, sC_n, sC_t,
                         sdBp_p, sdBp_b, sdBp_n, sdBp_t, sdCp_p, sdCp_b, sdCp_n, sdCp_t,
                         HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                         SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr,
                         BLOCK_D: tl.constexpr, NP: tl.constexpr, T: tl.constexpr):
    pid_b, offs_d, offs_n, mask_d, mask_n, mask_dn, a2, bias, d_skip = _program_setup(
        A_ptr, D_ptr, bias_ptr, dim, n_state, rows_per_group, HAS_BIAS, HAS_D, BLOCK_D, NP)
    pid_d = tl.program_id(0)
    u_p = u_ptr + pid_b * su_b + offs_d * su_d
    dt_p = delta_ptr + pid_b * sdt_b + offs_d * sdt_d
    z_p = z_ptr + pid_b * sz_b + offs_d * sz_d
    do_p = dout_ptr + pid_b * sdo_b + offs_d * sdo_d
    du_p = du_ptr + pid_b * sdu_b + offs_d * sdu_d
    ddt_p = ddelta_ptr + pid_b * sddt_b + offs_d * sddt_d
    dz_p = dz_ptr + pid_b * sdz_b + offs_d * sdz_d
    b_p = B_ptr + pid_b * sB_b + offs_n * sB_n
    c_p = C_ptr + pid_b * sC_b + offs_n * sC_n
    dBp_p = dBp_ptr + pid_d * sdBp_p + pid_b * sdBp_b + offs_n * sdBp_n
    dCp_p = dCp_ptr + pid_d * sdCp_p + pid_b * sdCp_b + offs_n * sdCp_n
    dn_offsets = offs_d[:, None] * n_state + offs_n[None, :]
    ck_p = ckpt_ptr + pid_b * n_chunks * dim * n_state + dn_offsets
    # carry = a_{t+1} h_{t+1} for the step after the current one (dL/d final state at the end).
    carry = tl.zeros((BLOCK_D, NP), tl.float32)
    if HAS_DLAST:
        carry = tl.load(dlast_ptr + pid_b * dim * n_state + dn_offsets, mask=mask_dn, other=0.0)
    grad_a = tl.zeros((BLOCK_D, NP), tl.float32)
    grad_d = tl.zeros((BLOCK_D,), tl.float32)
    grad_bias = tl.zeros((BLOCK_D,), tl.float32)
    for c_rev in range(n_chunks):
        chunk = n_chunks - 1 - c_rev
        t0 = chunk * T
        # The chunk's start state: the checkpoint of the chunk before (zeros for the first).
        x = tl.load(ck_p + (chunk - 1) * dim * n_state, mask=mask_dn & ((offs_n * 0 + 0) < chunk)[None, :],
                    other=0.0)
        # Recompute the chunk's states and decays into registers (unrolled: static indices).
        states = ()
        for s in tl.static_range(T):
            t = t0 + s
            m = mask_d & ((offs_d * 0 + t) < length)
            m_n = mask_n & ((offs_n * 0 + t) < length)
            u = tl.load(u_p + t * su_t, mask=m, other=0.0).to(tl.float32)
            delta_raw = tl.load(dt_p + t * sdt_t, mask=m, other=0.0).to(tl.float32)
            b = tl.load(b_p + t * sB_t, mask=m_n, other=0.0).to(tl.float32)
            _, delta = _delta(delta_raw, bias, m, HAS_BIAS, SOFTPLUS)
            decay = tl.exp2(delta[:, None] * a2)
            x = decay * x + (delta * u)[:, None] * b[None, :]
            states = states + (x,)
        # The adjoint, backwards through the chunk (steps past L are identities: no output).
        for s in tl.static_range(T):
            t = t0 + (T - 1 - s)  # (indices into the tuples written out: they must stay constexpr)
            m = mask_d & ((offs_d * 0 + t) < length)
            m_n = mask_n & ((offs_n * 0 + t) < length)
            u = tl.load(u_p + t * su_t, mask=m, other=0.0).to(tl.float32)
            delta_raw = tl.load(dt_p + t * sdt_t, mask=m, other=0.0).to(tl.float32)
            b = tl.load(b_p + t * sB_t, mask=m_n, other=0.0).to(tl.float32)
            c = tl.load(c_p + t * sC_t, mask=m_n, other=0.0).to(tl.float32)
            dout = tl.load(do_p + t * sdo_t, mask=m, other=0.0).to(tl.float32)
            delta_raw, delta = _delta(delta_raw, bias, m, HAS_BIAS, SOFTPLUS)
            x_t = states[T - 1 - s]
            delta_u = delta * u
            decay = tl.exp2(delta[:, None] * a2)
            if HAS_Z:
                z = tl.load(z_p + t * sz_t, mask=m, other=0.0).to(tl.float32)
                sig = tl.sigmoid(z)
                dy = dout * z * sig
                y = tl.sum(x_t * c[None, :], axis=1) + d_skip * u
                dz = dout * y * sig * (1.0 + z * (1.0 - sig))
                tl.store(dz_p + t * sdz_t, dz.to(dz_ptr.dtype.element_ty), mask=m)
            else:
                dy = dout
            h = carry + dy[:, None] * c[None, :]
            h_ax = h * (x_t - delta_u[:, None] * b[None, :])  # h_t a_t x_{t-1}
            grad_a += h_ax * delta[:, None]
            h_b = tl.sum(h * b[None, :], axis=1)
            # sum_n h A a x_{t-1}, with A in log2 units in the tile: divide by log2(e) after.
            ddelta = u * h_b + tl.sum(h_ax * a2, axis=1) * 0.6931471805599453
            if SOFTPLUS:
                ddelta = ddelta * tl.sigmoid(delta_raw)
            ddelta = tl.where(m, ddelta, 0.0)
            grad_bias += ddelta
            grad_d += dy * u
            du = dy * d_skip + delta * h_b
            tl.store(du_p + t * sdu_t, du.to(du_ptr.dtype.element_ty), mask=m)
            tl.store(ddt_p + t * sddt_t, ddelta.to(ddelta_ptr.dtype.element_ty), mask=m)
            tl.store(dBp_p + t * sdBp_t, tl.sum(h * delta_u[:, None], axis=0), mask=m_n)
            tl.store(dCp_p + t * sdCp_t, tl.sum(x_t * dy[:, None], axis=0), mask=m_n)
            carry = h * decay
    # Per-batch-row partial sums of the parameter gradients; the host sums over the batch.
    tl.store(dA_ptr + pid_b * dim * n_state + dn_offsets, grad_a, mask=mask_dn)
    tl.store(dD_ptr + pid_b * dim + offs_d, grad_d, mask=mask_d)
    tl.store(dbias_ptr + pid_b * dim + offs_d, grad_bias, mask=mask_d)


def _config(config, batch, dim, length, n_state) -> SeqConfig:
    if config is None:
        return launch_config(batch, dim, length, n_state)
    return SeqConfig(*config)


class SelectiveScanSeq(torch.autograd.Function):
    """The scan with grouped, dense per-channel parameters: A (G, dim, N), D and delta_bias
    (G, dim) (or None); group g serves the batch rows [g R, (g + 1) R), R = batch / G (one group
    per model of a pack: blocks/mamba.py scan_runs). Returns (out, final state, checkpoints); the last is for the
    backward only. `save`: write the checkpoints (False under torch.no_grad: no backward then)."""

    @staticmethod
    def forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, config, save):
        batch, dim, length = u.shape
        groups, _, n_state = A.shape
        if batch % groups or any(t is not None and t.shape[0] != groups for t in (D, delta_bias)):
            raise ValueError(f"selective_scan (triton_seq): {batch} batch rows do not split into the "
                             f"{groups} parameter groups of A, D and delta_bias")
        cfg = _config(config, batch, dim, length, n_state)
        n_chunks = triton.cdiv(length, cfg.chunk)
        n_saved = n_chunks if save else 1
        out = new_buffer((batch, dim, length), u.dtype, u.device, strides=dense_strides(u))
        ckpt = new_buffer((batch, n_saved, dim, n_state), torch.float32, u.device)
        grid = (triton.cdiv(dim, cfg.block_d), batch)
        _seq_forward_kernel[grid](
            u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, out, ckpt, dim, length, n_state, n_saved,
            batch // groups,
            *_strides(u), *_strides(delta), *_strides(z), *_strides(out), *_strides(B), *_strides(C),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), SAVE=bool(save), BLOCK_D=cfg.block_d,
            NP=triton.next_power_of_2(n_state), T=cfg.chunk, num_warps=cfg.warps)
        return out, ckpt[:, -1], ckpt

    @staticmethod
    def setup_context(ctx, inputs, output):
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, config, save = inputs
        ctx.mark_non_differentiable(output[2])
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, output[2])
        ctx.delta_softplus = bool(delta_softplus)
        ctx.config = _config(config, u.shape[0], u.shape[1], u.shape[2], A.shape[2])
        ctx.saved_checkpoints = bool(save)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, dout, dlast, _dckpt):
        u, delta, A, B, C, D, z, delta_bias, ckpt = ctx.saved_tensors
        if torch._C._functorch.is_functorch_wrapped_tensor(u):
            raise NotImplementedError("selective_scan (triton_seq): torch.func.grad, vjp and jacrev are "
                                      "not supported; use torch.autograd, or backend='reference'")
        if not ctx.saved_checkpoints:
            raise RuntimeError("selective_scan (triton_seq): the forward ran without checkpoints (under "
                               "torch.no_grad), so it cannot be differentiated")
        cfg = ctx.config
        batch, dim, length = u.shape
        groups, _, n_state = A.shape
        n_chunks = ckpt.shape[1]
        dout = dout if dout is not None else torch.zeros_like(u)
        dlast = dlast.float().contiguous() if dlast is not None else None
        du = new_buffer(u.shape, u.dtype, u.device, strides=dense_strides(u))
        ddelta = new_buffer(delta.shape, delta.dtype, u.device, strides=dense_strides(delta))
        dz = new_buffer(z.shape, z.dtype, u.device, strides=dense_strides(z)) if z is not None else None
        blocks = triton.cdiv(dim, cfg.block_d_bwd)

        def partials(t):  # one dB (dC) per channel block, laid out in memory as B (C)
            strides = dense_strides(t)
            return new_buffer((blocks,) + tuple(t.shape), torch.float32, u.device,
                              strides=(t.numel(),) + strides)
        dB_parts, dC_parts = partials(B), partials(C)
        dA_rows = new_buffer((batch, dim, n_state), torch.float32, u.device)
        dD_rows = new_buffer((batch, dim), torch.float32, u.device)
        dbias_rows = new_buffer((batch, dim), torch.float32, u.device)
        _seq_backward_kernel[(blocks, batch)](
            u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, ckpt, dout,
            dlast if dlast is not None else ckpt,
            du, ddelta, dz if dz is not None else du, dB_parts, dC_parts, dA_rows, dD_rows, dbias_rows,
            dim, length, n_state, n_chunks, batch // groups,
            *_strides(u), *_strides(delta), *_strides(z), *_strides(dout), *_strides(du),
            *_strides(ddelta), *_strides(dz), *_strides(B), *_strides(C),
            *dB_parts.stride(), *dC_parts.stride(),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=ctx.delta_softplus, HAS_DLAST=dlast is not None,
            BLOCK_D=cfg.block_d_bwd, NP=triton.next_power_of_2(n_state), T=cfg.chunk,
            num_warps=cfg.warps_bwd)

        def block_sum(parts, like):  # partial sums over channel blocks -> the gradient
            total = parts[0] if blocks == 1 else parts.sum(0)
            return total.to(like.dtype)

        def group_sums(rows, like):  # per-row partial sums -> one gradient per group
            return rows.unflatten(0, (groups, -1)).sum(1).to(like.dtype) if like is not None else None

        return (du, ddelta, group_sums(dA_rows, A), block_sum(dB_parts, B), block_sum(dC_parts, C),
                group_sums(dD_rows, D), dz, group_sums(dbias_rows, delta_bias), None, None, None)


def selective_scan_seq(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False, config=None):
    """The sequential Triton selective scan; same interface as selective_scan_ref (grouped
    parameters included). `config`
    overrides the launch shape (a SeqConfig or a tuple of its fields), for tests and benchmarks."""
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    if u.shape[2] == 0:
        raise ValueError("selective_scan: the sequence length L must be at least 1")
    if A.shape[-1] > 256:
        raise ValueError(f"selective_scan (triton_seq): N={A.shape[-1]} must be at most 256")
    if config is not None and not 1 <= SeqConfig(*config).chunk <= 64:
        raise ValueError(f"selective_scan (triton_seq): chunk T={SeqConfig(*config).chunk} must be in 1..64")
    # Checkpoints for a backward whenever autograd records.
    save = torch.is_grad_enabled()
    if A.dim() == 2:  # one model: the Function's grouped layout with G = 1
        A, D, delta_bias = (t[None] if t is not None else None for t in (A, D, delta_bias))
    A, D, delta_bias = (t.contiguous() if t is not None else None for t in (A, D, delta_bias))
    out, last_state, _ = SelectiveScanSeq.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                                config, save)
    return (out, last_state) if return_last_state else out
