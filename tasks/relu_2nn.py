"""2-layer ReLU network regression: y = sqrt(2/h) W2 . ReLU(W1 x), entries N(0, 1)."""
from __future__ import annotations

import math

import torch

from icl.tasks.regression import RegressionTask


class Relu2nnRegression(RegressionTask):
    kind = "relu_2nn_regression"

    def draw(self, generator, batch, dims, points, variant, value):
        hidden, width, device = self.config["hidden"], self.config["dims"], generator.device
        xs = self.gaussian_xs(generator, batch, dims, points)
        w1 = torch.randn(batch, hidden, width, generator=generator, device=device)
        w2 = torch.randn(batch, hidden, generator=generator, device=device)
        features = torch.relu(torch.einsum("bnd,bhd->bnh", xs, w1))
        # E[y^2] = 2/h * h * E[ReLU(w.x)^2] = dims, so squared error / dims puts zero at ~1
        ys = math.sqrt(2.0 / hidden) * torch.einsum("bnh,bh->bn", features, w2)
        return {"xs": xs, "ys": ys}
