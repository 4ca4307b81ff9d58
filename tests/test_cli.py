"""The `icl` command as a user runs it: exit codes, one-line errors, no tracebacks, nothing written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PAPER = str(ROOT / "specs" / "paper" / "study.icl")


def icl(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "icl.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def test_check_lists_the_paper_matrix():
    out = icl("check", PAPER)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:5] == ["id", "experiment", "model", "params", "task"]
    assert len(lines) == 1 + 54 + 1  # header, the runs, the summary (stdout, #31)
    assert lines[-1] == "54 runs in 1 file(s): ok"
    assert out.stderr == ""


def test_runs_json_has_ids_layers_and_counts():
    out = icl("runs", "--json", PAPER)
    runs = json.loads(out.stdout)
    assert len(runs) == 54
    for key in ("id", "spec", "model", "layers", "task", "seed", "params", "state_size", "flops_per_token",
                "model_config", "task_config", "train", "eval"):
        assert key in runs[0]
    assert all(isinstance(r["params"], int) and isinstance(r["state_size"], int) for r in runs)
    assert all("  " not in r["layers"] for r in runs)


def test_bad_spec_prints_one_positioned_error_and_exits_2(tmp_path):
    spec = tmp_path / "bad.icl"
    spec.write_text('model m {\n  layers = "M*2"\n  d_stat = 16\n}\n')
    out = icl("check", str(spec))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines()[0] == f"{spec}:3:3: error: unknown key 'd_stat' in model"
    assert "hint: did you mean 'd_state'?" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_file_is_an_error_not_a_traceback(tmp_path):
    out = icl("check", str(tmp_path / "nope.icl"))
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_fmt_write_leaves_a_bad_file_untouched(tmp_path):
    spec = tmp_path / "bad.icl"
    text = 'model m { layers = "M*2" width = }\n'
    spec.write_text(text)
    out = icl("fmt", "--write", str(spec))
    assert out.returncode == 2 and spec.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.icl"]


def test_fmt_prints_canonical_text(tmp_path):
    spec = tmp_path / "s.icl"
    spec.write_text('model m {layers="M*2" width=8}\n')
    out = icl("fmt", str(spec))
    assert out.returncode == 0 and out.stdout == 'model m {\n  layers = "M*2"\n  width = 8\n}\n'


def test_diff_reports_added_removed_and_changed(tmp_path):
    a = tmp_path / "a.icl"
    b = tmp_path / "b.icl"
    a.write_text('model m { layers = "M*2" width = 8 }\nmodel n { layers = "S" width = 8 }\n'
                 'experiment e { models = [m, n] tasks = [linear_regression] }\n')
    b.write_text('model m { layers = "M*3" width = 8 }\nmodel k { layers = "S" width = 16 }\n'
                 'experiment e { models = [m, k] tasks = [linear_regression] }\n')
    out = icl("diff", str(a), str(b))
    assert out.returncode == 0, out.stderr
    assert "1 added, 1 removed, 1 changed, 0 unchanged" in out.stdout
    assert "model_config.layers: M M -> M M M" in out.stdout


def test_unknown_run_id_is_a_clear_error(tmp_path):
    out = icl("train", PAPER, "--run", "zzzz", "--out", str(tmp_path / "r"))
    assert out.returncode == 2 and "has no run with id 'zzzz'" in out.stderr
    assert not (tmp_path / "r").exists()


def test_without_source_train_and_eval_read_the_specs_in_icl_specs(tmp_path):
    out = icl("train", "--run", "zzzz", "--out", str(tmp_path / "r"), env={"ICL_SPECS": ""})
    assert out.returncode == 2
    assert "icl train: give SOURCE (a .icl spec or a JSON run table) or set ICL_SPECS" in out.stderr
    smoke = str(ROOT / "specs" / "smoke" / "study.icl")
    out = icl("train", "--run", "zzzz", "--out", str(tmp_path / "r"),
              env={"ICL_SPECS": os.pathsep.join([PAPER, smoke])})
    assert out.returncode == 2 and f"{PAPER}, {smoke} has no run with id 'zzzz'" in out.stderr
    assert not (tmp_path / "r").exists()


def test_diff_keeps_a_run_whose_id_is_unchanged(tmp_path):
    a = tmp_path / "a.icl"
    b = tmp_path / "b.icl"
    a.write_text('model m { layers = "M" width = 8 }\n'
                 'experiment e { models = [m] tasks = [sparse_parity] train { lr = 1e-4 } }\n')
    b.write_text(a.read_text().replace("lr = 1e-4", "lr = [1e-4, 2e-4]"))
    out = icl("diff", str(a), str(b))
    assert "1 added, 0 removed, 0 changed, 1 unchanged" in out.stdout


def test_unwritable_output_is_one_line_error(tmp_path):
    spec = tmp_path / "s.icl"
    spec.write_text('model m { layers = "M" width = 8 }\n'
                    'experiment e { models = [m] tasks = [sparse_parity] train { steps = 1 } }\n')
    (tmp_path / "file").write_text("")
    out = icl("train", str(spec), "--out", str(tmp_path / "file" / "run"), "--no-progress")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("error: ") and "\n" not in out.stderr.strip()


def test_status_tells_each_runs_state_from_its_folder(tmp_path, tiny_spec):
    from icl.compiler.runs import runs_of

    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec.replace("log_every = 4 }", "log_every = 4  seeds = [0, 1] }"))
    runs = runs_of([spec])
    assert len(runs) == 8
    runs_dir = tmp_path / "runs"
    evaluated, trained, diverged, running = (runs_dir / r.id for r in runs[:4])
    for folder in (evaluated, trained, diverged, running):
        folder.mkdir(parents=True)
    (evaluated / f"eval-{runs[0].eval_id}.json").write_text(json.dumps({
        "run_id": runs[0].id, "eval_id": runs[0].eval_id, "state": "done", "positions": [],
        "model": {"mean": []}, "summary": {}, "baselines": {}, "variants": {}}))
    (evaluated / "status.json").write_text(json.dumps({"state": "done", "step": 8}))
    (trained / "status.json").write_text(json.dumps({"state": "done", "step": 8}))
    (diverged / "status.json").write_text(json.dumps({"state": "diverged", "step": 3}))
    (running / "metrics.jsonl").write_text('{"step": 4, "loss": 1.0}\n{"step": 8, "lo')  # cut by a kill

    out = icl("status", str(spec), "--runs-dir", str(runs_dir), "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout)}
    assert [rows[r.id]["state"] for r in runs] == \
        ["evaluated", "trained", "diverged", "in progress"] + ["not started"] * (len(runs) - 4)
    assert rows[runs[3].id]["step"] == 4
    # every tiny run plans 8 steps: 4 left of the one in progress, 8 of each not started
    assert "8 runs: 1 evaluated, 1 trained, 1 diverged, 1 in progress, 4 not started; " \
        "36 training steps left" in out.stderr

    text = icl("status", str(spec), "--runs-dir", str(runs_dir))
    assert text.returncode == 0 and "in progress" in text.stdout and "4 / 8" in text.stdout


def test_status_tells_a_running_job_from_a_stopped_one(tmp_path, tiny_spec):
    """A run in progress that logs on schedule gets the time left at its last speed; one whose
    metrics.jsonl has not moved for several logging intervals says when it last logged."""
    import os

    from icl.compiler.runs import runs_of
    from icl.report.progress import in_progress_note, render_progress, study_progress

    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec.replace("steps = 8 ", "steps = 50000 "))
    run = runs_of([spec])[0]  # log_every = 4
    folder = tmp_path / "runs" / run.id
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"step": 20000, "steps_per_s": 40.0}\n')
    os.utime(folder / "metrics.jsonl", (1000.0, 1000.0))

    (row,) = study_progress([run], tmp_path / "runs", now=1010.0)
    assert (row["state"], row["step"], row["steps_per_s"], row["logged_s_ago"]) == ("in progress", 20000, 40.0, 10.0)
    assert in_progress_note(row) == "~12 min left at 40 steps/s"  # 30,000 steps / 40 per s = 12.5 min
    assert "20,000 / 50,000 (~12 min left at 40 steps/s)" in render_progress([row])

    (row,) = study_progress([run], tmp_path / "runs", now=1000.0 + 3600)
    assert in_progress_note(row) == "last logged 60 min ago"

    # The speed is the recent one: a job at 20 steps/s for 1,000 s whose GPU then frees up
    # (200 steps/s over its last five intervals) logs a mean since start of 21 steps/s (21,000 / 1,005 s).
    lines = [{"step": 20000, "wall_s": 1000.0, "steps_per_s": 20.0}]
    lines += [{"step": 20000 + 200 * k, "wall_s": 1000.0 + k, "steps_per_s": (20000 + 200 * k) / (1000 + k)}
              for k in range(1, 6)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 21')
    os.utime(folder / "metrics.jsonl", (1000.0, 1000.0))
    (row,) = study_progress([run], tmp_path / "runs", now=1010.0)
    assert row["step"] == 21000 and row["steps_per_s"] == 200.0
    assert in_progress_note(row) == "~2 min left at 200 steps/s"  # 29,000 steps / 200 per s
    (folder / "metrics.jsonl").write_text('{"step": 20000}\n')  # no speed logged: no estimate
    (row,) = study_progress([run], tmp_path / "runs", now=os.path.getmtime(folder / "metrics.jsonl") + 30)
    assert in_progress_note(row) == "last logged 30 s ago"


def test_status_says_where_a_stop_error_ended_a_run(tmp_path, tiny_spec):
    from icl.compiler.runs import runs_of
    from icl.report.progress import render_progress, study_progress

    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec.replace("steps = 8 ", "steps = 50000 "))
    run = runs_of([spec])[0]
    folder = tmp_path / "runs" / run.id
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({
        "state": "done", "step": 1200, "steps_done": 1200, "steps_planned": 50000, "capped": False,
        "stopped_early": {"step": 1200, "error": 0.0042, "stop_error": 0.01}}))
    (row,) = study_progress([run], tmp_path / "runs")
    assert row["state"] == "trained" and row["stopped_early"]["step"] == 1200
    text = render_progress([row])
    assert "1,200 / 50,000 (stopped: error 0.0042 <= 0.01)" in text and "0 training steps left" in text



def test_eval_with_other_prompts_refuses_the_specs_evaluation_file(tmp_path, tiny_spec):
    """#22: an overridden evaluation must not land under the name of the spec's (eval_id)."""
    from icl.compiler.runs import runs_of

    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    run = runs_of([spec])[0]
    out = tmp_path / "runs" / run.id / f"eval-{run.eval_id}.json"
    result = icl("eval", str(spec), "--run", run.id, "--run-dir", str(out.parent), "--out", str(out),
                 "--prompts", "3")
    assert result.returncode == 2 and "differs from the spec's eval prompts (16)" in result.stderr
    assert not out.exists()


