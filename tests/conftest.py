"""Shared fixtures, and which tests a run includes.

Test modules never import this file or each other: what they share is a fixture here. The
default run is the quick one; `pytest --slow` (or `-m slow`) adds the end-to-end and exhaustive
tests, marked `slow`; CI (.ci/run) runs both.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from icl.run import Run

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="run the slow (end-to-end, exhaustive) tests too; CI does")


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: the 100,000-case fuzz suite; runs only under -m fuzz")


def pytest_collection_modifyitems(config, items):
    markexpr = config.getoption("markexpr") or ""
    # GPU tests run on the device machine only; on CPU they are reported as skipped, never passed.
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        skip_gpu = pytest.mark.skip(reason="needs a CUDA device (run through the device tool)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)
    # The long fuzz suite runs only when asked for by name (`pytest -m fuzz`); the default run
    # has the CI-sized fuzz tests of tests/test_fuzz.py instead.
    if "fuzz" not in markexpr:
        skip_fuzz = pytest.mark.skip(reason="the 100k-case fuzz suite: run with pytest -m fuzz")
        for item in items:
            if "fuzz" in item.keywords:
                item.add_marker(skip_fuzz)
    # Slow tests run under --slow, when -m names them, or when named by node id (file::test);
    # otherwise they are reported as skipped, saying how to run them, never passed.
    if not config.getoption("slow") and "slow" not in markexpr:
        named = _named_tests(config)
        skip_slow = pytest.mark.skip(reason="slow (end-to-end) test: run with pytest --slow, as CI does")
        for item in items:
            if "slow" in item.keywords and not any(item.nodeid == n or item.nodeid.startswith((n + "[", n + "::"))
                                                   for n in named):
                item.add_marker(skip_slow)


def _named_tests(config) -> list[str]:
    """The node ids named on the command line (file::test, file::Class), relative to rootdir."""
    named = []
    for arg in config.args:
        path, sep, rest = str(arg).partition("::")
        if not sep:
            continue
        full = (config.invocation_params.dir / path).resolve()
        try:
            path = full.relative_to(config.rootpath).as_posix()
        except ValueError:
            continue
        named.append(f"{path}::{rest}")
    return named


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's root folder."""
    return ROOT


@pytest.fixture
def write_spec(tmp_path):
    """Write spec files into a temporary folder: write_spec("a.icl", text) -> path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


# A study small enough to train and evaluate for real in seconds (pipeline, packing, SLURM tests).
TINY = '''
model mamba { layers = "M*2" width = 16 d_state = 4 }
model transformer { layers = "A F" width = 16 heads = 2 positions = learned }
task linear_regression {
  dims = 3
  points = 6
  curriculum {
    dims { start = 2  interval = 4 }
    points { start = 4  inc = 2  interval = 4 }
  }
}
experiment linear_regression {
  models = [mamba, transformer]
  tasks = [linear_regression]
  train { steps = 8  batch = 8  lr = 1e-3  checkpoint_every = 4  log_every = 4 }
  eval { prompts = 16  bootstrap = 50  batch = 16 }
}
experiment sparse_parity extends linear_regression {
  tasks = [sparse_parity]
}
'''


@pytest.fixture(scope="session")
def tiny_spec() -> str:
    """The text of a study small enough to train and evaluate for real in seconds: a mamba and a
    transformer on linear regression and sparse parity, 8 steps each (4 runs)."""
    return TINY


def _snakemake(workdir: Path, spec: Path, *args: str, config: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The pipeline on `spec`, its runs and results under `workdir`, with this test's Python on PATH.
    Training batches are off unless `config` sets `batch=`: the tests count one job per run
    (tests/test_pipeline.py's batch tests turn them on)."""
    if not any(c.startswith("batch=") for c in config):
        config = (*config, "batch=off")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args,
           "--config", f"specs=[{spec}]", f"runs_dir={workdir / 'runs'}", f"results_dir={workdir / 'results'}",
           *config]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


@pytest.fixture(scope="session")
def run_snakemake():
    """run_snakemake(workdir, spec, *args, config=()) -> CompletedProcess: the pipeline on `spec`,
    its runs and results under `workdir`, with this test's Python on PATH."""
    return _snakemake


def _job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m.group(1) != "total"}


@pytest.fixture(scope="session")
def job_counts():
    """job_counts(output) -> {rule: jobs}: the 'Job stats' table of a Snakemake dry run."""
    return _job_counts


