"""The catalog of layer tokens: which block each token builds and which model options it reads.

This is the semantics registry for models. Every option a model spec may set is
declared once here (name, type, default, range); each block kind names the options
it reads. The checker (`compiler/resolve.py`) validates specs against it, and the
module builder (`compiler/build.py`) imports the block class named by `module`
only when a model is actually built, so `icl check` never imports torch.

Each entry is the whole description of its block: options, parameter / state / FLOP
formulas, init and checks. `compiler/accounting.py` sums the formulas over a layer
string and reads the checks; nothing else knows a token by name, so a new block is
one file in blocks/ and one entry here (docs/extending.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from icl.schema import Param

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
          doc="std of the normal init of the read-in, read-out and the A and F blocks' weights "
              "(the SSM blocks keep their released inits: catalog `init`)"),
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


# Causal conv widths accepted: Mamba uses 4; fused causal-conv kernels go to 4, and a conv
# much wider than that stops being a "short" convolution (use attention or an SSM).
MAX_D_CONV = 16

Errors = list[tuple[str, str]]  # (option to blame, one-line message)


@dataclass(frozen=True)
class BlockKind:
    """Everything about one layer token. The formulas are plain Python (no torch, so `icl check`
    stays fast); `o` is the block's options with defaults filled in (accounting.block_options),
    D the model width, T the tokens of the longest prompt. tests/test_accounting.py checks
    `params` against the built module's numel and `state_size` against its final state."""
    token: str
    name: str
    options: tuple[str, ...]   # keys of BLOCK_OPTIONS this block reads
    module: str                # "icl.blocks.attention:CausalSelfAttention", imported lazily
    doc: str
    params: Callable[[int, dict], int]            # (D, o): parameters, without the pre-norm
    state_size: Callable[[int, dict, int], int]   # (D, o, T): recurrent state per sequence
    flops: Callable[[int, dict, int], int]        # (D, o, T): forward FLOPs per token
    # The weights' init. reads_init_std: the block's constructor takes init_std (GPT-2's
    # N(0, init_std)); the others keep the released code's init, which has no such knob.
    init: str
    reads_init_std: bool = False
    # (D or None while a params budget is unsolved, o): errors of this block's options.
    checks: Callable[[int | None, dict], Errors] = lambda D, o: []
    # (o): widths must be multiples of this (heads for attention).
    width_step: Callable[[dict], int] = lambda o: 1
    # Whether models of these blocks train faster packed than one run at a time on a GPU; the
    # pipeline's pack=auto packs only models whose every block does. Measured with the stacked
    # engine on an H200 (benchmarks/results/train_step_packed.md): packs of 16 of every study
    # architecture (A, F, M, S, SM) ran 1.5-4x faster per run than one run, at the reduced and
    # the paper shapes. A block not measured packed (M2 so far) says False.
    packs_well: bool = False


