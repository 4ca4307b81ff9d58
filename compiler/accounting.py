"""Analytic accounting of a model: exact parameter count, recurrent state and FLOPs per token.

Torch-free (so `icl check` stays fast): everything is computed from the layer string, the
model options and the task's Layout. tests/test_accounting.py asserts that `params` equals the
numel of the built module for every token at several sizes.

Definitions
- params: numel of the built ICLModel (read-in, positions, layers with their norms, final norm,
  read-out).
- state_size: recurrent state per sequence that a model carries from one token to the next, as
  zoology counts it: attention 2 * D * T (keys and values of the longest prompt, T tokens), Mamba
  and S4-Mamba E * N, S4 D * N, Mamba-2 E * N (heads * headdim * N), MLP 0. Short-conv buffers
  are not counted (zoology does not either).
- flops_per_token: forward FLOPs per token at the longest prompt, 2 per multiply-add of every
  matmul and convolution, plus the scans (6 per state element: discretise, update, read out) and
  the FFT convolutions (three real FFTs of size 2T, 5/2 n log2 n each, + the spectral product;
  the S4D kernel itself, built once per forward for the whole batch, is not counted).
  Norms, activations and softmax are not counted. Attention's score and value products count
  the causal average of (T + 1) / 2 keys.
"""
from __future__ import annotations

import math

from icl.blocks.catalog import BLOCK_OPTIONS, BLOCKS, MODEL_OPTIONS, block_kind

# Widths `solve_width` searches.
MAX_WIDTH = 65536
BUDGET_TOLERANCE = 0.02

_MODEL_DEFAULTS = {p.name: p.default for p in MODEL_OPTIONS}


def tokens_of(model_config: dict) -> list[str]:
    """The layer tokens of a resolved model (its "layers" is already expanded by the dsl:
    tokens separated by single spaces)."""
    return str(model_config.get("layers", "")).split()


def model_option(model_config: dict, name: str):
    value = model_config.get(name)
    return _MODEL_DEFAULTS.get(name) if value is None else value


def block_options(model_config: dict, token: str, width: int | None = None) -> dict:
    """The options block `token` reads, defaults filled in and dt_rank resolved (ceil(D / 16))."""
    options = {}
    for name in block_kind(token).options:
        value = model_config.get(name)
        options[name] = BLOCK_OPTIONS[name].default if value is None else value
    if "dt_rank" in options and options["dt_rank"] is None:
        width = model_config.get("width") if width is None else width
        options["dt_rank"] = math.ceil(width / 16)
    return options


def norm_params(norm: str, width: int) -> int:
    return 2 * width if norm == "layernorm" else width


def io_params(model_config: dict, layout, width: int) -> dict[str, int]:
    """Parameters outside the layers: read-in, positions, final norm, read-out."""
    read_in = layout.vocab * width if layout.vocab > 0 else layout.token_dim * width + width
    positions = layout.tokens * width if model_option(model_config, "positions") == "learned" else 0
    return {"read_in": read_in, "positions": positions,
            "final_norm": norm_params(model_option(model_config, "norm"), width),
            "read_out": width * layout.out_dim + layout.out_dim}


def account(model_config: dict, layout, width: int | None = None) -> dict[str, int]:
    """{"params", "state_size", "flops_per_token"} of the model `model_config` for `layout`."""
    width = model_config["width"] if width is None else width
    norm = model_option(model_config, "norm")
    params = sum(io_params(model_config, layout, width).values())
    state = 0
    read_in_flops = 0 if layout.vocab > 0 else 2 * layout.token_dim * width
    flops = read_in_flops + 2 * width * layout.out_dim
    for token in tokens_of(model_config):
        kind, o = block_kind(token), block_options(model_config, token, width)
        params += norm_params(norm, width) + kind.params(width, o)
        state += kind.state_size(width, o, layout.tokens)
        flops += kind.flops(width, o, layout.tokens)
    return {"params": params, "state_size": state, "flops_per_token": flops}


# check_model blames one key per error; these other keys take part in the same error, so a
# spec error points at whichever of them the model itself writes (a child model that sets
# positions = none under a parent's positions_init_std is wrong on its own line).
RELATED_KEYS = {"positions_init_std": ("positions",), "dt_min": ("dt_max",),
                "heads": ("width",), "headdim": ("expand", "width")}


