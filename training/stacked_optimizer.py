"""Adam / AdamW over a model of K runs (weights stacked on a leading run axis): one step updates
every run, each with its own learning rate, weight decay, gradient clipping and step count, and
only the runs the step's `active` mask names (a diverged run stops, the others go on).

The arithmetic is torch.optim.Adam's and AdamW's (constant lr, betas, eps, weight decay: L2 added
to the gradient for Adam, decoupled for AdamW), and clipping is torch.nn.utils.clip_grad_norm_'s
over each run's own gradient; tests/test_stacked_optimizer.py checks K runs stepped together
against K lone runs stepped by those. `run_state(k)` and `load_run_state(k, state)` read and
write run k's moments in torch.optim.Adam's state_dict format, so a run's checkpoint is the
same whether it trained in a pack or alone.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class StackedAdam:
    def __init__(self, params: list[nn.Parameter], lrs: list[float], *, decoupled: bool = False,
                 weight_decay: float | list[float] = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.runs = self.params[0].shape[0]
        device = self.params[0].device
        if len(lrs) != self.runs:
            raise ValueError(f"{len(lrs)} learning rates for {self.runs} runs")
        self.lr = torch.tensor(lrs, dtype=torch.float32, device=device)
        decay = weight_decay if isinstance(weight_decay, (list, tuple)) else [weight_decay] * self.runs
        self.weight_decay = torch.tensor(decay, dtype=torch.float32, device=device)
        self.decays = any(d != 0 for d in decay)
        self.decoupled, self.betas, self.eps = decoupled, betas, eps
        self.step_count = torch.zeros(self.runs, dtype=torch.float32, device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def _per_run(self, values: Tensor, p: Tensor) -> Tensor:
        """(K,) values shaped to broadcast over a parameter (K, ...)."""
        return values.view(self.runs, *(1,) * (p.dim() - 1))

    @torch.no_grad()
    def clip_(self, max_norms: list[float] | Tensor) -> Tensor:
        """Scale each run's gradient to norm at most its max norm; returns each run's norm before
        (as clip_grad_norm_: coefficient max_norm / (norm + 1e-6), at most 1)."""
        grads = [p.grad for p in self.params if p.grad is not None]
        squares = torch.stack([g.float().pow(2).reshape(self.runs, -1).sum(dim=1) for g in grads])
        norms = squares.sum(dim=0).sqrt()
        max_norms = torch.as_tensor(max_norms, dtype=torch.float32, device=norms.device)
        coef = (max_norms / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(self._per_run(coef, g).to(g.dtype))
        return norms

    @torch.no_grad()
    def step(self, active: Tensor | None = None) -> None:
        """One Adam step of the runs `active` (K,) bool names (default all); the others keep
        their weights, moments and step count. No host sync (CUDA-graph capturable)."""
        if active is None:
            active = torch.ones(self.runs, dtype=torch.bool, device=self.lr.device)
        beta1, beta2 = self.betas
        self.step_count += active.float()
        bias1 = 1 - beta1 ** self.step_count
        bias2_sqrt = (1 - beta2 ** self.step_count).sqrt()
        lr = torch.where(active, self.lr, torch.zeros_like(self.lr))
        step_size = lr / bias1.clamp_min(1e-30)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            keep = self._per_run(active, p)
            g = p.grad
            if self.decays and not self.decoupled:  # Adam: L2 added to the gradient
                g = g.add(p * self._per_run(self.weight_decay, p))
            if self.decays and self.decoupled:      # AdamW: decoupled decay
                p.mul_(1 - self._per_run(lr * self.weight_decay, p))
            m.copy_(torch.where(keep, m.lerp(g, 1 - beta1), m))
            v.copy_(torch.where(keep, v.mul(beta2).addcmul(g, g, value=1 - beta2), v))
            denom = (v.sqrt() / self._per_run(bias2_sqrt, p)).add_(self.eps)
            p.addcdiv_(m * self._per_run(-step_size, p), denom)  # step size 0 for frozen runs

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def run_state(self, k: int) -> dict:
        """Run k's optimizer state in torch.optim.Adam's state_dict format (K = 1 tensors)."""
        state = {i: {"step": self.step_count[k].detach().cpu().clone(),
                     "exp_avg": m[k:k + 1].clone(), "exp_avg_sq": v[k:k + 1].clone()}
                 for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq))}
        group = {"lr": float(self.lr[k]), "betas": self.betas, "eps": self.eps,
                 "weight_decay": float(self.weight_decay[k]), "params": list(range(len(self.params)))}
        return {"state": state, "param_groups": [group]}

    def load_run_state(self, k: int, state_dict: dict) -> None:
        """Run k's moments and step from a torch.optim.Adam state_dict of a lone run."""
        state = state_dict["state"]
        if len(state) != len(self.params):
            raise ValueError(f"optimizer state of {len(state)} tensors for {len(self.params)} parameters")
        steps = {float(s["step"]) for s in state.values()}
        if len(steps) != 1:
            raise ValueError(f"optimizer state with several step counts {sorted(steps)}")
        with torch.no_grad():
            for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq)):
                m[k:k + 1].copy_(state[i]["exp_avg"])
                v[k:k + 1].copy_(state[i]["exp_avg_sq"])
            self.step_count[k] = steps.pop()