# ---------------------------------------------------------------- shared formulas and checks
def s4d_params(channels: int, d_state: int) -> int:
    """log_dt H, C H*N (N/2 complex), log_A_real and A_imag H*N/2 each, D H."""
    return 2 * channels + 2 * channels * (d_state // 2) * 2


def fft_conv_flops(channels: int, tokens: int) -> int:
    """Per token: three real FFTs of size 2T (5/2 n log2 n each, over T tokens), the complex
    product (6 per bin) and the D skip (2)."""
    n = 2 * tokens
    return round(channels * (3 * 2.5 * n * math.log2(n) / tokens + 6 + 2))


def short_conv_errors(D, o) -> Errors:
    if o["d_conv"] > MAX_D_CONV:
        return [("d_conv", f"d_conv={o['d_conv']} is wider than {MAX_D_CONV}: the causal conv of "
                           "Mamba blocks is a short conv (Mamba uses 4)")]
    return []


def dt_range_errors(D, o) -> Errors:
    if o["dt_min"] > o["dt_max"]:
        return [("dt_min", f"dt_min={o['dt_min']} is larger than dt_max={o['dt_max']}")]
    return []


def s4d_state_errors(D, o) -> Errors:
    if o["d_state"] % 2:
        return [("d_state", f"d_state={o['d_state']} must be even for S4D blocks "
                            "(S / SM): its complex modes come in conjugate pairs")]
    return []


def heads_errors(D, o) -> Errors:
    if D is not None and D % o["heads"]:
        up = -(-D // o["heads"]) * o["heads"]
        return [("heads", f"heads={o['heads']} does not divide width={D} "
                          f"(try width {up} or heads dividing {D})")]
    return []


def mamba2_head_errors(D, o) -> Errors:
    if D is not None and (o["expand"] * D) % o["headdim"]:
        return [("headdim", f"headdim={o['headdim']} does not divide expand*width="
                            f"{o['expand'] * D} (Mamba-2 heads)")]
    return []


def all_of(*checks) -> Callable[[int | None, dict], Errors]:
    return lambda D, o: [e for check in checks for e in check(D, o)]


# ---------------------------------------------------------------- per-block formulas
def mamba_params(D, o):
    E, N, R = o["expand"] * D, o["d_state"], o["dt_rank"]
    # in_proj 2DE, conv E*(k+1), x_proj E(R+2N), dt_proj RE+E, A_log EN, D E, out_proj ED
    return 3 * D * E + E * (o["d_conv"] + 1) + E * (R + 2 * N) + R * E + E + E * N + E


def mamba_flops(D, o, T):
    E, N, R = o["expand"] * D, o["d_state"], o["dt_rank"]
    return 2 * (2 * D * E + E * o["d_conv"] + E * (R + 2 * N) + R * E + E * D) + 6 * E * N


def mamba2_params(D, o):
    E, N = o["expand"] * D, o["d_state"]
    H = E // o["headdim"]
    # in_proj D(2E+2N+H), conv (E+2N)(k+1), dt_bias/A_log/D 3H, gated norm E, out_proj ED
    return D * (2 * E + 2 * N + H) + (E + 2 * N) * (o["d_conv"] + 1) + 3 * H + E + E * D


def mamba2_flops(D, o, T):
    E, N = o["expand"] * D, o["d_state"]
    H = E // o["headdim"]
    return 2 * (D * (2 * E + 2 * N + H) + (E + 2 * N) * o["d_conv"] + E * D) + 6 * E * N


def mamba2_width_step(o):
    headdim, expand = max(1, o["headdim"]), max(1, o["expand"])
    return headdim // math.gcd(headdim, expand)


GPT2_INIT = "GPT-2: weights N(0, init_std), the output projection N(0, init_std / sqrt(n_layers)), biases 0"
MAMBA_INIT = ("mamba-ssm's: linears PyTorch's default, out_proj / sqrt(n_layers), dt log-uniform "
              "in [dt_min, dt_max]; init_std does not apply")
S4D_INIT = "S4D-Lin (released S4 code); the 1x1 conv PyTorch's default; init_std does not apply"

BLOCKS: dict[str, BlockKind] = {b.token: b for b in (
    BlockKind("A", "attention", ("heads", "bias"), "icl.blocks.attention:CausalSelfAttention",
              "causal multi-head self-attention (scaled_dot_product_attention)",
              params=lambda D, o: 4 * D * D + (4 * D if o["bias"] else 0),
              state_size=lambda D, o, T: 2 * D * T,  # keys and values of the whole prompt
              # the score and value products count the causal average of (T + 1) / 2 keys
              flops=lambda D, o, T: 2 * 4 * D * D + 2 * D * (T + 1),
              init=GPT2_INIT, reads_init_std=True, checks=heads_errors,
              width_step=lambda o: max(1, o["heads"]), packs_well=True),
    BlockKind("F", "mlp", ("mlp_ratio", "bias"), "icl.blocks.mlp:MLP",
              "MLP: Linear(D, r*D), GELU, Linear(r*D, D)",
              params=lambda D, o: 2 * D * o["mlp_ratio"] * D + ((o["mlp_ratio"] + 1) * D if o["bias"] else 0),
              state_size=lambda D, o, T: 0,
              flops=lambda D, o, T: 2 * 2 * o["mlp_ratio"] * D * D,
              init=GPT2_INIT, reads_init_std=True, packs_well=True),
    BlockKind("M", "mamba", ("d_state", "d_conv", "expand", "dt_rank", "dt_min", "dt_max"),
              "icl.blocks.mamba:MambaMixer", "Mamba-1 mixer with a selective scan",
              params=mamba_params, state_size=lambda D, o, T: o["expand"] * D * o["d_state"],
              flops=mamba_flops, init=MAMBA_INIT, checks=all_of(short_conv_errors, dt_range_errors),
              packs_well=True),
    BlockKind("S", "s4", ("d_state",), "icl.blocks.s4d:S4Block",
              "S4 block: S4D convolution, GELU, 1x1 conv to 2D, GLU",
              params=lambda D, o: s4d_params(D, o["d_state"]) + 2 * D * D + 2 * D,
              state_size=lambda D, o, T: D * o["d_state"],
              flops=lambda D, o, T: fft_conv_flops(D, T) + 2 * D * 2 * D,
              init=S4D_INIT, checks=s4d_state_errors, packs_well=True),
    BlockKind("SM", "s4_mamba", ("d_state", "d_conv", "expand"), "icl.blocks.s4_mamba:S4MambaMixer",
              "Mamba mixer whose selective scan is replaced by an S4D convolution",
              params=lambda D, o: (3 * D * o["expand"] * D + o["expand"] * D * (o["d_conv"] + 1)
                                   + s4d_params(o["expand"] * D, o["d_state"])),
              state_size=lambda D, o, T: o["expand"] * D * o["d_state"],
              flops=lambda D, o, T: (2 * (2 * D * o["expand"] * D + o["expand"] * D * o["d_conv"]
                                          + o["expand"] * D * D)
                                     + fft_conv_flops(o["expand"] * D, T) + o["expand"] * D),
              init=("in_proj and conv PyTorch's default, out_proj / sqrt(n_layers), the S4D part as S's; "
                    "init_std does not apply"), checks=all_of(short_conv_errors, s4d_state_errors),
              packs_well=True),
    BlockKind("M2", "mamba2", ("d_state", "d_conv", "expand", "headdim", "dt_min", "dt_max"),
              "icl.blocks.mamba2:Mamba2Mixer", "Mamba-2 mixer (SSD, scalar A per head)",
              params=mamba2_params, state_size=lambda D, o, T: o["expand"] * D * o["d_state"],
              flops=mamba2_flops, init=MAMBA_INIT.replace("dt log-uniform", "A_log = log U(1, 16), dt log-uniform"),
              checks=all_of(short_conv_errors, dt_range_errors, mamba2_head_errors),
              width_step=mamba2_width_step),
)}


def block_kind(token: str) -> BlockKind:
    """The catalog entry of `token`; an unknown token is an error, never a default."""
    if token not in BLOCKS:
        raise KeyError(f"unknown layer token {token!r} (known: {' '.join(BLOCKS)})")
    return BLOCKS[token]


def options_used(tokens: set[str]) -> set[str]:
    """The block options that some block among `tokens` reads."""
    return {o for t in tokens for o in BLOCKS[t].options}


def users_of(option: str) -> list[str]:
    """Tokens whose block reads `option` (for 'has no effect' hints)."""
    return [t for t, b in BLOCKS.items() if option in b.options]
