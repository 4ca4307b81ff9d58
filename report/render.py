"""The study's report: one self-contained HTML page, a Markdown summary, table1.json and downloads.

    write_report(evals, runs, statuses, plots, out_dir, title, states=None, training=None)
        -> {"html", "md", "json", and icl.report.exports.EXPORTS' names: Path}

report.html embeds its plots as base64 data URIs, its CSS and its one script inline: no
external resource, so it opens anywhere, offline (mail it, archive it). The script only
sorts and filters the runs table; without it the page shows everything. report.md holds
the Table-1 matrix, the verdict rules and links to the plot files. table1.json is
`table1.verdicts(evals, runs, training)`: {task: {model: cell}}. The downloads beside them (Table 1
as CSV and LaTeX, each run's raw numbers and training curve as CSV, each figure as
PNG, SVG and PDF) are linked from both pages. Where some run logged its error while training
(train.log_error), both pages have a "Time to accuracy" section (icl.report.time_to_accuracy)
and its numbers download as time_to_accuracy.csv. Every file is written atomically.
"""
from __future__ import annotations

import base64
import math
import os
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from icl.evaluation import convergence
from icl.report import exports, intervals, runpages, sensitivity, table1, time_to_accuracy
from icl import atomic, runfolder
from icl.run import Run

TEMPLATES = Path(__file__).parent / "templates"
SMOKE_STEPS = 10_000      # fewer planned steps than this: a pipeline check, not a result
PAPER_STEPS = 500_000     # the study's training length (many-outlier: 1M)


