"""Building the nn.Module of a model from its graph (compiler/graph.py).

`build_model(model_config, layout)` is the entry point the rest of the project calls; the module
is a plain ICLModel whose layers follow the layer string one for one. `build_for_run(run)` gives
a resolved run's model with its task and layout: what training and evaluation both start from.
"""
from __future__ import annotations

import importlib
from typing import Callable

import networkx as nx

from icl.blocks.catalog import GPT2_BACKBONE_BLOCKS, block_kind
from icl.compiler.graph import check_graph, layer_nodes, model_graph
from icl.compiler.runs import train_settings
from icl.errors import IclError
from icl.run import Run


def block_class(token: str):
    """The block class of a layer token (catalog's "module:Class", imported here, lazily)."""
    module, name = block_kind(token).module.split(":")
    return getattr(importlib.import_module(module), name)


def build_from_graph(g: nx.DiGraph, backend: str | None = None):
    from icl.blocks.heads import LearnedPositions, ReadIn, ReadOut
    from icl.blocks.model import ICLModel
    from icl.blocks.residual import PreNormResidual, make_norm
    from icl.blocks.stacked import pytorch_default_init

    errors = check_graph(g)
    if errors:
        raise ValueError(f"invalid model graph: {errors[0]}")
    width, norm, init_std = g.graph["width"], g.graph["norm"], g.graph["init_std"]
    # init = released or pytorch: the read-in and read-out Linears keep PyTorch's default init
    # (io_std None); pytorch's token table is nn.Embedding's N(0, 1)
    scheme = g.graph.get("init", "gpt2")
    io_std = None if scheme in ("released", "pytorch") else init_std
    read_in = ReadIn(g.nodes["read_in"]["options"]["token_dim"], g.nodes["read_in"]["options"]["vocab"],
                     width, io_std, embedding_std=1.0 if scheme == "pytorch" else init_std)
    positions = None
    if "positions" in g:
        options = g.nodes["positions"]["options"]
        positions = LearnedPositions(options["tokens"], width, options["init_std"])
    layers = []
    for node in layer_nodes(g):
        token, options = g.nodes[node]["kind"], g.nodes[node]["options"]
        # init_std only where the block's init has that knob (catalog: reads_init_std)
        init = {"init_std": init_std} if block_kind(token).reads_init_std else {}
        block = block_class(token)(width, n_layers=g.graph["n_layers"], **init, **options)
        if token in GPT2_BACKBONE_BLOCKS and not g.graph.get("gpt2_backbone", True):
            # the released MixerModel's A and F blocks (biases zeroed), or nn.Linear's own init
            pytorch_default_init(block, zero_bias=scheme == "released")
        layers.append(PreNormResidual(token, options, block, norm, width, g.graph["dropout"]))
    model = ICLModel(read_in, positions, layers, make_norm(norm, width),
                     ReadOut(width, g.nodes["read_out"]["options"]["out_dim"], io_std), graph_attrs=g.graph)
    if backend is not None:
        model.set_backend(backend)
    return model


def build_model(model_config: dict, layout, backend: str | None = None, device=None):
    """ICLModel of a resolved `model_config` (width set) for a task Layout, on `device` (default CPU).
    backend: selective-scan backend of Mamba blocks (auto | triton | triton_seq | reference; None:
    $ICL_SCAN_BACKEND, else auto)."""
    model = build_from_graph(model_graph(model_config, layout), backend=backend)
    return model if device is None else model.to(device)


def build_for_run(run: Run, model_factory: Callable | None = None):
    """(model, task, layout) of a resolved run, the model on the CPU.

    model_factory(model_config, layout) replaces build_model (tests use small stand-ins)."""
    from icl.tasks import make_task
    from icl.tasks.catalog import TASKS

    task_config = run.task_config
    kind = task_config.get("kind")
    if kind not in TASKS:
        raise IclError(f"run {run.id}: unknown task kind {kind!r}")
    layout = TASKS[kind].layout(task_config)
    task = make_task(task_config)
    if model_factory is None:
        backend = train_settings(run)["backend"]
        # auto (the default) leaves the choice to $ICL_SCAN_BACKEND, then to dispatch's auto
        backend = None if backend == "auto" else backend
        model = build_model(run.model_config, layout, backend=backend)
    else:
        model = model_factory(run.model_config, layout)
    return model, task, layout


def graph_of(model) -> nx.DiGraph:
    """The graph a built ICLModel realises, read back from its modules (round-trip tests)."""
    g = nx.DiGraph(**model.graph_attrs)
    count = lambda module: sum(p.numel() for p in module.parameters())
    read_in = model.read_in
    g.add_node("read_in", kind="read_in", params=count(read_in),
               options={"token_dim": 0 if read_in.tokenized else read_in.map.in_features,
                        "vocab": read_in.map.num_embeddings if read_in.tokenized else 0})
    chain = ["read_in"]
    if model.positions is not None:
        g.add_node("positions", kind="positions", params=count(model.positions),
                   options={"tokens": model.positions.table.num_embeddings,
                            "init_std": model.positions.init_std})
        chain.append("positions")
    for i, layer in enumerate(model.layers):
        g.add_node(f"layer{i}", kind=layer.token, index=i, options=dict(layer.options), params=count(layer))
        chain.append(f"layer{i}")
    g.add_node("final_norm", kind="final_norm", options={}, params=count(model.final_norm))
    g.add_node("read_out", kind="read_out", options={"out_dim": model.read_out.map.out_features},
               params=count(model.read_out))
    nx.add_path(g, chain + ["final_norm", "read_out"])
    return g
