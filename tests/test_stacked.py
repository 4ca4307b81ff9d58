"""A model of K runs (weights stacked on a leading axis) computes exactly what its K runs compute
alone: outputs, and each run's gradients from its own loss."""
from __future__ import annotations

import pytest
import torch

from icl.blocks.model import run_of, stack_models
from icl.compiler.build import build_model
from icl.tasks.catalog import Layout

VECTORS = Layout(token_dim=5, out_dim=3, tokens=13)
TOKENS = Layout(token_dim=0, out_dim=11, tokens=9, vocab=11)
MODELS = {
    "transformer": {"layers": "A F A F", "width": 16, "heads": 4, "positions": "learned"},
    "mamba": {"layers": "M M", "width": 16, "d_state": 4},
    "s4": {"layers": "S S", "width": 16, "d_state": 4},
    "s4_mamba": {"layers": "SM", "width": 16, "d_state": 4, "norm": "rmsnorm"},
    "hybrid": {"layers": "M A M", "width": 16, "heads": 2, "d_state": 4},
    "mamba2": {"layers": "M2", "width": 16, "headdim": 8, "d_state": 4},
}


def lone_models(config, layout, seeds):
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_model(config, layout))
    return models


def inputs(layout, runs, seed=0):
    g = torch.Generator().manual_seed(seed)
    if layout.vocab:
        return torch.randint(0, layout.vocab, (runs, 4, layout.tokens), generator=g)
    return torch.randn(runs, 4, layout.tokens, layout.token_dim, generator=g)


@pytest.mark.parametrize("layout", [VECTORS, TOKENS], ids=["vectors", "tokens"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_pack_of_three_equals_three_lone_runs(name, layout):
    models = lone_models(MODELS[name], layout, seeds=[0, 1, 2])
    packed = stack_models(models)
    assert packed.runs == 3
    x = inputs(layout, 3)
    out = packed(x)
    out.pow(2).mean(dim=(1, 2, 3)).sum().backward()  # the sum of the runs' own losses
    for k, model in enumerate(models):
        alone = model(x[k])
        torch.testing.assert_close(out[k], alone, rtol=1e-5, atol=1e-6)
        alone.pow(2).mean().backward()
        for (pname, p_packed), p in zip(packed.named_parameters(), model.parameters()):
            torch.testing.assert_close(p_packed.grad[k], p.grad[0], rtol=1e-4, atol=1e-7,
                                       msg=lambda m, pname=pname: f"run {k}, grad of {pname}: {m}")


def test_run_of_takes_one_run_back_out():
    models = lone_models(MODELS["hybrid"], VECTORS, seeds=[3, 4])
    packed = stack_models(models)
    for k, model in enumerate(models):
        lone = run_of(packed, k)
        assert lone.runs == 1
        for (name, a), b in zip(lone.state_dict().items(), model.state_dict().values()):
            assert torch.equal(a, b), name


def test_lone_inputs_need_a_lone_model():
    packed = stack_models(lone_models(MODELS["mamba"], VECTORS, seeds=[0, 1]))
    with pytest.raises(ValueError, match="holds 2 runs"):
        packed(torch.randn(4, VECTORS.tokens, VECTORS.token_dim))
    with pytest.raises(ValueError, match="inputs for 3 runs"):
        packed(torch.randn(3, 4, VECTORS.tokens, VECTORS.token_dim))
