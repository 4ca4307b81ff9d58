"""The interface every ICL task implements: `Prompts` (one sampled batch) and `Task`.

A task is a pure sampler: a seeded `torch.Generator` in, prompts + targets + loss
mask out, all drawn on the generator's device without host synchronisation.
`loss` is what training minimises; `error` is the study's per-position metric,
normalised so that the zero predictor scores about 1 (../docs/tasks.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Prompts:
    """One batch of prompts.

    inputs:  (B, T, token_dim) float32, or (B, T) int64 for token tasks
    targets: (B, P, out_dim) float32 (int64 (B, P) for token tasks)
    mask:    (B, P) bool, read-out positions that count in loss and metric
             (outlier tasks: clean positions only)
    readout: (P,) int64, token positions whose model output predicts targets[:, p]
    xs:      (B, P, d) raw inputs for classical baselines (None where they don't apply)
    ys:      (B, P) raw scalar outputs for baselines
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor
    readout: Tensor
    xs: Tensor | None = None
    ys: Tensor | None = None

    def to(self, device: torch.device | str) -> "Prompts":
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)
        return Prompts(move(self.inputs), move(self.targets), move(self.mask),
                       move(self.readout), move(self.xs), move(self.ys))

    def gather(self, outputs: Tensor) -> Tensor:
        """Model outputs (B, T, out_dim) at the read-out positions -> (B, P, out_dim)."""
        return outputs[:, self.readout]


class Task:
    """Base class; one subclass per task kind, constructed by `make_task(task_config)`."""

    kind: str = ""
    metric_name: str = "squared error"
    # True when `error` is a 0/1 error whose complement (accuracy) is what the study plots.
    reports_accuracy: bool = False

    def __init__(self, config: dict):
        self.config = dict(config)

    def sample(self, generator: torch.Generator, batch: int, *, dims: int, points: int,
               variant: str | None = None) -> Prompts:
        raise NotImplementedError

    def loss(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """pred (B, P, out_dim) -> scalar training loss."""
        raise NotImplementedError

    def error(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """pred (B, P, out_dim) -> (B, P) metric per position; NaN where mask is False."""
        raise NotImplementedError