# -- a tiny resolved run, and its weights (training, packing, evaluation tests) ---------------

def _make_run(**train_overrides) -> Run:
    """A tiny resolved run: a 2-layer attention model of width 16 on 5-dim linear regression."""
    run = {
        "id": "0123456789ab", "eval_id": "ba9876543210", "spec": "tests", "experiment": "tiny",
        "model": "tiny", "layers": "A A", "task": "linear_regression", "seed": 0,
        "model_config": {"layers": "A A", "width": 16, "positions": "learned", "norm": "layernorm",
                         "dropout": 0.1, "init_std": 0.02, "heads": 2, "bias": True, "mlp_ratio": 4,
                         "d_state": 4, "d_conv": 4, "expand": 2, "dt_rank": 1, "dt_min": 0.001,
                         "dt_max": 0.1, "headdim": 8},
        "task_config": {"kind": "linear_regression", "dims": 5, "points": 11, "noise": 0.0,
                        "curriculum": {"dims": {"start": 2, "end": 5, "inc": 1, "interval": 4},
                                       "points": {"start": 5, "end": 11, "inc": 2, "interval": 4}}},
        "train": {"steps": 24, "batch": 8, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
                  "clip": 10.0, "checkpoint_every": 8, "log_every": 4, "backend": "auto", "device": "cpu"},
        "eval": {"prompts": 64, "bootstrap": 100, "batch": 32, "variants": [], "baselines": ["auto"],
                 "noise_sigmas": []},
    }
    run["train"].update(train_overrides)
    return Run.from_dict(run)


@pytest.fixture(scope="session")
def make_run():
    """make_run(**train_overrides) -> a fresh tiny resolved run: a 2-layer attention model of
    width 16 on 5-dim linear regression, 24 steps, its `train` section updated by the overrides."""
    return _make_run


def _load_weights(folder: Path) -> dict:
    import torch

    return torch.load(folder / "model.pt", weights_only=True)["model"]


@pytest.fixture(scope="session")
def load_weights():
    """load_weights(folder) -> the state dict of the folder's model.pt."""
    return _load_weights


def _assert_same_weights(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"weights differ at {name}"


@pytest.fixture(scope="session")
def assert_same_weights():
    """assert_same_weights(a, b): two state dicts with the same names and bit-equal tensors."""
    return _assert_same_weights


# -- runs trained in a pack and alone (packing and kernel tests) ------------------------------

@pytest.fixture(scope="session")
def member(make_run):
    """member(run_id, seed=0, dropout=0.0, bias=False, **train) -> make_run's tiny model as a pack
    member. Biases off: an attention key bias has a zero gradient (softmax ignores a shift shared
    by all keys), and Adam turns its float rounding noise into lr-sized steps that differ between
    any two summation orders; without biases every weight can be compared tightly."""

    def member(run_id: str, seed: int = 0, dropout: float = 0.0, bias: bool = False, **train) -> Run:
        run = dataclasses.replace(make_run(**train), id=run_id, seed=seed)
        run.model_config.update(dropout=dropout, bias=bias)
        return run

    return member


def _metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def assert_same_curve(load_weights):
    """assert_same_curve(packed, alone, exact=False, drift=False): same logged steps and sizes;
    losses, gradient norms and final weights equal (fp32 tolerance). drift=True (GPU runs): the
    first logged step (log_every 1: the initial weights' forward and backward) equal to fp32
    tolerance, later steps and the weights within 1% (see below)."""
    import torch

    def assert_same_curve(packed: Path, alone: Path, exact: bool = False, drift: bool = False) -> None:
        a, b = _metrics(packed), _metrics(alone)
        assert [(m["step"], m["dims"], m["points"], m["lr"]) for m in a] == \
            [(m["step"], m["dims"], m["points"], m["lr"]) for m in b]
        # On a GPU, cuBLAS and SDPA pick other kernels (other summation orders) for a batch of K
        # runs than for one, and Adam amplifies the rounding step by step (seen: losses 2e-4
        # apart after a dozen steps at lr 1e-3 on an H200, for attention-only models too). A
        # packing bug (runs mixed, a wrong slice of weights or of the scan's groups) shows at
        # the first step, or moves losses and weights by far more than 1%.
        for i, (x, y) in enumerate(zip(a, b)):
            rel = 1e-2 if drift and i > 0 else 1e-4
            assert x["loss"] == pytest.approx(y["loss"], rel=rel, abs=1e-6), f"loss at step {x['step']}"
            assert x["grad_norm"] == pytest.approx(y["grad_norm"], rel=rel, abs=1e-6), f"grad_norm at step {x['step']}"
        wa, wb = load_weights(packed), load_weights(alone)
        assert wa.keys() == wb.keys()
        # Adam's steps are lr-sized, so the rounding of another summation order (a batched FFT, a
        # batched matmul) reaches the weights in proportion to lr: 1e-5 at lr 1e-3. Seen: an S4D
        # A_imag 1.07e-5 apart at lr 3e-3 on one CPU; a packing bug moves weights by whole steps.
        atol = max(1e-5, 1e-2 * b[-1]["lr"])
        for name in wa:
            if exact:
                assert torch.equal(wa[name], wb[name]), name
            elif drift:
                apart = (wa[name] - wb[name]).norm() / wb[name].norm().clamp_min(1e-12)
                assert apart <= 1e-2, f"{name}: weights {apart:.2e} apart (relative norm)"
            else:
                torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=atol, msg=name)

    return assert_same_curve


