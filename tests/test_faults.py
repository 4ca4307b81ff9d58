"""Fault injection on run folders: kills, bad files, concurrent trainers and pipelines.

Each test asserts that no finished result changed and that an error names the file it is
about (one line, exit status 2, no traceback). docs/reliability.md lists the guarantees.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from icl import runfolder
from icl.compiler.runs import runs_of
from icl.evaluation.evaluate import evaluate_run
from icl.report.build import build_report
from icl.report.progress import study_progress, summary
from icl.training.train import train_run

ROOT = Path(__file__).resolve().parents[1]
REDUCED = ROOT / "specs" / "reduced" / "study.icl"
COMMITTED = ROOT / "results" / "reduced" / "runs"


def icl(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "icl.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**os.environ, **(env or {})})


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every result file of a folder (recursively) and its bytes; not a lock file or a temporary
    (.lock, .*.tmp) that a killed process leaves behind."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def one_line_error(out, names: str) -> None:
    """Exit 2, stderr one `error:` line (a hint may follow) naming `names`, no traceback."""
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    first = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert first and names in first[0], out.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_spec):
    """The tiny_spec study's transformer run on linear regression, trained and evaluated once."""
    root = tmp_path_factory.mktemp("tiny")
    spec = root / "tiny.icl"
    spec.write_text(tiny_spec)
    runs = runs_of([spec])
    run = next(r for r in runs if r.model == "transformer" and r.task == "linear_regression")
    folder = root / "runs" / run.id
    train_run(run, folder, progress=False, device="cpu")
    evaluate_run(run, folder, folder / runfolder.eval_name(run.eval_id), device="cpu", progress=False)
    return {"spec": spec, "runs": runs, "run": run, "folder": folder}


@pytest.fixture
def copy_of(tiny, tmp_path):
    """A fresh copy of the tiny study's runs folder: (runs_dir, run folder)."""
    runs_dir = tmp_path / "runs"
    shutil.copytree(tiny["folder"].parent, runs_dir)
    return runs_dir, runs_dir / tiny["run"].id


# -- case 1: --max-steps over a committed run ------------------------------------------------

@pytest.mark.slow
def test_max_steps_over_a_committed_run_touches_nothing_of_it(tmp_path):
    """A committed run (metrics, status, evaluation; no weights): `--max-steps 5` trains in a
    scratch folder; a plain or forced train refuses; the folder stays byte for byte."""
    run = next(r for r in runs_of([REDUCED]) if r.task == "linear_regression" and r.model == "transformer")
    folder = tmp_path / "runs" / run.id
    shutil.copytree(COMMITTED / run.id, folder)
    before = snapshot(folder)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch)}
    out = icl("train", str(REDUCED), "--run", run.id, "--out", str(folder), "--max-steps", "5",
              "--device", "cpu", "--no-progress", env=env)
    assert out.returncode == 0, out.stderr
    assert "scratch folder" in out.stderr and "trained 5 of 20000 steps" in out.stderr
    assert snapshot(folder) == before
    made = scratch / "icl-scratch" / f"{run.id}-max-steps-5"
    assert runfolder.read_status(made, run.id).steps_done == 5
    for extra in ((), ("--max-steps", "5", "--force")):
        out = icl("train", str(REDUCED), "--run", run.id, "--out", str(folder), *extra, "--device", "cpu",
                  "--no-progress", env=env)
        one_line_error(out, "model.pt are not there")
        assert snapshot(folder) == before


# -- case 2: a run trained into another run's folder -----------------------------------------

def test_training_into_another_runs_folder_touches_nothing(tiny, copy_of):
    runs_dir, folder = copy_of
    other = next(r for r in tiny["runs"] if r.id != tiny["run"].id)
    before = snapshot(folder)
    out = icl("train", str(tiny["spec"]), "--run", other.id, "--out", str(folder), "--no-progress")
    one_line_error(out, "status.json: belongs to run " + tiny["run"].id)
    assert snapshot(folder) == before
    # Without its status.json (a killed run), the checkpoint still says whose folder it is.
    (folder / "status.json").unlink()
    before = snapshot(folder)
    out = icl("train", str(tiny["spec"]), "--run", other.id, "--out", str(folder), "--no-progress")
    one_line_error(out, "checkpoint.pt: belongs to run " + tiny["run"].id)
    assert snapshot(folder) == before


