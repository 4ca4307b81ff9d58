"""`init = released | gpt2 | pytorch` (issues #25, #26): each scheme's weights follow its formula (statistics over
a large draw), the DSL default is the released code's, and gpt2 keeps the ids of runs built
before the option existed."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from icl.compiler.build import build_model
from icl.compiler.runs import runs_of
from icl.tasks.catalog import Layout

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 512
LAYOUT = Layout(token_dim=64, out_dim=1, tokens=400)


def weights(layers: str, init: str | None, **options) -> dict[str, torch.Tensor]:
    config = {"layers": layers, "width": WIDTH, "heads": 8, "positions": "learned", **options}
    if init is not None:
        config["init"] = init
    torch.manual_seed(0)
    return {k: v[0].detach() for k, v in build_model(config, LAYOUT).state_dict().items()}


def assert_uniform(w: torch.Tensor, fan_in: int) -> None:
    """nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std bound / sqrt(3)."""
    bound = 1 / math.sqrt(fan_in)
    assert w.abs().max() <= bound + 1e-7
    # within 5 standard errors of the sample std (uniform: 0.45 / sqrt(n) relative)
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=2.3 / math.sqrt(w.numel()))


def assert_normal(w: torch.Tensor, std: float) -> None:
    assert w.mean().abs().item() < 4 * std / math.sqrt(w.numel()) + 1e-9
    assert w.std().item() == pytest.approx(std, rel=3.6 / math.sqrt(w.numel()))  # 5 standard errors
    assert w.abs().max() > 3 * std  # a normal draw of this size has tails; a uniform one does not


def test_released_read_in_and_read_out_keep_pytorchs_default_linear_init():
    w = weights("A F", "released")
    assert_uniform(w["read_in.map.weight"], LAYOUT.token_dim)
    assert_uniform(w["read_in.map.bias"], LAYOUT.token_dim)
    assert_uniform(w["read_out.map.weight"], WIDTH)


def test_released_transformer_blocks_are_gpt2s():
    """A model of only A and F blocks is the released code's GPT2Model: N(0, 0.02), residual
    outputs N(0, 0.02 / sqrt(2 n_layer)) (here 2 blocks = 1 GPT-2 layer), positions N(0, 0.02)."""
    w = weights("A F", "released")
    assert_normal(w["layers.0.block.qkv.weight"], 0.02)
    assert_normal(w["layers.0.block.proj.weight"], 0.02 / math.sqrt(2))
    assert_normal(w["layers.1.block.fc.weight"], 0.02)
    assert_normal(w["layers.1.block.proj.weight"], 0.02 / math.sqrt(2))
    assert_normal(w["positions.table.weight"], 0.02)
    assert not w["layers.0.block.qkv.bias"].any()


def test_released_hybrid_attention_keeps_pytorchs_default_weights_zero_biases_and_n01_positions():
    """Any other model is the released MixerModel: its attention's Linears keep nn.Linear's
    weights, unscaled (c_proj is not among the rescaled names), biases zeroed; the Standard
    Hybrid's position table is nn.Embedding's N(0, 1)."""
    w = weights("M A M", "released")
    assert_uniform(w["layers.1.block.qkv.weight"], WIDTH)
    assert_uniform(w["layers.1.block.proj.weight"], WIDTH)
    assert not w["layers.1.block.qkv.bias"].any() and not w["layers.1.block.proj.bias"].any()
    assert_normal(w["positions.table.weight"], 1.0)
    # the Mamba blocks' released init either way: out_proj PyTorch's default / sqrt(n_layers)
    gpt2 = weights("M A M", "gpt2")
    assert w["layers.0.block.out_proj.weight"].std().item() == pytest.approx(
        gpt2["layers.0.block.out_proj.weight"].std().item(), rel=0.03)


def test_gpt2_init_everywhere_and_positions_init_std_still_wins():
    w = weights("M A M", "gpt2")
    assert_normal(w["read_in.map.weight"], 0.02)
    assert not w["read_in.map.bias"].any() and not w["read_out.map.bias"].any()
    assert_normal(w["layers.1.block.qkv.weight"], 0.02)
    assert_normal(w["layers.1.block.proj.weight"], 0.02 / math.sqrt(3))
    assert_normal(w["positions.table.weight"], 0.02)
    assert_normal(weights("M A M", "released", positions_init_std=0.5)["positions.table.weight"], 0.5)


def test_pytorch_init_is_a_textbook_pytorch_gpt():
    """init = pytorch: every Linear of the read-in, read-out, A and F blocks nn.Linear's own init,
    biases included (also in a model of only A and F blocks), a token table N(0, 1), positions
    N(0, init_std); the Mamba blocks keep their released init."""
    w = weights("A F", "pytorch")
    assert_uniform(w["read_in.map.weight"], LAYOUT.token_dim)
    assert_uniform(w["read_in.map.bias"], LAYOUT.token_dim)
    assert_uniform(w["read_out.map.weight"], WIDTH)
    for name, fan_in in (("layers.0.block.qkv", WIDTH), ("layers.0.block.proj", WIDTH),
                         ("layers.1.block.fc", WIDTH), ("layers.1.block.proj", 4 * WIDTH)):
        assert_uniform(w[name + ".weight"], fan_in)
        assert_uniform(w[name + ".bias"], fan_in)
    assert_normal(w["positions.table.weight"], 0.02)
    released = weights("M A M", "released")
    hybrid = weights("M A M", "pytorch")
    assert_uniform(hybrid["layers.1.block.qkv.bias"], WIDTH)
    assert hybrid["layers.0.block.out_proj.weight"].std().item() == pytest.approx(
        released["layers.0.block.out_proj.weight"].std().item(), rel=0.03)
    tokens = Layout(token_dim=0, out_dim=1000, tokens=16, vocab=1000)
    torch.manual_seed(0)
    table = build_model({"layers": "A F", "width": WIDTH, "heads": 8, "init": "pytorch"}, tokens).read_in.map.weight
    assert_normal(table[0].detach(), 1.0)


def test_a_config_without_init_is_built_as_before_the_option(write_spec):
    """Configs from before the option (no init key) are GPT-2's; the compiler writes released,
    the DSL's default, into every config it resolves, and leaves gpt2 out (the old ids)."""
    assert torch.equal(weights("M A M", None)["read_in.map.weight"], weights("M A M", "gpt2")["read_in.map.weight"])
    base = 'model m {{ layers = "M A" width = 16 heads = 2 {} }}\n' \
           'experiment e {{ models = [m] tasks = [linear_regression] train {{ steps = 10 }} }}\n'
    default = runs_of([write_spec("a.icl", base.format(""))])[0]
    released = runs_of([write_spec("b.icl", base.format("init = released"))])[0]
    gpt2 = runs_of([write_spec("c.icl", base.format("init = gpt2"))])[0]
    assert default.model_config["init"] == "released" and default.id == released.id
    assert "init" not in gpt2.model_config and gpt2.id != released.id


def test_reduced_spec_keeps_the_ids_of_its_committed_results():
    """specs/reduced says init = gpt2 until its re-run: every run is in results/reduced."""
    committed = {p.name for p in (ROOT / "results" / "reduced" / "runs").iterdir()}
    runs = runs_of([ROOT / "specs" / "reduced" / "study.icl"])
    assert len(runs) == 66 and {r.id for r in runs} <= committed