def _train_alone(runs: list[Run], root: Path) -> None:
    from icl.training.train import train_run

    for run in runs:
        assert train_run(copy.deepcopy(run), root / "alone" / run.id, progress=False)["state"] == "done"


@pytest.fixture(scope="session")
def train_alone():
    """train_alone(runs, root): train each run by itself into root/alone/<id>, to the end."""
    return _train_alone


# -- a tiny study, really trained and evaluated, and its report (report tests) ----------------

REPORT_STUDY = '''
model transformer { layers = "A F" width = 16 heads = 2 positions = learned }
model s4 { layers = "S" width = 16 d_state = 4 }
task linear_regression { dims = 3 points = 6 }
task vector_mqar { dims = 4 pairs = 4 }
train tiny { steps = 3 batch = 8 checkpoint_every = 3 log_every = 1 seeds = [0] }
eval tiny { prompts = 16 bootstrap = 20 batch = 16 }
experiment linear_regression {
  models = [transformer, s4]
  tasks = [linear_regression]
  train extends tiny { lr = [1e-3, 1e-2] }
  eval extends tiny {}
}
experiment vector_mqar {
  models = [transformer]
  tasks = [vector_mqar]
  train extends tiny { lr = 1e-3 }
  eval extends tiny {}
}
'''


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny study trained and evaluated for real; one extra run marked diverged by training."""
    from icl import atomic
    from icl.compiler.runs import runs_of
    from icl.evaluation.evaluate import evaluate_run
    from icl.training.train import train_run

    root = tmp_path_factory.mktemp("study")
    spec = root / "smoke" / "tiny.icl"
    spec.parent.mkdir()
    spec.write_text(REPORT_STUDY, encoding="utf-8")
    runs = runs_of([spec])
    runs_dir = root / "runs"
    for run in runs:
        folder = runs_dir / run.id
        train_run(run, folder, progress=False, device="cpu")
        evaluate_run(run, folder, folder / f"eval-{run.eval_id}.json", device="cpu", progress=False)
    # A third architecture whose training diverged: status.json as train_run writes it, and
    # the evaluation evaluate_run writes for such a run.
    diverged = dataclasses.replace(copy.deepcopy(next(r for r in runs if r.model == "s4" and r.task == "linear_regression")),
                                   id="d1ver9ed0000", eval_id="d1ver9ed0001", model="mamba", layers="M")
    folder = runs_dir / diverged.id
    atomic.write_json(folder / "status.json", {
        "run_id": diverged.id, "state": "diverged", "step": 2, "steps_done": 2, "steps_planned": 3,
        "capped": False, "message": "loss became nan at step 2 (lr 0.01); run stopped as diverged",
        "wall_s": 0.5, "steps_per_s": 4.0, "device": "cpu", "backend": "reference",
        "versions": {"torch": "x", "python": "y", "icl": "z"}})
    evaluate_run(diverged, folder, folder / f"eval-{diverged.eval_id}.json", device="cpu", progress=False)
    runs.append(diverged)
    return {"root": root, "runs": runs, "runs_dir": runs_dir, "spec": spec}


@pytest.fixture(scope="module")
def built(study):
    """The report of `study`, built once per module: build_report's paths and the folder ("out")."""
    from icl.report import build_report

    out = study["root"] / "report"
    paths = build_report(study["runs"], study["runs_dir"], out, "Tiny study")
    return {**paths, "out": out}
