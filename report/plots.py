"""ICL curves: a task's error against the number of in-context examples, one line per architecture.

    plot_task(evals, runs, out_png) -> Path

Each architecture is drawn at its best configuration (the one Table 1 judges, see
table1.best_configs): the line is the mean over its seeds, the band runs from the
lowest 5% to the highest 95% bootstrap bound of those seeds (one seed: the
evaluation's own band). The classical baselines, scored on the same prompts, are
dashed (of the Lasso family only the best alpha, to keep the plot readable); errors
known in closed form (the task catalog's `levels`, e.g. sparse parity's best guess from
the query alone) are dotted levels on the main panel. The
y axis fits the architectures' curves: a baseline that leaves that range (least squares
near the interpolation threshold, n = d) runs off the top, and the axis turns
logarithmic when the curves shown span more than two decades. A task with
evaluation variants (Garg's shifted distributions, outlier placements, MQAR query
noise) gets a row of smaller panels under the main one, in the same PNG file, so
the pipeline has one plot per task. What is task-specific comes from the task's catalog
entry (tasks/catalog.py): its `levels`, its `readout` (a task read out once is drawn as
bars; one read out as hidden features then output gets the features in a panel of their
own) and its `variant_sweeps` (a swept variant is one panel, error against the value).

Figures are built with matplotlib's object API on the Agg canvas (no pyplot state,
no display needed) and written atomically.
"""
from __future__ import annotations

import io
import math
import textwrap
import warnings
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from icl.report import table1
from icl.tasks.catalog import TASKS, TaskKind, VariantSweep
from icl import atomic

WIDTH_IN, MAIN_HEIGHT_IN, VARIANT_HEIGHT_IN = 7.0, 4.5, 2.7
DPI = 120
LOG_SPAN = 100.0          # max/min of the plotted errors above which the y axis is logarithmic
LOG_FLOOR = 1e-4          # a log axis shows at most 4 decades below the largest error: exact
                          # solvers (least squares) reach 1e-15, which would squash every model
TOP_OVER_MODELS = 1.5     # the y axis ends this far above the architectures' highest error
VARIANT_COLUMNS = 2
TITLE_CHARS = 90          # a main title longer than this breaks into lines: a 9 pt line of 90
                          # characters fits over the main axes of a WIDTH_IN figure (104 did not)

# Fixed colours for the study's architectures, so every plot of a report agrees.
MODEL_COLOURS = {"transformer": "#1f77b4", "mamba": "#d62728", "s4": "#2ca02c",
                 "s4_mamba": "#9467bd", "standard_hybrid": "#ff7f0e", "mambaformer": "#17becf"}
_EXTRA_COLOURS = ("#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#393b79", "#637939")
BASELINE_COLOURS = ("#555555", "#999999", "#6b4c9a", "#b8860b", "#2f4f4f", "#a0522d", "#708090")


def plot_task(evals: list[dict], runs: list[dict], out_png: Path) -> Path:
    """Draw the ICL curves of one task (its evaluations and runs) into `out_png`; returns the path."""
    out_png = Path(out_png)
    atomic.write_bytes(out_png, _png_bytes(_task_figure(evals, runs)))
    return out_png


