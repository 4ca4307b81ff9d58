"""ICL curves: a task's error against the number of in-context examples, one line per architecture.

    plot_task(evals, runs, out_png) -> Path

Each architecture is drawn at its best configuration (the one Table 1 judges, see
table1.best_configs): the line is the mean over its seeds, the band its 90% bootstrap
interval over those seeds (intervals.seed_bands; one seed: the evaluation's own 5%-95%
band over prompts). Where a cell's runs sweep the learning rate, a panel under the main one
draws the learning-rate sensitivity: each architecture's score (Table 1's: tail error, mean
over seeds, a diverged seed counting as chance) against the learning rate, with its
interval over seeds (sensitivity.lr_sensitivity). The classical baselines, scored on the same prompts, are grey
and dashed, each with its own dash pattern: the zero predictor (chance) and the
MAX_BASELINES others with the lowest tail error (of the Lasso family only the best
alpha); the rest are named under the panel, with their tail errors, so that a task with
many noisy baselines (decision trees: seven) stays readable. Errors known in closed
form (the task catalog's `levels`, e.g. sparse parity's best guess from the query
alone) are dotted levels on the main panel. Colour means architecture only, from the
Okabe-Ito palette (told apart with any colour vision). The
y axis fits the architectures' curves: a baseline that leaves that range (least squares
near the interpolation threshold, n = d) runs off the top, and the axis turns
logarithmic when the curves shown span more than two decades; values under its floor,
zeros included, are drawn on the floor, which is shaded and labelled, rather than
vanishing. The x axis counts examples: integer ticks. A task with
evaluation variants (Garg's shifted distributions, outlier placements, MQAR query
noise) gets a row of smaller panels under the main one, in the same PNG file, so
the pipeline has one plot per task. What is task-specific comes from the task's catalog
entry (tasks/catalog.py): its `levels`, its `readout` (a task read out once is drawn as
bars; one read out as hidden features then output gets the features in a panel of their
own) and its `variant_sweeps` (a swept variant is one panel, error against the value).

Figures are built with matplotlib's object API on the Agg canvas (no pyplot state,
no display needed) and written atomically, as PNG (embedded in the report) and, beside
it under the same name, as SVG and PDF (FORMATS): without dates or random ids, so the
same results give the same bytes.
"""
from __future__ import annotations

import io
import math
import textwrap
import warnings
from pathlib import Path

import numpy as np
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from icl.report import intervals, sensitivity, table1
from icl.tasks.catalog import TASKS, TaskKind, VariantSweep
from icl import atomic
from icl.run import Run
from icl.report.numbers import is_number

WIDTH_IN, MAIN_HEIGHT_IN, VARIANT_HEIGHT_IN = 7.0, 4.5, 2.7
LR_HEIGHT_IN = 2.6       # the learning-rate sensitivity panel, where a cell sweeps lr
DPI = 120
LOG_SPAN = 100.0          # max/min of the plotted errors above which the y axis is logarithmic
LOG_FLOOR = 1e-4          # a log axis shows at most 4 decades below the largest error: exact
                          # solvers (least squares) reach 1e-15, which would squash every model
TOP_OVER_MODELS = 1.5     # the y axis ends this far above the architectures' highest error
VARIANT_COLUMNS = 2
TITLE_CHARS = 90          # a main title longer than this breaks into lines: a 9 pt line of 90
                          # characters fits over the main axes of a WIDTH_IN figure (104 did not)

FORMATS = (".png", ".svg", ".pdf")   # each figure, under one name; the PNG is the one embedded
MAX_BASELINES = 3         # baselines drawn besides the zero predictor: the best by tail error
                          # (report.html.j2 and docs/report.md say "three")
FLOOR_COLOUR = "#ececec"  # the shaded strip under a log axis's floor

# Fixed colours for the study's architectures, so every plot of a report agrees: the
# Okabe-Ito palette (Wong, Nature Methods 2011), distinct under every common colour-vision
# deficiency. Colour means architecture only; baselines are grey.
MODEL_COLOURS = {"transformer": "#0072B2", "mamba": "#D55E00", "mambaformer": "#009E73",
                 "s4": "#56B4E9", "s4_mamba": "#CC79A7", "standard_hybrid": "#E69F00"}
_EXTRA_COLOURS = ("#000000", "#F0E442", "#7F3C8D", "#8C564B")
# A baseline is told by its dash pattern (and shade): (colour, dashes), by the baseline's
# place in its evaluation, so a baseline looks the same in every panel of a figure.
BASELINE_STYLES = (("#222222", (0, (5, 2))), ("#555555", (0, (1, 1.5))), ("#333333", (0, (7, 2, 1.5, 2))),
                   ("#777777", (0, (3, 1.5))), ("#444444", (0, (7, 2, 1.5, 2, 1.5, 2))),
                   ("#666666", (0, (10, 3))), ("#888888", (0, (2, 3))))
