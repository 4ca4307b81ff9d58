"""Sparse parity: x uniform in {-1, +1}^d, y = product of k coordinates chosen per prompt."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from icl.tasks.base import active_mask, masked_mean, nan_where_masked, random_subset
from icl.tasks.regression import RegressionTask


class SparseParity(RegressionTask):
    kind = "sparse_parity"
    metric_name = "error rate (1 - accuracy of sign(pred))"
    reports_accuracy = True

    def draw(self, generator, batch, dims, points, variant, value):
        k, width, device = self.config["k"], self.config["dims"], generator.device
        if k > dims:
            raise ValueError(f"{self.kind}: k={k} coordinates do not fit in {dims} active dims")
        bits = torch.randint(0, 2, (batch, points, width), generator=generator, device=device)
        xs = (2.0 * bits - 1.0) * active_mask(dims, width, device)
        # Intended version: one index set per prompt (the released code shares one per batch).
        subset = random_subset(generator, batch, dims, k)
        ys = xs.gather(2, subset.unsqueeze(1).expand(batch, points, k)).prod(-1)
        return {"xs": xs, "ys": ys, "info": {"subset": subset}}

    def loss(self, pred, prompts):
        # BCE on sigmoid(pred) with label (y + 1) / 2
        labels = (prompts.targets[..., 0] + 1.0) / 2.0
        bce = F.binary_cross_entropy_with_logits(pred[..., 0], labels, reduction="none")
        return masked_mean(bce, prompts.mask)

    def error(self, pred, prompts):
        """0/1 error of sign(pred) with ties (pred = 0) counted as +1, so a predictor of 0 (the
        zero baseline, the GF(2) solver where it cannot tell) sits at chance, error 0.5."""
        guess = torch.where(pred[..., 0] >= 0, 1.0, -1.0)
        wrong = (guess != prompts.targets[..., 0]).to(pred.dtype)
        return nan_where_masked(wrong, prompts.mask)

    def released_sign_error(self, pred, prompts):
        """The released metric's rule: torch.sign(pred) must equal the label, and sign(0) = 0
        equals neither label, so pred = 0 is always wrong. Equal to `error` wherever pred != 0
        (a trained network's output practically always is)."""
        wrong = (torch.sign(pred[..., 0]) != prompts.targets[..., 0]).to(pred.dtype)
        return nan_where_masked(wrong, prompts.mask)
