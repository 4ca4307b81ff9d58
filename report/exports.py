"""The report's downloads: Table 1 as CSV and LaTeX, and every run's raw numbers as CSV.

    write_exports(table, evals, runs, statuses, training, out_dir, title) -> {name: Path}
    EXPORTS: name -> path under the report's folder (the files write_exports writes)

table1.csv     one row per (task, architecture) cell of table1.json, its numbers at full
               precision (Python's repr), so a reader gets back exactly what the JSON holds
               (metric_ci as two columns, metric_ci_low and metric_ci_high).
table1.tex     the Table-1 matrix as a LaTeX table (booktabs; amssymb for \\checkmark):
               our verdict and metric, the study's verdict in parentheses.
metrics/runs.csv      one row per run: its configuration, how its training ended and its
                      evaluation summary (tail errors of the model and of every baseline).
metrics/training.csv  every run's training curve: one row per logged step (metrics.jsonl).
time_to_accuracy.csv  the runs that logged their error while training (train.log_error): one
                      row per (run, error threshold), the first logged step and wall_s at or
                      below it (icl.report.time_to_accuracy). Written only where some run
                      logged errors (OPTIONAL), removed otherwise, like the Parquet files.

table1.parquet, metrics/runs.parquet, metrics/training.parquet
               the same three tables as Parquet (PARQUET), written only where pyarrow is
               installed (`pip install -e .[parquet]`; pyarrow is a 55 MB wheel, 170 MB installed, so an
               optional extra, not a dependency); without it write_exports skips them and
               `parquet_note()` says why, which the report's downloads show.

Every file is written atomically, and the same inputs give the same bytes (the pipeline's
outputs are compared byte for byte; Parquet's with the same pyarrow version).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from icl import atomic
from icl.report import table1, time_to_accuracy
from icl.run import Run

EXPORTS = {"table1_csv": "table1.csv", "table1_tex": "table1.tex",
           "runs_csv": "metrics/runs.csv", "training_csv": "metrics/training.csv"}

# Written beside the CSVs when pyarrow is installed (table1_csv etc.'s rows, the same columns).
PARQUET = {"table1_parquet": "table1.parquet", "runs_parquet": "metrics/runs.parquet",
           "training_parquet": "metrics/training.parquet"}

# Written only where the study has something to put in them (removed otherwise).
OPTIONAL = {"time_to_accuracy_csv": "time_to_accuracy.csv"}

TABLE1_COLUMNS = ("task", "architecture", "verdict", "rule_verdict", "paper", "agrees", "metric",
                  "metric_ci_low", "metric_ci_high", "chance", "best_other", "seeds", "diverged",
                  "evaluated", "best_lr", "selected_by", "validation", "converged", "steps", "steps_done",
                  "seed_tails", "reason", "note")
RUN_COLUMNS = ("run_id", "eval_id", "experiment", "spec", "task", "architecture", "layers", "seed",
               "lr", "sweep", "steps_planned", "steps_done", "train_state", "final_loss", "wall_s",
               "steps_per_s", "device", "backend", "eval_state", "metric", "model_tail", "model_final",
               "best_baseline", "best_baseline_tail", "params", "state_size", "flops_per_token")
TRAINING_FIRST = ("run_id", "step", "loss")   # then every other logged key, sorted

LATEX_SYMBOLS = {"check": r"$\checkmark$", "gap": r"$\triangle$", "fails": r"$\times$",
                 table1.NOT_CONVERGED: r"$\searrow$"}
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def write_exports(table: dict, evals: list[dict], runs: list[Run], statuses: dict,
                  training: dict[str, list[dict]] | None, out_dir: Path, title: str) -> dict[str, Path]:
    """Write every file of EXPORTS under `out_dir`; returns name -> path.

    table: table1.verdicts(...); statuses: run id -> status.json dict; training: run id ->
    its metrics.jsonl entries (None or a missing run: no rows for it)."""
    out_dir = Path(out_dir)
    paths = {name: out_dir / rel for name, rel in EXPORTS.items()}
    atomic.write_bytes(paths["table1_csv"], table1_csv(table).encode("utf-8"))
    atomic.write_bytes(paths["table1_tex"], table1_latex(table, title).encode("utf-8"))
    atomic.write_bytes(paths["runs_csv"], runs_csv(evals, runs, statuses).encode("utf-8"))
    atomic.write_bytes(paths["training_csv"], training_csv(runs, training or {}).encode("utf-8"))
    tta_rows = time_to_accuracy.study_rows(runs, evals, statuses, training)
    tta_path = out_dir / OPTIONAL["time_to_accuracy_csv"]
    if tta_rows:
        paths["time_to_accuracy_csv"] = tta_path
        atomic.write_bytes(tta_path, _csv(*time_to_accuracy.csv_rows(tta_rows)).encode("utf-8"))
    else:   # no run logged its error: a file of an earlier build would be stale
        tta_path.unlink(missing_ok=True)
    if parquet_available():
        tables = {"table1_parquet": table1_rows(table), "runs_parquet": runs_rows(evals, runs, statuses),
                  "training_parquet": training_rows(runs, training or {})}
        for name, (columns, rows) in tables.items():
            paths[name] = out_dir / PARQUET[name]
            atomic.write_bytes(paths[name], parquet_bytes(columns, rows))
    else:   # a Parquet file of an earlier build with pyarrow would be stale now
        for rel in PARQUET.values():
            (out_dir / rel).unlink(missing_ok=True)
    return paths


# -- Parquet (optional) --------------------------------------------------------------------

def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def parquet_note() -> str | None:
    """Why there is no Parquet download (None when pyarrow is installed)."""
    if parquet_available():
        return None
    return ("Parquet files are not written: pyarrow is not installed where the report was built "
            "(pip install -e '.[parquet]' adds it). The CSVs hold the same tables.")


def parquet_bytes(columns, rows: list[dict]) -> bytes:
    """The rows as one Parquet table: numbers stay numbers (ints and floats together as
    floats), dicts and lists as JSON text, a column mixing text and numbers as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        values = [json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for v in values]
        kinds = {type(v) for v in values if v is not None}
        if str in kinds and len(kinds) > 1:
            values = [None if v is None else _value(v) for v in values]
        elif kinds and kinds <= {int, float} and float in kinds:
            values = [None if v is None else float(v) for v in values]
        data[column] = pa.array(values) if kinds else pa.array(values, type=pa.string())
    out = pa.BufferOutputStream()
    pq.write_table(pa.table(data), out, compression="zstd")
    return out.getvalue().to_pybytes()