ZERO_STYLE = ("#9a9a9a", (0, (10, 2)))   # the zero predictor: chance, always drawn


def plot_task(evals: list[dict], runs: list[Run], out_png: Path) -> Path:
    """Draw the ICL curves of one task (its evaluations and runs) into `out_png`, and the same
    figure as .svg and .pdf beside it; returns the PNG's path."""
    out_png = Path(out_png)
    fig = _task_figure(evals, runs)
    # Vector copies first: the PNG is what the pipeline's plot rule waits for.
    for suffix in FORMATS[1:]:
        atomic.write_bytes(out_png.with_suffix(suffix), _vector_bytes(fig, suffix.lstrip(".")))
    atomic.write_bytes(out_png, _png_bytes(fig))
    return out_png


def figure_paths(out_png: Path) -> list[Path]:
    """Every file plot_task writes for `out_png` (FORMATS)."""
    return [Path(out_png).with_suffix(suffix) for suffix in FORMATS]


def _task_figure(evals: list[dict], runs: list[Run]) -> Figure:
    kinds = {r.id: TASKS.get((r.task_config or {}).get("kind")) for r in runs}
    evals = [_split_hidden_and_output(ev) if _readout(kinds.get(ev.get("run_id"))) == "hidden_and_output"
             else ev for ev in evals]
    best = table1.best_configs(evals, runs)
    tasks = table1.ordered_tasks(best, runs) if best else []
    task = tasks[0] if tasks else (runs[0].task if runs else "task")
    kind, config = _entry(task, runs)
    lines = {m: [ev for ev in c["evals"] if table1.tail(ev) is not None]
             for m, c in best.get(task, {}).items()}
    lines = {m: lines[m] for m in table1.ordered_models(lines) if lines[m]}
    done = [ev for ev in evals if ev.get("state") == "done" and ev.get("model")]
    model_of = {r.id: r.model for r in runs}   # the spec's names, as in Table 1
    diverged = sorted({model_of.get(ev.get("run_id")) or ev.get("model_name") or "?"
                       for ev in evals if table1.is_diverged(ev)})
    colours = _colours(list(lines) + [r.model for r in runs])

    sweeps = kind.variant_sweeps if kind is not None else {}
    variant_names = _variant_groups(done, sweeps)
    rows = math.ceil(len(variant_names) / VARIANT_COLUMNS)
    lr_lines = sensitivity.lr_sensitivity(evals, runs).get(task) or {}
    lr_panel = bool(lr_lines.get("swept"))
    height = MAIN_HEIGHT_IN + rows * VARIANT_HEIGHT_IN + (LR_HEIGHT_IN if lr_panel else 0)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1 + rows + lr_panel, VARIANT_COLUMNS,
                            height_ratios=[MAIN_HEIGHT_IN] + [VARIANT_HEIGHT_IN] * rows
                            + ([LR_HEIGHT_IN] if lr_panel else []))
    main = fig.add_subplot(grid[0, :])
    metric = done[0].get("metric", "error") if done else "error"
    seeds = sorted({len(v) for v in lines.values()})
    single = bool(done) and len(done[0].get("positions") or []) == 1
    title = [f"{task}: error at the read-out" if single else f"{task}: in-context learning curve"]
    if seeds:
        band = ("band: 5%-95% over prompts" if seeds == [1] else
                f"band: {intervals.LEVEL} bootstrap interval over seeds" if min(seeds) > 1 else
                f"band: {intervals.LEVEL} interval over seeds, over prompts where one seed")
        title.append(f"(chosen sweep point per architecture; {'/'.join(map(str, seeds))} seed(s); {band})")
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
    if lr_panel:
        _lr_panel(fig.add_subplot(grid[1 + rows, :]), lr_lines, colours)
    fig.tight_layout()
    return fig


