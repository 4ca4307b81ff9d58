"""One page per run: its training curve, its evaluation, its exact configuration and the spec
lines that made it.

    write_run_pages(runs, evals, statuses, training, out_dir, runs_dir=None) -> {run id: Path}
    page_link(run_id) -> "pages/<run id>.html"   (relative to the report's folder)

out_dir/pages/<run id>.html, linked from the report's runs table. Like report.html each page
is self-contained and offline: its two charts are inline SVG drawn here (a few kilobytes
each, no matplotlib), its CSS inline, no script. The charts: the training loss against the
step (metrics.jsonl, as logged), and the evaluation's error against the number of in-context
examples with its 5%-95% bootstrap band over prompts, the zero predictor (chance) and the best
baseline. Where the run logged its error while training (train.log_error), a small table gives
the seconds and steps to each error threshold (icl.report.time_to_accuracy) and the device.
The configuration is the run as the compiler made it (Run.to_dict, the JSON of
`icl runs --json`); the spec lines are found in the spec's text (the run's root spec and the
files it imports): the experiment's block, the model's and the task's, and the sections each
extends, with their line numbers.

What a page reads of a run goes through `run_record` (the one place that touches the run
object); the rest reads that dict.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from icl import atomic
from icl.report import table1, time_to_accuracy
from icl.report.numbers import is_number

PAGES = "pages"
CHART_W, CHART_H = 640, 260
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 58, 26, 12, 34
MAX_TRAIN_POINTS = 400      # a training curve longer than this is thinned (every k-th step, last kept)
MAX_BLOCK_LINES = 40        # a spec block longer than this is cut, saying so


def page_link(run_id: str) -> str:
    return f"{PAGES}/{run_id}.html"


def run_record(run) -> dict:
    """The run as a plain dict (every field the compiler resolved): the one place a page reads
    the run object itself."""
    if hasattr(run, "to_dict"):
        return run.to_dict()
    return dict(run)


def write_run_pages(runs, evals: list[dict], statuses: dict, training: dict[str, list[dict]] | None,
                    out_dir: Path, runs_dir: Path | None = None, render=None) -> dict[str, Path]:
    """Write out_dir/pages/<run id>.html for every run; `render(template, context)` -> text
    is render.py's Jinja environment."""
    out_dir = Path(out_dir)
    eval_of = {(e.get("run_id"), e.get("eval_id")): e for e in evals}
    eval_by_run = {e.get("run_id"): e for e in evals}
    written = {}
    specs = SpecIndex()
    for run in runs:
        record = run_record(run)
        run_id = record["id"]
        ev = eval_of.get((run_id, record.get("eval_id"))) or eval_by_run.get(run_id) or {}
        context = page_context(record, ev, statuses.get(run_id) or {}, (training or {}).get(run_id) or [],
                               specs, out_dir, runs_dir)
        path = out_dir / page_link(run_id)
        atomic.write_bytes(path, render("run.html.j2", context).encode("utf-8"))
        written[run_id] = path
    return written