def write_report(evals: list[dict], runs: list[Run], statuses, plots: dict, out_dir: Path,
                 title: str, states: dict[str, str] | None = None,
                 training: dict[str, list[dict]] | None = None,
                 runs_dir: Path | None = None) -> dict[str, Path]:
    """Write out_dir/report.html, report.md, table1.json and the downloads (exports.EXPORTS);
    returns their paths.

    statuses: status.json dicts, as a list (each with "run_id") or a dict run id -> status.
    plots: experiment (or task) -> PNG path, or None where there is no plot yet; an SVG and
    a PDF of the same name beside it are linked too.
    states: each run's state (runfolder.run_state's, as build_report passes them); None derives
    them from `statuses` and `evals` by the same rule (runfolder.derive_state).
    training: run id -> its metrics.jsonl entries, for metrics/training.csv and the run pages'
    training curves (None: no rows).
    runs_dir: the run folders, which the run pages link their raw files in (None: no links).
    Each run gets its page, out_dir/pages/<run id>.html (icl.report.runpages); a page of a
    run no longer in the table is removed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = table1.verdicts(evals, runs, training)
    # The downloads first: the pages link only to files that exist.
    downloads = exports.write_exports(table, evals, runs, _status_index(statuses), training, out_dir, title)
    pages = runpages.write_run_pages(runs, evals, _status_index(statuses), training, out_dir, runs_dir,
                                     render=lambda name, context: _render(name, context, html=True))
    for stale in sorted((out_dir / runpages.PAGES).glob("*.html")):
        if stale not in pages.values():
            stale.unlink()
    context = report_context(evals, runs, statuses, plots, out_dir, title, table, states, training)
    paths = {"html": out_dir / "report.html", "md": out_dir / "report.md",
             "json": out_dir / "table1.json"}
    atomic.write_json(paths["json"], table)
    atomic.write_bytes(paths["html"], _render("report.html.j2", context, html=True).encode("utf-8"))
    atomic.write_bytes(paths["md"], _render("report.md.j2", context, html=False).encode("utf-8"))
    return {**paths, **downloads}


def report_context(evals, runs, statuses, plots, out_dir, title, table, states=None, training=None) -> dict:
    """Everything the templates show, as plain values (training: run id -> its metrics.jsonl
    entries, for the time-to-accuracy section; None: no section)."""
    status_of = _status_index(statuses)
    eval_of = {(e.get("run_id"), e.get("eval_id")): e for e in evals}
    eval_by_run = {e.get("run_id"): e for e in evals}
    if states is None:
        states = _derive_states(runs, status_of, eval_of, eval_by_run)
    models = table1.ordered_models(dict.fromkeys(m for cells in table.values() for m in cells))
    run_rows = _run_rows(runs, status_of, eval_of, eval_by_run)
    return {
        "title": title,
        "scale": describe_scale(runs, status_of),
        "rules": table1.RULES,
        "constants": {"FAIL_FRACTION": table1.FAIL_FRACTION, "CHECK_RATIO": table1.CHECK_RATIO,
                      "CHECK_SLACK": table1.CHECK_SLACK, "CONVERGENCE_TAIL": convergence.TAIL_FRACTION,
                      "MIN_DROP": convergence.MIN_DROP, "MIN_T": convergence.MIN_T},
        "matrix": _matrix(table, models),
        "agreement": _agreement(table),
        "plots": _plots(table, plots, out_dir),
        "architectures": _architectures(runs, models),
        "runs": run_rows,
        "counts": _counts(runs, states),
        "downloads": _downloads(out_dir),
        "parquet_note": exports.parquet_note(),
        "filters": _filters(run_rows),
        "sensitivity": _sensitivity(evals, runs),
        "interval_level": intervals.LEVEL,
        "time_to_accuracy": _time_to_accuracy(runs, evals, status_of, training),
    }


# -- scale -----------------------------------------------------------------------------

def describe_scale(runs: list[Run], status_of: dict) -> dict:
    """What stands behind the numbers: steps, batch, sweep, seeds and evaluation size per experiment."""
    experiments: dict[str, dict] = {}
    for run in runs:
        name = run.experiment or "?"
        ex = experiments.setdefault(name, {"name": name, "spec": run.spec, "tasks": [],
                                           "models": [], "steps": set(), "batch": set(),
                                           "lr": set(), "seeds": set(), "sweep": set(),
                                           "prompts": set(), "bootstrap": set()})
        for key, value in (("tasks", run.task), ("models", run.model)):
            if value not in ex[key]:
                ex[key].append(value)
        train, evaluation = run.train, run.eval
        ex["steps"].add(train.get("steps"))
        ex["batch"].add(train.get("batch"))
        ex["lr"].add(train.get("lr"))
        ex["seeds"].add(run.seed)
        ex["sweep"].update((run.sweep or {}).keys())
        ex["prompts"].add(evaluation.get("prompts"))
        ex["bootstrap"].add(evaluation.get("bootstrap"))
    rows = []
    for ex in experiments.values():
        rows.append({**ex, **{k: _join(ex[k]) for k in ("steps", "batch", "lr", "prompts", "bootstrap")},
                     "sweep": ", ".join(sorted(ex["sweep"])) or "none",
                     "seeds": len(ex["seeds"]), "seed_list": _join(ex["seeds"])})
    lengths = [(r, r.train.get("steps")) for r in runs if isinstance(r.train.get("steps"), (int, float))]
    steps = [s for _, s in lengths]
    # Only runs of the study's tasks are measured against its training length and protocol.
    study_steps = [s for r, s in lengths if r.kind in table1.PAPER_VERDICTS]
    smoke_spec = any("smoke" in Path(str(r.spec or "")).parts for r in runs)
    if not steps:
        return {"label": "none", "warnings": ["No runs with a training length: nothing to report."],
                "experiments": rows, "smoke": False, "paper_steps": PAPER_STEPS}
    # The smoke threshold is a fraction of the study's length, so it speaks of the study's
    # tasks only; a task beyond the study (token MQAR learns in 2,000 steps) is smoke only in
    # a smoke/ spec.
    if smoke_spec or (study_steps and min(study_steps) < SMOKE_STEPS):
        label = "smoke"
    elif not study_steps:
        label = "beyond the study"
    elif min(study_steps) < PAPER_STEPS:
        label = "reduced"
    else:
        label = "paper"
    warnings = []
    if label == "smoke":
        warnings.append(
            f"SMOKE SCALE: these runs train for {_join(set(study_steps or steps))} steps (the study: "
            f"{PAPER_STEPS:,}) on toy sizes. They check that the pipeline runs end to end; "
            "their numbers and verdicts say nothing about the architectures.")
    elif label == "reduced":
        warnings.append(
            f"Reduced scale: {_step_range(study_steps)} steps (the study: {PAPER_STEPS:,}). "
            "ICL training often sits on a plateau and then drops abruptly, and too high a "
            "learning rate can keep a model there: a 'fails' at this scale means something "
            "only if the runs are long enough and the sweep wide enough.")
    capped = [r.id for r in runs
              if (status_of.get(r.id) or {}).get("capped")
              or _done_less_than_planned(status_of.get(r.id))]
    if capped:
        warnings.append(f"{len(capped)} run(s) stopped before their planned steps "
                        f"(--max-steps): {', '.join(capped[:8])}{' ...' if len(capped) > 8 else ''}.")
    # A sweep may be one experiment's list of lrs or several experiments of one (task, model)
    # cell with an lr each (the cell takes its best): judged per cell, as Table 1 does.
    cell_lrs: dict[tuple, set] = {}
    for run in runs:
        cell_lrs.setdefault((run.task, run.model), set()).add(run.train.get("lr"))
    if runs and all(len(lrs) <= 1 for lrs in cell_lrs.values()):
        warnings.append("No learning-rate sweep: every cell rests on a single learning rate"
                        + (", while the study takes each cell's best." if study_steps else "."))
    if runs and all(len(ex["seeds"]) <= 1 for ex in experiments.values()):
        warnings.append("One seed per configuration: no seed-to-seed spread behind the numbers.")
    return {"label": label, "warnings": warnings, "experiments": rows,
            "smoke": label == "smoke", "paper_steps": PAPER_STEPS}


def _done_less_than_planned(status: dict | None) -> bool:
    """A finished run cut short of its planned steps (--max-steps), not one that
    train.stop_error ended."""
    if not status or status.get("state") != "done" or status.get("stopped_early"):
        return False
    done, planned = status.get("steps_done"), status.get("steps_planned")
    return isinstance(done, int) and isinstance(planned, int) and done < planned


# -- Table 1 ---------------------------------------------------------------------------

def _matrix(table: dict, models: list[str]) -> dict:
    rows = []
    for task, cells in table.items():
        row = {"task": task, "cells": []}
        for model in models:
            cell = cells.get(model)
            if cell is None:
                row["cells"].append(None)
                continue
            verdict, paper = cell["verdict"], cell["paper"]
            agreement = "none" if paper is None or verdict in (None, table1.NOT_CONVERGED) else \
                ("agree" if verdict == paper else "disagree")
            ci = cell.get("metric_ci")
            row["cells"].append({
                **cell, "symbol": table1.SYMBOLS[verdict], "paper_symbol": table1.SYMBOLS.get(paper, "?"),
                "metric_text": fmt(cell["metric"]), "chance_text": fmt(cell["chance"]),
                # the 90% interval over seeds, in 2 digits: "[0.02, 0.041]"; '' with one seed
                "ci_text": "" if not ci else f"[{_fmt2(ci[0])}, {_fmt2(ci[1])}]",
                # a check whose training had not converged keeps its verdict, with this mark
                "unconverged_mark": cell.get("converged") is False and verdict != table1.NOT_CONVERGED,
                "lr_text": fmt(cell["best_lr"]), "steps_text": _steps_text(cell),
                "steps_done_text": fmt_int(cell["steps_done"]), "agreement": agreement,
                "seeds_text": ", ".join(_seed_text(e) for e in cell["seed_metrics"]),
                "configs_text": "; ".join(
                    _sweep_point(c) + f": {fmt(c['metric'])}"
                    + (f" (validation {fmt(c['validation'])})" if c.get("validation") is not None else "")
                    + f" ({c['seeds']} seed(s)"
                    + (f", {c['diverged']} diverged" if c["diverged"] else "") + ")"
                    for c in cell["configs"])
                    + (f"; chosen by {cell['selected_by']}" if cell.get("selected_by") else ""),
            })
        rows.append(row)
    return {"models": models, "rows": rows}


def _seed_text(entry: dict) -> str:
    """'s0 0.475', 's1 diverged', 's1 pending' (not evaluated yet) or 's1 no value'; a seed whose
    training had not converged gets ' (not converged)'."""
    label = f"s{entry['seed']}" if entry["seed"] is not None else "s?"
    text = f"{label} {fmt(entry['tail']) if entry['state'] == 'done' else entry['state']}"
    if entry.get("convergence") == table1.NOT_CONVERGED:
        text += f" ({table1.NOT_CONVERGED})"
    return text


def _fmt2(value) -> str:
    """An interval's end in 2 significant digits (the table's cells are narrow)."""
    return fmt(value) if not isinstance(value, (int, float)) else table1.format_number(value, 2)


def _steps_text(cell: dict) -> str:
    """'60 steps', or '10 of 60 steps' when the chosen sweep point's runs stopped early."""
    done, planned = cell["steps_done"], cell["steps"]
    if isinstance(done, int) and isinstance(planned, int) and done < planned:
        return f"{done:,} of {planned:,} steps"
    return f"{fmt_int(planned)} steps"