# -- case 3: icl status and the report agree ----------------------------------------------

def test_status_and_report_agree_on_a_diverged_run(tiny, tmp_path):
    runs = tiny["runs"]
    runs_dir = tmp_path / "runs"
    shutil.copytree(tiny["folder"], runs_dir / tiny["run"].id)
    diverged = next(r for r in runs if r.id != tiny["run"].id)
    folder = runs_dir / diverged.id
    train_run(dataclasses.replace(diverged, train={**diverged.train, "lr": 1e30}), folder, progress=False, device="cpu")
    assert runfolder.read_status(folder).state == "diverged"
    evaluate_run(diverged, folder, folder / runfolder.eval_name(diverged.eval_id), progress=False)
    rows = {r["id"]: r for r in study_progress(runs, runs_dir)}
    assert rows[diverged.id]["state"] == "diverged"  # not "evaluated", placeholder or not
    assert summary(list(rows.values())).startswith("4 runs: 1 evaluated, 1 diverged, 2 not started")
    built = build_report(runs, runs_dir, tmp_path / "report", "t")
    md = built["md"].read_text()
    assert "4 runs: 1 trained, 1 diverged, 1 evaluated, **2 not evaluated yet**" in md
    # status.json gone: the evaluation still says the run finished, in both.
    (runs_dir / tiny["run"].id / "status.json").unlink()
    assert study_progress(runs, runs_dir)[runs.index(tiny["run"])]["state"] == "evaluated"
    md = build_report(runs, runs_dir, tmp_path / "report", "t")["md"].read_text()
    assert "4 runs: 1 trained, 1 diverged, 1 evaluated, **2 not evaluated yet**" in md


def test_status_fails_on_a_missing_runs_folder_and_finds_the_committed_one(tmp_path):
    out = icl("status", str(REDUCED), "--runs-dir", str(tmp_path / "nonexistent"))
    one_line_error(out, "nonexistent does not exist")
    out = icl("status", str(REDUCED), cwd=tmp_path)  # the results beside specs/reduced/
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("66 runs: 66 evaluated; 0 training steps left")


# -- case 4: final_loss does not depend on how often a run checkpoints or logs ----------------

def test_final_loss_does_not_depend_on_checkpointing(tiny, tmp_path):
    run = tiny["run"]
    a = train_run(dataclasses.replace(run, train={**run.train, "steps": 24, "checkpoint_every": 8, "log_every": 4}),
                  tmp_path / "a", progress=False)
    b = train_run(dataclasses.replace(run, train={**run.train, "steps": 24, "checkpoint_every": 5, "log_every": 3}),
                  tmp_path / "b", progress=False)
    wa = runfolder.load_model(tmp_path / "a", run.id)["model"]
    wb = runfolder.load_model(tmp_path / "b", run.id)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["final_loss"] == b["final_loss"]


# -- case 5: every run-folder file, cut short, garbage, empty or of the wrong type -------------

def _wrong_type_pt(path: Path) -> None:
    torch.save([1, 2, 3], path)


