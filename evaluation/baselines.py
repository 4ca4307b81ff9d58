"""Classical in-context learners evaluated on the very same prompts as the models (Garg et al.).

Each baseline reads `prompts.xs` (B, P, d) and `prompts.ys` (B, P) and predicts, at
every position i, the y of x_i from the examples before it (j < i); at position 0 it
predicts 0. Predictions come back as (B, P, 1), the shape the task's `error` takes
(the zero predictor returns zeros shaped like the targets, so it fits every
float-target task). Baselines see exactly what a model sees: on outlier tasks
that includes the outlier examples (xs, and the y token's first coordinate).

Which baselines a task gets is its catalog entry's (tasks/catalog.py: `baselines`, run for
"auto", and `more_baselines`, allowed when named); this module holds the implementations.

    BASELINES: dict[name, Baseline]
    applicable(kind) -> list[name]          # the task entry's defaults for "auto"
    BASELINES[name].predict(prompts, max_prompts=None) -> Tensor

Costs (B prompts, P positions, d dims): zero, averaging O(B P d); 3-NN O(B P^2 d);
least squares P batched pseudo-inverses, O(B P^2 d^2); Lasso batched FISTA on the
Gram matrices of every prefix, O(iters B P d^2); the GF(2) solver O(B P d^2) bit
operations; the 2-layer net 100 Adam steps of B x P nets on up to 100 examples each,
O(100 B P 100 h d) (about 5 s per prompt of 101 points on a 2-core CPU, far less on a GPU); the scikit-learn trees and boosting
fit one model per (prompt, position), B P fits, so they carry a `max_prompts`
suggestion that the evaluator should apply (`predict(prompts.head(m))` or
`predict(prompts, max_prompts=m)`, which returns the first m prompts' predictions).
"""
from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from icl.tasks.base import Prompts
from icl.tasks.catalog import TASKS, check_baseline

__all__ = ["BASELINES", "Baseline", "applicable", "check_baseline"]


@dataclass(frozen=True)
class Baseline:
    name: str
    fit: Callable[[Prompts], Tensor]
    doc: str
    max_prompts: int | None = None  # suggested cap for slow baselines (None: all prompts are cheap)
    needs: str | None = None        # a package beyond the project's own requirements
    fallback: str | None = None     # the baseline `auto` runs instead when `needs` is missing

    def predict(self, prompts: Prompts, max_prompts: int | None = None) -> Tensor:
        """Predictions (B, P, 1) (zero: targets' shape); with max_prompts, for the first m prompts only."""
        prompts = prompts.head(max_prompts)
        if self.name != "zero" and (prompts.xs is None or prompts.ys is None):
            raise ValueError(f"baseline {self.name!r} needs prompts with xs and ys "
                             "(this task provides none)")
        with torch.no_grad():
            return self.fit(prompts)


def _column(values: Tensor) -> Tensor:
    return values.unsqueeze(-1).to(torch.float32)


# -- closed-form and vectorised baselines -------------------------------------

def zero(prompts: Prompts) -> Tensor:
    return torch.zeros(prompts.targets.shape, dtype=torch.float32, device=prompts.targets.device)