def _sweep_point(config: dict) -> str:
    """'lr 0.001', plus any other swept value of the sweep point."""
    parts = [f"lr {fmt(config['lr'])}"]
    parts += [f"{k} {fmt(v)}" for k, v in (config.get("sweep") or {}).items() if k != "train.lr"]
    return ", ".join(parts)


def _agreement(table: dict) -> dict:
    """Cells compared with the study: those it judged and we did, less the not converged ones
    (rule 7: neither agreeing nor disagreeing), counted apart; and the cells whose configuration
    was chosen by the test prompts for want of validation scores."""
    cells = [c for cells in table.values() for c in cells.values()]
    judged = [c for c in cells if c["paper"] is not None and c["verdict"] is not None]
    compared = [c for c in judged if c["verdict"] != table1.NOT_CONVERGED]
    agree = sum(1 for c in compared if c["verdict"] == c["paper"])
    return {"compared": len(compared), "agree": agree,
            "not_converged": len(judged) - len(compared),
            "unjudged": sum(1 for c in cells if c["verdict"] is None),
            "by_test": sum(1 for c in cells if c.get("selected_by") == table1.SELECTED_BY_TEST)}


# -- plots and architectures -----------------------------------------------------------

def _plots(table: dict, plots: dict, out_dir: Path) -> list[dict]:
    """Embedded plots, keyed by experiment or task: those named like a task in Table 1's order."""
    entries = []
    for label in [t for t in table if t in plots] + [k for k in plots if k not in table]:
        path = plots[label]
        if path is None or not Path(path).exists():
            entries.append({"label": label, "uri": None, "link": None, "formats": []})
            continue
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        # The same figure as vector graphics, where the plot step wrote them (plots.FORMATS).
        formats = [{"name": suffix.lstrip(".").upper(), "link": _link(Path(path).with_suffix(suffix), out_dir)}
                   for suffix in (".png", ".svg", ".pdf") if Path(path).with_suffix(suffix).exists()]
        entries.append({"label": label, "uri": f"data:image/png;base64,{data}",
                        "link": _link(Path(path), out_dir), "formats": formats})
    return entries


