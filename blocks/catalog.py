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

import importlib.util
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
    Param("init", "choice", "released", choices=("released", "gpt2", "pytorch"),
          doc="weight init: released = the study's released code (read-in and read-out keep "
              "PyTorch's default Linear init; a model of only A and F blocks GPT-2's init; in any "
              "other model the A and F blocks keep PyTorch's default weights with zero biases and "
              "the position table PyTorch's N(0, 1)); gpt2 = GPT-2's N(0, init_std) for all of "
              "these; pytorch = a textbook PyTorch GPT: every Linear of the read-in, read-out, A "
              "and F blocks PyTorch's default (biases too), a token table nn.Embedding's N(0, 1), "
              "the position table N(0, init_std). SSM blocks keep their released inits always"),
    Param("init_std", "float", 0.02, min=0.0, max=1.0,
          doc="std of GPT-2's normal init: read-in and read-out (init = gpt2), A and F blocks "
              "(GPT-2 init), the GLA, DN, GDN, R7 and HY blocks' projections, token embeddings"),
    Param("positions_init_std", "float", None, min=0.0, max=10.0,
          doc="std of the normal init of the position table (positions = learned; default "
              "init_std, or 1.0 where init = released keeps PyTorch's default)"),
)

# The released code builds a model of only these blocks as Hugging Face's GPT2Model (GPT-2's
# init: weights N(0, 0.02), residual outputs N(0, 0.02 / sqrt(2 n_layer)), positions N(0, 0.02));
# every other model in mamba-ssm's MixerModel, which keeps PyTorch's default Linear weights and
# zeroes every Linear bias (compiler/graph.py, `init = released`).
GPT2_BACKBONE_BLOCKS = ("A", "F")

