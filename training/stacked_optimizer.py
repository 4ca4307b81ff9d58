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

import warnings

import torch
from torch import Tensor, nn

# Our .grad are views of the (K, P) gradient buffer, with the parameters' own strides: autograd
# warns that such strides are not dense, then adds into them in place, which is what we want.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


class StackedAdam:
    """Holds every parameter, gradient and moment of the K runs in one (K, P) buffer each (P: a
    run's parameter count); a parameter becomes a (K, ...) view of its columns. So clipping and
    the Adam step are a dozen elementwise kernels over the whole pack, each run's scalars a (K, 1)
    column, instead of a dozen per parameter: at paper size that was thousands of tiny kernels,
    the step's largest cost at K = 1."""

    def __init__(self, params: list[nn.Parameter], lrs: list[float], *, decoupled: bool = False,
                 weight_decay: float | list[float] = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.runs = self.params[0].shape[0]
        device, dtype = self.params[0].device, self.params[0].dtype
        if len(lrs) != self.runs:
            raise ValueError(f"{len(lrs)} learning rates for {self.runs} runs")
        if any(p.shape[0] != self.runs or p.dtype != dtype or p.device != device for p in self.params):
            raise ValueError("every parameter needs the leading run axis, one dtype and one device")
        self.lr = torch.tensor(lrs, dtype=torch.float32, device=device)
        decay = weight_decay if isinstance(weight_decay, (list, tuple)) else [weight_decay] * self.runs
        self.weight_decay = torch.tensor(decay, dtype=torch.float32, device=device)
        self.decays = any(d != 0 for d in decay)
        self.decoupled, self.betas, self.eps = decoupled, betas, eps
        self.step_count = torch.zeros(self.runs, dtype=torch.float32, device=device)
        sizes = [p[0].numel() for p in self.params]
        width = sum(sizes)
        self.flat = torch.empty(self.runs, width, dtype=dtype, device=device)
        self.flat_grad = torch.zeros_like(self.flat)
        self.flat_exp_avg = torch.zeros_like(self.flat)
        self.flat_exp_avg_sq = torch.zeros_like(self.flat)
        self.grads, self.exp_avg, self.exp_avg_sq = [], [], []
        start = 0
        with torch.no_grad():
            for p, size in zip(self.params, sizes):
                columns = slice(start, start + size)
                view = self.flat[:, columns].view(p.shape)
                view.copy_(p)
                p.data = view
                self.grads.append(self.flat_grad[:, columns].view(p.shape))
                self.exp_avg.append(self.flat_exp_avg[:, columns].view(p.shape))
                self.exp_avg_sq.append(self.flat_exp_avg_sq[:, columns].view(p.shape))
                start += size

    @torch.no_grad()
    def clip_(self, max_norms: list[float] | Tensor) -> Tensor:
        """Scale each run's gradient to norm at most its max norm; returns each run's norm before
        (as clip_grad_norm_: coefficient max_norm / (norm + 1e-6), at most 1)."""
        norms = self.flat_grad.float().pow(2).sum(dim=1).sqrt()
        max_norms = torch.as_tensor(max_norms, dtype=torch.float32, device=norms.device)
        coef = (max_norms / (norms + 1e-6)).clamp(max=1.0)
        self.flat_grad.mul_(coef.to(self.flat_grad.dtype).unsqueeze(1))
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
        column = lambda values: values.unsqueeze(1)  # noqa: E731 - (K,) -> (K, 1), one value per run
        keep = column(active)
        p, m, v, g = self.flat, self.flat_exp_avg, self.flat_exp_avg_sq, self.flat_grad
        if self.decays and not self.decoupled:  # Adam: L2 added to the gradient
            g = g.add(p * column(self.weight_decay))
        if self.decays and self.decoupled:      # AdamW: decoupled decay
            p.mul_(1 - column(lr * self.weight_decay))
        # torch.where, not a zero weight: a frozen (diverged) run's gradient may be NaN
        m.copy_(torch.where(keep, m.lerp(g, 1 - beta1), m))
        v.copy_(torch.where(keep, v.mul(beta2).addcmul(g, g, value=1 - beta2), v))
        denom = (v.sqrt() / column(bias2_sqrt)).add_(self.eps)
        p.addcdiv_(m * column(-step_size), denom)  # step size 0 for frozen runs

    def zero_grad(self) -> None:
        """Zero the gradient buffer; the parameters' .grad are views of it (backward adds into
        them in place, at the same addresses in every step: what a CUDA graph needs)."""
        self.flat_grad.zero_()
        for p, grad in zip(self.params, self.grads):
            if p.grad is None or p.grad.data_ptr() != grad.data_ptr():
                p.grad = grad

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