# -- Table 1 ---------------------------------------------------------------------------

def table1_csv(table: dict) -> str:
    return _csv(*table1_rows(table))


def table1_rows(table: dict) -> tuple[tuple, list[dict]]:
    rows = []
    for task, cells in table.items():
        for model, cell in cells.items():
            ci = cell.get("metric_ci") or [None, None]
            rows.append({
                "task": task, "architecture": model, **{k: cell.get(k) for k in TABLE1_COLUMNS[2:]},
                "metric_ci_low": ci[0], "metric_ci_high": ci[1],
                "seed_tails": ";".join(f"{e['seed']}:{_value(e['tail']) if e['state'] == 'done' else e['state']}"
                                       for e in cell.get("seed_metrics") or []),
            })
    return TABLE1_COLUMNS, rows


def table1_latex(table: dict, title: str) -> str:
    """The matrix as a LaTeX table: rows tasks, columns architectures (Table 1's order)."""
    models = table1.ordered_models(dict.fromkeys(m for cells in table.values() for m in cells))
    diverged = any(c.get("diverged") for cells in table.values() for c in cells.values())
    unconverged = any(_unconverged_check(c) for cells in table.values() for c in cells.values())
    lines = [
        f"% Table 1 of {_comment(title)}, written by `icl report` (icl/report/exports.py).",
        "% Needs \\usepackage{booktabs} and \\usepackage{amssymb} (for \\checkmark).",
        "\\begin{table}[t]", "\\centering", "\\small",
        f"\\begin{{tabular}}{{l{'c' * len(models)}}}", "\\toprule",
        " & ".join(["Task"] + [latex_escape(m) for m in models]) + r" \\", "\\midrule",
    ]
    for task, cells in table.items():
        lines.append(" & ".join([latex_escape(task)] + [_latex_cell(cells.get(m)) for m in models]) + r" \\")
    caption = ("Can each architecture learn each task in context? Ours: $\\checkmark$ on par with the "
               "best other architecture, $\\triangle$ learns but clearly behind, $\\times$ at or near "
               "chance, $\\searrow$ not converged (training loss still falling at the end: not a "
               "failure), with the cell's test tail error (the sweep point with the lowest validation "
               "error, mean over seeds); in parentheses the study's verdict, where it reports one.")
    if unconverged:
        caption += " $^\\searrow$: a check whose training loss was still falling at the end."
    if diverged:
        caption += " $^\\dagger$: some runs of the cell diverged."
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{caption}}}", "\\label{tab:icl-table1}",
              "\\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_cell(cell: dict | None) -> str:
    if cell is None:
        return "--"
    verdict = cell.get("verdict")
    ours = "--" if verdict is None else f"{LATEX_SYMBOLS[verdict]} {table1.format_number(cell['metric'])}"
    if _unconverged_check(cell):
        ours += "$^\\searrow$"
    if cell.get("diverged"):
        ours += "$^\\dagger$"
    paper = cell.get("paper")
    return ours if paper is None else f"{ours} ({LATEX_SYMBOLS[paper]})"


