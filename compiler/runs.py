"""Expand a checked program into runs: models x tasks x sweep values x seeds.

A run is an icl.run.Run (`icl runs --json` prints them as JSON objects). Its `id` hashes exactly
what decides the trained weights (model, task, training hyper-parameters, seed),
so editing one line of a spec changes the ids of exactly the runs it affects;
formatting, comments, names, file layout and explicit defaults change nothing.
`eval_id` hashes the id with the evaluation settings, so changing evaluation
re-evaluates without re-training.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any, Callable

from icl.blocks.catalog import MODEL_OPTIONS, options_used
from icl.compiler import accounting
from icl.compiler.resolve import EVAL_PARAMS, TRAIN_HOW_KEYS, TRAIN_PARAMS, Checked, Program, load
from icl.compiler.values import Sweep
from icl.dsl import limits
from icl.errors import ErrorList, SpecError
from icl.run import Run
from icl.schema import NO_LEGACY
from icl.tasks.catalog import TASKS

# Expansions of at least this many runs say so on the progress callback before they start.
PROGRESS_AT = 2_000


def runs_of(paths: list[str | Path], max_runs: int | None = None, allow_outside: bool | None = None,
            progress: Callable[[str], None] | None = None) -> list[Run]:
    """Every run of the given root specs, in spec order; a run listed twice is kept once.

    The runs are counted before any is made: more than `max_runs` (default: $ICL_MAX_RUNS, else
    limits.MAX_RUNS) in all is an error. Every independent error of every spec is reported.
    """
    cap = limits.max_runs(max_runs)
    errors = ErrorList(limits.MAX_ERRORS)
    programs = []
    total = 0
    for path in paths:
        try:
            program = load(path, allow_outside)
            total += check_count(program, cap, total)
            programs.append(program)
        except SpecError as e:
            errors.add(e)
    errors.raise_any()
    if progress is not None and total >= PROGRESS_AT:
        progress(f"expanding {total:,} runs")
    runs: list[Run] = []
    seen: set[tuple] = set()
    for program in programs:
        try:
            made = expand(program, cap)
        except SpecError as e:
            errors.add(e)
            continue
        for run in made:
            key = (run.id, run.eval_id, run.experiment, run.model, run.task)
            if key not in seen:
                seen.add(key)
                runs.append(run)
    errors.raise_any()
    return runs


def count_runs(program: Program) -> dict[str, int]:
    """The runs each experiment of `program` makes, counted from its sweeps without making any."""
    counts = {}
    for name, experiment in program.experiments.items():
        train = experiment.sub["train"]
        per_cell = len(train.values["seeds"]) * _product(train)
        counts[name] = sum(per_cell * _product(program.models[m]) * _product(program.tasks[t])
                           for m in experiment.values["models"] for t in experiment.values["tasks"])
    return counts


def check_count(program: Program, cap: int, before: int = 0) -> int:
    """The number of runs of `program`; with the `before` runs of other specs, more than `cap` is an
    error at its largest experiment."""
    counts = count_runs(program)
    total = sum(counts.values())
    if before + total > cap:
        name = max(counts, key=counts.get)
        raise program.error(program.experiments[name].pos,
                            f"experiment '{name}' makes {counts[name]:,} runs ({before + total:,} in all), above "
                            f"the limit of {cap:,} runs",
                            f"shrink the sweep, or raise the limit with --max-runs N or {limits.MAX_RUNS_ENV}=N")
    return total


def _product(section: Checked) -> int:
    n = 1
    for value in section.values.values():
        if isinstance(value, Sweep):
            n *= len(value.values)
    return n


def expand(program: Program, max_runs: int | None = None) -> list[Run]:
    """The runs of `program`, after checking their count against the cap; every cell's error reported."""
    check_count(program, limits.max_runs(max_runs))
    errors = ErrorList(limits.MAX_ERRORS)
    runs = []
    for name, experiment in program.experiments.items():
        train, evaluation = experiment.sub["train"], experiment.sub["eval"]
        for model_name in experiment.values["models"]:
            for task_name in experiment.values["tasks"]:
                try:
                    runs += _runs_of_cell(program, name, program.models[model_name], program.tasks[task_name],
                                          train, evaluation, experiment)
                except SpecError as e:
                    errors.add(e)
    errors.raise_any()
    return runs


def _runs_of_cell(program: Program, experiment: str, model: Checked, task: Checked,
                  train: Checked, evaluation: Checked, exp: Checked) -> list[Run]:
    # Every swept key becomes an axis of the product, in a stable order.
    axes: list[tuple[str, Checked, str, tuple]] = []
    for label, section in (("model", model), ("task", task), ("train", train)):
        for key, value in section.values.items():
            if isinstance(value, Sweep):
                axes.append((f"{label}.{key}", section, key, value.values))
    runs = []
    for combo in itertools.product(*(values for *_, values in axes)):
        chosen = {label: value for (label, *_), value in zip(axes, combo)}
        model_values = _pick(model.values, chosen, "model")
        task_values = _pick(task.values, chosen, "task")
        train_values = _pick(train.values, chosen, "train")
        task_config = _task_config(task, task_values)
        kind = TASKS[task_config["kind"]]
        for key, message in kind.constraints(task_config):
            raise program.error(_where_chosen(task, key, task_config.get(key)), message)
        layout = kind.layout(task_config)
        model_config = _model_config(program, model, model_values, layout)
        account = accounting.account(model_config, layout)
        train_config = dict(train_values)
        if train_config["lr"] is None:
            train_config["lr"] = kind.lr
        if train_config["clip"] is None:
            train_config["clip"] = kind.clip
        seeds = train_config.pop("seeds")
        eval_config = _eval_config(evaluation.values, kind.variants)
        task_id_config = _id_config(kind.params, task_config)
        train_id_config = _id_config(TRAIN_PARAMS, {k: v for k, v in train_config.items() if k not in TRAIN_HOW_KEYS})
        for seed in seeds:
            what = {"model": model_config, "task": task_id_config, "seed": seed, "train": train_id_config}
            run_id = content_hash(what)
            runs.append(Run(
                id=run_id,
                eval_id=content_hash({"id": run_id, "eval": eval_config}),
                spec=program.path,
                experiment=experiment,
                model=model.name,
                layers=model_config["layers"],
                task=task.name,
                seed=seed,
                model_config=model_config,
                task_config=task_config,
                train=train_config,
                eval=eval_config,
                sweep=chosen,
                **account,
            ))
    return runs


