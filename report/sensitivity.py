"""Learning-rate sensitivity: each cell's score at every learning rate its runs tried.

    lr_sensitivity(evals, runs) -> {task: {"swept": bool, "lrs": [lr, ...],
                                           "models": {model: [point, ...]}}}
    point = {"lr", "metric", "lo", "hi", "seeds", "diverged"}

A point scores as Table 1 scores a sweep point (table1.score_config: the mean of its seeds'
tail errors, a diverged seed counting as chance), with the bootstrap interval over those
seeds (intervals.seed_interval). Where other values are swept too, a learning rate's point is
its best sweep point. A task is `swept` when some architecture of it ran at more than one
learning rate; the plots draw the panel and the report the table only then, and say so
otherwise.
"""
from __future__ import annotations

import math

from icl.report import intervals, table1


def lr_sensitivity(evals: list[dict], runs) -> dict:
    out: dict[str, dict] = {}
    grouped = table1.group(evals, runs)
    for task in table1.ordered_tasks(grouped, runs):
        models = grouped[task]
        chance = table1._task_chance(models)
        lines: dict[str, list[dict]] = {}
        for model in table1.ordered_models(models):
            best: dict[float, tuple[dict, dict]] = {}
            for config in models[model]:
                lr = config["lr"]
                if not isinstance(lr, (int, float)):
                    continue
                score = table1.score_config(config, chance)
                if score["metric"] is None:
                    continue
                if lr not in best or score["metric"] < best[lr][0]["metric"]:
                    best[lr] = (score, config)
            points = []
            for lr in sorted(best):
                score, config = best[lr]
                values = [chance if table1.is_diverged(ev) else table1.tail(ev) for ev in config["evals"]]
                mean, lo, hi = intervals.seed_interval([v for v in values if v is not None])
                points.append({"lr": lr, "metric": score["metric"], "lo": lo, "hi": hi,
                               "seeds": score["seeds"], "diverged": score["diverged"]})
            if points:
                lines[model] = points
        lrs = sorted({p["lr"] for points in lines.values() for p in points})
        swept = any(len(points) > 1 for points in lines.values())
        out[task] = {"swept": swept, "lrs": lrs, "models": lines, "chance": chance}
    return out


def is_finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
