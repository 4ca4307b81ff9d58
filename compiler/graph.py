"""Lowering a resolved model to a graph: one node per block, edges for the data flow.

    read_in -> [positions] -> layer0 -> layer1 -> ... -> final_norm -> read_out

Each node carries `kind` (the layer token for layers, else the part's name), `options` (its
resolved parameters) and `params` (its exact parameter count, from the catalog entries' formulas).
Layers are numbered in layer-string order; their node attribute `index` is that position.
`compiler/build.py` builds the nn.Module from this graph and nothing else.
"""
from __future__ import annotations

import networkx as nx

from icl.blocks.catalog import GPT2_BACKBONE_BLOCKS, block_kind
from icl.compiler import accounting
from icl.compiler.accounting import block_options, tokens_of, model_option, norm_params


def model_graph(model_config: dict, layout) -> nx.DiGraph:
    """The graph of `model_config` (width resolved) for a task `layout`."""
    width = model_config["width"]
    norm = model_option(model_config, "norm")
    tokens = tokens_of(model_config)
    io = accounting.io_params(model_config, layout, width)
    # A model_config without `init` predates the option: its runs were built with GPT-2's init,
    # and keep their ids (compiler/runs.py records init only where it is released).
    init, init_std = model_config.get("init") or "gpt2", model_option(model_config, "init_std")
    # init = released (catalog's MODEL_OPTIONS): the released code's GPT2Model for a model of only
    # GPT2_BACKBONE_BLOCKS, its MixerModel (PyTorch's default inits) for any other; init = pytorch
    # never has GPT-2's blocks.
    gpt2_backbone = init == "gpt2" or (init == "released" and set(tokens) <= set(GPT2_BACKBONE_BLOCKS))
    g = nx.DiGraph(width=width, norm=norm, dropout=model_option(model_config, "dropout"),
                   init=init, init_std=init_std, n_layers=len(tokens), gpt2_backbone=gpt2_backbone)
    g.add_node("read_in", kind="read_in", params=io["read_in"],
               options={"token_dim": layout.token_dim, "vocab": layout.vocab})
    chain = ["read_in"]
    if model_option(model_config, "positions") == "learned":
        std = model_option(model_config, "positions_init_std")
        if std is None:
            # GPT-2's table (and a textbook PyTorch GPT's), or the MixerModel's nn.Embedding N(0, 1)
            std = init_std if gpt2_backbone or init == "pytorch" else 1.0
        g.add_node("positions", kind="positions", params=io["positions"],
                   options={"tokens": layout.tokens, "init_std": std})
        chain.append("positions")
    for i, token in enumerate(tokens):
        options = block_options(model_config, token, width)
        g.add_node(f"layer{i}", kind=token, index=i, options=options,
                   params=norm_params(norm, width) + block_kind(token).params(width, options))
        chain.append(f"layer{i}")
    g.add_node("final_norm", kind="final_norm", params=io["final_norm"], options={})
    g.add_node("read_out", kind="read_out", params=io["read_out"], options={"out_dim": layout.out_dim})
    chain += ["final_norm", "read_out"]
    nx.add_path(g, chain)
    return g


def layer_nodes(g: nx.DiGraph) -> list[str]:
    """Layer nodes in data-flow order."""
    return [n for n in nx.topological_sort(g) if "index" in g.nodes[n]]


def check_graph(g: nx.DiGraph) -> list[str]:
    """Structural errors (empty list if fine): one chain from read_in to read_out, layers in order."""
    errors = []
    if not nx.is_directed_acyclic_graph(g):
        errors.append("the model graph has a cycle")
        return errors
    for end in ("read_in", "final_norm", "read_out"):
        if end not in g:
            errors.append(f"the model graph has no {end} node")
    if errors:
        return errors
    order = list(nx.topological_sort(g))
    if any(g.out_degree(n) > 1 or g.in_degree(n) > 1 for n in g):
        errors.append("the model graph branches: every block must feed exactly the next one")
    if order[0] != "read_in" or order[-1] != "read_out" or not nx.is_weakly_connected(g):
        errors.append("the model graph is not one chain from read_in to read_out")
    indices = [g.nodes[n]["index"] for n in layer_nodes(g)]
    if indices != list(range(len(indices))):
        errors.append("the model graph's layers are out of layer-string order")
    return errors


def total_params(g: nx.DiGraph) -> int:
    return sum(d["params"] for _, d in g.nodes(data=True))