def _unconverged_check(cell: dict) -> bool:
    """A verdict other than 'not converged' whose training had not converged (a check: rule 7)."""
    return cell.get("converged") is False and cell.get("verdict") not in (None, table1.NOT_CONVERGED)


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _comment(text: str) -> str:
    return " ".join(str(text).split())   # one line: a newline would end the LaTeX comment


# -- raw per-run metrics -----------------------------------------------------------------

def runs_csv(evals: list[dict], runs: list[Run], statuses: dict) -> str:
    """One row per run of the run table; baseline_tail.<name> columns for every baseline any
    evaluation scored."""
    return _csv(*runs_rows(evals, runs, statuses))


def runs_rows(evals: list[dict], runs: list[Run], statuses: dict) -> tuple[tuple, list[dict]]:
    eval_of = {(e.get("run_id"), e.get("eval_id")): e for e in evals}
    eval_by_run = {e.get("run_id"): e for e in evals}
    baselines = sorted({name for e in evals
                        for name in ((e.get("summary") or {}).get("baselines_tail") or {})})
    rows = []
    for run in runs:
        status = statuses.get(run.id) or {}
        ev = eval_of.get((run.id, run.eval_id)) or eval_by_run.get(run.id) or {}
        summary = ev.get("summary") or {}
        train = run.train or {}
        row = {
            "run_id": run.id, "eval_id": run.eval_id, "experiment": run.experiment,
            "spec": run.spec, "task": run.task, "architecture": run.model,
            "layers": run.layers, "seed": run.seed, "lr": train.get("lr"),
            "sweep": json.dumps(run.sweep or {}, sort_keys=True) if run.sweep else None,
            "steps_planned": status.get("steps_planned", train.get("steps")),
            "steps_done": status.get("steps_done", status.get("step")),
            "train_state": status.get("state"), "final_loss": status.get("final_loss"),
            "wall_s": status.get("wall_s"), "steps_per_s": status.get("steps_per_s"),
            "device": status.get("device") or ev.get("device"), "backend": status.get("backend"),
            "eval_state": ev.get("state"), "metric": ev.get("metric"),
            "model_tail": summary.get("model_tail"), "model_final": summary.get("model_final"),
            "best_baseline": summary.get("best_baseline"),
            "best_baseline_tail": summary.get("best_baseline_tail"),
            "params": run.params, "state_size": run.state_size,
            "flops_per_token": run.flops_per_token,
        }
        tails = summary.get("baselines_tail") or {}
        row.update({f"baseline_tail.{name}": tails.get(name) for name in baselines})
        rows.append(row)
    return RUN_COLUMNS + tuple(f"baseline_tail.{name}" for name in baselines), rows


def training_csv(runs: list[Run], training: dict[str, list[dict]]) -> str:
    """Every run's logged training steps, in the run table's order, then by step."""
    return _csv(*training_rows(runs, training))


def training_rows(runs: list[Run], training: dict[str, list[dict]]) -> tuple[tuple, list[dict]]:
    keys = sorted({k for entries in training.values() for e in entries for k in e} - set(TRAINING_FIRST))
    rows = [{"run_id": run.id, **entry}
            for run in runs for entry in sorted(training.get(run.id) or [], key=lambda e: e["step"])]
    return TRAINING_FIRST + tuple(keys), rows


# -- CSV ---------------------------------------------------------------------------------

def _csv(columns, rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_value(row.get(c)) for c in columns])
    return out.getvalue()


def _value(value) -> str:
    """A CSV field: empty for none, true/false, floats at full precision (repr round-trips)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                          ("inf" if value > 0 else "-inf"))
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
