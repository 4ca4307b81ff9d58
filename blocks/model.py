"""ICLModel: read-in, [positions], the layers of the layer string in order, final norm, read-out.
Built by `icl.compiler.build.build_model` from the model graph; nothing else is added.

Every weight has a leading run axis K (blocks/stacked.py): one model object trains K runs of one
architecture side by side, each with its own weights. A model is built for one run; `stack_models`
packs runs built alone (so each starts from the weights it has alone) and `run_of` takes one
run back out (its checkpoint, its evaluation).
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from icl.blocks.heads import LearnedPositions, ReadIn, ReadOut
from icl.blocks.residual import PreNormResidual


class ICLModel(nn.Module):
    def __init__(self, read_in: ReadIn, positions: LearnedPositions | None, layers: list[PreNormResidual],
                 final_norm: nn.Module, read_out: ReadOut, graph_attrs: dict | None = None):
        super().__init__()
        self.read_in = read_in
        self.positions = positions
        self.layers = nn.ModuleList(layers)
        self.final_norm = final_norm
        self.read_out = read_out
        # width, norm, dropout, init_std, n_layers of the graph it was built from
        self.graph_attrs = dict(graph_attrs or {})

    @property
    def runs(self) -> int:
        """K, the runs whose weights this model holds."""
        return self.read_out.map.weight.shape[0]

    def forward(self, inputs: Tensor, rows: Tensor | None = None) -> Tensor:
        """One run: inputs (B, T, token_dim) float or (B, T) int token ids -> (B, T, out_dim).
        K runs: the same with a leading run axis, (K, B, T, ...) -> (K, B, T, out_dim); run k's
        inputs go through run k's weights. rows ((K,) B, n) int64: the read-out only at these
        positions of each prompt -> ((K,) B, n, out_dim) (training's Task.loss_rows)."""
        self.read_in.check(inputs)
        lone = inputs.dim() == (2 if self.read_in.tokenized else 3)
        if lone:
            if self.runs != 1:
                raise ValueError(f"this model holds {self.runs} runs: inputs need a leading run axis "
                                 f"of {self.runs}, got shape {tuple(inputs.shape)}")
            inputs = inputs.unsqueeze(0)
            rows = None if rows is None else rows.unsqueeze(0)
        elif inputs.shape[0] != self.runs:
            raise ValueError(f"inputs for {inputs.shape[0]} runs, but the model holds {self.runs}")
        x = self.read_in(inputs)
        if self.positions is not None:
            x = self.positions(x)
        for layer in self.layers:
            x = layer(x)
        if rows is not None:  # (K, B, T, D) -> (K, B, n, D): the norm and read-out act per token
            x = x.gather(2, rows.unsqueeze(-1).expand(*rows.shape, x.shape[-1]))
        out = self.read_out(self.final_norm(x))
        return out.squeeze(0) if lone else out

    @property
    def layer_string(self) -> str:
        return " ".join(layer.token for layer in self.layers)

    def set_backend(self, backend: str | None) -> None:
        """Scan backend (auto | triton | triton_seq | reference) of every block that calls a kernel."""
        for module in self.modules():
            if hasattr(module, "backend"):
                module.backend = backend

    def scan_backend(self) -> str:
        """The selective-scan backend(s) this model's blocks ran in their last forward, for the
        run's status: "none (no selective scan)" for a model without one."""
        ran = sorted({m.backend_ran for m in self.modules() if getattr(m, "backend_ran", None)})
        return ", ".join(ran) if ran else "none (no selective scan)"


def stack_models(models: list[ICLModel]) -> ICLModel:
    """One model holding the runs of `models` (same architecture), in order: every parameter and
    buffer is the concatenation of theirs along the run axis."""
    packed = copy.deepcopy(models[0])
    with torch.no_grad():
        for name, tensor in list(packed.named_parameters()) + list(packed.named_buffers()):
            parts = [m.get_parameter(name) if isinstance(tensor, nn.Parameter) else m.get_buffer(name)
                     for m in models]
            tensor.data = torch.cat([p.detach() for p in parts], dim=0)
    return packed


def run_of(model: ICLModel, k: int) -> ICLModel:
    """A model of run k alone (K = 1), with a copy of its weights."""
    lone = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in list(lone.parameters()) + list(lone.buffers()):
            tensor.data = tensor.data[k:k + 1].clone()
    return lone
