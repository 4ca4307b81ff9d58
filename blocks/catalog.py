"""The catalog of layer tokens: which block each token builds and which model options it reads.

This is the semantics registry for models. Every option a model spec may set is
declared once here (name, type, default, range); each block kind names the options
it reads. The checker (`compiler/resolve.py`) validates specs against it, and the
module builder (`compiler/build.py`) imports the block class named by `module`
only when a model is actually built, so `icl check` never imports torch.

Analytic accounting (`params`, `state_size`, `flops_per_token`) lives in
`compiler/accounting.py` for the same reason; tests check every count against the
numel of the built module.
"""
from __future__ import annotations

from dataclasses import dataclass
from icl.compiler.schema import Param

# Options of the whole model (read-in, positions, norms, head).
MODEL_OPTIONS: tuple[Param, ...] = (
    Param("layers", "str", required=True, sweepable=True,
          doc='layer string, e.g. "M (A M)*12": tokens, groups in parentheses, *N repeats'),
    Param("width", "int", None, min=1, max=65536,
          doc="model width D (give either width or params)"),
    Param("params", "int", None, min=1_000, max=100_000_000_000,
          doc="parameter budget: the compiler picks the width that hits it within 2%"),
    Param("positions", "choice", "none", choices=("none", "learned"),
          doc="absolute position embedding, sized by the task's tokens"),
    Param("norm", "choice", "layernorm", choices=("layernorm", "rmsnorm"),
          doc="norm of the pre-norm residual wrapper and of the final norm"),
    Param("dropout", "float", 0.0, min=0.0, max=0.9, doc="dropout on block outputs"),
    Param("init_std", "float", 0.02, min=0.0, max=1.0,
          doc="std of the normal init of linear and embedding weights"),
    Param("positions_init_std", "float", None, min=0.0, max=10.0,
          doc="std of the normal init of the position table (positions = learned; default "
              "init_std). The study's released Standard Hybrid keeps PyTorch's N(0, 1)"),
)

# Options read by blocks; declared once, shared by every block kind that names them.
BLOCK_OPTIONS: dict[str, Param] = {p.name: p for p in (
    Param("heads", "int", 8, min=1, max=1024, doc="attention heads (must divide width)"),
    Param("bias", "bool", True, doc="biases in attention and MLP projections"),
    Param("mlp_ratio", "int", 4, min=1, max=64, doc="MLP hidden width = mlp_ratio * width"),
    Param("d_state", "int", 16, min=1, max=1024, doc="state size N per channel (SSM blocks; even for S and SM: complex pairs)"),
    Param("d_conv", "int", 4, min=1, max=64, doc="causal depthwise conv width (Mamba blocks)"),
    Param("expand", "int", 2, min=1, max=16, doc="inner width = expand * width (Mamba blocks)"),
    Param("dt_rank", "int", None, min=1, max=65536,
          doc="rank of the dt projection (default ceil(width / 16))"),
    Param("dt_min", "float", 0.001, min=1e-6, max=1.0, doc="smallest initial dt"),
    Param("dt_max", "float", 0.1, min=1e-6, max=10.0, doc="largest initial dt"),
    Param("headdim", "int", 64, min=1, max=1024, doc="channels per head (Mamba-2)"),
)}


@dataclass(frozen=True)
class BlockKind:
    token: str
    name: str
    options: tuple[str, ...]   # keys of BLOCK_OPTIONS this block reads
    module: str                # "icl.blocks.attention:CausalSelfAttention", imported lazily
    doc: str
    residual: bool = True      # wrapped as x + block(norm(x))
    # Whether models of these blocks train faster packed (torch.func.vmap over K runs) than
    # one run at a time on a GPU; the pipeline's pack=auto packs only such models. Measured on
    # an H100 (benchmarks/results/train_step*.md): S4 and S4-Mamba packs of 2 were 2-24 %
    # faster per run at reduced scale; attention inside vmap needs the plain-ops kernel (packs
    # 7-65 % slower). Mamba packs are one vmapped model (the Triton scan's batching rule runs
    # a pack as one launch) but barely faster per run: -2 to +2 % for packs of 2 and 10-12 %
    # for 4 at reduced scale; at paper size 2 % slower for 4, 5 % faster for 16. The scan's
    # arithmetic, not its launches, sets the time. The MLP was not measured apart, so it is
    # not claimed.
    packs_well: bool = False


BLOCKS: dict[str, BlockKind] = {b.token: b for b in (
    BlockKind("A", "attention", ("heads", "bias"), "icl.blocks.attention:CausalSelfAttention",
              "causal multi-head self-attention (scaled_dot_product_attention)"),
    BlockKind("F", "mlp", ("mlp_ratio", "bias"), "icl.blocks.mlp:MLP",
              "MLP: Linear(D, r*D), GELU, Linear(r*D, D)"),
    BlockKind("M", "mamba", ("d_state", "d_conv", "expand", "dt_rank", "dt_min", "dt_max"),
              "icl.blocks.mamba:MambaMixer", "Mamba-1 mixer with a selective scan"),
    BlockKind("S", "s4", ("d_state",), "icl.blocks.s4d:S4Block",
              "S4 block: S4D convolution, GELU, 1x1 conv to 2D, GLU", packs_well=True),
    BlockKind("SM", "s4_mamba", ("d_state", "d_conv", "expand"), "icl.blocks.s4_mamba:S4MambaMixer",
              "Mamba mixer whose selective scan is replaced by an S4D convolution", packs_well=True),
    BlockKind("M2", "mamba2", ("d_state", "d_conv", "expand", "headdim", "dt_min", "dt_max"),
              "icl.blocks.mamba2:Mamba2Mixer", "Mamba-2 mixer (SSD, scalar A per head)"),
)}

def options_used(tokens: set[str]) -> set[str]:
    """The block options that some block among `tokens` reads."""
    return {o for t in tokens for o in BLOCKS[t].options}


def users_of(option: str) -> list[str]:
    """Tokens whose block reads `option` (for 'has no effect' hints)."""
    return [t for t, b in BLOCKS.items() if option in b.options]