def page_context(record: dict, ev: dict, status: dict, entries: list[dict], specs: "SpecIndex",
                 out_dir: Path, runs_dir: Path | None) -> dict:
    train = record.get("train") or {}
    summary = ev.get("summary") or {}
    done = ev.get("state") == "done" and bool(ev.get("model"))
    files = []
    if runs_dir is not None:
        folder = Path(runs_dir) / record["id"]
        for name in ("status.json", "metrics.jsonl", f"eval-{record.get('eval_id')}.json"):
            if (folder / name).is_file():
                rel = os.path.relpath((folder / name).resolve(), (out_dir / PAGES).resolve())
                files.append({"name": name, "link": Path(rel).as_posix()})
    evaluation = None
    if done:
        tails = summary.get("baselines_tail") or {}
        evaluation = {
            "metric": ev.get("metric") or "error", "prompts": ev.get("prompts"), "bootstrap": ev.get("bootstrap"),
            "tail": summary.get("model_tail"), "final": summary.get("model_final"),
            "best_baseline": summary.get("best_baseline"), "best_baseline_tail": summary.get("best_baseline_tail"),
            "chance": tails.get("zero"),
            # the model on the validation prompts (their own stream, never the test prompts), where
            # the evaluation scored them (evaluations from issue #25 on)
            "validation_tail": (ev.get("validation") or {}).get("model_tail"),
            "validation_prompts": (ev.get("validation") or {}).get("prompts"),
            "baselines": sorted(((name, value) for name, value in tails.items() if is_number(value)),
                                key=lambda item: item[1]),
            "chart": eval_chart(ev),
        }
    losses = [(e["step"], e["loss"]) for e in entries if is_number(e.get("step")) and is_number(e.get("loss"))]
    return {
        "run": record, "id": record["id"],
        "title": f"run {record['id']}: {record.get('model')} on {record.get('task')}",
        "sweep": ", ".join(f"{k} = {v}" for k, v in (record.get("sweep") or {}).items()),
        "lr": train.get("lr"),
        "status": {"steps_done": status.get("steps_done", status.get("step")),
                   "steps_planned": status.get("steps_planned", train.get("steps")),
                   **{k: status.get(k) for k in ("final_loss", "wall_s", "steps_per_s", "device", "backend")}},
        "state": status.get("state") or "not trained",
        "eval_state": ev.get("state") or "not evaluated",
        "message": status.get("message") or ev.get("message") or "",
        "convergence": convergence_text(table1.run_convergence({**ev, "run_id": record["id"]},
                                                               {record["id"]: entries})),
        # the first logged step at or below each error threshold (train.log_error); None
        # where the run logged no error (no section)
        "time_to_accuracy": time_to_accuracy.run_time_to_accuracy(record, ev, status, entries),
        "train_chart": train_chart(losses),
        "train_points": len(losses),
        "evaluation": evaluation,
        "config": json.dumps(record, indent=1, sort_keys=True, default=str),
        "spec_blocks": specs.blocks(record),
        "files": files,
        "back": "../report.html",
    }


def convergence_text(found: dict | None) -> str:
    """The run's training convergence (Table 1's rule 7) in words: 'not converged: loss fell
    4.1% over the last 10% of steps (slope -5.2 standard errors)'."""
    from icl.evaluation.convergence import Convergence

    stopped = (found or {}).get("stopped_early")
    if isinstance(stopped, dict) and is_number(stopped.get("error")) and is_number(stopped.get("stop_error")):
        return (f"converged: stopped at step {stopped.get('step')}, error {stopped['error']:.3g} "
                f"<= train.stop_error {stopped['stop_error']:g}")
    found = found or {}
    judged = found.get("state") not in (None, "unknown") and is_number(found.get("drop")) and is_number(found.get("t"))
    return Convergence(found["state"] if judged else "unknown", found.get("drop") if judged else None,
                       found.get("t") if judged else None, found.get("points") or 0).describe()


# -- inline SVG charts -------------------------------------------------------------------

def train_chart(points: list[tuple[float, float]]) -> str | None:
    """The training loss against the step, as inline SVG; None without a logged step."""
    if not points:
        return None
    points = sorted(points)
    if len(points) > MAX_TRAIN_POINTS:
        k = math.ceil(len(points) / MAX_TRAIN_POINTS)
        points = points[::k] + ([points[-1]] if (len(points) - 1) % k else [])
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return svg_chart([{"x": xs, "y": ys, "colour": "#0072B2", "label": "training loss"}],
                     "step", "training loss", label="training loss against the step")


def eval_chart(ev: dict) -> str | None:
    """The evaluation's error against the number of in-context examples, with its band, chance
    and the best baseline; None for a single read-out (the numbers are in the table)."""
    positions = ev.get("positions") or []
    model = ev.get("model") or {}
    if len(positions) < 2 or not model.get("mean"):
        return None
    series = [{"x": positions, "y": model["mean"], "lo": model.get("lo"), "hi": model.get("hi"),
               "colour": "#0072B2", "label": f"{ev.get('model_name') or 'model'}, band 5%-95%"}]
    baselines = ev.get("baselines") or {}
    best = (ev.get("summary") or {}).get("best_baseline")
    if (baselines.get("zero") or {}).get("mean"):
        series.append({"x": positions, "y": baselines["zero"]["mean"], "colour": "#9a9a9a", "dash": "6 3",
                       "label": "zero predictor (chance)"})
    if best and best != "zero" and (baselines.get(best) or {}).get("mean"):
        series.append({"x": positions, "y": baselines[best]["mean"], "colour": "#333333", "dash": "2 2",
                       "label": f"best baseline: {best}"})
    return svg_chart(series, "in-context examples", ev.get("metric") or "error",
                     label="evaluation error against the number of in-context examples")


