"""Chain-of-thought I/O (Li et al. 2023, "Dissecting Chain-of-Thought"), not in the released code.

A 2-layer ReLU network per prompt: W ~ N(0, 1) (d x k), v ~ N(0, 1) (k),
s = ReLU(x W) * sqrt(2/k), y = s . v. Each example is three tokens x, s, y
(s and y zero-padded to the token width max(d, k)). The model predicts s at the x
token (all k read-out coordinates) and y at the s token (read-out coordinate 0).
Read-out p = 2i predicts s_i, p = 2i + 1 predicts y_i.
Loss: per example ||s_pred - s||^2 + (y_pred - y)^2, averaged over examples.
Metric: the same squared errors divided by d (E||s||^2 = E[y^2] = d), so the zero
predictor scores ~1 at every read-out; even read-outs are features, odd ones outputs.

Evaluation follows Li et al.'s test protocol: the query's intermediate step is the model's
own. Example i's s_i token is replaced by the model's prediction s_hat_i (made at the x_i
token), the earlier examples keep their true s (they are the demonstrations), and y_i is read
at that token (`predict`). The teacher-forced errors (the true s_i fed) are kept as the
metric `teacher_forced`. Training is teacher-forced, as theirs.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from icl.tasks.base import Prompts, Task, active_mask, nan_where_masked


class ChainOfThought(Task):
    kind = "chain_of_thought"
    metric_name = "squared error / d (even read-outs: features s, odd: output y)"

    def sample(self, generator, batch, *, dims=None, points=None, variant=None, **options):
        dims, points = self.sizes(dims, points)
        self.parse_variant(variant, options)
        d, k, device = self.config["dims"], self.config["hidden"], generator.device
        width = max(d, k)
        xs = torch.randn(batch, points, d, generator=generator, device=device)
        xs = xs * active_mask(dims, d, device)
        w = torch.randn(batch, d, k, generator=generator, device=device)
        v = torch.randn(batch, k, generator=generator, device=device)
        s = torch.relu(xs @ w) * math.sqrt(2.0 / k)          # (B, N, k)
        ys = torch.einsum("bnk,bk->bn", s, v)
        tokens = torch.zeros(batch, points, 3, width, device=device)
        tokens[:, :, 0, :d] = xs
        tokens[:, :, 1, :k] = s
        tokens[:, :, 2, 0] = ys
        targets = torch.zeros(batch, points, 2, k, device=device)
        targets[:, :, 0] = s
        targets[:, :, 1, 0] = ys
        readout = torch.stack((torch.arange(points, device=device) * 3,
                               torch.arange(points, device=device) * 3 + 1), dim=1).reshape(-1)
        return Prompts(inputs=tokens.reshape(batch, 3 * points, width),
                       targets=targets.reshape(batch, 2 * points, k),
                       mask=torch.ones(batch, 2 * points, dtype=torch.bool, device=device),
                       readout=readout, xs=None, ys=None,
                       info={"dims": dims, "points": points, "variant": None,
                             "x": xs, "y": ys, "w": w, "v": v})

    def weights(self, prompts: Prompts) -> Tensor:
        """(P, k): which read-out coordinates count (all k at feature read-outs, the first at outputs)."""
        k, P = prompts.targets.shape[-1], prompts.targets.shape[1]
        weight = torch.zeros(P, k, device=prompts.targets.device)
        weight[0::2] = 1.0
        weight[1::2, 0] = 1.0
        return weight

    def squared_errors(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """(B, P): ||s_pred - s||^2 at even read-outs, (y_pred - y)^2 at odd ones."""
        return (self.weights(prompts) * (pred - prompts.targets) ** 2).sum(-1)

    def loss(self, pred, prompts):
        mask = prompts.mask.to(pred.dtype)
        examples = mask[:, 1::2].sum().clamp_min(1.0)
        return (self.squared_errors(pred, prompts) * mask).sum() / examples

    def error(self, pred, prompts):
        return nan_where_masked(self.squared_errors(pred, prompts) / float(prompts.info["dims"]),
                                prompts.mask)

    def predict(self, model, prompts: Prompts) -> Tensor:
        """Read-outs with the model's own s at each query: s_hat_i from the teacher-forced pass,
        then, for each example i, one pass over the prompt up to its s_i token with s_i replaced
        by s_hat_i (causal models: later tokens cannot change that read-out), y_i read there.
        N passes over prefixes of growing length: about 1.5 N times the cost of one pass."""
        forced = prompts.gather(model(prompts.inputs).float())        # (B, 2N, k)
        k = forced.shape[-1]
        pred = forced.clone()
        for i in range(forced.shape[1] // 2):
            s_token = int(prompts.readout[2 * i + 1])                   # the s_i token
            prefix = prompts.inputs[:, :s_token + 1].clone()
            prefix[:, s_token, :k] = forced[:, 2 * i].to(prefix.dtype)
            pred[:, 2 * i + 1] = model(prefix)[:, s_token].float()
        prompts.info["teacher_forced_pred"] = forced
        return pred

    def teacher_forced_error(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """(B, P): the errors with the true s_i fed at every query (the training protocol)."""
        return self.error(prompts.info["teacher_forced_pred"], prompts)

    def output_error(self, pred: Tensor, prompts: Prompts) -> Tensor:
        """(B, N): the error on y alone, one column per example (what Li et al. plot)."""
        return self.error(pred, prompts)[:, 1::2]
