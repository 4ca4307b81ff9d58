"""The study's Table 1: a check / gap / fails / not converged verdict per (task, architecture), from evaluation JSONs.

    verdicts(evals, runs, training=None) -> {task: {model: cell}}

A cell holds at least {"verdict", "paper", "metric", "seeds", "best_lr", "steps"}
(table1.json's contract) and the numbers behind them: each seed's tail error at the chosen
sweep point (`seed_metrics`), the interval over those seeds (`metric_ci`), how the sweep
point was chosen (`selected_by`), whether its runs' training had converged (`converged`),
the verdict the error alone gives (`rule_verdict`) and the verdict's arithmetic in one line
(`reason`). The rules, with the constants below, are also printed in the report (`RULES`):

1. A run's number is its evaluation summary's `model_tail`: the mean error over the
   last quarter of prompt positions (every query for token MQAR: the task's
   TaskKind.tail_fraction, icl/tasks/catalog.py), on the test
   prompts. Its validation number is the same on the evaluation's validation prompts (a
   seed stream of their own, VALIDATION_FRACTION as many: `validation.model_tail`).
2. A configuration of a cell (one point of the spec's sweep: learning rate, or any
   other swept value, in one experiment) scores the mean of its seeds' numbers, on the
   test and on the validation prompts. A seed that diverged counts as chance on both: it
   left no usable model, and a learning rate that diverges half the time is not the best one.
3. The cell takes the configuration with the lowest VALIDATION score (the study takes each
   cell's best learning rate; choosing it on the test prompts would bias the metric low).
   Where some configuration's evaluations have no validation number (evaluations written
   before validation sets), the cell falls back to the lowest test score and says so
   (`selected_by`: "validation" | "test (no validation recorded)").
4. The cell's metric is the chosen configuration's TEST score; `metric_ci` = [low, high] is
   the bootstrap interval over its seeds' numbers (report/intervals.py: the 5% to 95%
   quantiles of 1,000 resampled means; a diverged seed counts as chance), None with fewer
   than two seeds.
5. chance = the zero predictor's tail error on the same prompts (the mean over the
   task's evaluations), or the task's trivial error (its catalog entry's `chance`) where
   no zero baseline ran.
6. fails if metric >= FAIL_FRACTION * chance; else check if
   metric <= max(CHECK_RATIO * best_other, best_other + CHECK_SLACK * chance), with
   best_other the lowest metric of the other architectures in the task (the ratio
   judges errors far from zero; the slack keeps two near-zero errors, say 1e-4 and
   1e-3, on par); else gap. An architecture alone in its task is check unless it fails.
7. Convergence (evaluation/convergence.py): a run is "not converged" when a least-squares
   line through its logged training losses over the last 10% of its steps falls by more than
   2% of their mean, at least 3 standard errors below zero (its evaluation's `convergence`,
   else computed from the run's metrics.jsonl entries when `training` is given; too few
   logged losses: unknown). A cell whose chosen configuration has a non-diverged seed not
   converged gets `converged: false` and a "not converged" mark; a verdict of fails or gap
   becomes "not converged" (the error of a run still learning says nothing final: never
   called a failure), which counts neither as agreeing nor as disagreeing with the study
   (`agrees`: None). A check stays check, with the mark. `converged` is True when every
   non-diverged seed converged, None when some are unknown.
"""
from __future__ import annotations

import json

from icl.evaluation import convergence as _convergence
from icl.report import intervals
from icl.tasks.catalog import TASKS
from icl.run import Run
from icl.report.numbers import is_number

FAIL_FRACTION = 0.75   # at or above 75% of chance: the model did not learn the task
CHECK_RATIO = 1.5      # within 1.5x the best other architecture: on par
CHECK_SLACK = 0.05     # ... or within 5% of chance of it (errors near zero)

