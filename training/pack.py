"""Packing: several runs that differ only in seed, learning rate, clipping or weight decay train
as one program.

The study's models are small: at batch 64 a GPU spends most of a step launching kernels.
Runs of the same model and task (a sweep over seeds and learning rates) therefore train side
by side in one process: their weights are stacked on a leading run axis of one model
(blocks/stacked.py) and one step computes every run's forward, backward and optimizer update
(training/engine.py). Each run keeps its own init, prompts, dropout seeds, learning rate,
weight decay and gradient clipping, so a packed run follows the curve of the same run trained
alone (equal up to float rounding of the batched products) and leaves exactly the files a
lone run leaves. A run that diverges stops alone; the others go on.

- `pack_key`, `check_pack`, `group_runs`  which runs may share a pack (grouping.py, torch-free)
- `train_pack(runs, out_dirs, ...)` train a pack; each run's status.json, in order
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

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
    return train_members(runs, [Path(d) for d in out_dirs], max_steps=max_steps, device=device,
                         progress=progress, model_factory=model_factory)
