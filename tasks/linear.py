"""Linear regression and sparse linear regression, with Garg et al.'s distribution shifts."""
from __future__ import annotations

import torch
from torch import Tensor

from icl.tasks.base import random_subset
from icl.tasks.regression import RegressionTask, linear_ys

DEFAULT_SCALE = 2.0  # "scaled_x" / "scaled_y" without a value
SKEW_SEED = 0        # "skewed_covariance" without a value: the rotation's seed


def random_rotation(generator: torch.Generator, batch: int, dims: int) -> Tensor:
    """(B, dims, dims) random orthogonal matrices (QR of a Gaussian, sign-fixed)."""
    g = torch.randn(batch, dims, dims, generator=generator, device=generator.device)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def skew_root(device, dims: int, seed: int = SKEW_SEED) -> Tensor:
    """(dims, dims) symmetric square root of the skewed covariance S = U diag(l) U^T, with
    l_i proportional to 1/i^2 and trace(S) = dims. U is drawn from a generator of its own,
    seeded by `seed` alone, so every prompt of an evaluation (every chunk, every model)
    meets the same covariance, as in the released evaluation, which draws its transformation
    once per evaluation (docs/tasks.md)."""
    rotation_generator = torch.Generator(device=device).manual_seed(int(seed))
    eig = 1.0 / torch.arange(1, dims + 1, device=device, dtype=torch.float32) ** 2
    eig = eig * dims / eig.sum()
    u = random_rotation(rotation_generator, 1, dims)[0]
    return u @ torch.diag(eig.sqrt()) @ u.T


def skewed_xs(xs: Tensor, dims: int, seed: int = SKEW_SEED) -> Tensor:
    """x ~ N(0, S): the active coordinates of Gaussian xs times the fixed root of S (skew_root)."""
    root = skew_root(xs.device, dims, seed)
    out = torch.zeros_like(xs)
    out[..., :dims] = xs[..., :dims] @ root  # root is symmetric
    return out


def rotation_seed(value: float | None) -> int:
    """The seed of the skewed covariance's rotation: the variant's value (default SKEW_SEED)."""
    if value is None:
        return SKEW_SEED
    if value != int(value) or value < 0:
        raise ValueError(f"skewed_covariance: rotation seed {value:g} is not a non-negative integer")
    return int(value)


def orthogonal_xs(xs: Tensor, dims: int) -> Tensor:
    """Each x_i (i < dims) made orthogonal to x_1..x_{i-1}, keeping its norm (Gram-Schmidt via QR)."""
    n = min(xs.shape[1], dims)
    head = xs[:, :n, :dims]                              # (B, n, dims)
    q, r = torch.linalg.qr(head.transpose(1, 2))         # q: (B, dims, n)
    sign = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)) # keep x_i's own orientation
    ortho = (q * sign.unsqueeze(-2)).transpose(1, 2) * head.norm(dim=-1, keepdim=True)
    out = xs.clone()
    out[:, :n, :dims] = ortho
    return out


class LinearRegression(RegressionTask):
    kind = "linear_regression"
    option_names = {"scaled_x": "scale", "scaled_y": "scale", "skewed_covariance": "rotation_seed"}

    def weights(self, generator, batch, dims) -> Tensor:
        return self.gaussian_w(generator, batch, dims)

    def draw(self, generator, batch, dims, points, variant, value):
        xs = self.gaussian_xs(generator, batch, dims, points)
        w = self.weights(generator, batch, dims)
        mask = None
        if variant == "skewed_covariance":
            xs = skewed_xs(xs, dims, rotation_seed(value))
        elif variant == "scaled_x":
            xs = xs * (DEFAULT_SCALE if value is None else value)
        elif variant == "orthogonal_subspace":
            xs = orthogonal_xs(xs, dims)
            # only queries orthogonal to every earlier example count
            mask = (torch.arange(points, device=xs.device) < dims).expand(batch, points)
        ys = linear_ys(xs, w)
        if variant == "scaled_y":
            ys = ys * (DEFAULT_SCALE if value is None else value)
        if self.config.get("noise", 0.0) > 0:
            ys = ys + self.config["noise"] * torch.randn(
                ys.shape, generator=generator, device=generator.device)
        return {"xs": xs, "ys": ys, "mask": mask, "info": {"w": w}}


class SparseLinearRegression(LinearRegression):
    kind = "sparse_linear_regression"
    option_names = {"scaled_x": "scale"}

    def weights(self, generator, batch, dims) -> Tensor:
        k = self.config["k"]
        if k > dims:
            raise ValueError(f"{self.kind}: k={k} non-zeros do not fit in {dims} active dims")
        width = self.config["dims"]
        idx = random_subset(generator, batch, dims, k)
        values = torch.randn(batch, k, generator=generator, device=generator.device)
        return torch.zeros(batch, width, device=generator.device).scatter(1, idx, values)

    def normaliser(self, prompts) -> float:
        return float(self.config["k"])
