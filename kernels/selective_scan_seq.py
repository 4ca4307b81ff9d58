"""Sequential-over-L Triton selective scan (Mamba-1), forward and backward, fused with the
D skip and the silu(z) gate. Pure-PyTorch reference: selective_scan_ref.py beside it.

Made for the study's shapes (issue #24): short sequences (L 80-300), a small state (N 16) and
many channels (K runs packed into one batch of K*64 rows, 256 or 512 channels each).

Layout: one program per (block of BLOCK_D channels, batch row); each thread owns whole
channels, and a channel's N fp32 states are N separate (BLOCK_D,) register vectors (a tuple,
the loop over n unrolled), not one (BLOCK_D, N) tile. So every sum over the state index n
(y, and in the backward sum_n h B and sum_n h A a x) is arithmetic inside the thread, with no
shuffles and no barriers; only the sums over channels (dB_t, dC_t) cross threads, inside one
warp with the default one-warp programs. u_t, delta_t, z_t are (BLOCK_D,) loads, coalesced when
the channel stride is 1 ((batch, L, dim) memory, as the Mamba block's projections are); B_t and
C_t are N scalars each, the same for every channel (broadcast loads). The forward loads the
next step's inputs before it computes the current one (a software prefetch).
(The first version of this kernel held the state as one (BLOCK_D, N) tile: its sums over n
and over channels each took shuffles and a barrier per step; on an H200 at D 256, L 280,
1024 rows, its forward + backward ran 11.5 ms, slower than the chunked kernel's 9.8.)

Forward: writes out_t = (<x_t, C_t> + D u_t) silu(z_t) and, when a gradient will be needed,
the state at the end of every chunk of T steps (checkpoints, laid out (batch, chunk, N, dim)
so that each state vector is one coalesced store; the last one is the final state), 1/T of
the (batch, dim, L, N) states in fp32.

Backward: one program per (channel block, batch row) again, walking the chunks in reverse.
For each chunk it reloads the checkpoint before it, recomputes the chunk's T states, holding
them in registers (the loop over the chunk is unrolled: T x N state vectors), then runs the
adjoint recurrence backwards through the chunk, recomputing the decays a_t = exp(delta_t A)
and using a_t x_{t-1} = x_t - delta_t B_t u_t (no division by a_t, which may underflow):

    h_t = dy_t C_t + a_{t+1} h_{t+1}                       (h = dL/dx, carried between chunks)
    dA += h_t a_t x_{t-1} delta_t,   dD += dy_t u_t
    du_t = D dy_t + delta_t sum_n h_t B_t
    ddelta_t = (u_t sum_n h_t B_t + sum_n h_t A a_t x_{t-1}) softplus'(.)
    dB_t = sum_d h_t delta_t u_t,    dC_t = sum_d dy_t x_t      (dy_t = dout_t silu(z_t))

dB and dC, sums over channels, are reduced inside the program (by default as a reduce-scatter
over the warp's 32 lanes: 31 shuffles per step for the 2N = 32 sums, where one tl.sum per
vector takes 160, which were half the backward's issue slots) and written as one partial
sum per channel block (no atomics: deterministic); the host adds the partials when there is
more than one block per row. dA, dD and d(delta_bias) are written per batch row and summed
on the host, per parameter group (one group per model of a pack, as in
selective_scan_triton.py).

Offline SASS (benchmarks/kernel_sass.py: sm_90, Triton 3.9, N 16, T 3): the backward's loop is
1836 instructions per chunk of three steps for 32 channels with the default reduce 3 (2025 with
reduce 2): about 96 FMUL and 96 FFMA of the recurrences a step, the reduce-scatter, loads and
addresses, softplus and sigmoids the rest; 247 registers: 8 warps a multiprocessor. A variant
with a channel's states over two lanes (half the registers, about 20% more instructions per
channel and step) was timed and lost at every register cap (H100,
benchmarks/results/scan_variants_2026-12-07.md). The compiled loop (cuobjdump) starts each
chunk by loading its checkpoint, u and delta and uses them about 100 instructions later: a wait
on memory per chunk that 8 warps a multiprocessor may not cover. SeqConfig.prefetch loads them
one chunk ahead instead (255 registers, no spills, 3% more instructions): 4% faster forward +
backward on an H100, the default since. Reading B_t and C_t as 16-byte loads (inline PTX
ld.global.nc.v4: 1761 loop instructions with prefetch, against 1889) was timed and lost: fwd +
bwd 4.742 ms against 4.627 (H100, scan_variants_2026-12-07.md), so it was removed.

The state size N is unrolled into the code, so this kernel takes N <= MAX_STATE; a larger N
runs the chunked kernel (selective_scan_triton.py) instead.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from icl.kernels.selective_scan_ref import check_scan_inputs
from icl.kernels.selective_scan_triton import _strides, dense_strides, new_buffer  # tests poison new_buffer here

LOG2E = 1.4426950408889634


MAX_STATE = 32  # the largest N this kernel unrolls (larger: the chunked kernel)


class SeqConfig(NamedTuple):
    """Launch shape: channels per program and warps of each kernel, and the checkpoint
    interval T (the backward unrolls T steps and holds T x N state vectors in registers)."""
    block_d: int = 64
    warps: int = 1
    block_d_bwd: int = 32
    warps_bwd: int = 1
    chunk: int = 3
    # How the backward sums over channels (dB_t, dC_t): 0 one tl.sum per vector (an all-reduce:
    # log2(32) shuffles each), 2 a reduce-scatter (31 shuffles for the 32 vectors of a step; needs
    # block_d_bwd 32, one warp, N <= 16; else 0), 3 the same with each shuffle as PTX's shfl.bfly
    # (two adds fewer a shuffle; CUDA only: the Triton interpreter runs 2). (1, a product with a
    # ones matrix on the tensor cores, spilled and took 19.3 ms to 2's 5.1 on an H200: removed.)
    reduce: int = 2
    # ptxas's register caps of the backward and the forward (Triton's maxnreg; 0: its own choice,
    # up to 255): fewer registers a thread, more warps a multiprocessor (65536 / (32 x cap)), at
    # the risk of spills (sm_90, Triton 3.9: the forward fits 128 at block_d 64).
    max_registers_bwd: int = 0
    max_registers_fwd: int = 0
    # 1: the backward loads each chunk's checkpoint, u and delta one chunk ahead (3 + 2T more
    # registers; the loop's first arithmetic otherwise waits on those loads from memory).
    prefetch: int = 0


def launch_config(batch: int, dim: int, length: int, n_state: int) -> SeqConfig:
    """The default launch shape, the fastest of 5 timed on an H200 at D 256, L 280, 1024 rows
    (benchmarks/results/selective_scan_packed.json, 2026-12-05: fwd+bwd 5.10 ms fp32, 5.02 bf16;
    with 32 forward channels 5.41 and 5.36; T = 4: 5.66; reduce 0: 5.76; reduce 1: 19.3).
    Forward: one warp, two channels per thread (B_t, C_t loads shared). Backward: one warp per
    program, one channel per thread (a sum over
    channels then stays inside the warp: no barrier per step), T = 3 and the reduce-scatter.
    At N = 16 the backward needs 255 registers with T = 3 and spills with T = 4 (ptxas, sm_90);
    the checkpoints cost 64/T bytes per channel and step each way, so T is as large as fits.
    Since 2026-12-07 (H100, same shape, fp32): the reduce-scatter's shuffles as PTX (reduce 3)
    and the forward capped at 128 registers (16 warps a multiprocessor, no spills): fwd 1.224 ->
    1.163 ms, fwd + bwd 4.910 -> 4.750; a backward with a channel's states over two lanes
    lost (8.61 ms; 6.04 and 5.40 capped at 168 and 128 registers) and was removed
    (benchmarks/results/scan_variants_2026-12-07.md). Then (H100, same shape, fp32) loading each
    backward chunk's checkpoint, u and delta one chunk ahead (prefetch): fwd + bwd 4.824 -> 4.628
    ms (benchmarks/results/selective_scan_packed.2026-12-07b-h100.md)."""
    return SeqConfig(reduce=3, max_registers_fwd=128, prefetch=1)


@triton.jit
def _program_setup(A_ptr, D_ptr, bias_ptr, dim, rows_per_group, HAS_BIAS: tl.constexpr,
                   HAS_D: tl.constexpr, BLOCK_D: tl.constexpr, N: tl.constexpr):
    """This program's batch row (int64), channels and their mask, and the parameters of the
    row's group: A as a tuple of N (BLOCK_D,) vectors in log2 units, delta_bias, D (fp32)."""
    pid_b = tl.program_id(1).to(tl.int64)
    offs_d = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < dim
    group = pid_b // rows_per_group
    a_rows = A_ptr + group * dim * N + offs_d * N
    a2 = ()
    for n in tl.static_range(N):
        a2 = a2 + (tl.load(a_rows + n, mask=mask_d, other=0.0).to(tl.float32) * 1.4426950408889634,)
    bias = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + group * dim + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    d_skip = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_D:
        d_skip = tl.load(D_ptr + group * dim + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    return pid_b, offs_d, mask_d, a2, bias, d_skip


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
def _live(t, length):
    """t < length as a scalar tensor (t may be a plain int under the interpreter)."""
    return (tl.zeros((), tl.int32) + t) < length


@triton.jit
def _live_d(offs_d, mask_d, t, length):
    """mask_d where t < length, else all False."""
    return mask_d & ((offs_d * 0 + t) < length)


@triton.jit
def _scalars(ptr, stride_t, stride_n, t, length, N: tl.constexpr):
    """N scalars ptr[t' stride_t + n stride_n], t' = min(t, L - 1): a step's B_t or C_t, the same
    for every channel. Past L (a padded step of the last chunk, or the forward's prefetch after its
    last step) they are step L-1's, which such a step never uses (its delta and dout are 0):
    loads without a mask, so no predicate per load."""
    row = ptr + tl.minimum(tl.zeros((), tl.int32) + t, length - 1) * stride_t
    values = ()
    for n in tl.static_range(N):
        values = values + (tl.load(row + n * stride_n).to(tl.float32),)
    return values


@triton.jit
def _shuffle_xor(value, lane_mask):
    """Each lane's `value` from the lane whose index differs by `lane_mask` (PTX shfl.bfly; one
    element per lane: a warp's (2, 2, 2, 2, 2) tensor)."""
    return tl.inline_asm_elementwise("shfl.sync.bfly.b32 $0, $1, $2, 0x1f, 0xffffffff;", "=r,r,r",
                                     [value, lane_mask], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _channel_sums_scatter(vectors, BLOCK_D: tl.constexpr, SHUFFLE: tl.constexpr):
    """The channel sums of 32 (32,) vectors, as a reduce-scatter: returns one (32,) vector whose
    element k is the sum of vector k. The channel axis is viewed as 5 bits (2, 2, 2, 2, 2), the
    layout of one warp's 32 lanes (TTGIR: threadsPerWarp [2, 2, 2, 2, 2], order [4, 3, 2, 1, 0]:
    axis a is lane bit 4 - a); at each bit, each lane keeps half of its values and adds the other
    lane's copy of that half: one shuffle per pair of values, 16 + 8 + 4 + 2 + 1 in all (an
    all-reduce per vector, as tl.sum does, takes 5 per vector, 160). SHUFFLE: the copy comes from
    PTX's shfl.bfly (CUDA only); else as (tl.sum over the bit's pair - the lane's own sent value),
    two adds more."""
    lane = tl.reshape(tl.arange(0, BLOCK_D), (2, 2, 2, 2, 2))
    level = ()
    for k in tl.static_range(32):
        level = level + (tl.reshape(vectors[k], (2, 2, 2, 2, 2)),)
    for stage in tl.static_range(5):  # axis `stage` is lane bit 4 - stage; 16 >> stage pairs
        low = ((lane >> (4 - stage)) & 1) == 0
        kept = ()
        for k in tl.static_range(16 >> stage):
            keep = tl.where(low, level[k], level[k + (16 >> stage)])
            send = tl.where(low, level[k + (16 >> stage)], level[k])
            if SHUFFLE:
                kept = kept + (keep + _shuffle_xor(send, (lane * 0) + (1 << (4 - stage))),)
            else:
                total = tl.sum(send, axis=stage, keep_dims=True)
                kept = kept + (keep + (total - send),)
        level = kept
    return tl.reshape(level[0], (BLOCK_D,))


@triton.jit
def _seq_forward_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,
                        out_ptr, ckpt_ptr, dim, length, n_saved, rows_per_group,
                        su_b, su_d, su_t, sdt_b, sdt_d, sdt_t, sz_b, sz_d, sz_t, so_b, so_d, so_t,
                        sB_b, sB_n, sB_t, sC_b, sC_n, sC_t,
                        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                        SOFTPLUS: tl.constexpr, SAVE: tl.constexpr, BLOCK_D: tl.constexpr,
                        N: tl.constexpr, T: tl.constexpr):
    pid_b, offs_d, mask_d, a2, bias, d_skip = _program_setup(
        A_ptr, D_ptr, bias_ptr, dim, rows_per_group, HAS_BIAS, HAS_D, BLOCK_D, N)
    u_p = u_ptr + pid_b * su_b + offs_d * su_d
    dt_p = delta_ptr + pid_b * sdt_b + offs_d * sdt_d
    z_p = z_ptr + pid_b * sz_b + offs_d * sz_d
    o_p = out_ptr + pid_b * so_b + offs_d * so_d
    b_p = B_ptr + pid_b * sB_b
    c_p = C_ptr + pid_b * sC_b
    ck_p = ckpt_ptr + pid_b * n_saved * N * dim + offs_d
    # Step 0's inputs; each iteration loads the next step's before computing its own.
    u_nx = tl.load(u_p, mask=mask_d, other=0.0)
    dt_nx = tl.load(dt_p, mask=mask_d, other=0.0)
    z_nx = u_nx
    if HAS_Z:
        z_nx = tl.load(z_p, mask=mask_d, other=0.0)
    b_nx = _scalars(b_p, sB_t, sB_n, 0, length, N)
    c_nx = _scalars(c_p, sC_t, sC_n, 0, length, N)
    x = ()
    for n in tl.static_range(N):
        x = x + (tl.zeros((BLOCK_D,), tl.float32),)
    for t in range(length):
        u = u_nx.to(tl.float32)
        delta_raw = dt_nx.to(tl.float32)
        z = z_nx.to(tl.float32)
        b = b_nx
        c = c_nx
        nt = t + 1
        more_d = _live_d(offs_d, mask_d, nt, length)
        u_nx = tl.load(u_p + nt * su_t, mask=more_d, other=0.0)
        dt_nx = tl.load(dt_p + nt * sdt_t, mask=more_d, other=0.0)
        if HAS_Z:
            z_nx = tl.load(z_p + nt * sz_t, mask=more_d, other=0.0)
        b_nx = _scalars(b_p, sB_t, sB_n, nt, length, N)
        c_nx = _scalars(c_p, sC_t, sC_n, nt, length, N)

        _, delta = _delta(delta_raw, bias, mask_d, HAS_BIAS, SOFTPLUS)
        delta_u = delta * u
        y = d_skip * u
        x_new = ()
        for n in tl.static_range(N):
            x_n = tl.exp2(delta * a2[n]) * x[n] + delta_u * b[n]
            y += x_n * c[n]
            x_new = x_new + (x_n,)
        x = x_new
        if HAS_Z:
            y = y * z * tl.sigmoid(z)
        tl.store(o_p + t * so_t, y.to(out_ptr.dtype.element_ty), mask=mask_d)
        if SAVE:
            if (t % T == T - 1) | (t == length - 1):
                for n in tl.static_range(N):
                    tl.store(ck_p + ((t // T) * N + n) * dim, x[n], mask=mask_d)
    if not SAVE:
        for n in tl.static_range(N):
            tl.store(ck_p + n * dim, x[n], mask=mask_d)


@triton.jit
def _chunk_inputs(ck_p, u_p, dt_p, su_t, sdt_t, offs_d, mask_d, chunk, dim, length, N: tl.constexpr,
                  T: tl.constexpr, BEFORE_FIRST: tl.constexpr):
    """What the backward reads first for a chunk: the checkpoint before it (N vectors; zeros for
    chunk 0) and its T steps' u and delta_raw (0 past L; all 0 for chunk -1, the end of a
    prefetching walk, which BEFORE_FIRST allows)."""
    x = ()
    for n in tl.static_range(N):
        x = x + (tl.load(ck_p + ((chunk - 1) * N + n) * dim, mask=_live_d(offs_d, mask_d, 0, chunk), other=0.0),)
    us = ()
    raws = ()
    for s in tl.static_range(T):
        t = chunk * T + s
        m = _live_d(offs_d, mask_d, t, length)
        if BEFORE_FIRST:
            m = m & (offs_d * 0 + t >= 0)
        us = us + (tl.load(u_p + t * su_t, mask=m, other=0.0),)
        raws = raws + (tl.load(dt_p + t * sdt_t, mask=m, other=0.0),)
    return x, us, raws


@triton.jit
def _seq_backward_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr,
                         ckpt_ptr, dout_ptr, dlast_ptr,
                         du_ptr, ddelta_ptr, dz_ptr, dBp_ptr, dCp_ptr, dA_ptr, dD_ptr, dbias_ptr,
                         dim, length, n_chunks, rows_per_group,
                         su_b, su_d, su_t, sdt_b, sdt_d, sdt_t, sz_b, sz_d, sz_t,
                         sdo_b, sdo_d, sdo_t, sdu_b, sdu_d, sdu_t, sddt_b, sddt_d, sddt_t,
                         sdz_b, sdz_d, sdz_t, sB_b, sB_n, sB_t, sC_b, sC_n, sC_t,
                         sdBp_p, sdBp_b, sdBp_n, sdBp_t, sdCp_p, sdCp_b, sdCp_n, sdCp_t,
                         sdl_b, sdl_d, sdl_n,
                         HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                         SOFTPLUS: tl.constexpr, HAS_DLAST: tl.constexpr,
                         BLOCK_D: tl.constexpr, N: tl.constexpr, T: tl.constexpr,
                         REDUCE: tl.constexpr, PREFETCH: tl.constexpr):
    pid_b, offs_d, mask_d, a2, bias, d_skip = _program_setup(
        A_ptr, D_ptr, bias_ptr, dim, rows_per_group, HAS_BIAS, HAS_D, BLOCK_D, N)
    pid_d = tl.program_id(0)
    u_p = u_ptr + pid_b * su_b + offs_d * su_d
    dt_p = delta_ptr + pid_b * sdt_b + offs_d * sdt_d
    z_p = z_ptr + pid_b * sz_b + offs_d * sz_d
    do_p = dout_ptr + pid_b * sdo_b + offs_d * sdo_d
    du_p = du_ptr + pid_b * sdu_b + offs_d * sdu_d
    ddt_p = ddelta_ptr + pid_b * sddt_b + offs_d * sddt_d
    dz_p = dz_ptr + pid_b * sdz_b + offs_d * sdz_d
    b_p = B_ptr + pid_b * sB_b
    c_p = C_ptr + pid_b * sC_b
    dBp_p = dBp_ptr + pid_d * sdBp_p + pid_b * sdBp_b
    dCp_p = dCp_ptr + pid_d * sdCp_p + pid_b * sdCp_b
    ck_p = ckpt_ptr + pid_b * n_chunks * N * dim + offs_d
    # carry[n] = a_{t+1} h_{t+1} for the step after the current one (dL/d final state at the end).
    carry = ()
    grad_a = ()
    for n in tl.static_range(N):
        if HAS_DLAST:
            carry = carry + (tl.load(dlast_ptr + pid_b * sdl_b + offs_d * sdl_d + n * sdl_n, mask=mask_d,
                                     other=0.0).to(tl.float32),)
        else:
            carry = carry + (tl.zeros((BLOCK_D,), tl.float32),)
        grad_a = grad_a + (tl.zeros((BLOCK_D,), tl.float32),)
    grad_d = tl.zeros((BLOCK_D,), tl.float32)
    grad_bias = tl.zeros((BLOCK_D,), tl.float32)
    if REDUCE != 0:
        # Element k of the channel sums: dB_k (k < N), dC_{k-N} (N <= k < 2N), or padding.
        vec_k = tl.arange(0, BLOCK_D)
        scatter_off_b = tl.where(vec_k < N, vec_k, 0) * sdBp_n
        scatter_off_c = tl.where((vec_k >= N) & (vec_k < 2 * N), vec_k - N, 0) * sdCp_n
        scatter_b = vec_k < N
        scatter_c = (vec_k >= N) & (vec_k < 2 * N)
    # PREFETCH: each chunk's checkpoint, u and delta are loaded one chunk ahead (during the
    # chunk after it, in this reverse walk), so their memory latency overlaps arithmetic.
    if PREFETCH:
        ck_nx, u_nx, dr_nx = _chunk_inputs(ck_p, u_p, dt_p, su_t, sdt_t, offs_d, mask_d, n_chunks - 1, dim,
                                           length, N, T, False)
    for c_rev in range(n_chunks):
        chunk = n_chunks - 1 - c_rev
        t0 = chunk * T
        # The chunk's start state: the checkpoint of the chunk before (zeros for the first).
        if PREFETCH:
            x, u_in, dr_in = ck_nx, u_nx, dr_nx
            ck_nx, u_nx, dr_nx = _chunk_inputs(ck_p, u_p, dt_p, su_t, sdt_t, offs_d, mask_d, chunk - 1, dim,
                                               length, N, T, True)
        else:
            x, u_in, dr_in = _chunk_inputs(ck_p, u_p, dt_p, su_t, sdt_t, offs_d, mask_d, chunk, dim,
                                           length, N, T, False)
        # Recompute the chunk's states into registers (unrolled: static indices), keeping each
        # step's u, delta_raw and delta for the adjoint.
        states = ()
        us = ()
        raws = ()
        deltas = ()
        for s in tl.static_range(T):
            t = t0 + s
            m = _live_d(offs_d, mask_d, t, length)
            u = u_in[s].to(tl.float32)
            delta_raw, delta = _delta(dr_in[s].to(tl.float32), bias, m, HAS_BIAS, SOFTPLUS)
            b = _scalars(b_p, sB_t, sB_n, t, length, N)
            delta_u = delta * u
            x_new = ()
            for n in tl.static_range(N):
                x_new = x_new + (tl.exp2(delta * a2[n]) * x[n] + delta_u * b[n],)
            x = x_new
            states = states + (x,)
            us = us + (u,)
            raws = raws + (delta_raw,)
            deltas = deltas + (delta,)
        # The adjoint, backwards through the chunk (steps past L are identities: no output).
        for i in tl.static_range(T - 1, -1, -1):  # (i constexpr: it indexes the tuples)
            t = t0 + i
            live = _live(t, length)
            m = _live_d(offs_d, mask_d, t, length)
            u = us[i]
            delta = deltas[i]
            x_t = states[i]
            b = _scalars(b_p, sB_t, sB_n, t, length, N)
            c = _scalars(c_p, sC_t, sC_n, t, length, N)
            dout = tl.load(do_p + t * sdo_t, mask=m, other=0.0).to(tl.float32)
            delta_u = delta * u
            if HAS_Z:
                z = tl.load(z_p + t * sz_t, mask=m, other=0.0).to(tl.float32)
                sig = tl.sigmoid(z)
                dy = dout * z * sig
                y = d_skip * u
                for n in tl.static_range(N):
                    y += x_t[n] * c[n]
                dz = dout * y * sig * (1.0 + z * (1.0 - sig))
                tl.store(dz_p + t * sdz_t, dz.to(dz_ptr.dtype.element_ty), mask=m)
            else:
                dy = dout
            h_b = tl.zeros((BLOCK_D,), tl.float32)
            h_ax_a = tl.zeros((BLOCK_D,), tl.float32)
            new_carry = ()
            new_grad_a = ()
            parts_b = ()
            for n in tl.static_range(N):
                h = carry[n] + dy * c[n]
                h_ax = h * (x_t[n] - delta_u * b[n])  # h_t a_t x_{t-1}
                new_grad_a = new_grad_a + (grad_a[n] + h_ax * delta,)
                h_b += h * b[n]
                h_ax_a += h_ax * a2[n]
                if REDUCE != 0:
                    parts_b = parts_b + (h * delta_u,)
                else:
                    tl.store(dBp_p + n * sdBp_n + t * sdBp_t, tl.sum(h * delta_u, axis=0), mask=live)
                    tl.store(dCp_p + n * sdCp_n + t * sdCp_t, tl.sum(x_t[n] * dy, axis=0), mask=live)
                new_carry = new_carry + (h * tl.exp2(delta * a2[n]),)
            carry = new_carry
            grad_a = new_grad_a
            if REDUCE != 0:  # dB's N vectors, dC's, then zeros: 32
                parts = parts_b
                for n in tl.static_range(N):
                    parts = parts + (x_t[n] * dy,)
                for _ in tl.static_range(32 - 2 * N):
                    parts = parts + (dy * 0.0,)
                sums = _channel_sums_scatter(parts, BLOCK_D, REDUCE == 3)
                ok = (vec_k * 0 + t) < length
                tl.store(dBp_p + t * sdBp_t + scatter_off_b, sums, mask=ok & scatter_b)
                tl.store(dCp_p + t * sdCp_t + scatter_off_c, sums, mask=ok & scatter_c)
            # sum_n h A a x_{t-1}, with A in log2 units: times ln 2.
            ddelta = u * h_b + h_ax_a * 0.6931471805599453
            if SOFTPLUS:
                ddelta = ddelta * tl.sigmoid(raws[i])
            ddelta = tl.where(m, ddelta, 0.0)
            grad_bias += ddelta
            grad_d += dy * u
            du = dy * d_skip + delta * h_b
            tl.store(du_p + t * sdu_t, du.to(du_ptr.dtype.element_ty), mask=m)
            tl.store(ddt_p + t * sddt_t, ddelta.to(ddelta_ptr.dtype.element_ty), mask=m)
    # Per-batch-row partial sums of the parameter gradients, dA laid out (batch, N, dim); the
    # host sums over each group's rows.
    for n in tl.static_range(N):
        tl.store(dA_ptr + (pid_b * N + n) * dim + offs_d, grad_a[n], mask=mask_d)
    tl.store(dD_ptr + pid_b * dim + offs_d, grad_d, mask=mask_d)
    tl.store(dbias_ptr + pid_b * dim + offs_d, grad_bias, mask=mask_d)


def _config(config, batch, dim, length, n_state) -> SeqConfig:
    if config is None:
        return launch_config(batch, dim, length, n_state)
    return SeqConfig(*config)


class SelectiveScanSeq(torch.autograd.Function):
    """The scan with grouped, dense per-channel parameters: A (G, dim, N), D and delta_bias
    (G, dim) (or None); group g serves the batch rows [g R, (g + 1) R), R = batch / G (one group
    per model of a pack: blocks/mamba.py scan_runs). Returns (out, final state, checkpoints); the
    last is for the backward only. `save`: write the checkpoints (False under torch.no_grad: no
    backward then)."""

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
        ckpt = new_buffer((batch, n_saved, n_state, dim), torch.float32, u.device)
        grid = (triton.cdiv(dim, cfg.block_d), batch)
        _seq_forward_kernel[grid](
            u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, out, ckpt, dim, length, n_saved,
            batch // groups,
            *_strides(u), *_strides(delta), *_strides(z), *_strides(out), *_strides(B), *_strides(C),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), SAVE=bool(save), BLOCK_D=cfg.block_d,
            N=n_state, T=cfg.chunk, num_warps=cfg.warps,
            **({"maxnreg": cfg.max_registers_fwd} if cfg.max_registers_fwd else {}))
        return out, ckpt[:, -1].transpose(1, 2), ckpt

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
        dlast = dlast.float() if dlast is not None else None
        du = new_buffer(u.shape, u.dtype, u.device, strides=dense_strides(u))
        ddelta = new_buffer(delta.shape, delta.dtype, u.device, strides=dense_strides(delta))
        dz = new_buffer(z.shape, z.dtype, u.device, strides=dense_strides(z)) if z is not None else None
        blocks = triton.cdiv(dim, cfg.block_d_bwd)

        def partials(t):  # one dB (dC) per channel block, laid out in memory as B (C)
            strides = dense_strides(t)
            return new_buffer((blocks,) + tuple(t.shape), torch.float32, u.device,
                              strides=(t.numel(),) + strides)
        dB_parts, dC_parts = partials(B), partials(C)
        dA_rows = new_buffer((batch, n_state, dim), torch.float32, u.device)
        dD_rows = new_buffer((batch, dim), torch.float32, u.device)
        dbias_rows = new_buffer((batch, dim), torch.float32, u.device)
        operands = (u, delta, A, B, C, D if D is not None else u, z if z is not None else u,
                    delta_bias if delta_bias is not None else u, ckpt, dout,
                    dlast if dlast is not None else ckpt,
                    du, ddelta, dz if dz is not None else du, dB_parts, dC_parts, dA_rows, dD_rows, dbias_rows,
                    dim, length, n_chunks, batch // groups,
                    *_strides(u), *_strides(delta), *_strides(z), *_strides(dout), *_strides(du),
                    *_strides(ddelta), *_strides(dz), *_strides(B), *_strides(C),
                    *dB_parts.stride(), *dC_parts.stride(), *_strides(dlast))
        flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                     SOFTPLUS=ctx.delta_softplus, HAS_DLAST=dlast is not None, N=n_state, T=cfg.chunk)
        reduce = int(cfg.reduce)
        if reduce == 3 and not u.is_cuda:
            reduce = 2  # inline PTX: not under the interpreter
        if cfg.block_d_bwd != 32 or 2 * n_state > 32:
            reduce = 0  # the reduce-scatter's shape: 32 lanes, 32 vectors (N <= 16)
        if cfg.max_registers_bwd:
            flags["maxnreg"] = cfg.max_registers_bwd
        _seq_backward_kernel[(blocks, batch)](
            *operands, **flags, BLOCK_D=cfg.block_d_bwd, REDUCE=reduce, PREFETCH=bool(cfg.prefetch),
            num_warps=cfg.warps_bwd)

        def block_sum(parts, like):  # partial sums over channel blocks -> the gradient
            total = parts[0] if blocks == 1 else parts.sum(0)
            return total.to(like.dtype)

        def group_sums(rows, like):  # per-row partial sums -> one gradient per group
            return rows.unflatten(0, (groups, -1)).sum(1).to(like.dtype) if like is not None else None

        dA = group_sums(dA_rows, A).transpose(1, 2).contiguous()
        return (du, ddelta, dA, block_sum(dB_parts, B), block_sum(dC_parts, C),
                group_sums(dD_rows, D), dz, group_sums(dbias_rows, delta_bias), None, None, None)


def selective_scan_seq(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False, config=None):
    """The sequential Triton selective scan; same interface as selective_scan_ref (grouped
    parameters included). `config` overrides the launch shape (a SeqConfig or a tuple of its
    fields), for tests and benchmarks. N > MAX_STATE runs the chunked kernel instead."""
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    if u.shape[2] == 0:
        raise ValueError("selective_scan: the sequence length L must be at least 1")
    if A.shape[-1] > MAX_STATE:
        from icl.kernels.selective_scan_triton import selective_scan_triton
        return selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if config is not None and not 1 <= SeqConfig(*config).chunk <= 64:
        raise ValueError(f"selective_scan (triton_seq): chunk T={SeqConfig(*config).chunk} must be in 1..64")
    if config is not None and SeqConfig(*config).reduce not in (0, 2, 3):
        raise ValueError(f"selective_scan (triton_seq): reduce={SeqConfig(*config).reduce} must be 0, 2 or 3")
    # Checkpoints for a backward whenever autograd records.
    save = torch.is_grad_enabled()
    if A.dim() == 2:  # one model: the Function's grouped layout with G = 1
        A, D, delta_bias = (t[None] if t is not None else None for t in (A, D, delta_bias))
    A, D, delta_bias = (t.contiguous() if t is not None else None for t in (A, D, delta_bias))
    out, last_state, _ = SelectiveScanSeq.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                                config, save)
    return (out, last_state) if return_last_state else out