def svg_chart(series: list[dict], xlabel: str, ylabel: str, label: str) -> str:
    """A small line chart as an <svg> element: each series {"x", "y", "colour", "label", optional
    "dash", "lo" and "hi" (a band)}. The y axis turns logarithmic when the finite positive values
    span more than two decades (what lies under its floor is drawn on it)."""
    finite = [v for s in series for key in ("y", "lo", "hi") for v in (s.get(key) or []) if is_number(v)]
    xs = [x for s in series for x in s["x"] if is_number(x)]
    if not finite or not xs:
        return ""
    positive = [v for v in finite if v > 0]
    log = bool(positive) and max(positive) / min(positive) > 100 and len(positive) == len(finite)
    if log:
        low, high = math.log10(max(min(positive), max(positive) * 1e-6)), math.log10(max(positive))
        floor = 10 ** low
    else:
        low, high = min(0.0, min(finite)), max(finite)
        floor = None
    if high <= low:
        high = low + 1
    x0, x1 = min(xs), max(xs)
    if x1 <= x0:
        x1 = x0 + 1
    plot_w, plot_h = CHART_W - _PAD_L - _PAD_R, CHART_H - _PAD_T - _PAD_B

    def px(x):
        return _PAD_L + (x - x0) / (x1 - x0) * plot_w

    def py(y):
        v = math.log10(max(y, floor)) if log else y
        return _PAD_T + (1 - (v - low) / (high - low)) * plot_h

    out = [f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}" '
           f'role="img" aria-label="{_esc(label)}" xmlns="http://www.w3.org/2000/svg" font-size="11" '
           f'font-family="sans-serif">']
    out.append(f'<rect x="{_PAD_L}" y="{_PAD_T}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#bbb"/>')
    for tick in _ticks(low, high, log):
        y = _PAD_T + (1 - ((math.log10(tick) if log else tick) - low) / (high - low)) * plot_h
        out.append(f'<line x1="{_PAD_L}" x2="{_PAD_L + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{_PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">{table1.format_number(tick, 2)}</text>')
    for tick in _ticks(x0, x1, False, integer=True):
        x = px(tick)
        out.append(f'<text x="{x:.1f}" y="{_PAD_T + plot_h + 14}" text-anchor="middle">{_int_text(tick)}</text>')
    out.append(f'<text x="{_PAD_L + plot_w / 2:.0f}" y="{CHART_H - 4}" text-anchor="middle">{_esc(xlabel)}</text>')
    out.append(f'<text transform="translate(12 {_PAD_T + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">'
               f'{_esc(ylabel[:48])}{" (log)" if log else ""}</text>')
    for s in series:
        pairs = [(x, y) for x, y in zip(s["x"], s["y"]) if is_number(x) and is_number(y)]
        if s.get("lo") and s.get("hi"):
            band = [(x, lo, hi) for x, lo, hi in zip(s["x"], s["lo"], s["hi"]) if is_number(x) and is_number(lo) and is_number(hi)]
            if band:
                top = " ".join(f"{px(x):.0f},{py(hi):.0f}" for x, _, hi in band)
                bottom = " ".join(f"{px(x):.0f},{py(lo):.0f}" for x, lo, _ in reversed(band))
                out.append(f'<polygon points="{top} {bottom}" fill="{s["colour"]}" fill-opacity="0.18" stroke="none"/>')
        if pairs:
            dash = f' stroke-dasharray="{s["dash"]}"' if s.get("dash") else ""
            line = " ".join(f"{px(x):.0f},{py(y):.0f}" for x, y in pairs)
            out.append(f'<polyline class="series" data-label="{_esc(s["label"])}" points="{line}" fill="none" '
                       f'stroke="{s["colour"]}" stroke-width="1.6"{dash}/>')
    out.append(f'<rect x="{_PAD_L + plot_w - 254}" y="{_PAD_T + 2}" width="250" height="{14 * len(series) + 6}" '
               f'fill="#fff" fill-opacity="0.85"/>')
    for i, s in enumerate(series):   # legend, top right
        y = _PAD_T + 14 + 14 * i
        x = _PAD_L + plot_w - 250
        dash = f' stroke-dasharray="{s["dash"]}"' if s.get("dash") else ""
        out.append(f'<line x1="{x}" x2="{x + 20}" y1="{y - 4}" y2="{y - 4}" stroke="{s["colour"]}" '
                   f'stroke-width="2"{dash}/><text x="{x + 24}" y="{y}">{_esc(s["label"][:38])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _ticks(low: float, high: float, log: bool, integer: bool = False) -> list[float]:
    if log:
        return [10.0 ** e for e in range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1)]
    span = high - low
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, round(step))
    first = math.ceil(low / step) * step
    ticks, value = [], first
    while value <= high + 1e-9 * max(1.0, abs(high)):
        ticks.append(round(value, 12))
        value += step
    return ticks


