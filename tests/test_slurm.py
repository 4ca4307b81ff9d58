"""The pipeline on a real SLURM cluster, through Snakemake's SLURM executor plugin.

A one-node cluster (munged, slurmctld, slurmd from Debian's slurm-wlm and munge) is
started on loopback by tests/slurm/setup.sh and torn down afterwards, even on failure.
The pipeline runs with the project's profile, workflow/profiles/slurm, plus the three
settings this cluster needs (docs/cluster.md): no accounting database, so job states
come from squeue; a short first status check; SLURM logs kept for failures.

Skipped, with the reason, only where SLURM cannot start (not root, packages missing,
daemons that do not come up). Takes about two minutes on 2 CPU cores.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch

from icl.compiler.runs import runs_of

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SLURM_TESTS = ROOT / "tests" / "slurm"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
# The test node: declared (not probed) with the CPUs and memory the profile's largest
# job asks for; memory is not a consumable resource on it, so nothing waits for memory.
NODE_CPUS, NODE_MEMORY_MB = 4, 32000
# Settings of this test cluster, on top of the profile.
TEST_CLUSTER_ARGS = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
                     "--slurm-keep-successful-logs")
TIMEOUT_S = 360


@pytest.fixture(scope="session")
def resume_spec(tiny_spec):
    """One run trained long enough to be cancelled between two checkpoints."""
    return tiny_spec.split("experiment")[0] + '''
experiment resume {
  models = [mamba]
  tasks = [linear_regression]
  train { steps = 2000  batch = 8  lr = 1e-3  checkpoint_every = 50  log_every = 50 }
  eval { prompts = 16  bootstrap = 50  batch = 16 }
}
'''


class Cluster:
    def __init__(self, state: Path):
        self.state = state
        path = os.pathsep.join([str(state / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"} | {"PATH": path}

    def command(self, *args: str) -> str:
        out = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("SLURM cannot start here: the test cluster's daemons run as root")
    missing = [p for p in ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue") if not shutil.which(p)]
    if missing:
        pytest.skip(f"SLURM cannot start here: {', '.join(missing)} not found (apt-get install slurm-wlm munge)")
    if find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail("snakemake-executor-plugin-slurm is not installed: pip install -e '.[slurm]'")
    state = tmp_path_factory.mktemp("slurm")
    try:
        started = subprocess.run(["bash", str(SLURM_TESTS / "setup.sh"), str(state), str(NODE_CPUS),
                                  str(NODE_MEMORY_MB)], capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            pytest.skip(f"SLURM cannot start here: {started.stderr.strip()[-1500:]}")
        yield Cluster(state)
    finally:
        subprocess.run(["bash", str(SLURM_TESTS / "teardown.sh"), str(state)], timeout=120)


def start_snakemake(workdir: Path, spec: Path, env: dict, *args: str, targets=()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "snakemake", *targets, "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--config", f"specs=[{spec}]", f"runs_dir={workdir / 'runs'}", f"results_dir={workdir / 'results'}",
           "batch=off",  # one SLURM job per run: the job counts below are per run
           *args]
    # Own session: a run that hangs is killed with everything it started.
    return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def finish(process: subprocess.Popen, workdir: Path) -> str:
    """Wait for a snakemake run; fail with its output and SLURM job logs unless it succeeded."""
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\n(killed after {TIMEOUT_S} s)"
    if process.returncode != 0:
        job_logs = "".join(f"\n--- {log}\n{log.read_text()[-2000:]}"
                           for log in sorted(workdir.glob(".snakemake/slurm_logs/**/*.log")))
        pytest.fail(f"snakemake exited with {process.returncode}:\n{output[-4000:]}{job_logs}")
    return output


def without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("wall_s", "steps_per_s")}


def same_weights(a: Path, b: Path) -> bool:
    first, second = (torch.load(p, map_location="cpu", weights_only=True)["model"] for p in (a, b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_tiny_study_through_sbatch_matches_a_local_run(cluster, tmp_path, tiny_spec, job_counts):
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    for workdir in (on_slurm, local):
        workdir.mkdir()
        (workdir / "tiny.icl").write_text(tiny_spec)
    slurm_run = start_snakemake(on_slurm, on_slurm / "tiny.icl", cluster.env, "--profile", str(PROFILE),
                                *TEST_CLUSTER_ARGS)
    local_run = start_snakemake(local, local / "tiny.icl", cluster.env, "--cores", "2")
    slurm_output = finish(slurm_run, on_slurm)
    finish(local_run, local)

    # Every job went through sbatch: the 4 training runs grouped into one job, then the
    # evaluations, plots and the report as jobs of their own (`all` only collects).
    jobs = job_counts(slurm_output)
    assert jobs["train"] == 4 and jobs["report"] == 1, jobs
    submitted = slurm_output.count("has been submitted with SLURM jobid")
    assert submitted == 1 + sum(n for rule, n in jobs.items() if rule not in ("train", "all")), slurm_output[-3000:]
    assert not any(f"localrule {rule}:" in slurm_output for rule in ("train", "evaluate", "plot", "report"))
    history = cluster.command("squeue", "--noheader", "--states=all", "--format=%T %k")
    assert history.split().count("COMPLETED") >= submitted, history
    assert "rule_train_group_train" in history and "rule_report" in history

    runs = runs_of([on_slurm / "tiny.icl"])
    assert len(runs) == 4
    for run in runs:
        here, there = on_slurm / "runs" / run.id, local / "runs" / run.id
        assert same_weights(here / "model.pt", there / "model.pt"), run.id
        for name in ("status.json", f"eval-{run.eval_id}.json"):
            assert without_timings(json.loads((here / name).read_text())) == \
                without_timings(json.loads((there / name).read_text())), (run.id, name)
    assert json.loads((on_slurm / "results" / "table1.json").read_text()) == \
        json.loads((local / "results" / "table1.json").read_text())
    for name in ("report.html", "plots/linear_regression.png", "plots/sparse_parity.png"):
        assert (on_slurm / "results" / name).stat().st_size > 0, name


def test_cancelled_training_job_is_resubmitted_and_resumes_from_its_checkpoint(cluster, tmp_path, resume_spec):
    spec = tmp_path / "resume.icl"
    spec.write_text(resume_spec)
    [run] = runs_of([spec])
    run_dir = tmp_path / "runs" / run.id
    # The same run trained without interruption, beside the cluster, for its weights.
    uninterrupted = subprocess.Popen(
        [str(Path(sys.executable).parent / "icl"), "train", str(spec), "--run", run.id, "--out",
         str(tmp_path / "uninterrupted"), "--device", "cpu", "--no-progress"],
        env=cluster.env | {"OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process = start_snakemake(tmp_path, spec, cluster.env, "--profile", str(PROFILE), *TEST_CLUSTER_ARGS,
                              targets=[f"{run_dir}/status.json"])

    # Cancel the training job once it has written a checkpoint (scancel: what preemption
    # or an administrator does; the job's processes get SIGTERM, then SIGKILL).
    deadline = time.monotonic() + 180
    while not (run_dir / "checkpoint.pt").exists():
        assert process.poll() is None, "snakemake ended before the first checkpoint:\n" + process.stdout.read()
        assert time.monotonic() < deadline, "no checkpoint after 180 s"
        time.sleep(0.05)
    [job_id] = cluster.command("squeue", "--noheader", "--states=RUNNING", "--format=%i").split()
    cluster.command("scancel", job_id)
    output = finish(process, tmp_path)

    # SLURM saw the cancellation; Snakemake submitted the job again.
    states = dict(line.split() for line in
                  cluster.command("squeue", "--noheader", "--states=all", "--format=%i %T").splitlines())
    assert states[job_id] == "CANCELLED", states
    assert "Trying to restart job" in output, output[-3000:]
    assert output.count("has been submitted with SLURM jobid") == 2, output[-3000:]

    # The second attempt started from the checkpoint, not from step 0, and finished.
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["steps_done"] == 2000
    assert 0 < status["resumed_from"] < 2000 and status["resumed_from"] % 50 == 0, status
    # Its metrics continue where the checkpoint left off: every logged step once.
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(50, 2001, 50))
    # And it ends with the weights of the uninterrupted run, bit for bit.
    log, _ = uninterrupted.communicate(timeout=TIMEOUT_S)
    assert uninterrupted.returncode == 0, log
    assert same_weights(run_dir / "model.pt", tmp_path / "uninterrupted" / "model.pt")