def _task_figure(evals: list[dict], runs: list[dict]) -> Figure:
    kinds = {r["id"]: TASKS.get((r.get("task_config") or {}).get("kind")) for r in runs}
    evals = [_split_hidden_and_output(ev) if _readout(kinds.get(ev.get("run_id"))) == "hidden_and_output"
             else ev for ev in evals]
    best = table1.best_configs(evals, runs)
    tasks = table1.ordered_tasks(best, runs) if best else []
    task = tasks[0] if tasks else (runs[0]["task"] if runs else "task")
    kind, config = _entry(task, runs)
    lines = {m: [ev for ev in c["evals"] if table1.tail(ev) is not None]
             for m, c in best.get(task, {}).items()}
    lines = {m: lines[m] for m in table1.ordered_models(lines) if lines[m]}
    done = [ev for ev in evals if ev.get("state") == "done" and ev.get("model")]
    diverged = sorted({ev.get("model_name") or "?" for ev in evals if table1.is_diverged(ev)})
    colours = _colours(list(lines) + [r["model"] for r in runs])

    sweeps = kind.variant_sweeps if kind is not None else {}
    variant_names = _variant_groups(done, sweeps)
    rows = math.ceil(len(variant_names) / VARIANT_COLUMNS)
    height = MAIN_HEIGHT_IN + rows * VARIANT_HEIGHT_IN
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1 + rows, VARIANT_COLUMNS,
                            height_ratios=[MAIN_HEIGHT_IN] + [VARIANT_HEIGHT_IN] * rows)
    main = fig.add_subplot(grid[0, :])
    metric = done[0].get("metric", "error") if done else "error"
    seeds = sorted({len(v) for v in lines.values()})
    single = bool(done) and len(done[0].get("positions") or []) == 1
    title = [f"{task}: error at the read-out" if single else f"{task}: in-context learning curve"]
    if seeds:
        title.append(f"(best sweep point per architecture; {'/'.join(map(str, seeds))} seed(s))")
    _panel(main, lines, done[0] if done else None, None, colours, metric, legend=True,
           levels=kind.levels(kind.with_defaults(config)) if kind is not None else {})
    main.set_title(_title_lines(title), fontsize=9)
    if not lines:
        main.text(0.5, 0.5, "no finished evaluation", ha="center", va="center",
                  transform=main.transAxes, color="#b00020")
    if diverged:
        main.text(0.01, 0.01, "diverged: " + ", ".join(diverged), transform=main.transAxes,
                  fontsize=8, color="#b00020", ha="left", va="bottom")

    for i, (label, members) in enumerate(variant_names.items()):
        ax = fig.add_subplot(grid[1 + i // VARIANT_COLUMNS, i % VARIANT_COLUMNS])
        if label in sweeps:
            _sweep_panel(ax, lines, members, colours, sweeps[label])
        else:
            _panel(ax, lines, done[0], members[0], colours, None, legend=False)
        ax.set_title(label, fontsize=8)
    fig.tight_layout()
    return fig


def _entry(task: str, runs: list[dict]) -> tuple[TaskKind | None, dict]:
    """The task's catalog entry and its runs' task config (None and {} without one)."""
    config = next((r.get("task_config") for r in runs if r.get("task") == task and r.get("task_config")), None)
    kind = TASKS.get((config or {}).get("kind"))
    return (kind, config) if kind is not None else (None, {})


def _readout(kind: TaskKind | None) -> str | None:
    return None if kind is None else kind.readout


def _title_lines(parts: list[str]) -> str:
    """The parts on one line if it has at most TITLE_CHARS characters, else each part on
    lines of its own, wrapped at TITLE_CHARS."""
    line = " ".join(parts)
    if len(line) <= TITLE_CHARS:
        return line
    return "\n".join(wrapped for part in parts for wrapped in textwrap.wrap(part, TITLE_CHARS))


def _png_bytes(fig: Figure) -> bytes:
    from PIL import Image   # matplotlib's own dependency

    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=DPI, facecolor="white")
    raw.seek(0)
    return _quantized(Image.open(raw).convert("RGB"))


def _quantized(image) -> bytes:
    """A 256-colour PNG: a third of the RGBA file's size, same look (octree keeps the hues)."""
    from PIL import Image

    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, format="PNG", optimize=True)
    return out.getvalue()


# -- panels ----------------------------------------------------------------------------

