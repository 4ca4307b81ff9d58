"""Where a study stands: each run's state from its folder, for `icl status`.

    study_progress(run_table, runs_dir) -> rows   # one dict per run
    render_progress(rows) -> str                   # a table per experiment and a summary line

A run's state comes from icl.runfolder.run_state, the rule the report uses too:
- diverged      status.json (or its placeholder evaluation) says diverged
- evaluated     eval-{eval_id}.json holds a finished evaluation
- trained       status.json says done (not evaluated yet)
- in progress   no status.json, but logged steps (metrics.jsonl): a job running now, or one
                killed that resumes from its checkpoint; told apart by how long ago it last
                logged against its logging interval, with the time left at its recent speed
- not started   nothing yet
A malformed file of a run folder is an error naming it; so is a runs folder that is not there.

Reads only small JSON files (no torch), so it is quick on a study of thousands of runs.
"""
from __future__ import annotations

import time
from pathlib import Path

from icl import runfolder
from icl.runfolder import STATES
from icl.run import Run
RECENT_LOGS = 6   # a run's speed: over its last five logging intervals


def study_progress(run_table: list[Run], runs_dir: Path, now: float | None = None) -> list[dict]:
    """One row per run: id, experiment, model, task, seed, state, step, steps; a run in progress
    also has steps_per_s (its recent speed, or None), logged_s_ago and log_every."""
    runs_dir = runfolder.require_runs_dir(runs_dir)
    now = time.time() if now is None else now
    rows = []
    for run in run_table:
        steps = int(run.train.get("steps") or 0)
        found = runfolder.run_state(runs_dir, run.id, run.eval_id, recent=RECENT_LOGS)
        state, step = found.state, found.step
        extra = {}
        if state == "in progress":
            extra = {"steps_per_s": _recent_rate(list(found.recent)),
                     "logged_s_ago": max(0.0, now - found.logged_at),
                     "log_every": int(run.train["log_every"])}  # the compiler's run table: never absent
        if found.status is not None and isinstance(found.status.data.get("stopped_early"), dict):
            extra["stopped_early"] = found.status.data["stopped_early"]  # train.stop_error ended it
        rows.append({"id": run.id, "experiment": run.experiment, "model": run.model,
                     "task": run.task, "seed": run.seed, "sweep": run.sweep or {},
                     "state": state, "step": step or 0, "steps": steps, **extra})
    return rows


def in_progress_note(row: dict) -> str:
    """For a run in progress: the time left at its last speed while it logs on schedule, else
    how long ago it last logged (a job killed, or one waiting to resume)."""
    rate, ago = row.get("steps_per_s"), row.get("logged_s_ago")
    if ago is None:
        return ""
    # on schedule: within three logging intervals at its speed (at least two minutes)
    if rate and ago <= max(120.0, 3 * row["log_every"] / rate):
        return f"~{_duration(max(0, row['steps'] - row['step']) / rate)} left at {rate:,.0f} steps/s"
    return f"last logged {_duration(ago)} ago"


def stopped_note(row: dict) -> str:
    """For a run that train.stop_error ended: 'stopped: error 0.0042 <= 0.01'."""
    stopped = row.get("stopped_early")
    if not stopped:
        return ""
    error, limit = stopped.get("error"), stopped.get("stop_error")
    if isinstance(error, (int, float)) and isinstance(limit, (int, float)):
        return f"stopped: error {error:.3g} <= {limit:g}"
    return "stopped early"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def render_progress(rows: list[dict]) -> str:
    """Runs by experiment (id, model, seed, sweep, state, steps), then a summary line."""
    lines = []
    table = [("experiment", "id", "model", "seed", "sweep", "state", "steps")]
    for r in rows:
        sweep = " ".join(f"{k}={v}" for k, v in r["sweep"].items()) or "-"
        done = f"{r['step']:,} / {r['steps']:,}" if r["state"] != "not started" else f"0 / {r['steps']:,}"
        note = in_progress_note(r) if r["state"] == "in progress" else stopped_note(r)
        if note:
            done += f" ({note})"
        table.append((str(r["experiment"]), r["id"], str(r["model"]), str(r["seed"]), sweep, r["state"], done))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    previous = None
    for row in table:
        if previous is not None and row[0] != previous and previous != "experiment":
            lines.append("")
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        previous = row[0]
    lines.append("")
    lines.append(summary(rows))
    return "\n".join(lines)


def steps_left(row: dict) -> int:
    """Training steps a run still needs (an unfinished one from its last logged step, which
    assumes its checkpoint is still there); none once trained or diverged."""
    return max(0, row["steps"] - row["step"]) if row["state"] in ("in progress", "not started") else 0


def summary(rows: list[dict]) -> str:
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in STATES}
    left = sum(steps_left(r) for r in rows)
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    return f"{len(rows)} runs: " + ", ".join(parts) + f"; {left:,} training steps left"


def _recent_rate(records: list[dict]) -> float | None:
    """Steps per second over the last logged intervals, from their steps and training clock
    (wall_s); else the last line's own steps_per_s (the mean since its process started, slow to
    follow a GPU that other jobs join or leave). None if neither is there."""
    first, last = records[0], records[-1]
    clock = [r.get("wall_s") for r in (first, last)]
    if all(isinstance(c, (int, float)) for c in clock) and clock[1] > clock[0] and last["step"] > first["step"]:
        return (last["step"] - first["step"]) / (clock[1] - clock[0])
    rate = last.get("steps_per_s")
    return float(rate) if isinstance(rate, (int, float)) and rate > 0 else None