def _pick(values: dict[str, Any], chosen: dict[str, Any], label: str) -> dict[str, Any]:
    return {k: chosen[f"{label}.{k}"] if isinstance(v, Sweep) else v for k, v in values.items()}


def _task_config(task: Checked, values: dict[str, Any]) -> dict[str, Any]:
    config = dict(values)
    curriculum = {}
    for axis, ax in task.sub["curriculum"].values.items():
        ax = dict(ax)
        # A defaulted end follows the task's value (also under a sweep of that value).
        if f"{axis}.end" not in task.sub["curriculum"].where:
            ax["end"] = config[axis]
            ax["start"] = min(ax["start"], ax["end"])
        curriculum[axis] = ax
    config["curriculum"] = curriculum
    return config


def _id_config(params, config: dict[str, Any]) -> dict[str, Any]:
    """The task or train config the run id hashes: a parameter at its legacy value
    (Param.legacy) is left out, so the runs trained before it existed keep their ids."""
    legacy = {p.name: p.legacy for p in params if p.legacy is not NO_LEGACY}
    return {k: v for k, v in config.items() if k not in legacy or v != legacy[k]}


def _model_config(program: Program, model: Checked, values: dict[str, Any], layout) -> dict[str, Any]:
    config = {p.name: values[p.name] for p in MODEL_OPTIONS if p.name != "params"}
    # Only the options some block of the layer string reads: an inherited option no block
    # reads cannot change the weights, so it must not change the run id either.
    config.update({name: values[name] for name in sorted(options_used(set(config["layers"].split())))})
    budget = values["params"]
    if budget is not None:
        width = accounting.solve_width(config, layout, budget)
        if width is None:
            raise program.error(model.where["params"], accounting.budget_error(config, layout, budget),
                                "change the budget or give width directly")
        config["width"] = width
    if config.get("dt_rank", 0) is None:
        config["dt_rank"] = math.ceil(config["width"] / 16)
    for key, message in accounting.check_model(config, layout):
        raise program.error(_blame(model, key, config), message)
    # The position table's std is recorded only where it changes the weights (a std other than
    # init_std), so the runs from before this option existed keep their ids.
    if config["positions_init_std"] in (None, config["init_std"]):
        del config["positions_init_std"]
    # Likewise init = gpt2, the only init before the option existed (compiler/graph.py reads a
    # config without init as gpt2); released, the default, changes the weights and the id.
    if config["init"] == "gpt2":
        del config["init"]
    return config


def _blame(model: Checked, key: str, config: dict[str, Any]):
    """Where a model error about `key` points: at `key` or a key taking part in the same error
    (accounting.RELATED_KEYS), preferring one the model writes itself over an inherited one;
    the layer string where none was written."""
    keys = [k for k in (key, *accounting.RELATED_KEYS.get(key, ())) if k in model.where]
    if not keys:
        return model.where.get("layers") or model.pos
    chosen = next((k for k in keys if k in model.local), keys[0])
    return _where_chosen(model, chosen, config.get(chosen))


def _where_chosen(section: Checked, key: str, value: Any):
    """Where `key` was written; for a sweep, where this run's value of it was written."""
    swept = section.values.get(key)
    if isinstance(swept, Sweep) and value in swept.values and key in section.item_where:
        return section.item_where[key][swept.values.index(value)]
    return section.where.get(key) or section.pos


def _eval_config(values: dict[str, Any], task_variants: tuple[str, ...]) -> dict[str, Any]:
    config = dict(values)
    asked = config["variants"]
    # `all` means every variant of this task; others apply to the tasks that have them.
    config["variants"] = list(task_variants) if "all" in asked else [v for v in asked if v in task_variants]
    config["baselines"] = list(config["baselines"])
    config["noise_sigmas"] = list(config["noise_sigmas"])
    return config


def _with_defaults(section: dict | None, params) -> dict:
    return {**{p.name: p.default for p in params if p.default is not None}, **(section or {})}


# A run from runs_of holds every setting; a hand-written run table may leave some out. Readers
# of a run's settings go through these, so each default is the declaration's (resolve.py's
# TRAIN_PARAMS and EVAL_PARAMS, the catalog's MODEL_OPTIONS), never a literal at the reader.
def train_settings(run: Run) -> dict:
    """The run's train section, every declared default filled in."""
    return _with_defaults(run.train, TRAIN_PARAMS)


def eval_settings(run: Run) -> dict:
    """The run's eval section, every declared default filled in; variants `all` (the default)
    is every variant of the run's task, as in a spec."""
    settings = _with_defaults(run.eval, EVAL_PARAMS)
    if "all" in (settings["variants"] or ()):
        settings["variants"] = list(TASKS[run.kind].variants)
    return settings


def model_settings(run: Run) -> dict:
    """The run's model_config, every declared model-wide default filled in."""
    return _with_defaults(run.model_config, MODEL_OPTIONS)


def content_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:12]