def _link(path: Path, out_dir: Path) -> str:
    """`path` relative to the report's folder, as a URL path."""
    return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()


def _downloads(out_dir: Path | None = None) -> list[dict]:
    """The files exports.write_exports and write_report put beside the report, for the pages'
    links: the Parquet files only where they were written."""
    what = {"table1_csv": "Table 1, one row per cell (CSV)",
            "table1_tex": "Table 1 as a LaTeX table (booktabs, amssymb)",
            "runs_csv": "every run: configuration, how training ended, evaluation summary (CSV)",
            "training_csv": "every run's training curve: loss and the rest of each logged step (CSV)",
            "table1_parquet": "Table 1 (Parquet)", "runs_parquet": "every run (Parquet)",
            "training_parquet": "every run's training curve (Parquet)",
            "time_to_accuracy_csv": "time to accuracy: each run that logged its error, the first logged "
                                    "step and seconds at or below each threshold (CSV)"}
    files = dict(exports.EXPORTS)
    if out_dir is not None:
        files.update({name: rel for name, rel in exports.PARQUET.items() if (Path(out_dir) / rel).is_file()})
        files.update({name: rel for name, rel in exports.OPTIONAL.items() if (Path(out_dir) / rel).is_file()})
    return ([{"link": rel, "what": what[name]} for name, rel in files.items()]
            + [{"link": "table1.json", "what": "Table 1 with every number behind it (JSON)"}])


def _time_to_accuracy(runs, evals: list[dict], status_of: dict, training) -> dict | None:
    """The time-to-accuracy section: the runs that logged their error while training
    (train.log_error), each with the seconds and steps to every threshold; None where no run
    logged one (no section)."""
    rows = time_to_accuracy.study_rows(runs, evals, status_of, training)
    if not rows:
        return None
    for row in rows:
        row["page"] = runpages.page_link(row["id"])
        row["lr_text"] = fmt(row["lr"])
    return {"rows": rows, "headers": time_to_accuracy.headers(rows),
            "csv": exports.OPTIONAL["time_to_accuracy_csv"]}


