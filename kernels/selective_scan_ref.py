"""Pure-PyTorch reference of the Mamba selective scan (mamba_ssm semantics).

A plain sequential recurrence over the sequence length with an fp32 state:

    delta   = softplus(delta + delta_bias)        (if delta_softplus)
    x_t     = exp(delta_t * A) * x_{t-1} + delta_t * B_t * u_t
    y_t     = <x_t, C_t> + D * u_t
    out_t   = y_t * silu(z_t)                     (if z is given)

Shapes (mamba_ssm's): u, delta, z (batch, dim, L); A (dim, N); B, C (batch, N, L);
D, delta_bias (dim,). Grouped parameters, for K models packed into one batch of K B rows:
A (K, dim, N), D and delta_bias (K, dim), model k's parameters serving rows [k B, (k + 1) B).
Works on any device and is differentiable by autograd.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from icl.kernels.stretches import run_in_stretches

# Steps per checkpointed stretch (kernels/stretches.py): when autograd records, it keeps the state
# entering each stretch rather than the (batch, dim, L, N) discretised inputs and a state per step,
# and recomputes a stretch in the backward (same values). Without it the zoo's Mamba on sparse
# parity (280 tokens, 8 layers) peaked at 18.5 GB on the CPU.
CHECKPOINT_STEPS = 32


def check_scan_inputs(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                      D: Tensor | None, z: Tensor | None, delta_bias: Tensor | None) -> None:
    """Raise a one-line ValueError when shapes do not follow the selective-scan contract:
    A (dim, N) with D, delta_bias (dim,) for one model, or grouped A (G, dim, N) with D,
    delta_bias (G, dim), group g serving the batch rows [g R, (g + 1) R), R = batch / G."""
    if u.dim() != 3:
        raise ValueError(f"selective_scan: u must be (batch, dim, L), got shape {tuple(u.shape)}")
    batch, dim, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"selective_scan: delta shape {tuple(delta.shape)} must equal u shape {tuple(u.shape)}")
    if A.dim() not in (2, 3) or A.shape[-2] != dim:
        raise ValueError(f"selective_scan: A must be (dim={dim}, N) or (groups, dim={dim}, N), "
                         f"got shape {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("selective_scan: complex A is not supported")
    groups = A.shape[0] if A.dim() == 3 else None
    if groups is not None and (groups < 1 or batch % groups):
        raise ValueError(f"selective_scan: {batch} batch rows do not split into the {groups} "
                         "parameter groups of A")
    n_state = A.shape[-1]
    for name, t in (("B", B), ("C", C)):
        if t.shape != (batch, n_state, length):
            raise ValueError(f"selective_scan: {name} must be (batch={batch}, N={n_state}, L={length}), "
                             f"got shape {tuple(t.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"selective_scan: z shape {tuple(z.shape)} must equal u shape {tuple(u.shape)}")
    want = (dim,) if groups is None else (groups, dim)
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != want:
            raise ValueError(f"selective_scan: {name} must be {want} like A's leading axes, "
                             f"got shape {tuple(t.shape)}")


def per_row(t: Tensor | None, batch: int, grouped: bool) -> Tensor | None:
    """A per-channel parameter with a leading batch axis: (dim, ...) -> (1, dim, ...), or a
    grouped (G, dim, ...) -> (batch, dim, ...), each group repeated for its rows."""
    if t is None:
        return None
    return t.repeat_interleave(batch // t.shape[0], dim=0) if grouped else t.unsqueeze(0)


def selective_scan_ref(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                       D: Tensor | None = None, z: Tensor | None = None,
                       delta_bias: Tensor | None = None, delta_softplus: bool = False,
                       return_last_state: bool = False):
    """Selective scan by a sequential loop over L. Returns out (batch, dim, L) in u's dtype
    [and the final state (batch, dim, N) in fp32 when return_last_state]."""
    check_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    dtype_in = u.dtype
    batch, dim, length = u.shape
    grouped = A.dim() == 3
    u, delta, B, C = (t.float() for t in (u, delta, B, C))
    A, D, delta_bias = (per_row(t.float() if t is not None else None, batch, grouped)
                        for t in (A, D, delta_bias))                # (1 or batch, dim[, N])
    if delta_bias is not None:
        delta = delta + delta_bias[..., None]
    if delta_softplus:
        delta = F.softplus(delta)
    state = u.new_zeros(batch, dim, A.shape[-1])
    # A is whole in every stretch; the others are cut along their steps axis
    ys, state = run_in_stretches(_stretch, state, (delta, u, B, C), axis=2, steps=CHECKPOINT_STEPS, extra=(A,))
    y = torch.cat(ys, dim=2) if length > 0 else u.new_zeros(batch, dim, 0)
    out = y if D is None else y + u * D[..., None]
    if z is not None:
        out = out * F.silu(z.float())
    out = out.to(dtype_in)
    return (out, state) if return_last_state else out


def _stretch(state: Tensor, delta: Tensor, u: Tensor, B: Tensor, C: Tensor, A: Tensor):
    """The recurrence over one stretch of steps from `state` (batch, dim, N): (y of the
    stretch (batch, dim, T), the state after it). A (1 or batch, dim, N); delta, u (batch,
    dim, T) after softplus; B, C (batch, N, T)."""
    # Discretisation for the stretch's steps at once: (batch, dim, T, N).
    delta_a = torch.exp(delta.unsqueeze(-1) * A[:, :, None, :])
    delta_b_u = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)
    # unbind, not indexing in the loop: its backward is one stack instead of T scatters.
    ys = []
    for step_a, step_b, c_t in zip(delta_a.unbind(2), delta_b_u.unbind(2), C.unbind(2)):
        state = step_a * state + step_b
        ys.append(torch.einsum("bdn,bn->bd", state, c_t))
    return torch.stack(ys, dim=2), state
