"""Two specs compared: their Table-1 cells side by side, the difference with its interval, and
the spec diff that produced it.

    build_comparison(runs_a, runs_b, runs_dir, out_dir, names, run_diff=None) -> {"html", "md"}

`icl report A.icl B.icl --compare` (and the pipeline's `compare` target) call it with each
spec's runs; the runs are read from one runs folder (a run's folder is named by its content
hash, so the runs both specs share are trained once). Each spec gets its own Table 1
(table1.verdicts over its runs); cells are matched by task and architecture name. A cell's
difference is B's metric minus A's (errors: below zero, B does better), with the bootstrap
interval over seeds (intervals.difference_interval): paired by seed where both sides'
chosen sweep points have the same seeds, each side resampled on its own otherwise; a diverged
seed counts as chance, as in Table 1. An interval that leaves out zero is called a
difference, else "no clear difference"; with two seeds an interval is rough, and the page
says how many seeds stand behind it.

The spec diff is shown twice: the two files' text as a unified diff (difflib), and which
runs B adds, removes or changes (`icl diff A B`'s text, compiler/diff.py, passed in as
`run_diff` by the caller: the report does not import the compiler).

Writes out_dir/compare.html (self-contained, no script) and out_dir/compare.md, atomically.
"""
from __future__ import annotations

import difflib
from pathlib import Path

from icl import atomic
from icl.report import intervals, table1
from icl.report.build import _results, load_states
from icl.report.runpages import run_record

FILES = {"html": "compare.html", "md": "compare.md"}


def build_comparison(runs_a, runs_b, runs_dir: Path, out_dir: Path, names: tuple[str, str] | list[str],
                     run_diff: str | None = None) -> dict[str, Path]:
    from icl.report.render import _render

    out_dir = Path(out_dir)
    name_a, name_b = (str(n) for n in names)
    tables, counts, layers = [], [], []
    for runs in (runs_a, runs_b):
        records = [run_record(r) for r in runs]
        layers.append({(r.get("task"), r.get("model")): r.get("layers") for r in records})
        evals, _ = _results(load_states(runs, runs_dir))
        tables.append(table1.verdicts(evals, runs))
        counts.append({"runs": len(runs), "evaluated": sum(1 for e in evals if e.get("state") == "done")})
    context = {
        "title": f"Comparison: {name_b} against {name_a}",
        "a": name_a, "b": name_b, "counts": counts,
        "cells": compare_tables(*tables, *layers),
        "text_diff": spec_text_diff(name_a, name_b),
        "run_diff": run_diff,
        "level": intervals.LEVEL,
    }
    context["changed"] = sum(1 for c in context["cells"] if c["call"] not in ("same runs", "no clear difference")
                             and c["difference"] is not None)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in FILES.items()}
    atomic.write_bytes(paths["html"], _render("compare.html.j2", context, html=True).encode("utf-8"))
    atomic.write_bytes(paths["md"], _render("compare.md.j2", context, html=False).encode("utf-8"))
    return paths