NOT_CONVERGED = "not converged"
VERDICTS = ("check", "gap", "fails", NOT_CONVERGED)
# ↘: the training loss still going down
SYMBOLS = {"check": "\u2713", "gap": "\u25b3", "fails": "\u2717", NOT_CONVERGED: "\u2198", None: "\u2014"}
SELECTED_BY_VALIDATION = "validation"
SELECTED_BY_TEST = "test (no validation recorded)"

RULES = (
    "A run scores its evaluation's tail error: the mean error over the last quarter of "
    "prompt positions (token MQAR: over every query position), on the test prompts; its "
    "validation score is the same on the evaluation's validation prompts (a seed stream of "
    "their own, never the test prompts).",
    "A configuration (one point of the spec's sweep: a learning rate or other swept value) "
    "scores the mean over its seeds, on the test and on the validation prompts; a diverged "
    "seed counts as chance.",
    "A cell takes the configuration with the lowest validation score (the study takes each "
    "cell's best learning rate); where an evaluation has no validation score (written before "
    "validation sets), the lowest test score, and the cell says so.",
    "A cell's metric is that configuration's test score, with its "
    f"{intervals.LEVEL} bootstrap interval over seeds in brackets (none with one seed).",
    "chance = the zero predictor's tail error on the same prompts (the task's trivial "
    "error where no zero baseline ran).",
    f"fails: metric >= {FAIL_FRACTION:g} x chance.",
    f"check: otherwise, metric <= max({CHECK_RATIO:g} x best other, best other + "
    f"{CHECK_SLACK:g} x chance), best other = the lowest metric of the other architectures "
    "in the task; an architecture alone in its task is check unless it fails.",
    "gap: neither.",
    f"not converged: a seed of the chosen configuration (not diverged) whose training loss "
    f"still fell over the last {_convergence.TAIL_FRACTION:.0%} of its steps (a least-squares "
    f"line falling by more than {_convergence.MIN_DROP:.0%} of the mean loss there, at least "
    f"{_convergence.MIN_T:g} standard errors below zero). Such a cell is marked; a fails or gap "
    "becomes 'not converged' (never called a failure: trained longer it may learn), which "
    "counts neither as agreeing nor as disagreeing with the study; a check stays check.",
)

# The study's own marks (Park et al. 2024, Table 1 and its text), keyed by the spec's
# task and model names: triangle = gap, cross = fails. Others: null (not reported).
_ALL_CHECK = {"transformer": "check", "mamba": "check", "mambaformer": "check"}
PAPER_VERDICTS: dict[str, dict[str, str]] = {
    "linear_regression": dict(_ALL_CHECK),
    "sparse_linear_regression": dict(_ALL_CHECK),
    "relu_2nn_regression": dict(_ALL_CHECK),
    "decision_tree": {"transformer": "check", "mamba": "gap", "mambaformer": "check"},
    "orthogonal_outlier_regression": {"transformer": "check", "mamba": "gap", "mambaformer": "check"},
    "many_outlier_regression": {"transformer": "gap", "mamba": "check", "mambaformer": "check"},
    "sparse_parity": {"transformer": "fails", "mamba": "check", "mambaformer": "check",
                      "standard_hybrid": "fails"},
    "chain_of_thought": dict(_ALL_CHECK),
    "vector_mqar": {"transformer": "check", "mamba": "fails", "mambaformer": "check"},
}

# Display order of the study's architectures; others follow in first-seen order.
MODEL_ORDER = ("transformer", "mamba", "s4", "s4_mamba", "standard_hybrid", "mambaformer")


def paper_verdict(task: str, model: str, kind: str | None = None) -> str | None:
    """The study's mark for a cell (by the spec's task name, else the task kind), or None."""
    marks = PAPER_VERDICTS.get(task)
    if marks is None and kind is not None:
        marks = PAPER_VERDICTS.get(kind)
    return (marks or {}).get(model)