# Options read by blocks; declared once, shared by every block kind that names them.
BLOCK_OPTIONS: dict[str, Param] = {p.name: p for p in (
    Param("heads", "int", 8, min=1, max=1024,
          doc="heads of attention and of the linear-attention mixers (must divide width)"),
    Param("bias", "bool", True, doc="biases in attention and MLP projections"),
    Param("mlp_ratio", "int", 4, min=1, max=64, doc="MLP hidden width = mlp_ratio * width"),
    Param("d_state", "int", 16, min=1, max=1024, doc="state size N per channel (SSM blocks; even for S and SM: complex pairs)"),
    Param("d_conv", "int", 4, min=1, max=64,
          doc="causal depthwise conv width (Mamba, DeltaNet and Hyena blocks)"),
    Param("expand", "int", 2, min=1, max=16, doc="inner width = expand * width (Mamba blocks)"),
    Param("dt_rank", "int", None, min=1, max=65536,
          doc="rank of the dt projection (default ceil(width / 16))"),
    Param("dt_min", "float", 0.001, min=1e-6, max=1.0, doc="smallest initial dt"),
    Param("dt_max", "float", 0.1, min=1e-6, max=10.0, doc="largest initial dt"),
    Param("headdim", "int", 64, min=1, max=1024, doc="channels per head (Mamba-2)"),
    Param("mixer_backend", "choice", "auto", choices=("auto", "fla", "reference"),
          doc="implementation of the linear-attention mixers (GLA DN GDN R7): fla = "
              "flash-linear-attention's Triton kernels (CUDA; pip install 'icl-compiler[fla]'), "
              "reference = the plain-PyTorch recurrence on any device, auto = fla on CUDA and the "
              "reference elsewhere (never a silent fallback: fla missing on CUDA is an error)"),
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
    # engine (benchmarks/results/train_step_packed.md, H100): packs of 16 of every study
    # architecture (A, F, M, S, SM) ran 1.2-2.7x faster per run than one run, at the reduced and
    # the paper shapes (1.2-2.3x on an H200 earlier). A block not measured packed (M2, GLA, DN, GDN, R7, HY so far) says False.
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


# ---------------------------------------------------------------- linear-attention mixers and Hyena
# Sizes fixed by the papers' layers (not options); the block files import them from here.
GLA_GATE_RANK = 16          # GLA's low-rank forget gate (W_2 W_1 x)
R7_LORA_RANK = 32           # RWKV-7's low-rank decay, in-context rate and output gate
HYENA_FREQUENCIES = 4       # sin and cos at 4 frequencies: the filter FFN's 8 inputs
HYENA_FILTER_HIDDEN = 64    # the filter FFN's hidden width (the released code's filter_order)
FLA_INSTALL = "pip install 'icl-compiler[fla]'"


def fla_errors(D, o) -> Errors:
    """mixer_backend = fla without flash-linear-attention installed (find_spec: nothing imported).
    `auto` is not checked here: it needs fla only on CUDA, which a check cannot know."""
    if o["mixer_backend"] == "fla" and importlib.util.find_spec("fla") is None:
        return [("mixer_backend", "mixer_backend = fla needs flash-linear-attention, which is not "
                                  f"installed: {FLA_INSTALL}")]
    return []


def mixer_conv_errors(D, o) -> Errors:
    if o["d_conv"] > MAX_D_CONV:
        return [("d_conv", f"d_conv={o['d_conv']} is wider than {MAX_D_CONV}: the causal conv of "
                           "DeltaNet and Hyena blocks is a short conv (their papers use 3 or 4)")]
    return []


def head_dim(D, o) -> int:
    return D // o["heads"]


def gla_params(D, o):
    # q k v r 4D^2, gate W_1 16D and W_2 16D + bias D, head norm d, out_proj D^2
    return 5 * D * D + 2 * GLA_GATE_RANK * D + D + head_dim(D, o)


def deltanet_params(D, o):
    # q k v 3D^2, conv 3D(k+1), beta DH, head norm d, out_proj D^2
    return 4 * D * D + 3 * D * (o["d_conv"] + 1) + D * o["heads"] + head_dim(D, o)


def gated_deltanet_params(D, o):
    # q k v r 4D^2, conv 3D(k+1), beta and decay 2DH, A_log and dt_bias 2H, head norm d, out_proj D^2
    return (5 * D * D + 3 * D * (o["d_conv"] + 1) + 2 * D * o["heads"] + 2 * o["heads"]
            + head_dim(D, o))


def rwkv7_params(D, o):
    # r k v 3D^2, out D^2; 3 low-rank pairs 6RD; mu 6D, w0 a0 2D, k_k k_a r_k 3D, group norm 2D
    return 4 * D * D + 6 * R7_LORA_RANK * D + 13 * D


def hyena_params(D, o):
    F, Hf = 2 * HYENA_FREQUENCIES, HYENA_FILTER_HIDDEN
    # in_proj 3D^2 + 3D, short conv 3D(k+1), filter FFN F*Hf + Hf, Hf (sin), Hf^2 + Hf, Hf (sin),
    # Hf*D, filter bias D, out_proj D^2 + D
    return (3 * D * D + 3 * D + 3 * D * (o["d_conv"] + 1) + (F * Hf + Hf) + Hf + (Hf * Hf + Hf) + Hf
            + Hf * D + D + D * D + D)


def linear_attention_state(D, o, T):
    """H heads of a d x d state: D * d."""
    return D * head_dim(D, o)


# FLOPs: the projections (2 per weight), the short convs (2 per tap), and the recurrent form's
# state work, 2 per multiply-add of each d x d state entry: GLA decay + update + read-out (6),
# DeltaNet recall + update + read-out (6), Gated DeltaNet + the decay (8), RWKV-7 decay + the
# removal's a^T S and its outer product + update + read-out (10). Hyena: its FFT long conv as S's,
# and the filter FFN once per lag (T lags for T tokens).
def gla_flops(D, o, T):
    return 2 * (5 * D * D + 2 * GLA_GATE_RANK * D) + 6 * D * head_dim(D, o)


def deltanet_flops(D, o, T):
    return 2 * (4 * D * D + 3 * D * o["d_conv"] + D * o["heads"]) + 6 * D * head_dim(D, o)


def gated_deltanet_flops(D, o, T):
    return 2 * (5 * D * D + 3 * D * o["d_conv"] + 2 * D * o["heads"]) + 8 * D * head_dim(D, o)


def rwkv7_flops(D, o, T):
    return 2 * (4 * D * D + 6 * R7_LORA_RANK * D) + 10 * D * head_dim(D, o)


def hyena_flops(D, o, T):
    F, Hf = 2 * HYENA_FREQUENCIES, HYENA_FILTER_HIDDEN
    return (2 * (4 * D * D + 3 * D * o["d_conv"]) + fft_conv_flops(D, T)
            + 2 * (F * Hf + Hf * Hf + Hf * D))


LINEAR_ATTENTION_INIT = ("GPT-2 style: projections N(0, init_std), the output projection N(0, init_std / "
                         "sqrt(n_layers)), head norms 1")


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
    # Linear-attention mixers and Hyena (issue 26); not measured packed (packs_well False).
    BlockKind("GLA", "gla", ("heads", "mixer_backend"), "icl.blocks.gla:GatedLinearAttention",
              "gated linear attention (Yang et al. 2024): per-channel data-dependent decay",
              params=gla_params, state_size=linear_attention_state, flops=gla_flops,
              init=LINEAR_ATTENTION_INIT + "; the gate's low-rank factors N(0, init_std), its bias 0",
              reads_init_std=True, checks=all_of(heads_errors, fla_errors),
              width_step=lambda o: max(1, o["heads"])),
    BlockKind("DN", "deltanet", ("heads", "d_conv", "mixer_backend"), "icl.blocks.deltanet:DeltaNet",
              "DeltaNet (Schlag et al. 2021; Yang et al. 2024): linear attention with the delta rule",
              params=deltanet_params, state_size=linear_attention_state, flops=deltanet_flops,
              init=LINEAR_ATTENTION_INIT + "; beta's projection N(0, init_std), the short conv PyTorch's default",
              reads_init_std=True, checks=all_of(heads_errors, mixer_conv_errors, fla_errors),
              width_step=lambda o: max(1, o["heads"])),
    BlockKind("GDN", "gated_deltanet", ("heads", "d_conv", "mixer_backend"),
              "icl.blocks.gated_deltanet:GatedDeltaNet",
              "Gated DeltaNet (Yang et al. 2025): the delta rule with a Mamba-2 decay per head",
              params=gated_deltanet_params, state_size=linear_attention_state, flops=gated_deltanet_flops,
              init=LINEAR_ATTENTION_INIT + "; A_log = log U(1, 16), softplus(dt_bias) log-uniform in "
                   "[0.001, 0.1] (Mamba-2's), the short conv PyTorch's default",
              reads_init_std=True, checks=all_of(heads_errors, mixer_conv_errors, fla_errors),
              width_step=lambda o: max(1, o["heads"])),
    BlockKind("R7", "rwkv7", ("heads", "mixer_backend"), "icl.blocks.rwkv7:RWKV7TimeMix",
              "RWKV-7 time mixing (Peng et al. 2025): generalised delta rule, per-channel decay",
              params=rwkv7_params, state_size=linear_attention_state, flops=rwkv7_flops,
              init=("r, k, v N(0, init_std), the output projection N(0, init_std / sqrt(n_layers)); "
                    "token-shift mixes, decay and low-rank factors as RWKV-7's first layer "
                    "(blocks/rwkv7.py)"),
              reads_init_std=True, checks=all_of(heads_errors, fla_errors),
              width_step=lambda o: max(1, o["heads"])),
    BlockKind("HY", "hyena", ("d_conv",), "icl.blocks.hyena:HyenaOperator",
              "Hyena operator of order 2 (Poli et al. 2023): gated implicit long convolution",
              params=hyena_params, state_size=lambda D, o, T: D * T,  # the long conv's input history
              flops=hyena_flops,
              init=("in/out projections N(0, init_std) and N(0, init_std / sqrt(n_layers)), biases 0; "
                    "short conv and filter FFN PyTorch's default, filter bias N(0, 1) (released code's)"),
              reads_init_std=True, checks=mixer_conv_errors),
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
