"""Linear regression with outlier positions; loss and metric count clean positions only.

Orthogonal outliers: with probability p a position's x is replaced by a vector
orthogonal to the prompt's own w and its y token by another such vector.
Many outliers: with probability p a position is x = all-ones (active dims), y = 1.
Variants: "no_outliers" (p = 0) and "fixed_outliers" (outliers at evenly spaced
positions at rate p, the same for every prompt; fixed_outlier_positions).
"""
from __future__ import annotations

import torch
from torch import Tensor

from icl.tasks.regression import RegressionTask, linear_ys


def fixed_outlier_positions(points: int, rate: float, device) -> Tensor:
    """(points,) bool: outliers at fixed, evenly spaced positions at the given rate.

    The rarer kind of position (outliers when rate <= 1/2, clean ones above) sits at every
    position i >= 1 where floor(i q) steps up, q = min(rate, 1 - rate); position 0 is always
    of the commoner kind. At rate 1/2 that is the released evaluation's own layout (outliers
    at 2, 4, 6, ...); at 0.9 one clean position in ten (10, 20, ...), where the released code
    puts its outliers at positions 0..9 only (docs/tasks.md, "Departures")."""
    q = round(min(rate, 1.0 - rate), 12)    # 1 - 0.9 is 0.0999...98 in floating point
    i = torch.arange(points, device=device, dtype=torch.float64)
    rare = (torch.floor(i * q + 1e-9) > torch.floor((i - 1) * q + 1e-9)) & (i >= 1)
    return rare if rate <= 0.5 else ~rare


def project_out(v: Tensor, w: Tensor) -> Tensor:
    """Remove from v (B, N, d) its component along w (B, d)."""
    coef = torch.einsum("bnd,bd->bn", v, w) / (w * w).sum(-1, keepdim=True)
    return v - coef.unsqueeze(-1) * w.unsqueeze(1)


class OutlierRegression(RegressionTask):
    def outlier_positions(self, generator, batch, points, variant) -> Tensor:
        p, device = self.config["p_outlier"], generator.device
        if variant == "no_outliers":
            return torch.zeros(batch, points, dtype=torch.bool, device=device)
        if variant == "fixed_outliers":
            return fixed_outlier_positions(points, p, device).expand(batch, points)
        return torch.rand(batch, points, generator=generator, device=device) < p

    def outliers(self, generator, xs, w, dims) -> tuple[Tensor, Tensor]:
        """Outlier x tokens and y tokens, (B, N, d) each, for every position."""
        raise NotImplementedError

    def draw(self, generator, batch, dims, points, variant, value):
        xs = self.gaussian_xs(generator, batch, dims, points)
        w = self.gaussian_w(generator, batch, dims)
        ys = linear_ys(xs, w)
        y_tokens = torch.zeros_like(xs)
        y_tokens[..., 0] = ys
        outlier = self.outlier_positions(generator, batch, points, variant)
        out_x, out_y = self.outliers(generator, xs, w, dims)
        flag = outlier.unsqueeze(-1)
        xs = torch.where(flag, out_x, xs)
        y_tokens = torch.where(flag, out_y, y_tokens)
        # Baselines see what a scalar reader of the prompt sees: the y token's first coordinate.
        return {"xs": xs, "ys": y_tokens[..., 0], "targets": ys, "y_tokens": y_tokens,
                "mask": ~outlier, "info": {"w": w, "outlier": outlier}}


class OrthogonalOutlierRegression(OutlierRegression):
    kind = "orthogonal_outlier_regression"

    def outliers(self, generator, xs, w, dims):
        # Intended version: fresh vectors per position, orthogonal to this prompt's w,
        # confined to the active coordinates (w is zero elsewhere, so the projection keeps them).
        out_x = project_out(self.gaussian_xs(generator, xs.shape[0], dims, xs.shape[1]), w)
        out_y = project_out(self.gaussian_xs(generator, xs.shape[0], dims, xs.shape[1]), w)
        return out_x, out_y


class ManyOutlierRegression(OutlierRegression):
    kind = "many_outlier_regression"

    def outliers(self, generator, xs, w, dims):
        ones = torch.zeros_like(xs)
        ones[..., :dims] = 1.0
        y = torch.zeros_like(xs)
        y[..., 0] = 1.0
        return ones, y
