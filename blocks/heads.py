"""What sits around the blocks: the shared read-in, the position table and the read-out.

Read-in: one Linear(token_dim, D) shared by every token (x and y tokens alike, no token-type
embedding), or an Embedding(vocab, D) table for token-id tasks. Positions: none, or a learned
table with one row per token position of the task's longest prompt. Read-out: Linear(D, out_dim).
Weights N(0, init_std) with zero biases (init = gpt2), or the Linears' PyTorch default init (init =
released, as the study's released code). Each has a leading run axis K (blocks/stacked.py).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from icl.blocks.stacked import StackedEmbedding, StackedLinear


class ReadIn(nn.Module):
    """init_std None: the Linear keeps PyTorch's default init (the released code's); a token
    table is N(0, embedding_std) either way (default init_std)."""

    def __init__(self, token_dim: int, vocab: int, width: int, init_std: float | None,
                 embedding_std: float | None = None):
        super().__init__()
        self.tokenized = vocab > 0
        self.map = StackedEmbedding(vocab, width) if self.tokenized else StackedLinear(token_dim, width)
        if self.tokenized:
            nn.init.normal_(self.map.weight, std=init_std if embedding_std is None else embedding_std)
        elif init_std is not None:
            nn.init.normal_(self.map.weight, std=init_std)
            nn.init.zeros_(self.map.bias)

    def check(self, inputs: Tensor) -> None:
        """Token ids for a token task, vectors of token_dim otherwise (with or without a run axis)."""
        if self.tokenized:
            if inputs.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"token task: inputs must be integer token ids (B, T), got {inputs.dtype}")
        elif inputs.dim() not in (3, 4) or inputs.shape[-1] != self.map.in_features:
            raise ValueError(f"inputs must be (B, T, {self.map.in_features}), got shape {tuple(inputs.shape)}")

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (K, B, T, token_dim) float, or (K, B, T) token ids -> (K, B, T, D)."""
        self.check(inputs)
        return self.map(inputs)


class LearnedPositions(nn.Module):
    def __init__(self, tokens: int, width: int, init_std: float):
        super().__init__()
        self.table = StackedEmbedding(tokens, width)
        self.init_std = init_std
        nn.init.normal_(self.table.weight, std=init_std)

    def forward(self, x: Tensor) -> Tensor:
        """x (K, B, T, D) + each run's rows 0 .. T-1."""
        length = x.shape[2]
        if length > self.table.num_embeddings:
            raise ValueError(f"prompt of {length} tokens is longer than the position table "
                             f"({self.table.num_embeddings} rows, sized by the task's longest prompt)")
        return x + self.table.weight[:, None, :length]


class ReadOut(nn.Module):
    """init_std None: PyTorch's default Linear init (the released code's)."""

    def __init__(self, width: int, out_dim: int, init_std: float | None):
        super().__init__()
        self.map = StackedLinear(width, out_dim)
        if init_std is not None:
            nn.init.normal_(self.map.weight, std=init_std)
            nn.init.zeros_(self.map.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.map(x)
