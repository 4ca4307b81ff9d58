"""Decision-tree regression: a random depth-k binary tree over the active coordinates."""
from __future__ import annotations

import torch

from icl.tasks.regression import RegressionTask


class DecisionTree(RegressionTask):
    kind = "decision_tree"
    metric_name = "squared error"

    def draw(self, generator, batch, dims, points, variant, value):
        depth, device = self.config["depth"], generator.device
        xs = self.gaussian_xs(generator, batch, dims, points)
        inner = 2 ** depth - 1
        # Intended version: split only on coordinates the curriculum has switched on.
        split = torch.randint(0, dims, (batch, inner), generator=generator, device=device)
        leaves = torch.randn(batch, 2 ** depth, generator=generator, device=device)
        node = torch.zeros(batch, points, dtype=torch.long, device=device)
        for _ in range(depth):  # heap order: children of n are 2n+1 (x_j <= 0) and 2n+2 (x_j > 0)
            coord = split.gather(1, node)
            right = xs.gather(2, coord.unsqueeze(-1)).squeeze(-1) > 0
            node = 2 * node + 1 + right.long()
        ys = leaves.gather(1, node - inner)
        return {"xs": xs, "ys": ys, "info": {"split": split, "leaves": leaves}}

    def normaliser(self, prompts) -> float:
        return 1.0  # the study plots the raw squared error (leaves are N(0, 1))
