"""benchmarks/study_cost.py: GPU-hours from measured step times, of a whole study or of what is
still to train in a runs folder."""
from __future__ import annotations

import importlib.util
import dataclasses
import json
from pathlib import Path

import pytest

from icl.compiler.runs import runs_of

ROOT = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location("study_cost", ROOT / "benchmarks" / "study_cost.py")
study_cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study_cost)



def evaluation(run: dict) -> str:
    """A finished evaluation file of `run`, as icl/runfolder.py reads it (fields empty)."""
    return json.dumps({"run_id": run.id, "eval_id": run.eval_id, "state": "done", "positions": [],
                       "model": {"mean": []}, "summary": {}, "baselines": {}, "variants": {}})

def test_runs_dir_counts_only_what_is_still_to_train(tmp_path, capsys, tiny_spec):
    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    runs = runs_of([spec])  # 4 runs of 8 steps: mamba and transformer on two tasks
    ms = {"mamba": 3600.0, "transformer": 1800.0}  # x 1000 below: 1 h and 0.5 h a step
    records = [{"impl": "project", "pack": 1, "precision": "tf32", "arch": a, "task": r.task,
                "ms_per_step": ms[a] * 1000, "device": "test GPU"} for r in runs for a in ms]
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps(records))
    evaluated, in_progress = runs[0], runs[1]
    (tmp_path / "runs" / evaluated.id).mkdir(parents=True)
    (tmp_path / "runs" / evaluated.id / f"eval-{evaluated.eval_id}.json").write_text(evaluation(evaluated))
    (tmp_path / "runs" / in_progress.id).mkdir(parents=True)
    (tmp_path / "runs" / in_progress.id / "metrics.jsonl").write_text(json.dumps({"step": 6}) + "\n")

    hours = {r.id: 8 * ms[r.model] / 3600 for r in runs}
    assert study_cost.main(["--spec", str(spec), "--steps", str(steps), "--gpus", "1"]) == 0
    whole = capsys.readouterr().out
    assert f"**4 runs, {sum(hours.values()):.2f} GPU-hours**" in whole

    assert study_cost.main(["--spec", str(spec), "--steps", str(steps), "--gpus", "1",
                            "--runs-dir", str(tmp_path / "runs")]) == 0
    left = capsys.readouterr().out
    expected = hours[runs[2].id] + hours[runs[3].id] + hours[in_progress.id] * 2 / 8
    assert "what is still to train in" in left
    assert f"**3 runs, {expected:.2f} GPU-hours**" in left

    for run in runs:  # every run evaluated: no empty tables, a sentence
        (tmp_path / "runs" / run.id).mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / run.id / f"eval-{run.eval_id}.json").write_text(evaluation(run))
    assert study_cost.main(["--spec", str(spec), "--steps", str(steps), "--gpus", "1",
                            "--runs-dir", str(tmp_path / "runs")]) == 0
    done = capsys.readouterr().out
    assert "**0 runs, 0.00 GPU-hours**" in done
    assert "Nothing left to train: every run has finished." in done
    assert "| GPUs |" not in done


def test_pack_costs_runs_at_the_packed_rate_and_schedules_packs(tmp_path, capsys, tiny_spec, make_run):
    def run(i: int, steps: int = 10, width: int = 16, task: str = "linear_regression"):
        r = dataclasses.replace(make_run(steps=steps), id=f"{i:012d}", seed=i, task=task)
        r.model_config["width"] = width
        r.task_config["kind"] = task
        return r

    costs = [(run(i), 1.0) for i in range(5)] + [(run(5, task="sparse_linear_regression"), 1.0),
                                                (run(6, steps=20), 2.0), (run(7, width=32), 3.0)]
    # as the pipeline groups them: model "a", one prompt shape, 10 steps (the sparse run too):
    # packs of 2 -> 2 + 2 + 2 hours; the 20-step run and the wider model alone
    assert sorted(study_cost.packs_of(costs, 2)) == [2.0, 2.0, 2.0, 2.0, 3.0]
    assert sorted(study_cost.packs_of(costs, 1)) == sorted(h for _, h in costs)

    # three seeds of each model on linear regression (two packs of 3), one on sparse parity (alone)
    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec.replace("lr = 1e-3  checkpoint_every", "lr = 1e-3  seeds = [0, 1, 2]  checkpoint_every")
                    .replace("  tasks = [sparse_parity]\n}", "  tasks = [sparse_parity]\n  train { seeds = [0] }\n}"))
    runs = runs_of([spec])
    records = [{"impl": "project", "pack": k, "precision": "tf32", "arch": r.model, "task": r.task,
                "ms_per_step": ms, "device": "test GPU"} for r in runs for k, ms in ((1, 3600e3), (4, 900e3))]
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps(records))
    assert study_cost.main(["--spec", str(spec), "--steps", str(steps), "--gpus", "1", "--pack", "4"]) == 0
    out = capsys.readouterr().out
    # 900 s a step (0.25 h) in a pack, 3600 s (1 h) for a run the grouping leaves alone
    per_run = [int(r.train["steps"]) * (0.25 if r.task == "linear_regression" else 1.0) for r in runs]
    assert len(runs) == 8 and f"**8 runs, {sum(per_run):.2f} GPU-hours**" in out
    assert "4 to a pack" in out and "ms per step per run" in out
    assert "| mamba | sparse_parity | 1 | 8 | 3600000.00 (alone) | 8.00 |" in out
    assert "| mamba | linear_regression | 3 | 8 | 900000.00 | 6.00 |" in out
    with pytest.raises(SystemExit, match="no project rows at pack 16"):
        study_cost.main(["--spec", str(spec), "--steps", str(steps), "--pack", "16"])