def chance_error(task_evals: list[dict], task_config: dict | None = None) -> float:
    """The error of a model that learned nothing: the zero predictor's tail, else the task's trivial error."""
    zeros = [((e.get("summary") or {}).get("baselines_tail") or {}).get("zero") for e in task_evals
             if e.get("state") == "done"]
    zeros = [z for z in zeros if is_number(z)]
    if zeros:
        return sum(zeros) / len(zeros)
    kind = TASKS.get((task_config or {}).get("kind"))
    if kind is None:
        return 1.0   # the study's normalisation puts the zero predictor at about 1
    return float(kind.chance(kind.with_defaults(task_config)))


def group(evals: list[dict], runs: list[Run]) -> dict:
    """{task: {model: [config, ...]}}: each config is one sweep point with its evaluations.

    config = {"key", "experiment", "sweep", "lr", "steps", "evals": [...], "runs": [...]};
    an evaluation is matched to its run by (run_id, eval_id), else by run_id."""
    by_pair = {(r.id, r.eval_id): r for r in runs}
    by_id = {r.id: r for r in runs}
    table: dict[str, dict[str, dict[str, dict]]] = {}
    for ev in evals:
        # An evaluation of a run the table does not hold (a hand-picked file) is placed by what it
        # records; one of a run it holds by the spec's names, which may differ from those the
        # evaluation recorded (names are not part of a run's id: a renamed model, or a probe spec
        # that names a run of another spec anew).
        run = by_pair.get((ev.get("run_id"), ev.get("eval_id"))) or by_id.get(ev.get("run_id"))
        task = run.task if run else ev.get("task")
        model = run.model if run else ev.get("model_name")
        if task is None or model is None:
            continue   # not an evaluation of a known run: nothing to place
        sweep = (run.sweep if run else ev.get("sweep")) or {}
        experiment = run.experiment if run else ev.get("experiment")
        train = run.train if run else {}
        key = config_key(experiment, sweep)
        configs = table.setdefault(task, {}).setdefault(model, {})
        config = configs.setdefault(key, {
            "key": key, "experiment": experiment, "sweep": sweep,
            "lr": train.get("lr"), "steps": train.get("steps"),
            "task_config": run.task_config if run else None, "evals": [], "runs": []})
        config["evals"].append(ev)
        if run:
            config["runs"].append(run)
    return {task: {model: list(configs.values()) for model, configs in models.items()}
            for task, models in table.items()}


def config_key(experiment, sweep: dict) -> str:
    """Names one sweep point of one experiment (a cell may have several)."""
    return json.dumps([experiment, sweep], sort_keys=True, default=str)


def is_diverged(ev: dict) -> bool:
    return ev.get("state") == "diverged" or (ev.get("train_status") or {}).get("state") == "diverged"


def tail(ev: dict) -> float | None:
    """A finished evaluation's tail error, or None (diverged, or no value)."""
    if is_diverged(ev) or ev.get("state") != "done":
        return None
    value = (ev.get("summary") or {}).get("model_tail")
    return float(value) if is_number(value) else None


def validation_tail(ev: dict) -> float | None:
    """A finished evaluation's tail error on its validation prompts, or None (diverged, or an
    evaluation written before validation sets)."""
    if is_diverged(ev) or ev.get("state") != "done":
        return None
    value = (ev.get("validation") or {}).get("model_tail")
    return float(value) if is_number(value) else None


def score_config(config: dict, chance: float) -> dict:
    """A sweep point's score: the mean over seeds, a diverged seed counting as chance, on the
    test prompts ("metric") and on the validation prompts ("validation": None where a seed
    with a test number has no validation number)."""
    values = [tail(ev) for ev in config["evals"]]
    diverged = sum(1 for ev in config["evals"] if is_diverged(ev))
    scored = [v for v in values if v is not None]
    counted = scored + [chance] * diverged
    checks = [validation_tail(ev) for ev, v in zip(config["evals"], values) if v is not None]
    validated = None
    if counted and all(v is not None for v in checks):
        validated = (sum(checks) + chance * diverged) / len(counted)
    return {"metric": sum(counted) / len(counted) if counted else None,
            "validation": validated, "seeds": len(scored), "diverged": diverged}


