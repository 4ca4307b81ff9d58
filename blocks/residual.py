"""The pre-norm residual wrapper around every block: x + dropout(block(norm(x)))."""
from __future__ import annotations

from torch import Tensor, nn

from icl.blocks.stacked import StackedNorm


def make_norm(kind: str, width: int) -> StackedNorm:
    """LayerNorm (weight and bias) or RMSNorm (weight only), eps 1e-5 as GPT-2 and Mamba."""
    return StackedNorm(kind, width)


class PreNormResidual(nn.Module):
    """One layer of the layer string. `token` and `options` record what it was built from."""

    def __init__(self, token: str, options: dict, block: nn.Module, norm: str, width: int, dropout: float):
        super().__init__()
        self.token = token
        self.options = dict(options)
        self.norm = make_norm(norm, width)
        self.block = block
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.dropout(self.block(self.norm(x)))
