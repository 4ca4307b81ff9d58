"""Garg et al.'s curriculum: each axis grows from `start` by `inc` every `interval` steps.

value(step) = min(end, start + inc * (step // interval)), so the first increment
comes at step `interval` and the study's axes (dims 5 -> 20 by +1, points 11 -> 41
by +2, every 2000 steps) reach their ends at step 30000. The value is a pure function
of the step, which is what makes a resumed run see exactly the prompts of an
uninterrupted one.
"""
from __future__ import annotations


def axis_value(axis: dict, step: int) -> int:
    """Value of one curriculum axis {"start", "end", "inc", "interval"} at `step`."""
    grown = axis["start"] + axis["inc"] * (step // axis["interval"])
    return min(axis["end"], grown)


def end_sizes(task_config: dict) -> dict[str, int]:
    """The prompt sizes (dims, points) at the curriculum's end: the task's own sizes.

    Kinds without a `points` parameter (MQAR) count key/value `pairs` as points;
    kinds without `dims` (token MQAR) use their vocabulary size (only passed through).
    """
    dims = task_config.get("dims", task_config.get("vocab", 0))
    points = task_config.get("points", task_config.get("pairs", 0))
    return {"dims": int(dims), "points": int(points)}


def sizes_at(task_config: dict, step: int) -> dict[str, int]:
    """The prompt sizes (dims, points) a training batch uses at `step`."""
    sizes = end_sizes(task_config)
    for name, axis in (task_config.get("curriculum") or {}).items():
        sizes[name] = axis_value(axis, step)
    return sizes
