"""Model graph -> nn.Module: registry smoke test, study architectures, round trip, read-in/out."""
from __future__ import annotations

import networkx as nx
import pytest
import torch

from icl.blocks.catalog import BLOCKS
from icl.blocks.stacked import StackedEmbedding
from icl.compiler.build import build_from_graph, build_model, graph_of
from icl.compiler.graph import check_graph, layer_nodes, model_graph, total_params
from icl.tasks.catalog import Layout

SMALL = Layout(token_dim=5, out_dim=1, tokens=14)
TOKENS = Layout(token_dim=0, out_dim=13, tokens=10, vocab=13)
OPTIONS = {"heads": 2, "headdim": 8, "d_state": 4}

STUDY = {   # the six architectures of ../shared/paper.md as layer strings, full depth
    "transformer": ("(A F)*12", " ".join(["A F"] * 12), "learned"),
    "mamba": ("M*24", " ".join(["M"] * 24), "none"),
    "s4": ("S*24", " ".join(["S"] * 24), "none"),
    "s4_mamba": ("SM*24", " ".join(["SM"] * 24), "none"),
    "standard_hybrid": ("(A M)*12", " ".join(["A M"] * 12), "learned"),
    "mambaformer": ("M (A M)*12", "M " + " ".join(["A M"] * 12), "none"),
}


def forward_backward(model, inputs):
    out = model(inputs)
    out.square().mean().backward()
    assert torch.isfinite(out).all()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient"
    return out


@pytest.mark.parametrize("token", sorted(BLOCKS))
@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_every_token_builds_and_trains(token, norm):
    torch.manual_seed(0)
    cfg = {"layers": f"{token} {token}", "width": 16, "norm": norm, "dropout": 0.1, **OPTIONS}
    model = build_model(cfg, SMALL)
    out = forward_backward(model, torch.randn(3, 11, 5))
    assert out.shape == (3, 11, 1)


@pytest.mark.parametrize("name", sorted(STUDY))
def test_study_architectures_build_and_train_at_small_width(name):
    torch.manual_seed(0)
    _, layers, positions = STUDY[name]
    model = build_model({"layers": layers, "width": 8, "positions": positions, "heads": 2}, SMALL)
    assert model.layer_string == layers
    assert (model.positions is not None) == (positions == "learned")
    forward_backward(model, torch.randn(1, 5, 5))


def test_layer_string_is_the_whole_truth_of_block_order():
    model = build_model({"layers": "M A M F S SM M2", "width": 16, **OPTIONS}, SMALL)
    kinds = [type(layer.block).__name__ for layer in model.layers]
    assert kinds == ["MambaMixer", "CausalSelfAttention", "MambaMixer", "MLP", "S4Block", "S4MambaMixer",
                     "Mamba2Mixer"]
    # nothing besides read-in, (positions), the layers, the final norm and the read-out
    assert [name for name, _ in model.named_children()] == ["read_in", "layers", "final_norm", "read_out"]


def test_graph_has_a_node_per_block_with_resolved_options():
    g = model_graph({"layers": "M A F", "width": 32, "heads": 4, "positions": "learned"}, SMALL)
    assert check_graph(g) == []
    assert list(nx.topological_sort(g)) == ["read_in", "positions", "layer0", "layer1", "layer2",
                                            "final_norm", "read_out"]
    assert g.nodes["layer0"]["options"] == {"d_state": 16, "d_conv": 4, "expand": 2, "dt_rank": 2,
                                            "dt_min": 0.001, "dt_max": 0.1}
    assert g.nodes["layer1"]["options"] == {"heads": 4, "bias": True}
    assert g.nodes["positions"]["options"] == {"tokens": SMALL.tokens, "init_std": 0.02}


@pytest.mark.parametrize("cfg,layout", [
    ({"layers": "M A M", "width": 16, "heads": 4, "positions": "learned"}, SMALL),
    ({"layers": "S SM M2 F", "width": 16, "norm": "rmsnorm", "dropout": 0.2, **OPTIONS}, SMALL),
    ({"layers": "A F", "width": 24, "heads": 3, "bias": False}, TOKENS),
])
def test_graph_module_round_trip(cfg, layout):
    g = model_graph(cfg, layout)
    model = build_from_graph(g)
    back = graph_of(model)
    assert nx.utils.graphs_equal(back, g)
    assert total_params(g) == sum(p.numel() for p in model.parameters())
    # and the graph read back builds the same architecture again
    again = build_from_graph(back)
    assert [(n, p.shape) for n, p in again.named_parameters()] == [(n, p.shape) for n, p in model.named_parameters()]


