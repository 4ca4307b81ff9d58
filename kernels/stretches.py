"""A recurrence's plain-PyTorch reference over a sequence in stretches of steps, each stretch
under activation checkpointing when autograd records: autograd then keeps the state entering each
stretch rather than every step's intermediates, and recomputes a stretch in the backward (same
values, same order). Used by the selective scan's reference (kernels/selective_scan_ref.py) and
RWKV-7's (blocks/rwkv7.py), whose per-step states made a zoo run peak at 18-22 GB on the CPU.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.utils.checkpoint
from torch import Tensor


def run_in_stretches(stretch: Callable, state: Tensor, sequences: Sequence[Tensor], axis: int,
                     steps: int, extra: Sequence = ()) -> tuple[list[Tensor], Tensor]:
    """stretch(state, *pieces, *extra) -> (output of the stretch, state after it), called on
    consecutive pieces of `steps` along `axis` of every tensor of `sequences`; `extra` (tensors
    or numbers) goes to every call whole. Returns the stretches' outputs, in order, and the last
    state."""
    length = sequences[0].shape[axis]
    keep = torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad
                                           for t in (state, *sequences, *extra))
    outputs = []
    for start in range(0, length, steps):
        pieces = [t.narrow(axis, start, min(steps, length - start)) for t in sequences]
        if keep:
            out, state = torch.utils.checkpoint.checkpoint(stretch, state, *pieces, *extra, use_reentrant=False)
        else:
            out, state = stretch(state, *pieces, *extra)
        outputs.append(out)
    return outputs, state