def compare_tables(table_a: dict, table_b: dict, layers_a: dict | None = None,
                   layers_b: dict | None = None) -> list[dict]:
    """One row per (task, architecture) of either table, A's tasks first, in Table 1's order.
    An architecture of a task only B has is one row with the architecture only A has there
    that has the same layer string (layers_*: (task, model) -> layer string), or with A's only
    one ("a \u2192 b"): the edit renamed the model it changed."""
    layers_a, layers_b = layers_a or {}, layers_b or {}
    from icl.report.render import fmt

    rows = []
    tasks = list(table_a) + [t for t in table_b if t not in table_a]
    for task in tasks:
        cells_a, cells_b = table_a.get(task) or {}, table_b.get(task) or {}
        pairs = [(m, m, m) for m in table1.ordered_models(list(cells_a) + [m for m in cells_b if m not in cells_a])]
        only_a, only_b = [m for m in cells_a if m not in cells_b], [m for m in cells_b if m not in cells_a]
        for model_b in only_b:
            # A model the edit renamed (`model x2 extends x { ... }`): B's architecture of the
            # task that A lacks, against A's one of the same layer string that B lacks.
            twins = [m for m in only_a if layers_a.get((task, m)) is not None
                     and layers_a.get((task, m)) == layers_b.get((task, model_b))]
            if len(only_b) == 1 and len(only_a) == 1 and not twins:
                twins = only_a
            if len(twins) == 1:
                pairs = [p for p in pairs if p[0] not in (twins[0], model_b)]
                pairs.append((f"{twins[0]} \u2192 {model_b}", twins[0], model_b))
                only_a.remove(twins[0])
        for label, model_a, model_b in pairs:
            a, b = cells_a.get(model_a), cells_b.get(model_b)
            diff, lo, hi, paired, seeds = difference(a, b)
            call = _call(a, b, diff, lo, hi)
            rows.append({
                "task": task, "model": label, "both": a is not None and b is not None,
                "a": _side(a), "b": _side(b),
                "difference": diff, "lo": lo, "hi": hi, "paired": paired, "seeds": seeds,
                "difference_text": "\u2014" if diff is None else f"{diff:+.3g}",
                "interval_text": "" if lo is None else f"[{fmt(lo)}, {fmt(hi)}]",
                "call": call,
            })
    return rows


def difference(a: dict | None, b: dict | None):
    """(B - A, lo, hi, paired, seeds per side) of two cells' metrics over their best sweep
    points' seeds; Nones where either cell has no metric."""
    if not a or not b or a.get("metric") is None or b.get("metric") is None:
        return None, None, None, False, None
    values_a, values_b = _seed_values(a), _seed_values(b)
    if not values_a or not values_b:
        return b["metric"] - a["metric"], None, None, False, (len(values_a), len(values_b))
    paired = set(values_a) == set(values_b)
    seeds = sorted(values_a)
    if paired:
        diff, lo, hi = intervals.difference_interval([values_a[s] for s in seeds], [values_b[s] for s in seeds], True)
    else:
        diff, lo, hi = intervals.difference_interval(list(values_a.values()), list(values_b.values()), False)
    return diff, lo, hi, paired, (len(values_a), len(values_b))


def _seed_values(cell: dict) -> dict:
    """seed -> the number Table 1 scores it by at the cell's chosen sweep point (a diverged
    seed: chance); seeds pending or without a value are left out, as Table 1 leaves them."""
    out = {}
    for entry in cell.get("seed_metrics") or []:
        if entry["state"] == "done" and entry["tail"] is not None:
            out[entry["seed"]] = entry["tail"]
        elif entry["state"] == "diverged":
            out[entry["seed"]] = cell["chance"]
    return out


def _call(a, b, diff, lo, hi) -> str:
    if a is None:
        return "only in B"
    if b is None:
        return "only in A"
    if diff is None:
        return "not evaluated on both sides"
    if lo is None:
        return "no interval"
    if lo == hi == diff == 0:
        return "same runs"
    if hi < 0:
        return "B lower error"
    if lo > 0:
        return "B higher error"
    return "no clear difference"


def _side(cell: dict | None) -> dict | None:
    from icl.report.render import fmt

    if cell is None:
        return None
    return {"verdict": cell.get("verdict"), "symbol": table1.SYMBOLS.get(cell.get("verdict"), "?"),
            "metric": fmt(cell.get("metric")), "seeds": cell.get("seeds"), "lr": fmt(cell.get("best_lr")),
            "diverged": cell.get("diverged") or 0}


def spec_text_diff(path_a: str, path_b: str, context: int = 3) -> str:
    """The two spec files as a unified diff ('' when they read the same; a note when one is missing)."""
    texts = []
    for path in (path_a, path_b):
        try:
            texts.append(Path(path).read_text(encoding="utf-8").splitlines(keepends=True))
        except OSError as error:
            return f"(cannot read {path}: {error.strerror or error})"
    return "".join(difflib.unified_diff(texts[0], texts[1], fromfile=str(path_a), tofile=str(path_b), n=context))
