"""`make_task(task_config) -> Task`: imports the sampler class named in tasks/catalog.py."""
from __future__ import annotations

import importlib

from icl.tasks.base import Task
from icl.tasks.catalog import TASKS


def task_class(kind: str) -> type[Task]:
    if kind not in TASKS:
        raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(TASKS)}")
    module, _, name = TASKS[kind].module.partition(":")
    return getattr(importlib.import_module(module), name)


def make_task(task_config: dict) -> Task:
    """Build the task of `task_config["kind"]`; missing params take the catalog defaults."""
    if "kind" not in task_config:
        raise ValueError("task config has no 'kind'")
    kind = task_config["kind"]
    return task_class(kind)(TASKS[kind].with_defaults(task_config))