FAULTS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)]),
    "garbage": lambda p: p.write_bytes(b"\x00\xffnot this at all\x13" * 20),
    "empty": lambda p: p.write_bytes(b""),
    "wrong type": lambda p: _wrong_type_pt(p) if p.suffix == ".pt" else p.write_text("[1, 2, 3]\n"),
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("name", ["status.json", "eval", "checkpoint.pt", "model.pt"])
def test_a_bad_file_is_a_one_line_error_naming_it(tiny, copy_of, name, fault):
    runs_dir, folder = copy_of
    run = tiny["run"]
    target = folder / (runfolder.eval_name(run.eval_id) if name == "eval" else name)
    FAULTS[fault](target)
    before = snapshot(runs_dir)
    spec = str(tiny["spec"])
    if name in ("status.json", "eval"):
        commands = [("status", spec, "--runs-dir", str(runs_dir)),
                    ("report", spec, "--runs-dir", str(runs_dir), "--out", str(runs_dir.parent / "report"))]
    elif name == "checkpoint.pt":
        (folder / "status.json").unlink()  # a run killed mid-training: it resumes from the checkpoint
        before = snapshot(runs_dir)
        commands = [("train", spec, "--run", run.id, "--out", str(folder), "--no-progress")]
    else:
        commands = [("eval", spec, "--run", run.id, "--run-dir", str(folder), "--out", str(folder / "e.json"),
                     "--no-progress"),
                    ("train", spec, "--run", run.id, "--out", str(folder), "--no-progress")]
    if name == "status.json":
        commands.append(("train", spec, "--run", run.id, "--out", str(folder), "--no-progress"))
    for command in commands:
        out = icl(*command)
        one_line_error(out, str(target))
        assert snapshot(runs_dir) == before, command


def test_eval_json_holding_an_empty_object_is_an_error_not_not_evaluated(tiny, copy_of):
    runs_dir, folder = copy_of
    target = folder / runfolder.eval_name(tiny["run"].eval_id)
    target.write_text("{}")
    with pytest.raises(runfolder.RunFolderError, match="'state' is None"):
        study_progress(tiny["runs"], runs_dir)
    with pytest.raises(runfolder.RunFolderError, match=str(target)):
        build_report(tiny["runs"], runs_dir, runs_dir.parent / "report", "t")


@pytest.mark.parametrize("text, error", [
    ('{"step": 4}\n{"step": 8, "lo', None),                      # last line cut by a kill: fine
    ('{"step": 4}\ngarbage\n{"step": 8}\n', ":2: not valid JSON"),
    ('[1, 2]\n', ":1: expected an object with an integer 'step'"),
    ('{"step": "4"}\n', ":1: expected an object with an integer 'step'"),
])
def test_metrics_lines(tmp_path, text, error):
    (tmp_path / "metrics.jsonl").write_text(text)
    if error is None:
        assert [e["step"] for e in runfolder.read_metrics(tmp_path)] == [4]
    else:
        with pytest.raises(runfolder.RunFolderError, match=f"metrics.jsonl{error}"):
            runfolder.read_metrics(tmp_path)


# -- case 6: an lr sweep over experiments is a sweep -----------------------------------------

def test_lr_swept_over_experiments_is_no_single_lr_warning(tmp_path, tiny_spec):
    from icl.report.render import describe_scale

    spec = tmp_path / "s.icl"
    spec.write_text(tiny_spec + 'experiment other_lr extends linear_regression { train { lr = 3e-4 } }\n')
    warnings = " ".join(describe_scale(runs_of([spec]), {})["warnings"])
    assert "No learning-rate sweep" not in warnings
    spec.write_text(tiny_spec)
    assert "No learning-rate sweep" in " ".join(describe_scale(runs_of([spec]), {})["warnings"])


# -- kill -9 and concurrency (case 9) ---------------------------------------------------------

