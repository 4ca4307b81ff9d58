"""Time to accuracy: how long a run trained until its logged error first reached a threshold.

    crossings(entries, thresholds=THRESHOLDS) -> {...} | None
    run_time_to_accuracy(run, ev, status, entries) -> {...} | None   # one run, for its page
    study_rows(runs, evals, statuses, training) -> [{...}]           # the runs that logged errors
    csv_rows(rows) -> (COLUMNS, [{...}])                             # time_to_accuracy.csv
    threshold_label(threshold, accuracy) -> "98%" | "error <= 0.02"

The numbers come from a run's metrics.jsonl (icl.runfolder.read_metrics, the reader the rest
of the report uses): with `train.log_error N` (N > 0) each logged line carries `error`, the
task's error on N fresh prompts after that step, beside `step` and `wall_s` (seconds of
training so far, the error scoring itself included). A threshold is reached at the first
logged line, in step order, whose error is at or below it; its step and wall_s are the
time to it. Lines in between are not logged, so the true crossing lies between the line
before and that one. Where no line reaches it: "not reached", with the best logged error.
A run without any logged error has no time to accuracy (None: no section).

For a task whose evaluation reports accuracy (the evaluation JSON's "reports_accuracy"; the
task class's attribute where the run is not evaluated yet) a threshold reads as accuracy
1 - error: 0.02 is "98%".
"""
from __future__ import annotations

from icl.report.numbers import is_number

THRESHOLDS = (0.10, 0.02, 0.01)   # error thresholds; with accuracy: 90%, 98%, 99%

COLUMNS = ("run_id", "experiment", "task", "architecture", "seed", "lr", "device", "log_error",
           "reports_accuracy", "threshold_error", "threshold_accuracy", "reached", "step", "wall_s",
           "error", "best_error", "best_step", "best_wall_s", "logged_errors", "last_step")


def crossings(entries: list[dict], thresholds=THRESHOLDS) -> dict | None:
    """Each threshold's first logged (step, wall_s) with error <= threshold.

    entries: metrics.jsonl's lines (dicts with an integer "step"). Returns None where no line
    has a finite "error"; else {"logged": how many lines have one, "last_step": the last of
    them, "best": {"error", "step", "wall_s"} (the lowest logged error, its first line),
    "thresholds": [{"threshold", "reached", "step", "wall_s", "error"} per threshold, in the
    order given]} (step, wall_s and error None where not reached; wall_s None where the line
    has none)."""
    logged = sorted((e for e in entries if is_number(e.get("error")) and is_number(e.get("step"))),
                    key=lambda e: e["step"])   # sorted() is stable: equal steps keep file order
    if not logged:
        return None
    best = min(logged, key=lambda e: e["error"])   # min keeps the first of equal errors
    found = []
    for threshold in thresholds:
        first = next((e for e in logged if e["error"] <= threshold), None)
        found.append({"threshold": threshold, "reached": first is not None,
                      "step": None if first is None else first["step"],
                      "wall_s": None if first is None or not is_number(first.get("wall_s")) else first["wall_s"],
                      "error": None if first is None else first["error"]})
    return {"logged": len(logged), "last_step": logged[-1]["step"],
            "best": {"error": best["error"], "step": best["step"],
                     "wall_s": best["wall_s"] if is_number(best.get("wall_s")) else None},
            "thresholds": found}


def accuracy_percent(threshold: float) -> float:
    """The accuracy an error threshold stands for, in percent: 0.02 -> 98.0."""
    return round((1.0 - threshold) * 100.0, 6)


def threshold_label(threshold: float, accuracy: bool) -> str:
    """'98%' where the task reports accuracy, else 'error <= 0.02'."""
    if accuracy:
        return f"{accuracy_percent(threshold):g}%"
    return f"error <= {threshold:g}"


def error_text(error, accuracy: bool) -> str:
    """A logged error as the section shows it: 'accuracy 97.3%' or 'error 0.0271'."""
    if not is_number(error):
        return "\u2014"
    if accuracy:
        return f"accuracy {(1.0 - error) * 100:.1f}%"
    return f"error {error:.3g}"


def seconds_text(value) -> str:
    """Seconds of training: '12.3 s', '1,234 s'; '—' for none."""
    if not is_number(value):
        return "\u2014"
    return f"{value:.1f} s" if value < 100 else f"{value:,.0f} s"


