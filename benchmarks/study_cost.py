"""GPU-hours of a study's training, from measured step times (benchmarks/train_step.py's JSON).

Each run costs its planned steps x the measured ms per step of its (architecture, task) at the
curriculum's final sizes (an upper bound: early curriculum stages are shorter prompts, and a run
that train.stop_error ends trains fewer steps). Over
G GPUs the runs are scheduled longest first onto the least-loaded GPU; the wall time is
that schedule's makespan, never less than the longest single run. With --pack K, the runs are
grouped as the pipeline groups them (runs of one model, prompt shape and length, K at a time);
a run in a pack costs the per-run step time measured in packs of K (a pack of 2 to K - 1 at
that rate too, an approximation), a run the grouping leaves alone its time measured alone,
and the schedule places the packs.

    python benchmarks/study_cost.py --spec specs/reduced/study.icl \\
        --steps benchmarks/results/train_step_reduced.json --out benchmarks/results/study_cost_reduced.md

With --runs-dir, only what is still to train there: each run's steps left as `icl status`
counts them (none once trained; an unfinished run from its last logged step, which assumes
its checkpoint is still there).

Torch-free: it needs only the compiler (the run table) and the JSON.
"""
from __future__ import annotations

import argparse
import heapq
import json
import sys
from pathlib import Path

from icl.run import Run


def step_times(records: list[dict], precision: str, pack: int = 1) -> dict[tuple[str, str], float]:
    """ms per step per run of the project's engine in packs of `pack` runs (1: a lone run), by
    (arch, task)."""
    return {(r["arch"], r["task"]): r["ms_per_step"] for r in records
            if r.get("impl") == "project" and r.get("pack") == pack and r.get("ms_per_step") is not None
            and r.get("precision", "fp32") == precision and r.get("task")}


def packs_of(costs: list[tuple[Run, float]], pack: int) -> list[float]:
    """GPU-hours of each pack the scheduler would train, grouped as it groups them (runs of one
    model, prompt shape and schedule, `pack` at a time: training/grouping.py); a pack's wall
    time is the sum of its runs' per-run shares."""
    from icl.training.grouping import group_runs

    hours = {run.id: h for run, h in costs}
    return [sum(hours[r.id] for r in group) for group in group_runs([run for run, _ in costs], pack)]


def packed_hours(runs: list[Run], records: list[dict], precision: str, pack: int,
                 steps_left: dict[str, int] | None = None) -> tuple[list[tuple[Run, float]], dict]:
    """(run, GPU-hours) of each run grouped as the pipeline groups them, `pack` at a time: a run
    in a pack at the per-run time measured in packs of `pack`, a run left alone at its time
    measured alone; and the ms per step each (arch, task) was costed at (a set of rates)."""
    from icl.training.grouping import group_runs

    groups = group_runs(runs, pack)
    alone = [r for g in groups if len(g) == 1 for r in g]
    packed = [r for g in groups if len(g) > 1 for r in g]
    costs, rates = [], {}
    for subset, k in ((alone, 1), (packed, pack)):
        if subset:
            times = step_times(records, precision, k)
            if not times:
                raise SystemExit(f"error: no project rows at pack {k} and precision {precision}")
            costs += run_hours(subset, times, steps_left)
            for r in subset:
                rates.setdefault((r.model, r.task), set()).add((k, times[(r.model, r.task)]))
    order = {r.id: i for i, r in enumerate(runs)}   # the spec's order: the tables break ties by it
    return sorted(costs, key=lambda c: order[c[0].id]), rates


def run_hours(runs: list[Run], times: dict[tuple[str, str], float],
              steps_left: dict[str, int] | None = None) -> list[tuple[Run, float]]:
    """(run, GPU-hours) of each run: its planned steps, or its steps_left[id] where given."""
    missing = sorted({(r.model, r.task) for r in runs} - set(times))
    if missing:
        raise SystemExit("error: no measured step time for " + ", ".join(f"{a} on {t}" for a, t in missing)
                         + "; run benchmarks/train_step.py with --spec and --task all first")
    return [(r, _steps(r, steps_left) * times[(r.model, r.task)] / 1000 / 3600) for r in runs]


def _steps(run: Run, steps_left: dict[str, int] | None) -> int:
    """The run's steps to cost: all it plans, or what is left of them where steps_left is given."""
    return steps_left[run.id] if steps_left is not None else int(run.train["steps"])