def _int_text(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _esc(text) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


# -- the spec lines that made a run ------------------------------------------------------

_HEADER = re.compile(r"^\s*(model|task|train|eval|experiment)\s+([A-Za-z_][\w\-]*)"
                     r"(?:\s+extends\s+([A-Za-z_][\w\-]*))?\s*\{")
_IMPORT = re.compile(r'^\s*import\s+"([^"]+)"')
_NESTED_EXTENDS = re.compile(r"\b(train|eval)\s+extends\s+([A-Za-z_][\w\-]*)")


class SpecIndex:
    """The top-level sections of spec files (and of the files they import), by kind and name,
    each with its file, first and last line and text. Read from the text: no compiler."""

    def __init__(self):
        self._files: dict[str, dict] = {}

    def blocks(self, record: dict) -> list[dict]:
        """The blocks that made the run: its experiment's (and those it extends), the top-level
        train and eval sections they extend, its model's and task's (and theirs)."""
        spec = record.get("spec")
        if not spec:
            return []
        sections = self._sections(str(spec))
        if sections is None:
            return [{"file": str(spec), "start": None, "end": None, "text": "", "missing": True}]
        chosen: list[dict] = []

        def add(kind: str, name: str | None, depth: int = 0) -> None:
            block = sections.get((kind, name)) if name else None
            if block is None or block in chosen or depth > 8:
                return
            chosen.append(block)
            if block["base"]:
                add(kind, block["base"], depth + 1)
            if kind == "experiment":
                for sub, base in _NESTED_EXTENDS.findall(block["text"]):
                    add(sub, base, depth + 1)

        add("experiment", record.get("experiment"))
        add("model", record.get("model"))
        add("task", record.get("task"))
        return chosen

    def _sections(self, spec: str) -> dict | None:
        if spec in self._files:
            return self._files[spec]
        root = Path(spec)
        if not root.is_file():
            self._files[spec] = None
            return None
        sections: dict = {}
        seen: set[Path] = set()

        def read(path: Path, depth: int) -> None:
            resolved = path.resolve()
            if resolved in seen or depth > 16 or not path.is_file():
                return
            seen.add(resolved)
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            for i, line in enumerate(lines):
                match = _IMPORT.match(line)
                if match:
                    read(path.parent / match.group(1), depth + 1)
                    continue
                match = _HEADER.match(line)
                if not match:
                    continue
                end = _block_end(lines, i)
                kind, name, base = match.groups()
                shown = lines[i:end + 1]
                cut = len(shown) > MAX_BLOCK_LINES
                text = "\n".join(shown[:MAX_BLOCK_LINES]) + (f"\n... ({len(shown) - MAX_BLOCK_LINES} more lines)"
                                                              if cut else "")
                # The root file's own sections win over an imported one of the same name (none
                # such loads, the compiler forbids duplicates; first seen is kept).
                sections.setdefault((kind, name), {"file": _shown_path(path), "start": i + 1, "end": end + 1,
                                                   "kind": kind, "name": name, "base": base, "text": text,
                                                   "missing": False})

        read(root, 0)
        self._files[spec] = sections
        return sections


def _block_end(lines: list[str], start: int) -> int:
    """The index of the line closing the section that opens on lines[start] (braces counted
    outside strings and # comments)."""
    depth = 0
    for i in range(start, len(lines)):
        in_string = False
        for ch in lines[i]:
            if ch == '"':
                in_string = not in_string
            elif in_string:
                continue
            elif ch == "#":
                break
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return i
    return len(lines) - 1


def _shown_path(path: Path) -> str:
    """A spec path as the page shows it: relative to the working folder where it lies below it."""
    try:
        return Path(os.path.relpath(path)).as_posix() if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)
