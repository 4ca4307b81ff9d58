"""Which runs may train together in one pack (torch-free: the pipeline imports it to plan jobs).

Packed runs share the model, the task and the schedule; each keeps its own seed and the
train settings in PER_RUN_TRAIN, since every run of a pack has its own optimizer and clipping.

- `pack_key(run)`          what packed runs must share (JSON text)
- `check_pack(runs)`       a clear one-line error when runs cannot be packed
- `group_runs(runs, size)` runs -> packs of at most `size` runs with equal keys, stable order
- `packs_well(run)`        whether the run's model trains faster packed (pipeline's pack=auto)
"""
from __future__ import annotations

import json

from icl.blocks.catalog import BLOCKS
from icl.training.errors import RunError
from icl.run import Run

# Train settings packed runs may differ in: each run has its own optimizer and clipping.
PER_RUN_TRAIN = ("lr", "clip", "weight_decay")


def pack_key(run: Run) -> str:
    """What runs of one pack share: model, task and every train setting but PER_RUN_TRAIN."""
    train = {k: v for k, v in run.train.items() if k not in PER_RUN_TRAIN}
    return json.dumps({"model_config": run.model_config, "task_config": run.task_config,
                       "train": train}, sort_keys=True)


def check_pack(runs: list[Run]) -> None:
    if not runs:
        raise RunError("a pack needs at least one run")
    ids = [r.id for r in runs]
    if len(set(ids)) != len(ids):
        raise RunError(f"a pack lists a run twice: {', '.join(ids)}")
    first = pack_key(runs[0])
    for run in runs[1:]:
        if pack_key(run) != first:
            differ = [part for part in ("model_config", "task_config", "train")
                      if json.loads(pack_key(run))[part] != json.loads(first)[part]]
            raise RunError(f"runs {runs[0].id} and {run.id} cannot be packed: their "
                           f"{' and '.join(differ)} differ (only seed, {', '.join(PER_RUN_TRAIN)} may)")


def group_runs(runs: list[Run], size: int) -> list[list[Run]]:
    """Packs of at most `size` runs with equal pack keys, in a stable order (by key, then run id)."""
    if size < 1:
        raise RunError(f"pack size must be >= 1, got {size}")
    by_key: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.id):
        by_key.setdefault(pack_key(run), []).append(run)
    packs = []
    for key in sorted(by_key):
        same = by_key[key]
        packs.extend(same[i:i + size] for i in range(0, len(same), size))
    return packs


def packs_well(run: Run) -> bool:
    """Whether every block of the run's model packs well (catalog.BlockKind.packs_well)."""
    return all(BLOCKS[token].packs_well for token in run.layers.split())