def _lr_panel(ax, sensitivity_of_task: dict, colours: dict) -> None:
    """Learning-rate sensitivity: each architecture's score (Table 1's) against the learning
    rate, with its interval over seeds; chance as a grey level."""
    for model, points in sensitivity_of_task["models"].items():
        lrs = np.array([p["lr"] for p in points], dtype=float)
        mean = np.array([p["metric"] for p in points], dtype=float)
        lo = np.array([p["lo"] if p["lo"] is not None else p["metric"] for p in points], dtype=float)
        hi = np.array([p["hi"] if p["hi"] is not None else p["metric"] for p in points], dtype=float)
        ax.errorbar(lrs, mean, yerr=[np.maximum(mean - lo, 0), np.maximum(hi - mean, 0)], marker="o", ms=3.5,
                    lw=1.5, capsize=2.5, color=colours.get(model, "#000000"), label=model)
        for p in points:
            if p["diverged"]:
                ax.annotate(f"{p['diverged']} diverged", (p["lr"], p["metric"]), fontsize=6, color="#b00020",
                            textcoords="offset points", xytext=(3, 3))
    chance = sensitivity_of_task.get("chance")
    if is_number(chance):
        colour, dashes = ZERO_STYLE
        ax.axhline(chance, ls=dashes, lw=1.0, color=colour, label=f"chance ({chance:.3g})")
    if all(lr > 0 for lr in sensitivity_of_task["lrs"]):
        ax.set_xscale("log")
    ax.set_xticks(sensitivity_of_task["lrs"], [f"{lr:g}" for lr in sensitivity_of_task["lrs"]])
    ax.minorticks_off()
    ax.set_xlabel("learning rate", fontsize=8)
    ax.set_ylabel("tail error (mean over seeds)", fontsize=8)
    ax.set_title("learning-rate sensitivity (bars: 90% bootstrap interval over seeds)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="best", framealpha=0.85)


def _entry(task: str, runs: list[Run]) -> tuple[TaskKind | None, dict]:
    """The task's catalog entry and its runs' task config (None and {} without one)."""
    config = next((r.task_config for r in runs if r.task == task and r.task_config), None)
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


def _vector_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure as SVG or PDF, the same bytes for the same figure: no creation date, and
    the SVG's element ids from a fixed salt instead of a random one."""
    out = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None}
    with matplotlib.rc_context({"svg.hashsalt": "icl-report", "svg.fonttype": "path", "pdf.compression": 6}):
        fig.savefig(out, format=fmt, facecolor="white", metadata=metadata)
    return out.getvalue()


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
    single = reference is not None and len(_part(reference, variant).get("positions") or []) == 1
    if single:
        _bars(ax, lines, reference, variant, colours)
    else:
        curves = []          # (model, x, mean, lo, hi, sparse) of each architecture
        for model, evs in lines.items():
            curve = _seed_curve(evs, variant)
            if curve is None:
                continue
            x, mean, lo, hi = curve
            # Positions with no value (masked: e.g. outlier slots) are skipped, not gaps.
            ok = np.isfinite(mean)
            curves.append((model, x[ok], mean[ok], lo[ok], hi[ok], ok.sum() < 0.5 * len(ok)))
        drawn, left_out = [], []
        if reference is not None:
            part = _part(reference, variant)
            x = np.asarray(part.get("positions") or [], dtype=float)
            drawn, left_out = _drawn_baselines(part, len(x))
        levels = dict(levels or {})
        floor = _fit_y_axis(ax, [c for _, _, mean, _, hi, _ in curves for c in (mean, hi)],  # bands too
                            [mean for _, mean, _ in drawn] + [np.array([v]) for v in levels.values()])

        def shown(y):   # on a log axis, what lies under the floor (zeros too) is drawn on it
            return y if floor is None else np.maximum(y, floor)

        for model, cx, mean, lo, hi, sparse in curves:
            style = {"marker": "o", "ms": 3} if sparse else {}
            ax.plot(cx, shown(mean), color=colours[model], lw=1.8, label=model, zorder=3, **style)
            ax.fill_between(cx, shown(lo), shown(hi), color=colours[model], alpha=0.18, lw=0, zorder=2)
        for name, mean, (colour, dashes) in drawn:
            ok = np.isfinite(mean)
            ax.plot(x[ok], shown(mean[ok]), ls=dashes, lw=1.1, label=name, color=colour, zorder=1)
        for name, level in levels.items():
            ax.axhline(level if floor is None else max(level, floor), ls=":", lw=1.3, color="#333333",
                       label=f"{name} ({level:.3g})", zorder=1)
        if floor is not None:
            _mark_floor(ax, floor)
        xlabel = "in-context examples"
        if left_out:
            xlabel += "\n" + textwrap.fill("baselines not drawn (higher tail error): " + ", ".join(
                f"{name} {table1.format_number(tail)}" for name, tail in left_out),
                TITLE_CHARS if legend else TITLE_CHARS // 2)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # a count of examples: no 2.5
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
    part = _part(reference, variant)
    drawn, _ = _drawn_baselines(part, len(part.get("positions") or []))
    for name, value, (colour, dashes) in drawn:
        if len(value) and np.isfinite(value[0]):
            ax.axhline(value[0], ls=dashes, lw=1.2, color=colour)
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
    if sweep.log and min(values_at) > 0:
        ax.set_xscale("log")
    elif sweep.log:   # a value 0 would vanish on a log axis: linear up to the smallest other value
        above = [v for v in values_at if v > 0]
        ax.set_xscale("symlog", linthresh=min(above) if above else 1.0)
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
    """(x, mean over seeds, lo, hi), or None without data. Several seeds: the band is the
    bootstrap interval over seeds of their mean curves (intervals.seed_bands); one seed: its
    evaluation's own 5%-95% band over prompts."""
    parts = [_part(ev, variant) for ev in evs]
    parts = [p for p in parts if p.get("model") and p.get("positions")]
    if not parts:
        return None
    length = min(len(p["positions"]) for p in parts)
    x = np.asarray(parts[0]["positions"][:length], dtype=float)
    means = np.stack([_array(p["model"]["mean"][:length]) for p in parts])
    if len(parts) == 1:
        return x, means[0], _array(parts[0]["model"]["lo"][:length]), _array(parts[0]["model"]["hi"][:length])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN position stays NaN
        mean, lo, hi = intervals.seed_bands(means)
    return x, mean, lo, hi


def _drawn_baselines(part: dict, length: int) -> tuple[list, list]:
    """([(name, mean curve, style)], [(name, tail)]): the baselines drawn on a panel (the zero
    predictor, then the MAX_BASELINES others with the lowest tail error, in the evaluation's
    order) and those left out, by tail error."""
    bases = _baselines(part)
    tails = (part.get("summary") or {}).get("baselines_tail") or {}
    curves, scored = {}, []
    for name, base in bases.items():
        mean = _array(base.get("mean") or [])
        if len(mean) != length:
            continue
        curves[name] = mean
        tail = tails.get(name) if is_number(tails.get(name)) else _tail(mean)
        if name != "zero":
            scored.append((math.inf if tail is None else tail, name))
    kept = {name for _, name in sorted(scored)[:MAX_BASELINES]} | ({"zero"} & set(curves))
    everyone = list(part.get("baselines") or {})
    drawn = [(name, mean, ZERO_STYLE if name == "zero" else
              BASELINE_STYLES[everyone.index(name) % len(BASELINE_STYLES)])
             for name, mean in curves.items() if name in kept]
    left_out = [(name, tail) for tail, name in sorted(scored) if name not in kept and math.isfinite(tail)]
    return drawn, left_out


def _tail(curve: np.ndarray) -> float | None:
    """The mean of a curve's last quarter of finite values (as evaluation's `*_tail`)."""
    values = curve[np.isfinite(curve)]
    if not values.size:
        return None
    return float(values[-max(1, len(values) // 4):].mean())


def _mark_floor(ax, floor: float) -> None:
    """Shade a log axis below `floor` and say what is drawn there."""
    bottom = ax.get_ylim()[0]
    ax.axhspan(bottom, floor, color=FLOOR_COLOUR, lw=0, zorder=0)
    ax.axhline(floor, color="#9a9a9a", lw=0.6, zorder=0)
    ax.text(0.995, floor, f"\u2264 {floor:.0e} (zeros too) drawn here", transform=ax.get_yaxis_transform(),
            fontsize=6, color="#555555", ha="right", va="top", zorder=4)


def _baselines(part: dict) -> dict:
    """The baselines to draw: all, with the Lasso family cut down to its best alpha."""
    bases = part.get("baselines") or {}
    tails = (part.get("summary") or {}).get("baselines_tail") or {}
    lassos = [n for n in bases if n.startswith("lasso_")]
    keep = dict(bases)
    if len(lassos) > 1:
        scored = [n for n in lassos if is_number(tails.get(n))]
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


def _fit_y_axis(ax, models: list[np.ndarray], baselines: list[np.ndarray]) -> float | None:
    """Fit the y axis to the architectures' curves (all curves when none is drawn); baselines
    above that range are cut off, and a span of more than LOG_SPAN turns the axis logarithmic.
    Returns a log axis's floor (the lowest value drawn: at most LOG_FLOOR of the top, and what
    lies below it, zeros included, belongs on it), or None for a linear axis."""
    def positive(curves):
        values = np.concatenate([c[np.isfinite(c)] for c in curves]) if curves else np.array([])
        return values[values > 0]

    everything = positive(models + baselines)
    if not everything.size:
        return None
    focus = positive(models) if positive(models).size else everything
    top = focus.max() * TOP_OVER_MODELS
    shown = everything[everything <= top]
    low = max(shown.min(), top * LOG_FLOOR)
    if top / low > LOG_SPAN:
        ax.set_yscale("log")
        ax.set_ylim(low / 1.5, top)
        return low
    ax.set_ylim(0.0, top)
    return None


def _colours(models: list[str]) -> dict[str, str]:
    colours, extra = {}, iter(_EXTRA_COLOURS * 10)
    for model in dict.fromkeys(models):
        colours[model] = MODEL_COLOURS.get(model) or next(extra)
    return colours


def _array(values) -> np.ndarray:
    return np.asarray([math.nan if v is None else v for v in values], dtype=float)
