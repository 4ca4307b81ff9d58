"""S4-Mamba mixer (token "SM"): the Mamba mixer with its selective scan replaced by S4D.

    x, z = in_proj(u);  x = SiLU(causal depthwise conv(x));  y = S4D(x) (incl. D skip);
    out  = out_proj(y * z)

As in the study's code there is no x_proj or dt_proj, and the output is gated by z itself,
not SiLU(z). The study keeps dropout 0.1 inside this mixer (a known defect, ../shared/paper.md);
here the model's `dropout` option on block outputs is the only dropout.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from icl.blocks.s4d import S4DKernel
from icl.blocks.stacked import StackedCausalConv, StackedLinear


class S4MambaMixer(nn.Module):
    """Init: in_proj, conv PyTorch's default; out_proj PyTorch's default / sqrt(n_layers); S4D as s4d.py."""

    def __init__(self, width: int, *, d_state: int, d_conv: int, expand: int, n_layers: int = 1):
        super().__init__()
        inner = expand * width
        self.in_proj = StackedLinear(width, 2 * inner, bias=False)
        self.conv1d = StackedCausalConv(inner, d_conv)
        self.s4d = S4DKernel(inner, d_state)
        self.out_proj = StackedLinear(inner, width, bias=False)
        with torch.no_grad():
            self.out_proj.weight /= math.sqrt(n_layers)

    def forward(self, u: Tensor, return_state: bool = False):
        """u (K, B, L, D) -> (K, B, L, D) [and the final S4D states (K, B, E, N)]."""
        inner = self.out_proj.in_features  # x and z as two products (mamba.py says why)
        x, z = self.in_proj.rows(u, 0, inner), self.in_proj.rows(u, inner, 2 * inner)
        x = self.conv1d(x, silu=True)
        y = self.s4d(x)
        out = self.out_proj(y * z)
        return (out, self.s4d.final_state(x)) if return_state else out
