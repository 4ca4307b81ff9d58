"""Entry points for the pipeline: load a study's results from its run folders, plot, write the report.

    build_report(run_table, runs_dir, out_dir, title, replot=True) -> {"html", "md", "json", "plots"}
    plot_only(run_table, runs_dir, task, out_png) -> Path   # `icl plot`: one task's figure
    load_results(run_table, runs_dir) -> (evals, statuses)
    load_states(run_table, runs_dir) -> {run id: icl.runfolder.RunState}

Run folders are read through icl.runfolder (status.json, eval-{eval_id}.json): a malformed
file is an error naming it, and each run's state is runfolder.run_state's, the one `icl
status` prints. Runs not trained or evaluated yet are not an error: the report lists them
as missing.

Plots: one figure per task, out_dir/plots/{task}.png with its .svg and .pdf beside it.
build_report draws them all, or with replot=False (the pipeline, whose plot rule has drawn
them) embeds the files it finds. The downloads (icl.report.exports) are written with the report.
"""
from __future__ import annotations

from pathlib import Path

from icl import runfolder
from icl.errors import IclError
from icl.run import Run


class ReportError(IclError):
    """The report cannot be built as asked (no runs, unreadable result file, ...)."""


def load_results(run_table: list[Run], runs_dir: Path) -> tuple[list[dict], list[dict]]:
    """(evaluations, statuses) found for the runs of `run_table` under `runs_dir`, as dicts."""
    return _results(load_states(run_table, runs_dir))


def load_states(run_table: list[Run], runs_dir: Path) -> dict[str, runfolder.RunState]:
    """Each run's state and records from its folder (runfolder.run_state)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ReportError(f"runs folder {runs_dir} does not exist; train and evaluate the runs first")
    return {run.id: runfolder.run_state(runs_dir, run.id, run.eval_id) for run in run_table}


def _results(states: dict[str, runfolder.RunState]) -> tuple[list[dict], list[dict]]:
    evals = [s.evaluation.data for s in states.values() if s.evaluation is not None]
    statuses = [{**s.status.data, "run_id": s.status.run_id or run_id}
                for run_id, s in states.items() if s.status is not None]
    return evals, statuses


def plot_only(run_table: list[Run], runs_dir: Path, task: str, out_png: Path) -> Path:
    """Plot one task of the study (the runs whose `task` is `task`) into `out_png`, with an SVG
    and a PDF of the same name beside it."""
    from icl.report.plots import plot_task

    runs = [r for r in _check(run_table) if r.task == task]
    if not runs:
        known = sorted({r.task for r in run_table})
        raise ReportError(f"no run of task {task!r}; tasks: {', '.join(known)}")
    evals, _ = load_results(runs, runs_dir)
    return plot_task(evals, runs, out_png)


def build_report(run_table: list[Run], runs_dir: Path, out_dir: Path, title: str, *,
                 replot: bool = True) -> dict:
    """Write report.html, report.md, table1.json and the downloads into `out_dir`, with the
    plots of out_dir/plots/{task}.png (and .svg, .pdf): drawn here, or with replot=False only
    embedded and linked where they exist."""
    from icl.report.plots import plot_task
    from icl.report.render import write_report

    runs = _check(run_table)
    out_dir = Path(out_dir)
    states = load_states(runs, runs_dir)
    evals, statuses = _results(states)
    plots: dict[str, Path | None] = {}
    for task in dict.fromkeys(r.task for r in runs):
        png = out_dir / "plots" / f"{task}.png"
        task_runs = [r for r in runs if r.task == task]
        ids = {r.id for r in task_runs}
        task_evals = [e for e in evals if e.get("run_id") in ids]
        if not replot:
            plots[task] = png if png.exists() else None
        elif any(e.get("state") == "done" for e in task_evals):
            plots[task] = plot_task(task_evals, task_runs, png)
        else:
            plots[task] = None
    # Each run's training curve, for the report's download (runs not started yet have none).
    training = {r.id: runfolder.read_metrics(Path(runs_dir) / r.id) for r in runs}
    paths = write_report(evals, runs, statuses, plots, out_dir, title,
                         states={run_id: s.state for run_id, s in states.items()}, training=training,
                         runs_dir=Path(runs_dir))
    return {**paths, "plots": plots}


def _check(run_table) -> list[Run]:
    if not isinstance(run_table, list) or not run_table:
        raise ReportError("the report needs a non-empty list of runs (the compiler's runs_of)")
    for run in run_table:
        if not isinstance(run, Run) or run.task is None or run.model is None:
            raise ReportError("every run of a report is a compiled run with its task and model names "
                              "(icl.compiler.runs.runs_of)")
    return run_table
