"""The runs a training or evaluation command works on: from a spec, or from a JSON run table.

`icl train` and `icl eval` take either `.icl` specs (resolved by the compiler) or
a JSON file of resolved runs as `icl runs --json` prints them ("-" reads stdin), and
pick runs by id or unique id prefix.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from icl.training.errors import RunError

REQUIRED = ("id", "model_config", "task_config", "train")


def load_runs(source: str | list[str], run_ids: list[str] | None = None,
              eval_id: str | None = None) -> list[dict]:
    """The runs of `source` named by `run_ids` (ids or unique prefixes; None: a source of one run).
    `source`: a JSON run table, or one or more .icl specs (a study's specs resolve together)."""
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    if all(str(s).endswith(".icl") for s in sources):
        runs = _from_specs(sources)
    elif len(sources) == 1:
        runs = _from_json(sources[0])
    else:
        raise RunError("several sources must all be .icl specs: " + ", ".join(map(str, sources)))
    source = ", ".join(map(str, sources))
    if eval_id is not None:
        runs = [r for r in runs if r.get("eval_id") == eval_id]
        if not runs:
            raise RunError(f"{source} has no run with evaluation id '{eval_id}'")
    if run_ids is None:
        if len(runs) != 1:
            raise RunError(f"{source} holds {len(runs)} runs; pick one with --run ID")
        return runs
    return [_pick(runs, prefix, source) for prefix in run_ids]


def _pick(runs: list[dict], prefix: str, source: str) -> dict:
    if not prefix:
        raise RunError("--run needs a run id (or a prefix of one)")
    hits = {r["id"]: r for r in runs if str(r.get("id", "")).startswith(prefix)}
    if not hits:
        raise RunError(f"{source} has no run with id '{prefix}'", "list them with: icl check SPEC")
    if len(hits) > 1:
        raise RunError(f"run id '{prefix}' is ambiguous in {source}: " + ", ".join(sorted(hits)))
    return next(iter(hits.values()))


def _from_specs(sources: list[str]) -> list[dict]:
    from icl.compiler.runs import runs_of

    return runs_of(sources)


def _from_json(source: str) -> list[dict]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise RunError(f"cannot read run file {source}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunError(f"{source}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}") from None
    runs = data if isinstance(data, list) else [data]
    for run in runs:
        missing = [k for k in REQUIRED if not isinstance(run, dict) or k not in run]
        if missing:
            raise RunError(f"{source}: a run lacks {', '.join(missing)} (write it with icl runs --json)")
    return runs
