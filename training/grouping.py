"""Which runs may train together in one pack (torch-free: the pipeline imports it to plan jobs).

Packed runs share the model, the prompts' shape and the schedule; each keeps its own seed, its
own task (sampler, loss and error: a regression and a classification task of one shape may
share a pack) and the train settings in PER_RUN_TRAIN, since every run of a pack has its own
optimizer and clipping, and leaves the pack on its own (train.stop_error).

- `pack_key(run)`          what packed runs must share (JSON text)
- `check_pack(runs)`       a clear one-line error when runs cannot be packed
- `group_runs(runs, size)` runs -> packs of at most `size` runs with equal keys, stable order
- `packs_well(run)`        whether the run's model trains faster packed (pipeline's pack=auto)
- `pack_plan(setting, on_gpu)`, `group_for_training(runs, setting, on_gpu)`  the `pack` setting
                           (auto | off | N) of the pipeline and of `icl train --pack`
"""
from __future__ import annotations

import dataclasses
import json

from icl.blocks.catalog import BLOCKS
from icl.tasks.catalog import TASKS
from icl.training.curriculum import end_sizes
from icl.training.errors import RunError
from icl.run import Run

# Train settings packed runs may differ in: each run has its own optimizer, clipping and stop.
PER_RUN_TRAIN = ("lr", "clip", "weight_decay", "stop_error")


def prompt_shape(task_config: dict) -> dict:
    """What decides the shape of a task's prompts at every step, and so of the model built for
    it: its layout (read-in, read-out and position table), how a point becomes tokens, and the
    curriculum's sizes (end sizes and axes). Tasks of equal shapes give the stacked model
    prompts it can batch at every step; their samplers and losses may differ."""
    kind = TASKS[task_config["kind"]]
    return {"layout": dataclasses.asdict(kind.layout(task_config)), "tokens_per_point": kind.tokens_per_point,
            "extra_tokens": kind.extra_tokens, "sizes": end_sizes(task_config),
            "curriculum": task_config.get("curriculum")}


def pack_key(run: Run) -> str:
    """What runs of one pack share: model, prompt shape and every train setting but PER_RUN_TRAIN."""
    train = {k: v for k, v in run.train.items() if k not in PER_RUN_TRAIN}
    return json.dumps({"model_config": run.model_config, "prompt_shape": prompt_shape(run.task_config),
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
            differ = [part for part in ("model_config", "prompt_shape", "train")
                      if json.loads(pack_key(run))[part] != json.loads(first)[part]]
            raise RunError(f"runs {runs[0].id} and {run.id} cannot be packed: their "
                           f"{' and '.join(differ)} differ (only seed, task, {', '.join(PER_RUN_TRAIN)} may)")


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


# pack = auto packs, only where training runs on a GPU, the runs of a model whose every block
# trains faster packed (catalog's packs_well), 16 to a pack. Measured with the stacked engine:
# packs of 16 ran 1.2-2.7x faster per run than lone runs for every study architecture on an H100
# (benchmarks/results/train_step_packed.md), 1.2-2.3x on an H200 (train_step_packed.before-2026-12-07-h200.md); 64 gained
# 1-14 % more where it fit: not in the H200's 140 GB for paper-size Mamba and S4-Mamba, not in
# the H100's 80 GB at width 256 or for the Mamba models at 280 tokens. A pack too big for a smaller GPU's memory halves itself when
# it runs out of memory (training/pack.py train_pack); pack = N sets the size outright.
# On a CPU nothing was measured, so nothing is packed unless asked.
AUTO_PACK = 16


def pack_plan(setting, on_gpu: bool):
    """(pack size, which runs may be packed: a predicate or None for all) of a `pack` setting:
    "auto", "off" (False: YAML's bare off) or a number."""
    if setting in ("off", False):
        return 1, None
    if setting == "auto":
        return (AUTO_PACK if on_gpu else 1), packs_well
    try:
        size = int(setting)
    except (TypeError, ValueError):
        raise RunError(f"pack must be auto, off or a number of runs, got {setting!r}") from None
    if size < 1:
        raise RunError(f"pack must be at least 1 run, got {size}")
    return size, None


def group_for_training(runs: list[Run], setting, on_gpu: bool) -> list[list[Run]]:
    """The runs as packs to train, one after another: eligible runs grouped (group_runs), the
    others alone; in a stable order."""
    size, eligible = pack_plan(setting, on_gpu)
    packable = [r for r in runs if eligible is None or eligible(r)]
    alone = [[r] for r in runs if not (eligible is None or eligible(r))]
    return group_runs(packable, size) + alone


def packs_well(run: Run) -> bool:
    """Whether every block of the run's model packs well (catalog.BlockKind.packs_well)."""
    return all(BLOCKS[token].packs_well for token in run.layers.split())