def choose(scored: list[tuple[dict, dict]]) -> tuple[dict, dict, str] | None:
    """Rule 3: (score, config, selected_by) of the configuration a cell takes among
    [(score_config's score, config), ...]: the lowest validation score, or the lowest test
    score where some configuration has no validation score; None if none has a value."""
    usable = [(s, c) for s, c in scored if s["metric"] is not None]
    if not usable:
        return None
    if all(s["validation"] is not None for s, _ in usable):
        score, config = min(usable, key=lambda sc: sc[0]["validation"])
        return score, config, SELECTED_BY_VALIDATION
    score, config = min(usable, key=lambda sc: sc[0]["metric"])
    return score, config, SELECTED_BY_TEST


def best_configs(evals: list[dict], runs: list[Run]) -> dict:
    """{task: {model: the chosen config (group()'s dict plus "score")}} under rules 2-3."""
    best: dict[str, dict[str, dict]] = {}
    for task, models in group(evals, runs).items():
        chance = _task_chance(models)
        for model, configs in models.items():
            chosen = choose([(score_config(c, chance), c) for c in configs])
            if chosen is None:
                continue
            score, config, _ = chosen
            best.setdefault(task, {})[model] = {**config, "score": score}
    return best


def run_convergence(ev: dict, training: dict[str, list[dict]] | None = None) -> dict | None:
    """A run's training convergence: its evaluation's record ({"state", "drop", "t", "points"}),
    else computed from its metrics.jsonl entries in `training` (run id -> entries); None when
    neither is there."""
    recorded = ev.get("convergence")
    if isinstance(recorded, dict) and recorded.get("state") in _STATES:
        return recorded
    entries = (training or {}).get(ev.get("run_id"))
    if not entries:
        return None
    return _convergence.run_convergence(entries).as_dict()


_STATES = ("converged", NOT_CONVERGED, "unknown")


def verdicts(evals: list[dict], runs: list[Run], training: dict[str, list[dict]] | None = None) -> dict:
    """Table 1: {task: {model: cell}}, tasks and models in display order (see the module doc).

    training: run id -> its metrics.jsonl entries, where an evaluation does not record its
    run's convergence (evaluations written before it did); None: such runs are unknown."""
    grouped = group(evals, runs)
    # Cells with runs but no evaluation yet appear with a null verdict; the seeds each sweep
    # point has in the run table show the ones not evaluated yet.
    planned: dict[tuple[str, str], dict[str, list]] = {}
    for run in runs:
        grouped.setdefault(run.task, {}).setdefault(run.model, [])
        key = config_key(run.experiment, run.sweep or {})
        planned.setdefault((run.task, run.model), {}).setdefault(key, []).append(run.seed)
    kinds = {r.task: r.kind for r in runs}
    table: dict[str, dict[str, dict]] = {}
    for task in ordered_tasks(grouped, runs):
        models = grouped[task]
        chance = _task_chance(models)
        cells = {}
        for model in ordered_models(models):
            cells[model] = _cell(models[model], chance, paper_verdict(task, model, kinds.get(task)),
                                 planned.get((task, model), {}), training)
        _judge(cells, chance)
        table[task] = cells
    return table


