"""A run: one model trained on one task with one seed and one setting of every swept value.

compiler/runs.py makes runs from specs; `icl runs --json` writes them as JSON objects (to_dict)
and `icl train` / `icl eval` read such a table back (from_dict, after training/runfile.py's
check_run has checked its keys and types). Training, evaluation, the report and the pipeline
read the fields. The configs stay dicts: their keys are the catalog's and the spec's
declarations (blocks/catalog.py, compiler/resolve.py, tasks/catalog.py), which decide them.
A leaf module: it imports nothing of the project.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields

# Fields a JSON run must hold; the others have defaults (a hand-written run table may leave
# them out: the names are then unknown, the seed 0, the evaluation the declared defaults).
REQUIRED = ("id", "model_config", "task_config", "train")


@dataclass(frozen=True)
class Run:
    id: str                     # hash of what decides the trained weights (compiler/runs.py)
    model_config: dict          # layers, width and every option some block reads
    task_config: dict           # kind, sizes, curriculum
    train: dict                 # steps, batch, lr, clip, ... (compiler.runs.train_settings fills defaults)
    eval: dict = field(default_factory=dict)
    eval_id: str | None = None  # hash of id and eval: a new evaluation keeps the training
    spec: str | None = None     # the root spec that made it
    experiment: str | None = None
    model: str | None = None    # the model's name in the spec
    layers: str | None = None   # model_config's layer string, expanded
    task: str | None = None     # the task's name in the spec
    seed: int = 0
    sweep: dict = field(default_factory=dict)  # "section.key" -> this run's value of a swept key
    # Accounting (compiler/accounting.py), None in a run table that leaves them out.
    params: int | None = None
    state_size: int | None = None
    flops_per_token: int | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "Run":
        """The run of a JSON object whose keys and types are checked (runfile.check_run)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: copy.deepcopy(v) for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        """The JSON object of `icl runs --json`: every field, those left unknown (None) out."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None}

    @property
    def kind(self) -> str:
        """The task kind (tasks/catalog.py's TASKS key)."""
        return self.task_config["kind"]