def test_train_one_by_one_and_eval_several_runs_in_one_process(tmp_path, tiny_spec):
    """--one-by-one trains runs of different shapes one after another (each alone, in its own
    folder); eval --runs-dir evaluates several into their folders; one bad run fails the command
    after the others are done."""
    from icl.compiler.runs import runs_of

    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    runs = [r for r in runs_of([spec]) if r.task == "linear_regression"]
    assert {r.model for r in runs} == {"mamba", "transformer"}  # two shapes: no pack
    ids = [a for r in runs for a in ("--run", r.id)]
    done = icl("train", str(spec), *ids, "--runs-dir", str(tmp_path / "runs"), "--one-by-one", "--no-progress")
    assert done.returncode == 0, done.stderr
    for r in runs:
        status = json.loads((tmp_path / "runs" / r.id / "status.json").read_text())
        assert status["state"] == "done" and "pack" not in status
    done = icl("eval", str(spec), *ids, "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert done.returncode == 0, done.stderr
    for r in runs:
        assert (tmp_path / "runs" / r.id / f"eval-{r.eval_id}.json").exists()
    # a run without weights: the other is still evaluated, then one line names the failure
    (tmp_path / "runs" / runs[0].id / "model.pt").unlink()
    (tmp_path / "runs" / runs[1].id / f"eval-{runs[1].eval_id}.json").unlink()
    done = icl("eval", str(spec), *ids, "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert done.returncode != 0
    assert f"1 of 2 evaluations failed: {runs[0].id}" in done.stderr
    assert (tmp_path / "runs" / runs[1].id / f"eval-{runs[1].eval_id}.json").exists()
    done = icl("eval", str(spec), *ids, "--eval-id", "x", "--runs-dir", str(tmp_path / "runs"))
    assert done.returncode != 0 and "1 --eval-id for 2 --run" in done.stderr


def test_train_pack_groups_every_run_of_a_spec(tmp_path, tiny_spec):
    """--pack N without --run: every run of the spec, runs that may share a pack (same model,
    task and schedule: here the seeds) trained as packs of at most N, the others alone."""
    from icl.compiler.runs import runs_of

    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec.replace("log_every = 4 }", "log_every = 4  seeds = [0, 1, 2] }"))
    runs = runs_of([spec])
    assert len(runs) == 12
    done = icl("train", str(spec), "--runs-dir", str(tmp_path / "runs"), "--pack", "2", "--no-progress")
    assert done.returncode == 0, done.stderr
    packs = {}
    for r in runs:
        status = json.loads((tmp_path / "runs" / r.id / "status.json").read_text())
        assert status["state"] == "done"
        packs.setdefault((r.model, r.task), []).append(len((status.get("pack") or {}).get("runs") or [r.id]))
    # three seeds of each (model, task): one pack of 2 and one run alone
    assert all(sorted(sizes) == [1, 2, 2] for sizes in packs.values()), packs
    bad = icl("train", str(spec), "--runs-dir", str(tmp_path / "runs"), "--pack", "many")
    assert bad.returncode == 2 and bad.stderr.startswith("error: pack must be auto, off or a number")


def test_train_and_eval_with_runs_dir_alone_take_every_run_of_the_spec(tmp_path, tiny_spec):
    """`icl train SPEC --runs-dir DIR` and `icl eval SPEC --runs-dir DIR` without --run: every
    run of the spec (training grouped by --pack auto: on a CPU, each alone), every evaluation."""
    from icl.compiler.runs import runs_of

    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    runs = runs_of([spec])
    assert len(runs) == 4
    done = icl("train", str(spec), "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert all(json.loads((tmp_path / "runs" / r.id / "status.json").read_text())["state"] == "done" for r in runs)
    done = icl("eval", str(spec), "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert all((tmp_path / "runs" / r.id / f"eval-{r.eval_id}.json").exists() for r in runs)


def test_a_defect_in_one_run_does_not_stop_the_others(tmp_path, tiny_spec, monkeypatch, capsys):
    """An internal error (a bug, not a user mistake) in one of several runs: its traceback, one
    line naming it, the other runs still train, and the command fails at the end."""
    from icl import cli
    from icl.compiler.runs import runs_of

    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    runs = [r for r in runs_of([spec]) if r.task == "linear_regression"]
    real = cli._train_group

    def broken_first(group, folders, args, progress):
        if group[0].id == runs[0].id:
            raise RuntimeError("Tensor must have a storage_offset divisible by 2")
        return real(group, folders, args, progress)

    monkeypatch.setattr(cli, "_train_group", broken_first)
    ids = [a for r in runs for a in ("--run", r.id)]
    assert cli.main(["train", str(spec), *ids, "--runs-dir", str(tmp_path / "runs"), "--one-by-one",
                     "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert f"1 of 2 runs failed: {runs[0].id}" in err
    assert "Traceback" in err and f"error: run(s) {runs[0].id}: internal error (RuntimeError: Tensor" in err
    assert json.loads((tmp_path / "runs" / runs[1].id / "status.json").read_text())["state"] == "done"
    assert not (tmp_path / "runs" / runs[0].id / "status.json").exists()


def test_diff_shows_an_unset_option_as_unset(tmp_path):
    a = tmp_path / "a.icl"
    b = tmp_path / "b.icl"
    a.write_text('model m { layers = "M" width = 8 }\n'
                 'experiment e { models = [m] tasks = [sparse_parity] train { log_error = 8 } }\n')
    b.write_text(a.read_text().replace("log_error = 8", "log_error = 8 stop_error = 0.01"))
    out = icl("diff", str(a), str(b))
    assert out.returncode == 0, out.stderr
    assert "train.stop_error: unset -> 0.01" in out.stdout and "None" not in out.stdout