def steps_left(runs: list[Run], runs_dir: Path) -> dict[str, int]:
    """run id -> training steps still to run in runs_dir, as `icl status` counts them."""
    from icl.report import progress

    return {row["id"]: progress.steps_left(row) for row in progress.study_progress(runs, runs_dir)}


def makespan(hours: list[float], gpus: int) -> float:
    """Wall hours of the longest-first schedule of the runs on `gpus` GPUs."""
    loads = [0.0] * gpus
    heapq.heapify(loads)
    for h in sorted(hours, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + h)
    return max(loads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--steps", required=True, type=Path, help="train_step JSON with per-task rows")
    parser.add_argument("--precision", default="tf32")
    parser.add_argument("--pack", type=int, default=1,
                        help="runs trained together as one pack, with the step times measured at that K")
    parser.add_argument("--gpus", default="1,2,4,8")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown here (else stdout)")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="count only the steps still to train in this runs folder")
    args = parser.parse_args(argv)

    from icl.compiler.runs import runs_of

    if args.runs_dir is not None and not args.runs_dir.is_dir():
        raise SystemExit(f"error: --runs-dir {args.runs_dir}: no such folder")
    try:
        records = json.loads(args.steps.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: --steps {args.steps}: {getattr(error, 'strerror', None) or error}")
    devices = sorted({r["device"] for r in records})
    runs = runs_of([args.spec])
    left = steps_left(runs, args.runs_dir) if args.runs_dir else None
    if left is not None:
        runs = [r for r in runs if left[r.id] > 0]
    try:
        costs, rates = packed_hours(runs, records, args.precision, args.pack, left)
    except SystemExit as error:
        raise SystemExit(str(error).replace("error: ", f"error: --steps {args.steps}: ", 1))
    total = sum(h for _, h in costs)
    how = ("one run per process" if args.pack == 1 else
           f"runs of one model and prompt shape trained up to {args.pack} to a pack, at the time per run "
           f"measured in packs of {args.pack} of one cell (a smaller pack at that rate too, an "
           "approximation); a run left alone at its time alone")

    title = f"# Training cost of {args.spec}"
    if left is not None:
        title += f": what is still to train in {args.runs_dir}"
    lines = [title, "",
             f"From measured step times ({args.steps.name}, {', '.join(devices)}, precision {args.precision}, "
             f"{how}, prompts at the curriculum's final sizes: an upper bound).", "",
             f"**{len(costs)} runs, {total:.2f} GPU-hours** on one GPU.", ""]
    if not costs:
        lines.append("Nothing left to train: every run has finished." if left is not None
                     else "The spec has no runs.")
    else:
        lines += _tables(costs, rates, left, [int(x) for x in args.gpus.split(",") if x], args.pack)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}: {total:.2f} GPU-hours")
    else:
        sys.stdout.write(text)
    return 0


def _tables(costs: list[tuple[Run, float]], rates: dict[tuple[str, str], set],
            left: dict[str, int] | None, gpus: list[int], pack: int = 1) -> list[str]:
    """The wall-hours table per GPU count, then GPU-hours per (architecture, task)."""
    lines = ["| GPUs | wall hours (longest-first schedule) |", "| --- | --- |"]
    jobs = packs_of(costs, pack)
    for g in gpus:
        lines.append(f"| {g} | {makespan(jobs, g):.2f} |")
    per = "ms per step" if pack == 1 else "ms per step per run"
    lines += ["", f"| architecture | task | runs | steps per run | {per} | GPU-hours |",
              "| --- | --- | --- | --- | --- | --- |"]
    by_cell: dict[tuple[str, str], list[float]] = {}
    steps: dict[tuple[str, str], int] = {}
    for r, h in costs:
        cell = (r.model, r.task)
        by_cell.setdefault(cell, []).append(h)
        steps[cell] = steps.get(cell, 0) + _steps(r, left)
    for cell, hours in sorted(by_cell.items(), key=lambda kv: -sum(kv[1])):
        rate = " / ".join(f"{ms:.2f}" + (" (alone)" if k == 1 and pack > 1 else "")
                          for k, ms in sorted(rates[cell], reverse=True))
        lines.append(f"| {cell[0]} | {cell[1]} | {len(hours)} | {steps[cell] // len(hours):,} | "
                     f"{rate} | {sum(hours):.2f} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