def check_model(model_config: dict, layout) -> list[tuple[str, str]]:
    """Semantic errors of a resolved model for a task, as (option to blame, one-line message).
    The width may be absent (a params budget); width-dependent checks are then skipped."""
    errors: list[tuple[str, str]] = []
    tokens = tokens_of(model_config)
    if not tokens:
        return [("layers", "the layer string has no layers")]
    unknown = sorted({t for t in tokens if t not in BLOCKS})
    if unknown:
        return [("layers", f"unknown layer token(s) {', '.join(unknown)} (known: {' '.join(BLOCKS)})")]
    used = {o for t in set(tokens) for o in BLOCKS[t].options}

    width = model_config.get("width")
    if width is not None and width < 1:
        errors.append(("width", f"width must be a positive integer, got {width}"))
        width = None
    for name in sorted(used):
        value = model_config.get(name)
        if BLOCK_OPTIONS[name].type == "int" and value is not None and value < 1:
            errors.append((name, f"{name} must be a positive integer, got {value}"))
    if errors:
        return errors

    o = {name: (BLOCK_OPTIONS[name].default if model_config.get(name) is None else model_config[name])
         for name in used}
    for token in dict.fromkeys(tokens):  # each kind once, in layer-string order
        kind = BLOCKS[token]
        for error in kind.checks(width, {name: o[name] for name in kind.options}):
            if error not in errors:  # options shared by several kinds (d_conv) are told once
                errors.append(error)
    if model_config.get("positions_init_std") is not None and model_option(model_config, "positions") != "learned":
        errors.append(("positions_init_std", "positions_init_std sets the init of the position table, "
                                             "but this model has none (positions = none)"))
    errors += _layout_errors(model_config, layout)
    return errors


def _layout_errors(model_config: dict, layout) -> list[tuple[str, str]]:
    """Does the task's read-in / read-out fit this model?"""
    errors = []
    if layout.tokens < 1:
        errors.append(("task", f"the task's prompts have {layout.tokens} tokens"))
    if layout.out_dim < 1:
        errors.append(("task", f"the task's read-out has {layout.out_dim} outputs"))
    if layout.vocab <= 0 and layout.token_dim < 1:
        errors.append(("task", f"the task's tokens have {layout.token_dim} dims"))
    if layout.vocab > 0 and layout.out_dim != layout.vocab:
        errors.append(("task", f"a token task reads out logits over its vocab ({layout.vocab}), "
                               f"not {layout.out_dim} outputs"))
    return errors


def width_step(model_config: dict) -> int:
    """Widths must be multiples of this: the lcm of the blocks' steps (heads for attention)."""
    step = 1
    for token in set(tokens_of(model_config)):
        kind = block_kind(token)
        options = {name: model_option_block(model_config, name) for name in kind.options}
        step = math.lcm(step, max(1, kind.width_step(options)))  # options < 1: check_model's to report
    return step


def model_option_block(model_config: dict, name: str):
    value = model_config.get(name)
    return BLOCK_OPTIONS[name].default if value is None else value


def _nearest_widths(model_config: dict, layout, budget: int) -> tuple[int | None, int | None]:
    """The valid widths just below and just above the budget (None past the ends)."""
    step = width_step(model_config)
    count = lambda k: account(model_config, layout, width=k * step)["params"]
    lo, hi = 1, MAX_WIDTH // step
    if hi < 1:
        return None, None
    if count(hi) < budget:
        return hi * step, None
    if count(lo) >= budget:
        return None, lo * step
    while hi - lo > 1:  # invariant: count(lo) < budget <= count(hi); count grows with width
        mid = (lo + hi) // 2
        if count(mid) < budget:
            lo = mid
        else:
            hi = mid
    return lo * step, hi * step


def solve_width(model_config: dict, layout, budget: int) -> int | None:
    """The width whose parameter count is nearest to `budget`, if within 2%; else None.
    dt_rank left unset (None) follows the width (ceil(width / 16))."""
    candidates = [w for w in _nearest_widths(model_config, layout, budget) if w is not None]
    if not candidates:
        return None
    best = min(candidates, key=lambda w: abs(account(model_config, layout, width=w)["params"] - budget))
    if abs(account(model_config, layout, width=best)["params"] - budget) <= BUDGET_TOLERANCE * budget:
        return best
    return None


def budget_error(model_config: dict, layout, budget: int) -> str:
    """Why `solve_width` found no width: a one-line message naming the nearest widths."""
    below, above = _nearest_widths(model_config, layout, budget)
    step = width_step(model_config)
    parts = []
    for w in (below, above):
        if w is not None:
            parts.append(f"width {w} gives {account(model_config, layout, width=w)['params']:,}")
    if below is None and above is not None and above == step:
        return (f"params={budget:,} is below the smallest model of this layer string "
                f"({'; '.join(parts)})")
    if above is None:
        return f"params={budget:,} is above the largest width searched ({'; '.join(parts)})"
    unit = f" (widths are multiples of {step})" if step > 1 else ""
    return f"no width gives params={budget:,} within 2%: {'; '.join(parts)}{unit}"
