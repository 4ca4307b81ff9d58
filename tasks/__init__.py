"""ICL tasks: samplers of prompts, their losses and the study's metrics."""
from icl.tasks.base import Prompts, Task
from icl.tasks.registry import make_task

__all__ = ["Prompts", "Task", "make_task"]