def reports_accuracy(ev: dict | None, task_config: dict | None) -> bool:
    """Whether the run's task reports accuracy (1 - error): its evaluation's "reports_accuracy",
    or, where the run has no evaluation saying so, its task class's attribute (False where the
    task kind is unknown)."""
    if ev and isinstance(ev.get("reports_accuracy"), bool):
        return ev["reports_accuracy"]
    from icl.tasks.catalog import TASKS

    kind = (task_config or {}).get("kind")
    if kind not in TASKS:
        return False
    from icl.tasks.registry import task_class   # imports torch: only for runs not evaluated yet

    return bool(getattr(task_class(kind), "reports_accuracy", False))


def run_time_to_accuracy(record: dict, ev: dict | None, status: dict | None,
                         entries: list[dict]) -> dict | None:
    """One run's time to accuracy as its page and the report show it; None without a logged
    error. record: the run as a dict (Run.to_dict); ev: its evaluation (or {}); status: its
    status.json (or {}); entries: its metrics.jsonl lines."""
    found = crossings(entries or [])
    if found is None:
        return None
    accuracy = reports_accuracy(ev, record.get("task_config"))
    train = record.get("train") or {}
    thresholds = [{**t, "label": threshold_label(t["threshold"], accuracy),
                   "seconds_text": seconds_text(t["wall_s"]) if t["reached"] else "not reached",
                   "step_text": f"{t['step']:,}" if t["reached"] else "\u2014",
                   "error_text": error_text(t["error"], accuracy) if t["reached"] else "\u2014"}
                  for t in found["thresholds"]]
    return {"accuracy": accuracy, "logged": found["logged"], "last_step": found["last_step"],
            "log_error": train.get("log_error"), "device": (status or {}).get("device"),
            "best": {**found["best"], "text": error_text(found["best"]["error"], accuracy),
                     "seconds_text": seconds_text(found["best"]["wall_s"])},
            "thresholds": thresholds, "reached_all": all(t["reached"] for t in thresholds)}


def study_rows(runs, evals: list[dict], statuses: dict, training: dict[str, list[dict]] | None) -> list[dict]:
    """The runs that logged errors, in the run table's order: each with its id, experiment,
    model, task, seed, lr and run_time_to_accuracy's numbers ("tta")."""
    eval_of = {(e.get("run_id"), e.get("eval_id")): e for e in evals}
    eval_by_run = {e.get("run_id"): e for e in evals}
    rows = []
    for run in runs:
        entries = (training or {}).get(run.id) or []
        if not any(is_number(e.get("error")) for e in entries):
            continue
        ev = eval_of.get((run.id, run.eval_id)) or eval_by_run.get(run.id) or {}
        record = {"task_config": run.task_config, "train": run.train}
        tta = run_time_to_accuracy(record, ev, statuses.get(run.id) or {}, entries)
        rows.append({"id": run.id, "experiment": run.experiment, "model": run.model, "task": run.task,
                     "seed": run.seed, "lr": (run.train or {}).get("lr"), "tta": tta})
    return rows


def headers(rows: list[dict], thresholds=THRESHOLDS) -> list[str]:
    """The study table's threshold headers: accuracy where every run's task reports it, the
    error where none does, both where they mix."""
    kinds = {row["tta"]["accuracy"] for row in rows}
    out = []
    for threshold in thresholds:
        if kinds == {True}:
            out.append(f"to {threshold_label(threshold, True)} accuracy")
        elif kinds == {False}:
            out.append(f"to {threshold_label(threshold, False)}")
        else:
            out.append(f"to {threshold_label(threshold, False)} ({threshold_label(threshold, True)} accuracy)")
    return out


def csv_rows(rows: list[dict]) -> tuple[tuple, list[dict]]:
    """study_rows' rows as time_to_accuracy.csv's: one row per (run, threshold), numbers as
    logged (full precision)."""
    out = []
    for row in rows:
        tta = row["tta"]
        for t in tta["thresholds"]:
            out.append({
                "run_id": row["id"], "experiment": row["experiment"], "task": row["task"],
                "architecture": row["model"], "seed": row["seed"], "lr": row["lr"], "device": tta["device"],
                "log_error": tta["log_error"], "reports_accuracy": tta["accuracy"],
                "threshold_error": t["threshold"],
                "threshold_accuracy": (1.0 - t["threshold"]) if tta["accuracy"] else None,
                "reached": t["reached"], "step": t["step"], "wall_s": t["wall_s"], "error": t["error"],
                "best_error": tta["best"]["error"], "best_step": tta["best"]["step"],
                "best_wall_s": tta["best"]["wall_s"], "logged_errors": tta["logged"],
                "last_step": tta["last_step"]})
    return COLUMNS, out
