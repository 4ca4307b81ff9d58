"""The Snakemake pipeline: incremental re-runs, failed jobs, and the smoke study end to end."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icl.compiler.runs import runs_of
from icl.training.train import MODEL

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "specs" / "smoke"


@pytest.fixture
def pretend_built(run_snakemake):
    """pretend_built(workdir, spec) -> runs: leave the state of a finished pipeline: Snakemake's
    job records, then every output in order."""

    def pretend(workdir: Path, spec: Path) -> list[dict]:
        # `--touch` with no outputs yet records each job's metadata (its inputs and params), which is
        # what lets Snakemake see later that a plot's set of inputs has changed.
        out = run_snakemake(workdir, spec, "--touch", "--cores", "1")
        assert out.returncode == 0, out.stderr
        runs = runs_of([spec])
        stages = [
            [workdir / "runs" / r.id / "status.json" for r in runs],
            [workdir / "runs" / r.id / f"eval-{r.eval_id}.json" for r in runs],
            [workdir / "results" / "plots" / f"{t}.{ext}" for t in {r.task for r in runs}
             for ext in ("png", "svg", "pdf")],
            [workdir / "results" / name for name in ("report.html", "report.md", "table1.json", "table1.csv",
                                                      "table1.tex", "metrics/runs.csv", "metrics/training.csv")],
        ]
        for stage in stages:
            for path in stage:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")
            time.sleep(0.02)  # later stages are newer, as after a real run
        return runs

    return pretend


@pytest.fixture
def smoke_copy(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(SMOKE, specs)
    return tmp_path, specs


def test_one_line_edit_reruns_exactly_what_it_changes(smoke_copy, run_snakemake, job_counts, pretend_built):
    workdir, specs = smoke_copy
    study = specs / "study.icl"
    before = pretend_built(workdir, study)
    out = run_snakemake(workdir, study, "-n")
    assert out.returncode == 0, out.stderr
    assert job_counts(out.stdout + out.stderr) == {}

    # One model's layer string: that model's runs (one per experiment), every plot, the report.
    models = specs / "models.icl"
    models.write_text(models.read_text().replace('layers = "M*4"', 'layers = "M*3"'))
    out = run_snakemake(workdir, study, "-n")
    assert out.returncode == 0, out.stderr
    changed = [r for r in before if r.model == "mamba"]
    assert job_counts(out.stdout + out.stderr) == {"train": len(changed), "evaluate": len(changed), "plot": 9,
                                      "report": 1, "all": 1}
    after = runs_of([study])
    new_ids = {r.id for r in after} - {r.id for r in before}
    assert {r.model for r in after if r.id in new_ids} == {"mamba"}
    for run_id in new_ids:
        assert f"runs/{run_id}/status.json" in out.stdout + out.stderr


def test_task_edit_reruns_one_experiment(smoke_copy, run_snakemake, job_counts, pretend_built):
    workdir, specs = smoke_copy
    study = specs / "study.icl"
    pretend_built(workdir, study)
    tasks = specs / "tasks.icl"
    text = tasks.read_text()
    start = text.index("task sparse_parity")
    tasks.write_text(text[:start] + text[start:].replace("k = 2", "k = 3", 1))
    out = run_snakemake(workdir, study, "-n")
    assert out.returncode == 0, out.stderr
    assert job_counts(out.stdout + out.stderr) == {"train": 6, "evaluate": 6, "plot": 1, "report": 1, "all": 1}
    assert "results/plots/sparse_parity.png" in out.stdout + out.stderr


def test_eval_edit_reevaluates_without_retraining(smoke_copy, run_snakemake, job_counts, pretend_built):
    workdir, specs = smoke_copy
    study = specs / "study.icl"
    pretend_built(workdir, study)
    study.write_text(study.read_text().replace("prompts = 64", "prompts = 32"))
    out = run_snakemake(workdir, study, "-n")
    assert job_counts(out.stdout + out.stderr) == {"evaluate": 54, "plot": 9, "report": 1, "all": 1}


def test_renaming_a_spec_file_retrains_and_reevaluates_nothing(smoke_copy, run_snakemake, job_counts, pretend_built):
    workdir, specs = smoke_copy
    pretend_built(workdir, specs / "study.icl")
    renamed = specs / "renamed.icl"
    (specs / "study.icl").rename(renamed)
    out = run_snakemake(workdir, renamed, "-n")
    assert out.returncode == 0, out.stderr
    # the plots and the report name their specs; the runs are named by their ids alone
    counts = job_counts(out.stdout + out.stderr)
    assert counts == {"plot": 9, "report": 1, "all": 1}, counts


def test_bad_spec_stops_the_pipeline_with_its_positioned_error(smoke_copy, run_snakemake):
    workdir, specs = smoke_copy
    models = specs / "models.icl"
    models.write_text(models.read_text().replace("d_state = 8\n}", "d_stat = 8\n}", 1))
    out = run_snakemake(workdir, specs / "study.icl", "-n")
    assert out.returncode != 0
    assert f"{models}:14:3: error: unknown key 'd_stat' in model" in out.stderr + out.stdout


def test_experiments_config_runs_one_chunk_of_the_study(smoke_copy, run_snakemake, job_counts):
    workdir, specs = smoke_copy
    study = specs / "study.icl"
    out = run_snakemake(workdir, study, "-n", config=("experiments=[sparse_parity]",))
    assert out.returncode == 0, out.stderr
    assert job_counts(out.stdout + out.stderr) == {"train": 6, "evaluate": 6, "plot": 1, "report": 1, "all": 1}
    out = run_snakemake(workdir, study, "-n", config=("experiments=sparse_party",))
    assert out.returncode != 0
    assert f"error: config experiments: no experiment 'sparse_party' in {study}" in out.stdout + out.stderr


def test_config_schema_rejects_unknown_scale(smoke_copy, run_snakemake):
    workdir, specs = smoke_copy
    out = run_snakemake(workdir, specs / "study.icl", "-n", config=("scale=huge",))
    assert out.returncode != 0
    assert "'huge' is not one of ['smoke', 'reduced', 'paper']" in out.stderr + out.stdout



@pytest.mark.slow
def test_failed_training_leaves_no_complete_output_and_a_rerun_finishes(tmp_path, tiny_spec, run_snakemake):
    spec = tmp_path / "tiny.icl"
    # On a machine without CUDA, device = cuda makes every training job fail.
    spec.write_text(tiny_spec.replace("log_every = 4 }", "log_every = 4  device = cuda }"))
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: device = cuda does not fail here")
    out = run_snakemake(tmp_path, spec, "--cores", "2", "--keep-going")
    assert out.returncode != 0
    assert not list((tmp_path / "runs").glob("*/status.json"))
    assert not (tmp_path / "results" / "report.html").exists()
    spec.write_text(tiny_spec)  # device is not part of the run id: the same runs now train
    out = run_snakemake(tmp_path, spec, "--cores", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(list((tmp_path / "runs").glob("*/status.json"))) == 4


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path, tiny_spec, run_snakemake):
    tmp_path = tmp_path / "my study"  # every path the rules' commands take holds a space
    tmp_path.mkdir()
    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    out = run_snakemake(tmp_path, spec, "--cores", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    results = tmp_path / "results"
    for name in ("report.html", "report.md", "table1.json", "plots/linear_regression.png",
                 "plots/sparse_parity.png"):
        assert (results / name).stat().st_size > 0, name
    # Not the scale's study: the title names the spec.
    assert (results / "report.md").read_text().startswith("# ICL study: tiny.icl\n")
    table = json.loads((results / "table1.json").read_text())
    assert set(table) == {"linear_regression", "sparse_parity"}
    for task, row in table.items():
        assert set(row) == {"mamba", "transformer"}
        for cell in row.values():
            assert cell["verdict"] in ("check", "gap", "fails") and cell["seeds"] == 1
    # Every rule left a log.
    assert list((tmp_path / "runs").glob("*/train.log")) and (results / "logs" / "report.log").exists()
    # The evaluations shared their baselines' errors (zero and least squares on linear regression).
    assert list((tmp_path / "runs" / "baselines").glob("*.pt"))
    # Nothing left to do.
    again = run_snakemake(tmp_path, spec, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr, (again.stdout + again.stderr)[-3000:]


def test_committed_results_in_a_fresh_clone_are_not_reevaluated(smoke_copy, run_snakemake, job_counts):
    """A clone gives files checkout-order times and no Snakemake records: a status.json newer
    than its evaluation must not ask for an evaluation when the weights are not there (they
    are not committed); plots and the report are redrawn from the evaluations."""
    workdir, specs = smoke_copy
    study = specs / "study.icl"
    runs = runs_of([study])
    for r in runs:  # every status.json an hour newer than its evaluation: a stale look
        folder = workdir / "runs" / r.id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"eval-{r.eval_id}.json").write_text("{}")
        (folder / "status.json").write_text("{}")
        now = time.time()
        os.utime(folder / f"eval-{r.eval_id}.json", (now - 3600, now - 3600))
    assert not (workdir / ".snakemake").exists()
    out = run_snakemake(workdir, study, "-n")
    assert out.returncode == 0, out.stderr
    counts = job_counts(out.stdout + out.stderr)
    assert "train" not in counts and "evaluate" not in counts, counts
    assert counts.get("report") == 1  # the report is still drawn, from the evaluations

    # A training forced in this invocation is evaluated again, weights here or not.
    status = workdir / "runs" / runs[0].id / "status.json"
    for forced in (str(status), "train"):
        out = run_snakemake(workdir, study, "-n", "--forcerun", forced)
        assert out.returncode == 0, out.stderr
        counts = job_counts(out.stdout + out.stderr)
        trained = sum(v for k, v in counts.items() if k.startswith("train"))
        assert counts.get("evaluate") == trained and trained >= 1, (forced, counts)

    # With the weights here, a status.json newer than the evaluation re-evaluates, as usual.
    (status.parent / MODEL).write_text("{}")
    out = run_snakemake(workdir, study, "-n")
    assert out.returncode == 0, out.stderr
    assert job_counts(out.stdout + out.stderr).get("evaluate") == 1


@pytest.mark.slow
def test_detached_study_goes_on_after_its_command_and_stops_with_its_jobs(tmp_path, tiny_spec):
    """workflow/scripts/detached_study.sh: start returns while the pipeline trains, stop ends
    the pipeline and its jobs (SIGTERM to Snakemake alone would let them finish), and a later
    start resumes and finishes the study."""
    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    runs = tmp_path / "runs"
    script = ROOT / "workflow" / "scripts" / "detached_study.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def detached(*args):
        return subprocess.run(["bash", str(script), *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    pipeline = ("--cores", "2", "--config", f"specs=[{spec}]", f"results_dir={tmp_path / 'results'}")
    out = detached("start", runs, *pipeline)
    assert out.returncode == 0 and "started" in out.stdout, out.stdout + out.stderr
    pid = int((runs / "detached.pid").read_text())
    for _ in range(120):  # stop it mid-training, once a training job has started
        if list(runs.glob("*/train.log")):
            break
        time.sleep(0.5)
    out = detached("stop", runs)
    assert out.returncode == 0 and "stopped" in out.stdout, out.stdout + out.stderr
    with pytest.raises(ProcessLookupError):  # no process of the pipeline's group is left
        os.killpg(pid, 0)

    out = detached("start", runs, *pipeline)
    assert out.returncode == 0, out.stdout + out.stderr
    out = detached("wait", runs, 500)
    assert "finished" in out.stdout and "(100%) done" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "results" / "report.html").stat().st_size > 0
    out = detached("pack", runs, tmp_path / "small.tgz")
    names = subprocess.run(["tar", "tzf", str(tmp_path / "small.tgz")], capture_output=True,
                           text=True).stdout.split()
    assert any(n.endswith("status.json") for n in names) and not any(n.endswith(".pt") for n in names)

    # Where only the package is installed (pip install --target: no `snakemake` script on the
    # PATH), start runs its module; here the study is done, so it ends at once.
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    (bare / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bare / "python3").chmod(0o755)
    env["PATH"] = os.pathsep.join([str(bare), "/usr/bin", "/bin"])
    assert subprocess.run(["bash", "-c", "command -v snakemake"], env=env).returncode != 0
    out = detached("start", runs, *pipeline)
    assert out.returncode == 0 and "finished" in out.stdout, out.stdout + out.stderr
    assert "Nothing to be done" in (runs / "detached.log").read_text()


@pytest.mark.slow
def test_batches_train_and_evaluate_many_runs_per_process_and_rerun_nothing(tmp_path, tiny_spec, run_snakemake, job_counts):
    """batch=N: runs still to train (evaluate) go N to a job (one process, each run alone in its
    files); their results are the same results to a later plan without batches, and an edit
    re-trains and re-evaluates only the runs it changes."""
    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    out = run_snakemake(tmp_path, spec, "-n", config=("batch=2",))
    counts = job_counts(out.stdout + out.stderr)
    for kind, one_run_rule in (("train", "train"), ("eval", "evaluate")):
        assert one_run_rule not in counts
        assert sum(v for k, v in counts.items() if k.startswith(f"{kind}_batch_")) == 2  # 4 runs, 2 a job
    done = run_snakemake(tmp_path, spec, "--cores", "2", config=("batch=2",))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    runs = tmp_path / "runs"
    statuses = [json.loads(p.read_text()) for p in runs.glob("*/status.json")]
    assert len(statuses) == 4 and all(s["state"] == "done" and "pack" not in s for s in statuses)
    evals = [json.loads(p.read_text()) for p in runs.glob("*/eval-*.json")]
    assert len(evals) == 4 and all(e["state"] == "done" and len(e["evaluated_with"]) == 2 for e in evals)
    assert {e["run_id"] for e in evals} == {m for e in evals for m in e["evaluated_with"]}
    for kind in ("train", "eval"):
        assert len(list((runs / "batches").glob(f"{kind}_batch_*.log"))) == 2
    for batch in ("2", "auto", "off"):
        out = run_snakemake(tmp_path, spec, "-n", config=(f"batch={batch}",))
        assert job_counts(out.stdout + out.stderr) == {}, (batch, (out.stdout + out.stderr)[-2000:])
    # one model's width: its two runs train again and are evaluated again (a batch of 2 each),
    # nothing else is
    spec.write_text(tiny_spec.replace('model mamba { layers = "M*2" width = 16', 'model mamba { layers = "M*2" width = 24', 1))
    out = run_snakemake(tmp_path, spec, "-n", config=("batch=2",))
    counts = job_counts(out.stdout + out.stderr)
    assert {k: v for k, v in counts.items() if k.startswith(("train", "eval"))} == {
        next(k for k in counts if k.startswith("train_batch_")): 1,
        next(k for k in counts if k.startswith("eval_batch_")): 1}
