"""Read a resolved run (one JSON object, as `icl runs --json` prints them) for the module entry points."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from icl.training.errors import RunError

REQUIRED = ("id", "model_config", "task_config", "train")


def load_run(source: str, run_id: str | None = None) -> dict:
    """A run from a JSON file ("-" = stdin) holding one run or a list of runs (picked by `run_id`)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise RunError(f"cannot read run file {source}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunError(f"{source}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}") from None
    runs = data if isinstance(data, list) else [data]
    if run_id is not None:
        runs = [r for r in runs if isinstance(r, dict) and r.get("id") == run_id]
        if not runs:
            raise RunError(f"{source} has no run with id {run_id}")
    if len(runs) != 1:
        raise RunError(f"{source} holds {len(runs)} runs; pick one with --run ID")
    run = runs[0]
    missing = [k for k in REQUIRED if not isinstance(run, dict) or k not in run]
    if missing:
        raise RunError(f"{source}: the run lacks {', '.join(missing)}")
    return run
