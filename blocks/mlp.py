"""Position-wise MLP (token "F"): Linear(D, r*D), GELU, Linear(r*D, D), as in GPT-2."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from icl.blocks.stacked import StackedLinear


class MLP(nn.Module):
    """Initialised as GPT-2: weights N(0, init_std), the output layer N(0, init_std / sqrt(n_layers))."""

    def __init__(self, width: int, *, mlp_ratio: int, bias: bool, n_layers: int = 1, init_std: float = 0.02):
        super().__init__()
        self.fc = StackedLinear(width, mlp_ratio * width, bias=bias)
        self.proj = StackedLinear(mlp_ratio * width, width, bias=bias)
        nn.init.normal_(self.fc.weight, std=init_std)
        nn.init.normal_(self.proj.weight, std=init_std / math.sqrt(n_layers))
        for linear in (self.fc, self.proj):
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        # GPT-2 uses the tanh approximation of GELU.
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))