def _cell(configs: list[dict], chance: float, paper: str | None, planned_seeds: dict[str, list],
          training: dict[str, list[dict]] | None = None) -> dict:
    """One cell; planned_seeds: {config key: the seeds the run table has for it}."""
    scored = [(score_config(c, chance), c) for c in configs]
    cell = {"verdict": None, "paper": paper, "metric": None, "metric_ci": None, "seeds": 0, "best_lr": None,
            "steps": None, "steps_done": None, "chance": chance, "best_other": None,
            "agrees": None, "diverged": sum(s["diverged"] for s, _ in scored),
            "evaluated": sum(len(c["evals"]) for c in configs),
            "sweep": {"lr": sorted({c["lr"] for c in configs if c["lr"] is not None})},
            "configs": [{"experiment": c["experiment"], "sweep": c["sweep"], "lr": c["lr"],
                         "steps": c["steps"], **s} for s, c in scored],
            "best_sweep": None, "selected_by": None, "validation": None, "converged": None,
            "rule_verdict": None, "note": "", "seed_metrics": [], "reason": ""}
    chosen = choose(scored)
    if chosen is None:
        cell["note"] = "not evaluated yet" if not configs else "no evaluation has a value"
        return cell
    score, config, selected_by = chosen
    done = [_steps_done(ev) for ev in config["evals"] if not is_diverged(ev)]
    done = [d for d in done if d is not None]
    cell["seed_metrics"] = _seed_metrics(config, planned_seeds.get(config["key"], []), training)
    counted = [chance if e["state"] == "diverged" else e["tail"] for e in cell["seed_metrics"]
               if e["state"] in ("done", "diverged")]
    if len(counted) >= 2:
        _, low, high = intervals.seed_interval(counted)
        cell["metric_ci"] = [low, high]
    cell.update(metric=score["metric"], seeds=score["seeds"], best_lr=config["lr"],
                steps=config["steps"] if config["steps"] is not None else _steps_planned(config),
                steps_done=min(done) if done else None, best_sweep=config["sweep"],
                selected_by=selected_by, validation=score["validation"],
                converged=_converged(cell["seed_metrics"]))
    if score["seeds"] == 0:
        cell["note"] = "every run diverged"
    elif cell["diverged"]:
        cell["note"] = f"{cell['diverged']} run(s) diverged"
    cell["stale_tail"] = _stale_tail(config)   # said in the note and, by _judge, in the reason
    if cell["stale_tail"]:
        cell["note"] = "; ".join(n for n in (cell["note"], cell["stale_tail"]) if n)
    return cell


def _stale_tail(config: dict) -> str:
    """A note where the config's evaluations averaged another share of positions than the
    task's rule (TaskKind.tail_fraction) now takes: written before the rule changed (token
    MQAR averaged the last quarter until 2026-12-06); their number is shown as written."""
    kind = TASKS.get((config.get("task_config") or {}).get("kind"))
    if kind is None:
        return ""
    written = {(ev.get("summary") or {}).get("tail_fraction") for ev in config["evals"]} - {None}
    other = sorted(f for f in written if f != kind.tail_fraction)
    if not other:
        return ""
    return (f"evaluated over the last {other[0]:.0%} of positions, before the rule took "
            f"{kind.tail_fraction:.0%}")


def _converged(seed_metrics: list[dict]) -> bool | None:
    """Rule 7: False if a finished seed's training had not converged, True if every one had,
    else None (some unknown, or none finished)."""
    states = [e["convergence"] for e in seed_metrics if e["state"] in ("done", "no value")]
    if NOT_CONVERGED in states:
        return False
    return True if states and all(s == "converged" for s in states) else None