def _sensitivity(evals: list[dict], runs) -> dict:
    """The learning-rate sensitivity section: per task, each architecture's score at every
    learning rate (sensitivity.lr_sensitivity) where the task's runs sweep it; the others listed."""
    found = sensitivity.lr_sensitivity(evals, runs)
    swept, single = [], []
    for task, entry in found.items():
        if not entry["swept"]:
            single.append({"task": task, "lrs": ", ".join(fmt(lr) for lr in entry["lrs"]) or "\u2014"})
            continue
        rows = []
        for model, points in entry["models"].items():
            at = {p["lr"]: p for p in points}
            rows.append({"model": model, "cells": [
                None if lr not in at else {
                    "metric": fmt(at[lr]["metric"]), "lo": fmt(at[lr]["lo"]), "hi": fmt(at[lr]["hi"]),
                    "seeds": at[lr]["seeds"], "diverged": at[lr]["diverged"],
                    "best": at[lr]["taken"]}
                for lr in entry["lrs"]]})
        swept.append({"task": task, "lrs": [fmt(lr) for lr in entry["lrs"]], "rows": rows})
    return {"swept": swept, "single": single}


def _architectures(runs: list[Run], models: list[str]) -> dict:
    """Per architecture: layer string, width, and the range over tasks of params, state, FLOPs/token."""
    by_model: dict[str, list[Run]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)
    summary, detail = [], []
    for model in table1.ordered_models(by_model) + [m for m in models if m not in by_model]:
        rs = by_model.get(model, [])
        if not rs:
            continue
        summary.append({
            "model": model,
            "layers": _join({compact_layers(r.layers) for r in rs}),
            "width": _join({r.model_config.get("width") for r in rs}),
            "params": _span([r.params for r in rs]),
            "state_size": _span([r.state_size for r in rs]),
            "flops_per_token": _span([r.flops_per_token for r in rs]),
        })
        seen = set()
        for r in rs:
            key = (r.task, r.params, r.state_size, r.flops_per_token)
            if key in seen:
                continue
            seen.add(key)
            detail.append({"model": model, "task": r.task, "params": fmt_int(r.params),
                           "state_size": fmt_int(r.state_size),
                           "flops_per_token": fmt_int(r.flops_per_token)})
    return {"summary": summary, "detail": detail}


# -- runs ------------------------------------------------------------------------------

def _run_rows(runs, status_of, eval_of, eval_by_run) -> list[dict]:
    rows = []
    for run in runs:
        status = status_of.get(run.id) or {}
        ev = eval_of.get((run.id, run.eval_id)) or eval_by_run.get(run.id) or {}
        diverged = status.get("state") == "diverged" or table1.is_diverged(ev)
        versions = status.get("versions") or ev.get("versions") or {}
        tail = table1.tail(ev) if ev else None
        rows.append({
            "id": run.id, "page": runpages.page_link(run.id), "eval_id": run.eval_id, "experiment": run.experiment,
            "model": run.model, "task": run.task, "seed": run.seed,
            "sweep": ", ".join(f"{k}={fmt(v)}" for k, v in (run.sweep or {}).items()) or "",
            "lr": fmt(run.train.get("lr")),
            "state": status.get("state") or "not trained",
            "eval_state": ev.get("state") or "not evaluated",
            "diverged": diverged,
            "training": "diverged" if diverged else (status.get("state") or "not trained"),
            "message": status.get("message") or ev.get("message") or "",
            "device": status.get("device") or ev.get("device") or "",
            "backend": status.get("backend") or "",
            "versions": " / ".join(f"{k} {v}" for k, v in sorted(versions.items())),
            "wall_s": fmt_seconds(status.get("wall_s")),
            "steps_per_s": fmt(status.get("steps_per_s")),
            "steps": f"{fmt_int(status.get('steps_done', status.get('step')))} / "
                     f"{fmt_int(status.get('steps_planned', run.train.get('steps')))}",
            "short": _done_less_than_planned(status),
            "final_loss": fmt(status.get("final_loss")),
            "tail": fmt(tail),
            # raw values the runs table sorts by (the shown text is rounded, or a dash)
            "sort": {"seed": _sortable(run.seed), "lr": _sortable(run.train.get("lr")),
                     "tail": _sortable(tail), "final_loss": _sortable(status.get("final_loss")),
                     "steps": _sortable(status.get("steps_done", status.get("step"))),
                     "wall_s": _sortable(status.get("wall_s")),
                     "steps_per_s": _sortable(status.get("steps_per_s"))},
        })
    return rows


