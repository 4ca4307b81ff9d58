"""K runs stepped together by StackedAdam train exactly like K lone runs stepped by torch.optim
Adam / AdamW with clip_grad_norm_: same losses and weights over 50 steps; a run frozen as diverged
does not disturb the others; a run's optimizer state moves between a pack and a lone run."""
from __future__ import annotations

import pytest
import torch

from icl.blocks.model import run_of, stack_models
from icl.compiler.build import build_model
from icl.tasks.catalog import Layout
from icl.training.stacked_optimizer import StackedAdam

LAYOUT = Layout(token_dim=4, out_dim=1, tokens=11)
# No biases in A and F: attention's key bias has a gradient of exactly 0 in theory (softmax is
# shift invariant), so its computed gradient is rounding noise that Adam scales to full steps.
CONFIG = {"layers": "M A F", "width": 16, "heads": 2, "d_state": 4, "bias": False}
# Learning rates where training is not chaotic: at 2e-3 a lone run perturbed by 1e-7 drifts to
# 6e-5 relative loss in 30 steps (Adam magnifies rounding of tiny gradients), which no float
# tolerance separates from a bug. Clips: one run always clipped, one never, one in between.
LRS, CLIPS = [5e-4, 1e-3, 2e-4], [0.5, 10.0, 1.0]


def models(seeds):
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        out.append(build_model(CONFIG, LAYOUT))
    return out


def batch(step, k):
    g = torch.Generator().manual_seed(1000 * step + k)  # each run its own data stream
    x = torch.randn(8, LAYOUT.tokens, LAYOUT.token_dim, generator=g)
    return x, x[..., :1] - 0.5 * x[..., 1:2]  # a target the model can fit (well conditioned)


@pytest.mark.parametrize("optimizer,weight_decay", [("adam", 0.0), ("adam", 0.01), ("adamw", 0.1)])
def test_three_runs_stepped_together_equal_three_lone_runs(optimizer, weight_decay):
    lone = models([0, 1, 2])
    packed = stack_models(models([0, 1, 2]))
    cls = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    lone_opts = [cls(m.parameters(), lr=lr, weight_decay=weight_decay) for m, lr in zip(lone, LRS)]
    stacked = StackedAdam(list(packed.parameters()), LRS, decoupled=optimizer == "adamw",
                          weight_decay=weight_decay)
    for step in range(50):
        data = [batch(step, k) for k in range(3)]
        lone_losses = []
        for m, opt, clip, (x, y) in zip(lone, lone_opts, CLIPS, data):
            opt.zero_grad()
            loss = (m(x) - y).pow(2).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
            opt.step()
            lone_losses.append(loss.item())
        stacked.zero_grad()
        x = torch.stack([d[0] for d in data])
        y = torch.stack([d[1] for d in data])
        losses = (packed(x) - y).pow(2).mean(dim=(1, 2, 3))
        losses.sum().backward()
        stacked.clip_(CLIPS)
        stacked.step()
        torch.testing.assert_close(losses.detach(), torch.tensor(lone_losses), rtol=1e-4, atol=1e-6)
    for k, m in enumerate(lone):
        for (name, a), b in zip(run_of(packed, k).named_parameters(), m.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5, msg=lambda msg, name=name: f"run {k} {name}: {msg}")


def test_a_frozen_run_keeps_its_weights_and_the_others_go_on():
    packed = stack_models(models([0, 1, 2]))
    reference = stack_models(models([0, 1, 2]))
    stacked = StackedAdam(list(packed.parameters()), LRS)
    ref_opt = StackedAdam(list(reference.parameters()), LRS)
    before = [p[1].clone() for p in packed.parameters()]
    active = torch.ones(3, dtype=torch.bool)
    for step in range(5):
        x = torch.stack([batch(step, k)[0] for k in range(3)])
        for model, opt in ((packed, stacked), (reference, ref_opt)):
            opt.zero_grad()
            out = model(x)
            if model is packed and step == 2:
                out = out * torch.tensor([1.0, float("nan"), 1.0]).view(3, 1, 1, 1)  # run 1 diverges
            losses = out.pow(2).mean(dim=(1, 2, 3))
            if model is packed and not torch.isfinite(losses[1]):
                active[1] = False  # run 1 stops here, before its bad step
            losses.sum().backward()
            opt.clip_([1.0, 1.0, 1.0])
            opt.step(active if model is packed else None)
    for (name, p), r, b in zip(packed.named_parameters(), reference.parameters(), before):
        assert torch.isfinite(p).all(), name
        torch.testing.assert_close(p[0], r[0], msg=name)   # the others as if nothing happened
        torch.testing.assert_close(p[2], r[2], msg=name)
        assert not torch.equal(p[1], b), name               # run 1 trained two steps, then froze
    assert stacked.step_count.tolist() == [5.0, 2.0, 5.0]


def test_a_runs_state_moves_between_a_pack_and_a_lone_adam():
    lone = models([4])[0]
    opt = torch.optim.Adam(lone.parameters(), lr=1e-3)
    x, y = batch(0, 0)
    for _ in range(3):
        opt.zero_grad()
        (lone(x) - y).pow(2).mean().backward()
        opt.step()
    packed = stack_models([models([5])[0], lone])
    stacked = StackedAdam(list(packed.parameters()), [1e-3, 1e-3])
    stacked.load_run_state(1, opt.state_dict())
    state = stacked.run_state(1)
    for i, s in opt.state_dict()["state"].items():
        assert torch.equal(state["state"][i]["exp_avg"], s["exp_avg"])
        assert float(state["state"][i]["step"]) == float(s["step"]) == 3.0
    fresh = torch.optim.Adam(models([4])[0].parameters(), lr=1e-3)
    fresh.load_state_dict(state)  # the lone optimizer accepts the pack's run state as is
