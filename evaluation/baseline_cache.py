"""Baseline errors shared by every evaluation scored on the same prompts.

Evaluation prompts do not depend on the run (evaluate.py: fixed seeds per chunk), so every
model of a task with the same evaluation settings meets the same prompts, and the classical
baselines' errors on them are the same for all of them. Some are slow (gradient boosting
on decision trees: about 2 minutes of a 2-minute evaluation on the GPU machine), so the
first evaluation stores each baseline's per-prompt errors and the others load them.

One file per (prompts, baseline): `<folder>/<key>.pt`, written atomically, holding the
errors tensor and the key's fields. The key covers all that decides the errors: the task's
settings and end sizes, the variant, the number of prompts and the chunk size, the device
type that draws the prompts (CPU and CUDA generators differ), the baseline's name, the
torch and scikit-learn versions (XGBoost's for its baseline), and the source of the code that samples and scores (the
task's classes, the baselines, the seeds, the evaluation's chunks and caps), so an edited
task, baseline or evaluation never reads an old file.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import sys
from pathlib import Path

import torch

from icl import runfolder

# Modules whose code decides the prompts or a baseline's predictions, beside the task's classes':
# the baselines, the seeds, and the evaluation's prompt chunks, seed and caps.
_CODE_MODULES = ("icl.evaluation.baselines", "icl.training.seeds", "icl.evaluation.evaluate")


class BaselineCache:
    """load(variant, name) -> errors or None; save(variant, name, errors). folder None: no cache."""

    def __init__(self, folder: Path | None, task, task_config: dict, sizes: dict, n_prompts: int,
                 batch: int, device: torch.device):
        self.folder = None if folder is None else Path(folder)
        self.common = {"task_config": task_config, "sizes": sizes, "prompts": n_prompts,
                       "batch": batch, "device": torch.device(device).type, "torch": torch.__version__,
                       "sklearn": _version("sklearn"),
                       "code": _code_digest([c.__module__ for c in type(task).__mro__] + list(_CODE_MODULES))}

    def load(self, variant: str | None, name: str) -> torch.Tensor | None:
        if self.folder is None:
            return None
        key = self._key(variant, name)
        try:
            saved = runfolder.load_torch(self._path(key), None, ("key", "errors"))
        except runfolder.RunFolderError as error:  # the cache only saves time: compute, rewrite it
            print(f"warning: baseline cache {error.message}; computing the baseline again", file=sys.stderr)
            return None
        if saved is None or saved["key"] != key or not isinstance(saved["errors"], torch.Tensor):
            return None
        return saved["errors"]

    def save(self, variant: str | None, name: str, errors: torch.Tensor) -> None:
        if self.folder is None:
            return
        key = self._key(variant, name)
        try:
            runfolder.save_torch(self._path(key), {"key": key, "errors": errors.contiguous()})
        except OSError as error:  # the cache only saves time: the evaluation goes on without it
            print(f"warning: baseline cache {self.folder}: cannot write ({error.strerror}); "
                  "evaluations compute their baselines", file=sys.stderr)
            self.folder = None

    def _key(self, variant, name) -> str:
        # XGBoost's version only where it decides the errors (importing it costs every evaluation)
        extra = {"xgboost": _version("xgboost")} if name == "xgboost" else {}
        return json.dumps({**self.common, **extra, "variant": variant, "baseline": name}, sort_keys=True)

    def _path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"


def _version(package: str) -> str | None:
    try:
        return importlib.import_module(package).__version__
    except ImportError:
        return None


def _code_digest(module_names: list[str]) -> str:
    digest = hashlib.sha1()
    for name in sorted(set(module_names) - {"builtins"}):
        try:
            digest.update(inspect.getsource(importlib.import_module(name)).encode())
        except (OSError, TypeError):  # no source (e.g. a frozen install): the name at least
            digest.update(name.encode())
    return digest.hexdigest()[:16]
