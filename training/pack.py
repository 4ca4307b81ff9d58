"""Packing: several runs that differ only in seed, learning rate or clipping train as one batched model.

The study's models are small: at batch 64 a GPU spends most of a step launching kernels.
Runs of the same model and task (a sweep over seeds and learning rates) are therefore
trained side by side in one process: their weights are stacked along a new leading
axis and one `torch.func.vmap`-ed forward/backward computes every run's step with
kernels K times larger. Each run keeps its own model, its own optimizer (its learning
rate, its weight decay), its own gradient clipping and its own prompts and dropout seeds,
so a packed run follows the curve of the same run trained alone (equal up to float
rounding of the batched matrix products) and leaves exactly the files a lone run
leaves. A run that diverges stops alone; the others go on.

- `pack_key`, `check_pack`, `group_runs`  which runs may share a pack (grouping.py, torch-free)
- `train_pack(runs, out_dirs, ...)` train a pack; each run's status.json, in order
- `PackForward`            the stacked (vmap) or one-by-one forward of a pack's models

Modes (status.json's "pack": {"runs": [...], "mode": ...}): "vmap" (the batched model),
"loop" (each model in turn: used with dropout, whose masks must follow each run's own
seed, or when a model cannot be vmapped, e.g. a custom CUDA kernel without a batching
rule), "single" (a pack of one). ICL_PACK_MODE=loop forces "loop".
"""
from __future__ import annotations

import copy
import os
import sys
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from icl.training import precision
from icl.training.errors import RunError
from icl.training.grouping import check_pack

MODE_ENV = "ICL_PACK_MODE"
# Attention inside vmap: the memory-efficient CUDA kernel's backward rejects the strides vmap
# gives its saved log-sum-exp (measured on an H100, torch 2.11); the plain-ops kernel is
# correct there and cheap at the study's prompt lengths (a few hundred tokens).
VMAP_ATTENTION = [SDPBackend.MATH]

def train_pack(runs: list[dict], out_dirs: list[Path], *, max_steps: int | None = None,
               device: str | None = None, progress: bool = True,
               model_factory: Callable | None = None) -> list[dict]:
    """Train `runs` together, run i into out_dirs[i] (resuming each from its checkpoint)."""
    from icl.training.train import train_members

    check_pack(runs)
    if len(out_dirs) != len(runs):
        raise RunError(f"{len(runs)} runs but {len(out_dirs)} output folders")
    return train_members(runs, [Path(d) for d in out_dirs], max_steps=max_steps, device=device,
                         progress=progress, model_factory=model_factory)


class PackForward:
    """Outputs of K models on their K input batches: one vmapped call over stacked weights, or a loop."""

    def __init__(self, models: list[torch.nn.Module], dropout: float, precision_name: str = "fp32",
                 device: torch.device | None = None):
        # The run's precision (icl.training.precision): products and autocast; outputs come back fp32.
        self.precision, self.device = precision_name, device or torch.device("cpu")
        if len(models) == 1:
            self.mode = "single"
        elif dropout > 0 or os.environ.get(MODE_ENV, "") == "loop":
            self.mode = "loop"  # dropout masks must come from each run's own seed
        else:
            self.mode = "vmap"
        # A weightless copy of the architecture: functional_call fills in each run's weights.
        self.base = copy.deepcopy(models[0]).to("meta") if self.mode == "vmap" else None

    def __call__(self, models: list[torch.nn.Module], inputs: list[torch.Tensor],
                 dropout_seeds: list[int] | None) -> list[torch.Tensor]:
        with precision.autocast(self.precision, self.device):
            return [out.float() for out in self._outputs(models, inputs, dropout_seeds)]

    def matmul_precision(self):
        """The context of the step's products, forward and backward (TF32 unless fp32, on CUDA)."""
        return precision.matmul_precision(self.precision, self.device)

    def _outputs(self, models, inputs, dropout_seeds) -> list[torch.Tensor]:
        if self.mode == "vmap":
            try:
                return list(self._vmapped(models, inputs).unbind(0))
            except Exception as error:  # noqa: BLE001 - any failure: the loop computes the same
                first_line = (str(error).strip().splitlines() or [""])[0][:200]
                print(f"pack: vmap unavailable for this model ({type(error).__name__}: {first_line}); "
                      f"training the {len(models)} runs one after the other", file=sys.stderr)
                self.mode, self.base = "loop", None
        outputs = []
        for i, (model, x) in enumerate(zip(models, inputs)):
            if dropout_seeds is not None:
                torch.manual_seed(dropout_seeds[i])  # the run's own dropout stream, as when alone
            outputs.append(model(x))
        return outputs

    def _vmapped(self, models, inputs) -> torch.Tensor:
        # Stacking inside autograd: each run's gradient flows back to its own parameters.
        named = [dict(m.named_parameters()) for m in models]
        params = {name: torch.stack([n[name] for n in named]) for name in named[0]}
        named_buffers = [dict(m.named_buffers()) for m in models]
        buffers = {name: torch.stack([n[name] for n in named_buffers]) for name in named_buffers[0]}

        def one(p, b, x):
            return functional_call(self.base, (p, b), (x,))
        with warnings.catch_warnings(), sdpa_kernel(VMAP_ATTENTION):
            # CPU attention has no batching rule yet: vmap loops over it (correct, slower).
            warnings.filterwarnings("ignore", message=".*have not yet implemented the batching rule")
            return torch.vmap(one, randomness="different")(params, buffers, torch.stack(inputs))
