"""ICLModel: read-in, [positions], the layers of the layer string in order, final norm, read-out.
Built by `icl.compiler.build.build_model` from the model graph; nothing else is added."""
from __future__ import annotations

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

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (B, T, token_dim) float, or (B, T) int64 token ids -> (B, T, out_dim)."""
        x = self.read_in(inputs)
        if self.positions is not None:
            x = self.positions(x)
        for layer in self.layers:
            x = layer(x)
        return self.read_out(self.final_norm(x))

    @property
    def layer_string(self) -> str:
        return " ".join(layer.token for layer in self.layers)

    def set_backend(self, backend: str | None) -> None:
        """Scan backend (auto | triton | reference) of every block that calls a kernel."""
        for module in self.modules():
            if hasattr(module, "backend"):
                module.backend = backend