def _judge(cells: dict[str, dict], chance: float) -> None:
    """Rules 6 and 7, in place: the verdict of every cell of one task."""
    metrics = {m: c["metric"] for m, c in cells.items() if c["metric"] is not None}
    for model, cell in cells.items():
        metric = cell["metric"]
        if metric is None:
            continue
        others = [v for m, v in metrics.items() if m != model]
        best_other = min(others) if others else None
        cell["best_other"] = best_other
        fail_line = FAIL_FRACTION * chance
        bar = None if best_other is None else max(CHECK_RATIO * best_other, best_other + CHECK_SLACK * chance)
        m, line = _num_pair(metric, fail_line)
        below_fail = f"{m} < {FAIL_FRACTION:g} x chance {format_number(chance)} = {line}"
        if metric >= fail_line:
            verdict = "fails"
            reason = f"{m} >= {FAIL_FRACTION:g} x chance {format_number(chance)} = {line}"
        elif bar is None:
            verdict = "check"
            alone = "alone in its task" if len(cells) == 1 else "no other architecture evaluated yet"
            reason = f"{below_fail}; {alone}"
        else:
            verdict = "check" if metric <= bar else "gap"
            m, limit = _num_pair(metric, bar)
            reason = (f"{below_fail}; {m} {'<=' if verdict == 'check' else '>'} max({CHECK_RATIO:g} x best "
                      f"other {format_number(best_other)}, best other + {CHECK_SLACK:g} x chance) = {limit}")
        if cell.get("stale_tail"):
            reason += f"; {cell['stale_tail']}"
        cell["rule_verdict"] = verdict
        if cell["converged"] is False:
            falling = [e for e in cell["seed_metrics"] if e["convergence"] == NOT_CONVERGED]
            seeds = ", ".join(f"s{e['seed']}" if e["seed"] is not None else "s?" for e in falling)
            reason += (f"; training loss of {seeds} still falling over the last "
                       f"{_convergence.TAIL_FRACTION:.0%} of steps")
            if verdict != "check":
                reason += f": {NOT_CONVERGED}, not {verdict}"
                verdict = NOT_CONVERGED
        cell["verdict"] = verdict
        cell["reason"] = reason
        cell["agrees"] = None if cell["paper"] is None or verdict == NOT_CONVERGED else verdict == cell["paper"]


def ordered_tasks(tasks, runs: list[Run]) -> list[str]:
    """Tasks in the run table's order (the spec's), then any others in first-seen order."""
    order = list(dict.fromkeys(r.task for r in runs))
    return [t for t in order if t in tasks] + [t for t in tasks if t not in order]


def ordered_models(models) -> list[str]:
    """The study's architectures in its order, then others in first-seen order."""
    return [m for m in MODEL_ORDER if m in models] + [m for m in models if m not in MODEL_ORDER]


def _task_chance(models: dict[str, list[dict]]) -> float:
    task_evals = [ev for configs in models.values() for c in configs for ev in c["evals"]]
    task_config = next((c["task_config"] for configs in models.values() for c in configs
                        if c.get("task_config")), None)
    return chance_error(task_evals, task_config)


def _steps_done(ev: dict) -> int | None:
    status = ev.get("train_status") or {}
    value = status.get("steps_done", ev.get("trained_steps"))
    return int(value) if isinstance(value, (int, float)) else None


def _steps_planned(config: dict) -> int | None:
    for ev in config["evals"]:
        planned = (ev.get("train_status") or {}).get("steps_planned")
        if planned is not None:
            return int(planned)
    return None


def _seed_metrics(config: dict, planned: list, training: dict[str, list[dict]] | None = None) -> list[dict]:
    """Each seed of a sweep point: {"seed", "tail", "validation", "state", "convergence"}, state
    done, diverged, no value (an evaluation without a finite tail: left out of the score) or
    pending (in the run table, not evaluated yet); convergence the run's training convergence
    state (rule 7: converged, not converged, unknown; None where diverged or pending); by seed."""
    entries, seen = [], set()
    for ev in config["evals"]:
        value = tail(ev)
        state = "diverged" if is_diverged(ev) else ("done" if value is not None else "no value")
        found = None if state == "diverged" else run_convergence(ev, training)
        entries.append({"seed": ev.get("seed"), "tail": value, "validation": validation_tail(ev), "state": state,
                        "convergence": None if state == "diverged" else (found or {}).get("state", "unknown")})
        seen.add(ev.get("seed"))
    entries += [{"seed": seed, "tail": None, "validation": None, "state": "pending", "convergence": None}
                for seed in planned if seed not in seen]
    return sorted(entries, key=lambda e: (e["seed"] is None, e["seed"] or 0))


def format_number(value: float, digits: int = 3) -> str:
    """A number as the report prints it: `digits` significant digits, scientific when tiny or huge."""
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def _num_pair(a: float, b: float) -> tuple[str, str]:
    """Two numbers with enough digits that unequal values never print alike."""
    digits = 3
    while digits < 12 and a != b and format_number(a, digits) == format_number(b, digits):
        digits += 1
    return format_number(a, digits), format_number(b, digits)
