"""ICL tasks: samplers of prompts, their losses and the study's metrics.

`Prompts`, `Task` and `make_task` are imported lazily so that `icl.tasks.catalog`
(torch-free) can be imported without pulling in torch.
"""
from __future__ import annotations

__all__ = ["Prompts", "Task", "make_task"]


def __getattr__(name: str):
    if name in ("Prompts", "Task"):
        from icl.tasks import base
        return getattr(base, name)
    if name == "make_task":
        from icl.tasks.registry import make_task
        return make_task
    raise AttributeError(f"module 'icl.tasks' has no attribute {name!r}")