def _panel(ax, lines: dict[str, list[dict]], reference: dict | None, variant: str | None,
           colours: dict, metric: str | None, legend: bool, levels: dict[str, float] | None = None) -> None:
    """Curves of every architecture (and the reference evaluation's baselines, and `levels`
    as dotted lines) on one axis."""
    plotted, baselines = [], []
    single = reference is not None and len(_part(reference, variant).get("positions") or []) == 1
    if single:
        _bars(ax, lines, reference, variant, colours)
    else:
        for model, evs in lines.items():
            curve = _seed_curve(evs, variant)
            if curve is None:
                continue
            x, mean, lo, hi = curve
            # Positions with no value (masked: e.g. outlier slots) are skipped, not gaps.
            ok = np.isfinite(mean)
            style = {"marker": "o", "ms": 3} if ok.sum() < 0.5 * len(ok) else {}
            ax.plot(x[ok], mean[ok], color=colours[model], lw=1.8, label=model, **style)
            ax.fill_between(x[ok], lo[ok], hi[ok], color=colours[model], alpha=0.18, lw=0)
            plotted.extend([mean, hi])  # the axis holds the bands too
        if reference is not None:
            for i, (name, base) in enumerate(_baselines(_part(reference, variant)).items()):
                x = np.asarray(_part(reference, variant)["positions"], dtype=float)
                mean = _array(base["mean"])
                if len(mean) != len(x):
                    continue
                ok = np.isfinite(mean)
                ax.plot(x[ok], mean[ok], ls="--", lw=1.2, label=name,
                        color=BASELINE_COLOURS[i % len(BASELINE_COLOURS)])
                baselines.append(mean)
        for name, level in (levels or {}).items():
            ax.axhline(level, ls=":", lw=1.3, color="#333333", label=f"{name} ({level:.3g})")
            baselines.append(np.array([level]))
        ax.set_xlabel("in-context examples", fontsize=8)
        _fit_y_axis(ax, plotted, baselines)
    if metric:
        ax.set_ylabel("\n".join(textwrap.wrap(metric, 38)), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=2, loc="best", framealpha=0.85)


def _bars(ax, lines, reference, variant, colours) -> None:
    """A task read out once (readout "once", vector MQAR): one bar per architecture, baselines
    as dashed levels."""
    names = list(lines)
    for i, model in enumerate(names):
        curve = _seed_curve(lines[model], variant)
        if curve is None:
            continue
        _, mean, lo, hi = curve
        ax.bar(i, mean[0], color=colours[model], alpha=0.85)   # named on the x axis
        ax.errorbar(i, mean[0], yerr=[[max(mean[0] - lo[0], 0)], [max(hi[0] - mean[0], 0)]],
                    color="black", capsize=3, lw=1)
    for j, (name, base) in enumerate(_baselines(_part(reference, variant)).items()):
        value = _array(base["mean"])
        if len(value) and np.isfinite(value[0]):
            colour = BASELINE_COLOURS[j % len(BASELINE_COLOURS)]
            ax.axhline(value[0], ls="--", lw=1.2, color=colour)
            ax.text(1.0, value[0], f" {name}", transform=ax.get_yaxis_transform(), color=colour,
                    fontsize=7, va="center", ha="left", clip_on=False)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=7)
    positions = _part(reference, variant).get("positions") or ["?"]
    ax.set_xlabel(f"architecture (read out after {positions[0]} examples)", fontsize=8)


