"""Shared prompt format of the regression-style tasks (Garg et al. 2022).

Tokens interleave x1, y1, x2, y2, ..., xN, yN; each scalar y is zero-padded to a
d-dim token (y, 0, ..., 0). The prediction for y_i is read at the x_i token (it has
seen y_1..y_{i-1}) through a 1-dim read-out. Loss: squared error averaged over the
masked positions; metric: squared error divided by `normaliser` (docs/tasks.md).
"""
from __future__ import annotations

import torch
from torch import Tensor

from icl.tasks.base import Prompts, Task, active_mask, masked_mean, nan_where_masked


class RegressionTask(Task):
    metric_name = "squared error / d"

    def draw(self, generator: torch.Generator, batch: int, dims: int, points: int,
             variant: str | None, value: float | None) -> dict:
        """Return {"xs": (B, N, d), "ys": (B, N)} and optionally "y_tokens" (B, N, d)
        (replaces the padded y tokens), "mask" (B, N) and extra "info" entries."""
        raise NotImplementedError

    option_names: dict[str, str] = {}

    def sample(self, generator, batch, *, dims=None, points=None, variant=None, **options):
        dims, points = self.sizes(dims, points)
        name, value = self.parse_variant(variant, options, self.option_names)
        drawn = self.draw(generator, batch, dims, points, name, value)
        xs, ys = drawn["xs"], drawn["ys"]
        device = generator.device
        width = xs.shape[-1]
        y_tokens = drawn.get("y_tokens")
        if y_tokens is None:
            y_tokens = torch.zeros_like(xs)
            y_tokens[..., 0] = ys
        inputs = torch.stack((xs, y_tokens), dim=2).reshape(batch, 2 * points, width)
        mask = drawn.get("mask")
        if mask is None:
            mask = torch.ones(batch, points, dtype=torch.bool, device=device)
        info = {"dims": dims, "points": points, "variant": name, "value": value}
        info.update(drawn.get("info", {}))
        return Prompts(inputs=inputs, targets=drawn.get("targets", ys).unsqueeze(-1), mask=mask,
                       readout=torch.arange(0, 2 * points, 2, device=device),
                       xs=xs, ys=ys, info=info)

    def normaliser(self, prompts: Prompts) -> float:
        """Expected squared y of the task, so that the zero predictor scores about 1."""
        return float(prompts.info["dims"])

    def squared_error(self, pred: Tensor, prompts: Prompts) -> Tensor:
        return (pred[..., 0] - prompts.targets[..., 0]) ** 2

    def loss(self, pred: Tensor, prompts: Prompts) -> Tensor:
        return masked_mean(self.squared_error(pred, prompts), prompts.mask)

    def error(self, pred: Tensor, prompts: Prompts) -> Tensor:
        return nan_where_masked(self.squared_error(pred, prompts) / self.normaliser(prompts),
                                prompts.mask)

    # -- drawing helpers ----------------------------------------------------
    def gaussian_xs(self, generator, batch, dims, points) -> Tensor:
        width = self.config["dims"]
        xs = torch.randn(batch, points, width, generator=generator, device=generator.device)
        return xs * active_mask(dims, width, generator.device)

    def gaussian_w(self, generator, batch, dims) -> Tensor:
        width = self.config["dims"]
        w = torch.randn(batch, width, generator=generator, device=generator.device)
        return w * active_mask(dims, width, generator.device)


def linear_ys(xs: Tensor, w: Tensor) -> Tensor:
    """(B, N, d), (B, d) -> (B, N) with y = w.x."""
    return torch.einsum("bnd,bd->bn", xs, w)