def _start(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "icl.cli", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def _wait_for(path: Path, proc, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.005)


def _long_spec(tmp_path: Path, tiny_spec: str) -> tuple[Path, dict]:
    spec = tmp_path / "long.icl"
    spec.write_text(tiny_spec.replace("steps = 8 ", "steps = 100000 ").replace("checkpoint_every = 4",
                                                                           "checkpoint_every = 50"))
    run = next(r for r in runs_of([spec]) if r.model == "transformer" and r.task == "linear_regression")
    return spec, run


@pytest.mark.slow
def test_two_trainers_of_one_run_the_second_refuses_and_a_killed_ones_lock_is_taken_over(tmp_path, tiny_spec):
    spec, run = _long_spec(tmp_path, tiny_spec)
    folder = tmp_path / "runs" / run.id
    first = _start("train", str(spec), "--run", run.id, "--out", str(folder), "--no-progress")
    try:
        _wait_for(folder / "checkpoint.pt", first)
        second = icl("train", str(spec), "--run", run.id, "--out", str(folder), "--no-progress")
        one_line_error(second, str(folder / ".lock"))
        assert f"pid {first.pid}" in second.stderr and "training" in second.stderr
        evaluating = icl("eval", str(spec), "--run", run.id, "--run-dir", str(folder),
                         "--out", str(folder / "e.json"), "--no-progress")
        one_line_error(evaluating, str(folder / ".lock"))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The killed trainer left its lock file; the OS dropped its lock: the next trainer goes on.
    assert (folder / ".lock").exists() and not (folder / "status.json").exists()
    step = runfolder.load_checkpoint(folder, run.id)["step"]
    out = icl("train", str(spec), "--run", run.id, "--out", str(folder), "--no-progress", "--max-steps",
              str(step + 50), "--force")
    assert out.returncode == 0, out.stderr
    status = runfolder.read_status(folder, run.id)
    assert status.data["resumed_from"] == step
    assert not (folder / ".lock").exists()
    steps = [e["step"] for e in runfolder.read_metrics(folder)]
    assert steps == sorted(set(steps))  # no duplicates after the kill


@pytest.mark.slow
def test_kill_9_during_evaluation_keeps_the_old_evaluation(tiny, copy_of):
    runs_dir, folder = copy_of
    run = tiny["run"]
    target = folder / runfolder.eval_name(run.eval_id)
    # Many prompts: an evaluation long enough to be killed in the middle. An override of the
    # spec's prompts may not write the spec's evaluation file, so it replaces an older override.
    override = folder / "eval-override.json"
    override.write_bytes(target.read_bytes())
    before = snapshot(runs_dir)
    proc = _start("eval", str(tiny["spec"]), "--run", run.id, "--run-dir", str(folder), "--out", str(override),
                  "--prompts", "200000", "--no-progress")
    _wait_for(folder / ".lock", proc)
    time.sleep(1.0)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (folder / ".lock").exists()  # left by the killed process; its lock went with it
    assert snapshot(runs_dir) == before
    out = icl("eval", str(tiny["spec"]), "--run", run.id, "--run-dir", str(folder), "--out", str(target),
              "--no-progress")
    assert out.returncode == 0, out.stderr
    old, new = json.loads(before[f"{run.id}/{target.name}"]), json.loads(target.read_text())
    for key in ("model", "baselines", "summary", "positions", "trained_steps"):
        assert old[key] == new[key], key


@pytest.mark.slow
def test_two_pipelines_on_one_runs_folder(tmp_path, tiny_spec, run_snakemake):
    """Two Snakemake pipelines, different working directories, one runs folder: the second
    stops before running a job, naming the lock; the first finishes; its results stand."""
    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    runs_dir = tmp_path / "shared" / "runs"

    def pipeline(workdir: Path):
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
               "--cores", "1", "--config", f"specs=[{spec}]", f"runs_dir={runs_dir}",
               f"results_dir={workdir / 'results'}"]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    first = pipeline(tmp_path / "a")
    deadline = time.monotonic() + 120
    while not (runs_dir / runfolder.PIPELINE_LOCK).exists():
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = pipeline(tmp_path / "b")
    out_second = second.communicate(timeout=300)[0]
    out_first = first.communicate(timeout=600)[0]
    assert first.returncode == 0, out_first[-3000:]
    assert second.returncode != 0 and str(runs_dir / runfolder.PIPELINE_LOCK) in out_second, out_second[-3000:]
    assert "in use by a pipeline" in out_second
    assert not (tmp_path / "b" / "results").exists()
    runs = runs_of([spec])
    rows = study_progress(runs, runs_dir)
    assert {r["state"] for r in rows} == {"evaluated"}
    assert not (runs_dir / runfolder.PIPELINE_LOCK).exists()
    # The first pipeline's results are complete: a dry run of it has nothing to do.
    again = run_snakemake(tmp_path / "a", spec, "-n", config=(f"runs_dir={runs_dir}",))
    assert "Nothing to be done" in again.stdout + again.stderr
