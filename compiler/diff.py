"""`icl diff A B`: which runs B adds, removes or changes relative to A.

Runs are matched by what names them (experiment, model, task, seed and sweep
values); a matched pair with different ids is a change, listed with the
hyper-parameters that differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from icl.run import Run


@dataclass
class RunDiff:
    added: list[Run] = field(default_factory=list)
    removed: list[Run] = field(default_factory=list)
    changed: list[tuple[Run, Run, list[str]]] = field(default_factory=list)
    unchanged: int = 0


def _key(run: Run) -> tuple:
    return (run.experiment, run.model, run.task, run.seed,
            tuple(sorted((k, repr(v)) for k, v in run.sweep.items())))


def _flatten(obj, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: obj}


_COMPARED = ("layers", "model_config", "task_config", "train", "eval", "params")


def changes(a: Run, b: Run) -> list[str]:
    """'key: old -> new' for every resolved value that differs."""
    fa = _flatten({k: getattr(a, k) for k in _COMPARED})
    fb = _flatten({k: getattr(b, k) for k in _COMPARED})
    out = []
    for key in sorted(set(fa) | set(fb)):
        if key == "layers":  # model_config.layers says it
            continue
        if fa.get(key) != fb.get(key):
            out.append(f"{key}: {_shown(fa, key)} -> {_shown(fb, key)}")
    return out


def _shown(values: dict[str, object], key: str) -> str:
    """A value as a spec would write it: '-' where the run has no such key, 'unset' for None."""
    if key not in values:
        return "-"
    return "unset" if values[key] is None else str(values[key])


def diff_runs(a: list[Run], b: list[Run]) -> RunDiff:
    result = RunDiff()
    # A run whose id and evaluation are in both specs is unchanged, whatever its sweep label says.
    same = {(r.id, r.eval_id) for r in a} & {(r.id, r.eval_id) for r in b}
    result.unchanged = len({r.id + r.eval_id for r in b if (r.id, r.eval_id) in same})
    before = {_key(r): r for r in a if (r.id, r.eval_id) not in same}
    after = {_key(r): r for r in b if (r.id, r.eval_id) not in same}
    for key, run in after.items():
        if key not in before:
            result.added.append(run)
        else:
            result.changed.append((before[key], run, changes(before[key], run)))
    result.removed = [run for key, run in before.items() if key not in after]
    return result


def _name(run: Run) -> str:
    sweep = "".join(f" {k}={v}" for k, v in run.sweep.items())
    return f"{run.experiment}/{run.model}/{run.task} seed={run.seed}{sweep}"


def render_diff(d: RunDiff) -> str:
    lines = []
    for run in d.added:
        lines.append(f"+ {run.id}  {_name(run)}")
    for run in d.removed:
        lines.append(f"- {run.id}  {_name(run)}")
    for old, new, what in d.changed:
        retrain = old.id != new.id
        verb = "retrain" if retrain else "re-evaluate"
        lines.append(f"~ {old.id} -> {new.id}  {_name(new)}  ({verb})")
        lines += [f"    {w}" for w in what]
    lines.append(f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
                 f"{d.unchanged} unchanged")
    return "\n".join(lines)
