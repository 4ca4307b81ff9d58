"""Shared test helpers."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: the 100,000-case fuzz suite; runs only under -m fuzz")


def pytest_collection_modifyitems(config, items):
    # The long fuzz suite runs only when asked for by name (`pytest -m fuzz`); the default run
    # has the CI-sized fuzz tests of tests/test_fuzz.py instead.
    if "fuzz" not in (config.getoption("markexpr") or ""):
        skip_fuzz = pytest.mark.skip(reason="the 100k-case fuzz suite: run with pytest -m fuzz")
        for item in items:
            if "fuzz" in item.keywords:
                item.add_marker(skip_fuzz)
    # GPU tests run on the device machine only; on CPU they are reported as skipped, never passed.
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run through the device tool)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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


def snakemake(workdir: Path, spec: Path, *args: str, config: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The pipeline on `spec`, its runs and results under `workdir`, with this test's Python on PATH."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args,
           "--config", f"specs=[{spec}]", f"runs_dir={workdir / 'runs'}", f"results_dir={workdir / 'results'}",
           *config]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m.group(1) != "total"}