def _sortable(value) -> str:
    """A number as the runs table's script reads it (data-value); '' (sorted last) for none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return repr(value)


def _filters(rows: list[dict]) -> dict:
    """The choices of the runs table's filters: every task, architecture and training state."""
    return {"task": list(dict.fromkeys(r["task"] for r in rows)),
            "model": table1.ordered_models(dict.fromkeys(r["model"] for r in rows)),
            "state": sorted({r["training"] for r in rows})}


def _counts(runs, states: dict[str, str]) -> dict:
    """From each run's one state (runfolder.STATES, as `icl status` counts them): trained counts
    every run whose training finished (evaluated or not), missing the runs with neither an
    evaluation nor a divergence."""
    count = {state: sum(1 for r in runs if states.get(r.id) == state) for state in runfolder.STATES}
    return {"runs": len(runs), "trained": count["trained"] + count["evaluated"], "diverged": count["diverged"],
            "evaluated": count["evaluated"], "missing": len(runs) - count["evaluated"] - count["diverged"]}


def _derive_states(runs, status_of, eval_of, eval_by_run) -> dict[str, str]:
    """Each run's state from the records given, by runfolder.derive_state (validating them)."""
    states = {}
    for run in runs:
        status = status_of.get(run.id)
        ev = eval_of.get((run.id, run.eval_id)) or eval_by_run.get(run.id)
        status = None if status is None else runfolder.StatusRecord.from_dict(status, f"status of run {run.id}")
        ev = None if ev is None else runfolder.EvalRecord.from_dict(ev, f"evaluation of run {run.id}")
        states[run.id] = runfolder.derive_state(status, ev)[0]
    return states


def _status_index(statuses) -> dict:
    if statuses is None:
        return {}
    if isinstance(statuses, dict):
        return dict(statuses)
    return {s.get("run_id"): s for s in statuses if isinstance(s, dict)}


# -- formatting ------------------------------------------------------------------------

def compact_layers(layers: str | None) -> str | None:
    """A long layer string folded back into a repeat: "M A M A M" -> "M (A M)*2", "M M M" -> "M*3"."""
    if not layers:
        return layers
    tokens = layers.split()
    for head in range(0, min(3, len(tokens) - 1)):
        rest = tokens[head:]
        for unit in range(1, len(rest) // 2 + 1):
            count, remainder = divmod(len(rest), unit)
            if remainder == 0 and rest == rest[:unit] * count:
                body = " ".join(rest[:unit])
                repeat = f"{body}*{count}" if unit == 1 else f"({body})*{count}"
                return " ".join(tokens[:head] + [repeat])
    return layers


def fmt(value) -> str:
    """A number in 3 significant digits (scientific when tiny or huge); '—' for none."""
    if value is None or isinstance(value, bool):
        return "\u2014" if value is None else str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return table1.format_number(value)
    return str(value)


def fmt_int(value) -> str:
    return "\u2014" if not isinstance(value, (int, float)) else f"{int(value):,}"


def fmt_seconds(value) -> str:
    if not isinstance(value, (int, float)):
        return "\u2014"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _step_range(steps) -> str:
    """'20,000 to 50,000', or '20,000' where every run trains as long."""
    low, high = min(steps), max(steps)
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def _join(values) -> str:
    values = [v for v in values if v is not None]
    try:
        values = sorted(set(values))
    except TypeError:
        values = list(dict.fromkeys(values))
    return ", ".join(fmt_int(v) if isinstance(v, int) and not isinstance(v, bool) else fmt(v)
                     for v in values)


def _span(values) -> str:
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return "\u2014"
    low, high = min(values), max(values)
    return fmt_int(low) if low == high else f"{fmt_int(low)} \u2013 {fmt_int(high)}"


def breakable(name) -> Markup:
    """An identifier (task, architecture, experiment) as HTML that may wrap after its
    underscores: a narrow column breaks "sparse_linear_regression" between words, not mid-word."""
    return Markup(str(escape(name)).replace("_", "_<wbr>"))


def _render(name: str, context: dict, html: bool) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=html,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    env.filters["fmt_int"] = fmt_int
    env.filters["breakable"] = breakable
    return env.get_template(name).render(**context)
