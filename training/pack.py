"""Packing: several runs of one model and prompt shape that differ only in seed, task, learning
rate, clipping or weight decay train as one program.

The study's models are small: at batch 64 a GPU spends most of a step launching kernels.
Runs of the same model and prompt shape (a sweep over seeds and learning rates, or the tasks
of one shape: the study's linear and sparse linear regression, or its ReLU-net, decision-tree
and orthogonal-outlier regression) therefore train side by side in one process: their weights are stacked on a leading run axis of one model
(blocks/stacked.py) and one step computes every run's forward, backward and optimizer update
(training/engine.py). Each run keeps its own init, task, prompts, dropout seeds, learning rate,
weight decay and gradient clipping, so a packed run follows the curve of the same run trained
alone (equal up to float rounding of the batched products) and leaves exactly the files a
lone run leaves. A run that diverges stops alone; the others go on.

- `pack_key`, `check_pack`, `group_runs`  which runs may share a pack (grouping.py, torch-free)
- `train_pack(runs, out_dirs, ...)` train a pack; each run's status.json, in order

A pack is sized to the GPU's memory by trying: when a pack's step runs out of GPU memory, the
pack is split in two halves that train one after the other, each resuming its runs from their
checkpoints as a killed job would (so a pack of 16 planned for an H200 still trains on a 24 GB
card, as 2 x 8 or 4 x 4). A lone run that does not fit is a clear error.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

from icl.training.errors import RunError
from icl.training.grouping import check_pack
from icl.run import Run


def train_pack(runs: list[Run], out_dirs: list[Path], *, max_steps: int | None = None,
               device: str | None = None, progress: bool = True,
               model_factory: Callable | None = None) -> list[dict]:
    """Train `runs` together, run i into out_dirs[i] (resuming each from its checkpoint)."""
    from icl.training.train import train_members

    check_pack(runs)
    if len(out_dirs) != len(runs):
        raise RunError(f"{len(runs)} runs but {len(out_dirs)} output folders")
    out_dirs = [Path(d) for d in out_dirs]
    try:
        return train_members(runs, out_dirs, max_steps=max_steps, device=device, progress=progress,
                             model_factory=model_factory)
    except torch.OutOfMemoryError:
        if len(runs) == 1:
            raise RunError(f"run {runs[0].id} does not fit in GPU memory alone: lower its train batch "
                           "or width, or train it on a larger GPU") from None
    # Out of memory: the locks and the CUDA tensors of the failed pack are released by now.
    torch.cuda.empty_cache()
    half = (len(runs) + 1) // 2
    print(f"icl train: a pack of {len(runs)} runs ran out of GPU memory; training it as packs of "
          f"{half} and {len(runs) - half}, each resuming from its checkpoints", file=sys.stderr)
    statuses = []
    for part in (slice(0, half), slice(half, None)):
        statuses += train_pack(runs[part], out_dirs[part], max_steps=max_steps, device=device,
                               progress=progress, model_factory=model_factory)
    return statuses