def prefix_grams(xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
    """For every position i: X_<i^T X_<i (B, P, d, d) and X_<i^T y_<i (B, P, d), exclusive sums."""
    outer = xs.unsqueeze(-1) * xs.unsqueeze(-2)
    cross = xs * ys.unsqueeze(-1)
    return torch.cumsum(outer, dim=1) - outer, torch.cumsum(cross, dim=1) - cross


def symmetric_pinv(matrices: Tensor, rtol: float = 1e-10, pieces: int = 8192) -> Tensor:
    """Pseudo-inverse of a batch of symmetric matrices, `pieces` matrices per call
    (one call on ~80k small matrices asked CUDA's solver for 50 GiB of workspace)."""
    flat = matrices.reshape(-1, *matrices.shape[-2:])
    out = torch.cat([torch.linalg.pinv(flat[lo:lo + pieces], hermitian=True, rtol=rtol)
                     for lo in range(0, flat.shape[0], pieces)])
    return out.reshape(matrices.shape)


def least_squares(prompts: Prompts, chunk: int = 64) -> Tensor:
    """Minimum-norm least squares on the examples before each position.

    pinv(X) y = pinv(X^T X) X^T y, so every prefix is solved from its Gram matrix
    (batched symmetric pseudo-inverse, float64), positions in chunks to bound memory.
    """
    xs, ys = prompts.xs.double(), prompts.ys.double()
    pred = torch.zeros_like(ys)
    gram_before = torch.zeros(xs.shape[0], 1, xs.shape[2], xs.shape[2], dtype=xs.dtype, device=xs.device)
    cross_before = torch.zeros(xs.shape[0], 1, xs.shape[2], dtype=xs.dtype, device=xs.device)
    for lo in range(0, xs.shape[1], chunk):
        x, y = xs[:, lo:lo + chunk], ys[:, lo:lo + chunk]
        gram, cross = prefix_grams(x, y)
        gram, cross = gram + gram_before, cross + cross_before
        w = torch.einsum("bpij,bpj->bpi", symmetric_pinv(gram), cross)
        pred[:, lo:lo + chunk] = (w * x).sum(-1)
        last = x[:, -1:]
        gram_before = gram[:, -1:] + last.unsqueeze(-1) * last.unsqueeze(-2)
        cross_before = cross[:, -1:] + last * y[:, -1:].unsqueeze(-1)
    pred[:, 0] = 0.0
    return _column(pred)


def nearest_neighbours(prompts: Prompts, k: int = 3) -> Tensor:
    """Mean y of the k nearest earlier examples (fewer when fewer exist)."""
    xs, ys = prompts.xs.double(), prompts.ys.double()
    points = xs.shape[1]
    dist = torch.cdist(xs, xs)                                          # (B, P, P)
    earlier = torch.ones(points, points, dtype=torch.bool, device=xs.device).tril(-1)
    dist = dist.masked_fill(~earlier, float("inf"))
    k = min(k, max(points - 1, 1))
    near, index = dist.topk(k, dim=-1, largest=False)
    valid = torch.isfinite(near).double()
    neighbour_ys = ys.unsqueeze(1).expand(-1, points, -1).gather(2, index)
    pred = (neighbour_ys * valid).sum(-1) / valid.sum(-1).clamp_min(1.0)
    return _column(pred)


def averaging(prompts: Prompts) -> Tensor:
    """w = mean_j<i of y_j x_j, predict w.x_i."""
    xs, ys = prompts.xs.double(), prompts.ys.double()
    total = torch.cumsum(xs * ys.unsqueeze(-1), dim=1) - xs * ys.unsqueeze(-1)   # exclusive sum
    count = torch.arange(xs.shape[1], device=xs.device, dtype=xs.dtype).clamp_min(1.0)
    w = total / count[None, :, None]
    return _column((w * xs).sum(-1))


def lasso(prompts: Prompts, alpha: float, iterations: int = 2000, tol: float = 1e-7) -> Tensor:
    """scikit-learn's Lasso objective without intercept, 1/(2n)||y - Xw||^2 + alpha ||w||_1,
    solved for every prefix at once by FISTA (with adaptive restart) on the prefix Gram matrices."""
    xs, ys = prompts.xs.double(), prompts.ys.double()
    batch, points, d = xs.shape
    gram, corr = prefix_grams(xs, ys)
    count = torch.arange(points, device=xs.device, dtype=xs.dtype).clamp_min(1.0)[None, :, None]
    gram, corr = gram / count.unsqueeze(-1), corr / count
    step = 1.0 / torch.linalg.eigvalsh(gram)[..., -1].clamp_min(1e-12).unsqueeze(-1)
    w = torch.zeros(batch, points, d, dtype=xs.dtype, device=xs.device)
    z = w.clone()
    t = torch.ones(batch, points, 1, dtype=xs.dtype, device=xs.device)
    for it in range(iterations):
        u = z - step * (torch.einsum("bpij,bpj->bpi", gram, z) - corr)
        w_next = torch.sign(u) * (u.abs() - step * alpha).clamp_min(0.0)
        # restart the momentum of problems whose step goes against it (O'Donoghue & Candes)
        restart = ((z - w_next) * (w_next - w)).sum(-1, keepdim=True) > 0
        t = torch.where(restart, torch.ones_like(t), t)
        t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
        z = w_next + ((t - 1.0) / t_next) * (w_next - w)
        change = (w_next - w).abs().max() if it % 50 == 49 else None
        w, t = w_next, t_next
        if change is not None and change.item() < tol:   # a baseline may sync; samplers may not
            break
    pred = (w * xs).sum(-1)
    pred[:, 0] = 0.0
    return _column(pred)


def gf2_parity(prompts: Prompts) -> Tensor:
    """Exact parity learner: Gaussian elimination over GF(2), one example at a time.

    Bits b = [x < 0] turn y = prod_{j in S} x_j into [y < 0] = XOR_{j in S} b_j, a
    linear system over GF(2). At position i the solver reduces b_i against the
    echelon basis of the earlier examples: if b_i lies in their span the label is
    determined (predict +-1), otherwise it is not (predict 0). Then it adds example i.
    """
    xs, ys = prompts.xs, prompts.ys
    batch, points, d = xs.shape
    device = xs.device
    rows = torch.cat(((xs < 0), (ys < 0).unsqueeze(-1)), dim=-1)         # (B, P, d + 1) bool
    basis = torch.zeros(batch, d, d + 1, dtype=torch.bool, device=device)  # row p has pivot p
    filled = torch.zeros(batch, d, dtype=torch.bool, device=device)
    pred = torch.zeros(batch, points, dtype=torch.float32, device=device)

    def reduce(v: Tensor) -> Tensor:
        for p in range(d):
            hit = (v[:, p] & filled[:, p]).unsqueeze(-1)
            v = torch.where(hit, v ^ basis[:, p], v)
        return v

    for i in range(points):
        query = rows[:, i].clone()
        query[:, d] = False
        left = reduce(query)
        determined = ~left[:, :d].any(-1)
        label = torch.where(left[:, d], -1.0, 1.0)
        pred[:, i] = torch.where(determined, label, torch.zeros_like(label))
        new = reduce(rows[:, i])
        has_pivot = new[:, :d].any(-1)
        pivot = new[:, :d].float().argmax(-1)                            # first set bit
        slot = torch.nn.functional.one_hot(pivot, d).bool() & has_pivot.unsqueeze(-1)
        basis = torch.where(slot.unsqueeze(-1), new.unsqueeze(1), basis)
        filled = filled | slot
    pred[:, 0] = 0.0
    return _column(pred)


def neural_net_gd(prompts: Prompts, hidden: int = 100, lr: float = 5e-3, steps: int = 100,
                  batch_size: int = 100, seed: int = 0, chunk: int = 16) -> Tensor:
    """A 2-layer ReLU net per prompt and position, trained by Adam on the earlier examples.

    One net per (prompt, position i), all trained together: their losses are summed
    and their parameters disjoint, so Adam updates each exactly as if alone. Each step
    uses every earlier example while i <= batch_size, else a fresh random batch_size of
    them. Prompts go `chunk` at a time to bound memory (chunk x P x batch_size x hidden).
    """
    xs, ys = prompts.xs.float(), prompts.ys.float()
    gen = torch.Generator(device=xs.device).manual_seed(seed)
    out = [_train_nets(xs[lo:lo + chunk], ys[lo:lo + chunk], gen, hidden, lr, steps, batch_size)
           for lo in range(0, xs.shape[0], chunk)]
    return _column(torch.cat(out))


def _train_nets(xs, ys, gen, hidden, lr, steps, batch_size) -> Tensor:
    batch, points, d = xs.shape
    device = xs.device
    n = max(1, min(points - 1, batch_size))          # examples per step (padded for small i)
    position = torch.arange(points, device=device)
    earlier = position[None, :] < position[:, None]  # (i, j): example j precedes position i

    def uniform(*shape, bound):                      # nn.Linear's default initialisation
        u = (torch.rand(*shape, generator=gen, device=device) * 2 - 1) * bound
        return u.requires_grad_()
    w1 = uniform(batch, points, d, hidden, bound=d ** -0.5)
    b1 = uniform(batch, points, 1, hidden, bound=d ** -0.5)
    w2 = uniform(batch, points, hidden, bound=hidden ** -0.5)
    b2 = uniform(batch, points, 1, bound=hidden ** -0.5)
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=lr)

    def net(x):                                      # x (B, P, m, d) -> (B, P, m)
        return torch.einsum("bpmh,bph->bpm", torch.relu(x @ w1 + b1), w2) + b2

    with torch.enable_grad():
        for _ in range(steps):
            # a random order of the earlier examples (later ones sorted last); keep the first n
            scores = torch.rand(batch, points, points, generator=gen, device=device)
            pick = scores.masked_fill(~earlier, 2.0).argsort(-1)[..., :n]        # (B, P, n)
            valid = earlier.expand(batch, -1, -1).gather(2, pick).float()
            bx = xs.unsqueeze(1).expand(-1, points, -1, -1).gather(
                2, pick.unsqueeze(-1).expand(-1, -1, -1, d))
            by = ys.unsqueeze(1).expand(-1, points, -1).gather(2, pick)
            err = (net(bx) - by) ** 2 * valid
            loss = (err.sum(-1) / valid.sum(-1).clamp_min(1.0)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = net(xs.unsqueeze(2))[..., 0]
    pred[:, 0] = 0.0
    return pred


# -- scikit-learn baselines: one fit per (prompt, position) ---------------------

def per_position_sklearn(make_model: Callable[[], object]) -> Callable[[Prompts], Tensor]:
    def fit(prompts: Prompts) -> Tensor:
        xs = prompts.xs.detach().double().cpu().numpy()
        ys = prompts.ys.detach().double().cpu().numpy()
        pred = torch.zeros(xs.shape[0], xs.shape[1], dtype=torch.float64)
        for b in range(xs.shape[0]):
            for i in range(1, xs.shape[1]):
                model = make_model()
                model.fit(xs[b, :i], ys[b, :i])
                pred[b, i] = float(model.predict(xs[b, i:i + 1])[0])
        return _column(pred).to(prompts.ys.device)
    return fit


def _tree(depth: int | None):
    from sklearn.tree import DecisionTreeRegressor
    return lambda: DecisionTreeRegressor(max_depth=depth, random_state=0)


def _boosting():
    from sklearn.ensemble import GradientBoostingRegressor
    return lambda: GradientBoostingRegressor(random_state=0)


def _xgboost():
    # The study's decision-tree baseline: XGBoost with default settings (one thread: the
    # evaluation's jobs already share the cores).
    from xgboost import XGBRegressor
    return lambda: XGBRegressor(n_jobs=1, random_state=0)


def _lazy(factory, *args):
    """Import scikit-learn only when the baseline runs."""
    return lambda prompts: per_position_sklearn(factory(*args))(prompts)


LASSO_ALPHAS = (1.0, 0.1, 0.01, 0.001, 0.0001)


def _lasso_baseline(alpha: float) -> Baseline:
    return Baseline(f"lasso_{alpha:g}", lambda p: lasso(p, alpha),
                    f"Lasso (alpha={alpha:g}, no intercept) on the earlier examples, batched FISTA",
                    max_prompts=256)


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("zero", zero, "predicts 0 everywhere"),
    Baseline("least_squares", least_squares, "minimum-norm least squares on the earlier examples"),
    Baseline("knn_3", nearest_neighbours, "mean y of the 3 nearest earlier examples"),
    Baseline("averaging", averaging, "w = mean of y_j x_j, predict w.x"),
    *(_lasso_baseline(a) for a in LASSO_ALPHAS),
    Baseline("nn_gd", neural_net_gd,
             "2-layer ReLU net (hidden 100) trained by Adam 5e-3, 100 steps, batch 100",
             max_prompts=64),
    Baseline("tree_depth_4", _lazy(_tree, 4),
             "greedy regression tree of depth 4 (scikit-learn)", max_prompts=256),
    Baseline("tree_unlimited", _lazy(_tree, None),
             "greedy regression tree, unlimited depth (scikit-learn)", max_prompts=256),
    Baseline("xgboost", _lazy(_xgboost),
             "gradient-boosted trees, XGBoost XGBRegressor defaults (the study's)",
             max_prompts=32, needs="xgboost", fallback="gradient_boosting"),
    Baseline("gradient_boosting", _lazy(_boosting),
             "gradient-boosted trees, scikit-learn GradientBoostingRegressor defaults",
             max_prompts=32),
    Baseline("gf2_solver", gf2_parity,
             "parity by Gaussian elimination over GF(2); 0 when the label is undetermined"),
)}


def applicable(kind: str) -> list[str]:
    """The baselines evaluated for `kind` when a spec says baselines: auto (its catalog entry's;
    one whose package is not installed gives way to its fallback, with a warning)."""
    if kind not in TASKS:
        raise ValueError(f"unknown task kind {kind!r}")
    return [usable(name) for name in TASKS[kind].baselines]


def usable(name: str) -> str:
    """`name`, or its fallback when the package it needs is not installed."""
    baseline = BASELINES[name]
    if baseline.needs is None or importlib.util.find_spec(baseline.needs) is not None:
        return name
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"baseline {name}: the {baseline.needs} package is not installed; "
                      f"{baseline.fallback} stands in (pip install 'icl-compiler[baselines]')", stacklevel=2)
    return baseline.fallback


_warned: set[str] = set()