def _sweep_panel(ax, lines, members: list[str], colours, sweep: VariantSweep) -> None:
    """A swept variant (MQAR query noise): error at the read-out against the variant's value,
    one line per architecture."""
    values_at = [float(name.split(":", 1)[1]) for name in members]
    for model, evs in lines.items():
        values = []
        for name in members:
            curve = _seed_curve(evs, name)
            values.append(float(np.nanmean(curve[1])) if curve is not None else math.nan)
        ax.plot(values_at, values, marker="o", ms=3, color=colours[model], lw=1.5, label=model)
    if sweep.log:
        ax.set_xscale("log")
    ax.set_xlabel(sweep.label, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


# -- data ------------------------------------------------------------------------------

def _part(ev: dict, variant: str | None) -> dict:
    """The standard evaluation, or one variant's block (same keys: positions, model, baselines)."""
    if variant is None:
        return ev
    return (ev.get("variants") or {}).get(variant) or {}


def _seed_curve(evs: list[dict], variant: str | None):
    """(x, mean over seeds, lowest 5% bound, highest 95% bound), or None without data."""
    parts = [_part(ev, variant) for ev in evs]
    parts = [p for p in parts if p.get("model") and p.get("positions")]
    if not parts:
        return None
    length = min(len(p["positions"]) for p in parts)
    x = np.asarray(parts[0]["positions"][:length], dtype=float)
    means = np.stack([_array(p["model"]["mean"][:length]) for p in parts])
    lows = np.stack([_array(p["model"]["lo"][:length]) for p in parts])
    highs = np.stack([_array(p["model"]["hi"][:length]) for p in parts])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN position stays NaN
        return x, np.nanmean(means, 0), np.nanmin(lows, 0), np.nanmax(highs, 0)


def _baselines(part: dict) -> dict:
    """The baselines to draw: all, with the Lasso family cut down to its best alpha."""
    bases = part.get("baselines") or {}
    tails = (part.get("summary") or {}).get("baselines_tail") or {}
    lassos = [n for n in bases if n.startswith("lasso_")]
    keep = dict(bases)
    if len(lassos) > 1:
        scored = [n for n in lassos if table1._finite(tails.get(n))]
        best = min(scored, key=lambda n: tails[n]) if scored else lassos[0]
        for name in lassos:
            if name != best:
                keep.pop(name)
    return keep


def _split_hidden_and_output(ev: dict) -> dict:
    """A task read out twice per example (readout "hidden_and_output", chain of thought: p = 2i:
    features s_i, p = 2i + 1: output y_i): the main curve becomes the outputs against i, and the
    features go to a panel of their own."""
    count = len(ev.get("positions") or [])
    if ev.get("state") != "done" or count == 0 or count % 2 or count != 2 * int(ev.get("points") or 0):
        return ev

    def pick(block: dict, start: int) -> dict:
        return {k: (v[start::2] if isinstance(v, list) else v) for k, v in block.items()}

    def half(start: int) -> dict:
        return {"positions": list(range(count // 2)), "model": pick(ev["model"], start),
                "baselines": {n: pick(b, start) for n, b in (ev.get("baselines") or {}).items()},
                "summary": ev.get("summary")}

    outputs = half(1)
    return {**ev, **outputs, "metric": "squared error / d of the output y",
            "variants": {"features s (squared error / d)": half(0), **(ev.get("variants") or {})}}


def _variant_groups(done: list[dict], sweeps: dict[str, VariantSweep]) -> dict[str, list[str]]:
    """Panel label -> variant names, in the evaluations' order; the values of a swept variant
    ("noisy_query:0.5", ...) share its panel, by value."""
    groups: dict[str, list[str]] = {}
    for ev in done:
        for name in ev.get("variants") or {}:
            prefix, colon, _ = name.partition(":")
            label = prefix if colon and prefix in sweeps else name
            members = groups.setdefault(label, [])
            if name not in members:
                members.append(name)
    for label in sweeps:
        if label in groups:
            groups[label].sort(key=lambda n: float(n.split(":", 1)[1]))
    return groups


def _fit_y_axis(ax, models: list[np.ndarray], baselines: list[np.ndarray]) -> None:
    """Fit the y axis to the architectures' curves (all curves when none is drawn); baselines
    above that range are cut off, and a span of more than LOG_SPAN turns the axis logarithmic."""
    def positive(curves):
        values = np.concatenate([c[np.isfinite(c)] for c in curves]) if curves else np.array([])
        return values[values > 0]

    everything = positive(models + baselines)
    if not everything.size:
        return
    focus = positive(models) if positive(models).size else everything
    top = focus.max() * TOP_OVER_MODELS
    shown = everything[everything <= top]
    low = max(shown.min(), top * LOG_FLOOR)
    if top / low > LOG_SPAN:
        ax.set_yscale("log")
        ax.set_ylim(low / 1.5, top)
    else:
        ax.set_ylim(0.0, top)


def _colours(models: list[str]) -> dict[str, str]:
    colours, extra = {}, iter(_EXTRA_COLOURS * 10)
    for model in dict.fromkeys(models):
        colours[model] = MODEL_COLOURS.get(model) or next(extra)
    return colours


def _array(values) -> np.ndarray:
    return np.asarray([math.nan if v is None else v for v in values], dtype=float)
