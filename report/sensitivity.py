"""Learning-rate sensitivity: each cell's score at every learning rate its runs tried.

    lr_sensitivity(evals, runs) -> {task: {"swept": bool, "lrs": [lr, ...],
                                           "models": {model: [point, ...]}}}
    point = {"lr", "metric", "lo", "hi", "seeds", "diverged", "taken"}

A point scores as Table 1 scores a sweep point (table1.score_config: the mean of its seeds'
tail errors, a diverged seed counting as chance), with the bootstrap interval over those
seeds (intervals.seed_interval). Where other values are swept too, a learning rate's point is
the sweep point Table 1 would choose among them (table1.choose: by the validation prompts);
`taken` marks the learning rate Table 1 takes for the cell. A task is `swept` when some architecture of it ran at more than one
learning rate; the plots draw the panel and the report the table only then, and say so
otherwise.
"""
from __future__ import annotations

from icl.report import intervals, table1


def lr_sensitivity(evals: list[dict], runs) -> dict:
    out: dict[str, dict] = {}
    grouped = table1.group(evals, runs)
    for task in table1.ordered_tasks(grouped, runs):
        models = grouped[task]
        chance = table1._task_chance(models)
        lines: dict[str, list[dict]] = {}
        for model in table1.ordered_models(models):
            by_lr: dict[float, list[tuple[dict, dict]]] = {}
            for config in models[model]:
                lr = config["lr"]
                if isinstance(lr, (int, float)):
                    by_lr.setdefault(lr, []).append((table1.score_config(config, chance), config))
            # each lr's point, and the lr Table 1 takes, chosen as Table 1 chooses (table1.choose)
            best = {lr: chosen[:2] for lr, scored in by_lr.items() if (chosen := table1.choose(scored))}
            taken = table1.choose(list(best.values()))
            points = []
            for lr in sorted(best):
                score, config = best[lr]
                values = [chance if table1.is_diverged(ev) else table1.tail(ev) for ev in config["evals"]]
                mean, lo, hi = intervals.seed_interval([v for v in values if v is not None])
                points.append({"lr": lr, "metric": score["metric"], "lo": lo, "hi": hi,
                               "seeds": score["seeds"], "diverged": score["diverged"],
                               "taken": taken is not None and config is taken[1]})
            if points:
                lines[model] = points
        lrs = sorted({p["lr"] for points in lines.values() for p in points})
        swept = any(len(points) > 1 for points in lines.values())
        out[task] = {"swept": swept, "lrs": lrs, "models": lines, "chance": chance}
    return out
