"""The runs a training or evaluation command works on: from a spec, or from a JSON run table.

`icl train` and `icl eval` take either `.icl` specs (resolved by the compiler) or
a JSON file of resolved runs as `icl runs --json` prints them ("-" reads stdin), and
pick runs by id or unique id prefix.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from icl.training.errors import RunError
from icl.run import REQUIRED, Run

# Keys a run's configs must hold, whatever else they hold (the training loop reads them).
REQUIRED_IN = {"model_config": ("layers", "width"), "task_config": ("kind",),
               "train": ("steps", "batch", "lr", "clip")}
MAX_RUN_FILE_BYTES = 200_000_000


def load_runs(source: str | list[str], run_ids: list[str] | None = None,
              eval_id: str | None = None) -> list[Run]:
    """The runs of `source` named by `run_ids` (ids or unique prefixes; None: a source of one run).
    `source`: a JSON run table, or one or more .icl specs (a study's specs resolve together)."""
    return select_runs(*load_table(source), run_ids, eval_id)


def load_table(source: str | list[str]) -> tuple[list[Run], str]:
    """(every run of `source`, the source named for messages): read and resolved once, for
    select_runs to pick from as often as needed."""
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    if all(str(s).endswith(".icl") for s in sources):
        runs = _from_specs(sources)
    elif len(sources) == 1:
        runs = _from_json(sources[0])
    else:
        raise RunError("several sources must all be .icl specs: " + ", ".join(map(str, sources)))
    return runs, ", ".join(map(str, sources))


def select_runs(runs: list[Run], source: str, run_ids: list[str] | None = None,
                eval_id: str | None = None) -> list[Run]:
    """The runs of a loaded table named by `run_ids` (as load_runs), of evaluation `eval_id`."""
    if eval_id is not None:
        runs = [r for r in runs if r.eval_id == eval_id]
        if not runs:
            raise RunError(f"{source} has no run with evaluation id '{eval_id}'")
    if run_ids is None:
        if len(runs) != 1:
            raise RunError(f"{source} holds {len(runs)} runs; pick one with --run ID")
        return runs
    return [_pick(runs, prefix, source) for prefix in run_ids]


def _pick(runs: list[Run], prefix: str, source: str) -> Run:
    if not prefix:
        raise RunError("--run needs a run id (or a prefix of one)")
    hits = {r.id: r for r in runs if r.id.startswith(prefix)}
    if not hits:
        raise RunError(f"{source} has no run with id '{prefix}'", "list them with: icl check SPEC")
    if len(hits) > 1:
        raise RunError(f"run id '{prefix}' is ambiguous in {source}: " + ", ".join(sorted(hits)))
    return next(iter(hits.values()))


def _from_specs(sources: list[str]) -> list[Run]:
    from icl.compiler.runs import runs_of

    return runs_of(sources)


def _from_json(source: str) -> list[Run]:
    try:
        if source == "-":
            text = sys.stdin.read(MAX_RUN_FILE_BYTES + 1)
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read(MAX_RUN_FILE_BYTES + 1)
    except OSError as error:
        raise RunError(f"cannot read run file {source}: {error.strerror}") from None
    except (UnicodeDecodeError, ValueError) as error:  # not UTF-8; a NUL byte in the path
        raise RunError(f"cannot read run file {source!r}: {error}") from None
    if len(text) > MAX_RUN_FILE_BYTES:
        raise RunError(f"run file {source} is larger than the limit of {MAX_RUN_FILE_BYTES:,} characters")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunError(f"{source}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}") from None
    except RecursionError:
        raise RunError(f"{source}: JSON nested too deeply to be a run table") from None
    runs = data if isinstance(data, list) else [data]
    for number, run in enumerate(runs, start=1):
        problem = check_run(run)
        if problem:
            raise RunError(f"{source}: run {number}: {problem} (write the table with icl runs --json)")
    return [Run.from_dict(run) for run in runs]


def check_run(run) -> str | None:
    """What is wrong with one run (a JSON object) of a run table, in words; None if nothing is.

    Checks what training and evaluation read: the keys they need, and that every value a
    parameter declaration covers (the compiler's model, task, train and eval parameters) has
    that parameter's type, so a hand-edited table is an error here and not a traceback later.
    """
    from icl.blocks.catalog import BLOCK_OPTIONS, MODEL_OPTIONS
    from icl.compiler.resolve import EVAL_PARAMS, TRAIN_PARAMS
    from icl.tasks.catalog import CURRICULUM_PARAMS, TASKS

    if not isinstance(run, dict):
        return f"a run is a JSON object, not {_json_type(run)}"
    missing = [k for k in REQUIRED if k not in run]
    if missing:
        return f"the run lacks {', '.join(missing)}"
    for key in ("id", "eval_id", "spec", "experiment", "model", "task", "layers"):
        if key in run and not (isinstance(run[key], str) and run[key]):
            return f"'{key}' must be a non-empty string, not {_json_type(run[key])}"
    for key in ("seed", "params", "state_size", "flops_per_token"):
        if key in run and not _is_int(run[key]):
            return f"'{key}' must be an integer, not {_json_type(run[key])}"
    for key in ("model_config", "task_config", "train", "eval", "sweep"):
        if key in run and not isinstance(run[key], dict):
            return f"'{key}' must be a JSON object, not {_json_type(run[key])}"
    for key, needed in REQUIRED_IN.items():
        lacking = [k for k in needed if k not in run[key]]
        if lacking:
            return f"'{key}' lacks {', '.join(lacking)}"
    kind = run["task_config"]["kind"]
    if not isinstance(kind, str) or kind not in TASKS:
        return f"'task_config.kind' must name a task kind, not {json.dumps(kind)[:40]}"
    declared = {
        "model_config": {p.name: p for p in (*MODEL_OPTIONS, *BLOCK_OPTIONS.values())},
        "task_config": {p.name: p for p in TASKS[kind].params},
        "train": {p.name: p for p in TRAIN_PARAMS},
        "eval": {p.name: p for p in EVAL_PARAMS},
    }
    for section, params in declared.items():
        for name, value in run.get(section, {}).items():
            param = params.get(name)
            if param is not None and not _fits(param, value):
                return f"'{section}.{name}' must be {param.type}, not {json.dumps(value)[:40]}"
    curriculum = run["task_config"].get("curriculum", {})
    if not isinstance(curriculum, dict):
        return f"'task_config.curriculum' must be a JSON object, not {_json_type(curriculum)}"
    for axis, values in curriculum.items():
        if not isinstance(values, dict) or not all(_is_int(values.get(p.name)) for p in CURRICULUM_PARAMS):
            return f"'task_config.curriculum.{axis}' must map {', '.join(p.name for p in CURRICULUM_PARAMS)} " \
                   f"to integers"
    return None


def _fits(param, value) -> bool:
    """Whether a JSON value has the type of a parameter (None: a default left to the loop)."""
    if value is None:
        return not param.is_list
    if param.is_list:
        item = param.type[len("list["):-1]
        return isinstance(value, list) and all(_fits_scalar(item, v) for v in value)
    return _fits_scalar(param.type, value)


def _fits_scalar(type_: str, value) -> bool:
    if type_ == "int":
        return _is_int(value)
    if type_ == "float":
        return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
    if type_ == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)  # str, choice, ref


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