def test_check_graph_rejects_broken_graphs():
    g = model_graph({"layers": "M A", "width": 16, "heads": 2}, SMALL)
    branched = g.copy()
    branched.add_edge("read_in", "layer1")
    assert any("branches" in e for e in check_graph(branched))
    swapped = g.copy()
    swapped.nodes["layer0"]["index"], swapped.nodes["layer1"]["index"] = 1, 0
    assert any("order" in e for e in check_graph(swapped))
    missing = g.copy()
    missing.remove_node("final_norm")
    assert any("final_norm" in e for e in check_graph(missing))
    with pytest.raises(ValueError, match="invalid model graph"):
        build_from_graph(branched)
    assert layer_nodes(g) == ["layer0", "layer1"]


def test_token_task_reads_ids_through_an_embedding_table():
    model = build_model({"layers": "M A", "width": 16, "heads": 2}, TOKENS)
    assert isinstance(model.read_in.map, StackedEmbedding) and model.read_in.map.num_embeddings == 13
    ids = torch.randint(0, 13, (2, 10))
    assert model(ids).shape == (2, 10, 13)
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.randn(2, 10, 13))


def test_positions_sized_by_tokens_and_too_long_prompts_are_refused():
    model = build_model({"layers": "A", "width": 8, "heads": 2, "positions": "learned"}, SMALL)
    assert model.positions.table.weight.shape == (1, SMALL.tokens, 8)  # (runs, rows, width)
    model(torch.randn(1, SMALL.tokens, 5))
    with pytest.raises(ValueError, match="longer than the position table"):
        model(torch.randn(1, SMALL.tokens + 1, 5))
    with pytest.raises(ValueError, match=r"inputs must be \(B, T, 5\)"):
        model(torch.randn(1, 4, 6))


def test_initialisation_follows_the_study():
    torch.manual_seed(0)
    std = 0.05
    model = build_model({"layers": "A F M", "width": 64, "heads": 4, "init_std": std,
                         "positions": "learned"}, Layout(token_dim=40, out_dim=3, tokens=300))
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module.bias is not None and not name.endswith("dt_proj"):
            assert torch.all(module.bias == 0), f"{name}: bias not zero"
    mamba = model.layers[2].block
    assert not torch.all(mamba.dt_proj.bias == 0)
    for weight in (model.read_in.map.weight, model.positions.table.weight, model.layers[0].block.qkv.weight):
        assert abs(weight.std().item() - std) < 0.1 * std
    # GPT-2: residual output projections scaled by 1/sqrt(number of layers)
    assert abs(model.layers[1].block.proj.weight.std().item() - std / 3 ** 0.5) < 0.1 * std


def test_position_table_init_has_its_own_std():
    # The study's released Standard Hybrid keeps PyTorch's N(0, 1) for its position table.
    torch.manual_seed(0)
    model = build_model({"layers": "A M", "width": 64, "heads": 4, "positions": "learned",
                         "positions_init_std": 1.0}, Layout(token_dim=40, out_dim=3, tokens=300))
    assert abs(model.positions.table.weight.std().item() - 1.0) < 0.05
    assert abs(model.read_in.map.weight.std().item() - 0.02) < 0.002
    assert graph_of(model).nodes["positions"]["options"] == {"tokens": 300, "init_std": 1.0}


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = build_model({"layers": "F M", "width": 16, "dropout": 0.5}, SMALL)
    x = torch.randn(2, 6, 5)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_backend_reaches_the_mamba_blocks():
    torch.manual_seed(0)
    model = build_model({"layers": "M A M", "width": 16, "heads": 2}, SMALL, backend="reference")
    assert [getattr(layer.block, "backend", "none") for layer in model.layers] == ["reference", "none", "reference"]
    x = torch.randn(2, 9, 5)
    y = model(x)
    model.set_backend("auto")
    assert torch.allclose(model(x), y, atol=1e-6)


@pytest.mark.parametrize("spec_backend,blocks_get", [("", None), ("backend = auto", None),
                                                     ("backend = reference", "reference")])
def test_scan_backend_environment_variable_applies_where_the_spec_says_auto(tmp_path, monkeypatch,
                                                                           spec_backend, blocks_get):
    """train.backend = auto (the default) leaves the choice to $ICL_SCAN_BACKEND; a backend the
    spec names wins over it."""
    from icl.compiler.build import build_for_run
    from icl.compiler.runs import runs_of
    spec = tmp_path / "s.icl"
    spec.write_text("model m { layers = \"M\" width = 8 }\ntask t { kind = linear_regression dims = 2 points = 3 }\n"
                    f"train tr {{ steps = 1 batch = 2 {spec_backend} }}\n"
                    "experiment e { models = [m] tasks = [t] train extends tr {} }\n", encoding="utf-8")
    (run,) = runs_of([spec])
    model, _, _ = build_for_run(run)
    assert model.layers[0].block.backend == blocks_get
    monkeypatch.setenv("ICL_SCAN_BACKEND", "nonsense")
    if blocks_get is None:
        with pytest.raises(ValueError, match="ICL_SCAN_BACKEND"):
            model.layers[0].block(torch.randn(1, 1, 3, 8))
    else:
        model.layers[0].block(torch.randn(1, 1, 3, 8))
