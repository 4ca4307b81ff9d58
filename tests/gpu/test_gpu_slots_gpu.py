"""Two jobs on a host with several GPUs land on different GPUs (icl.training.gpu_slots).
Run on a machine with 2 or more GPUs: pytest tests/gpu/test_gpu_slots_gpu.py (skipped otherwise)."""
import os
import subprocess
import sys

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
              pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.device_count() < 2,
                                 reason=f"needs at least 2 visible GPUs, found {torch.cuda.device_count()}")]

# What `icl train` does first: resolve the device, then CUDA work on it (a captured graph and
# a kernel launch, both on the current device). Holds its GPU until stdin closes.
JOB = """
import sys, torch
from icl.training.train import resolve_device
dev = resolve_device("cuda")
x = torch.randn(256, 256, device=dev)
static = x.clone()
side = torch.cuda.Stream(dev)
side.wait_stream(torch.cuda.current_stream(dev))
with torch.cuda.stream(side):
    y = static @ static
torch.cuda.current_stream(dev).wait_stream(side)
graph = torch.cuda.CUDAGraph()
with torch.cuda.graph(graph):
    y = static @ static
graph.replay()
torch.cuda.synchronize()
assert torch.allclose(y, x @ x)
print(dev.index, torch.cuda.current_device(), torch.cuda.get_device_properties(dev).uuid, flush=True)
sys.stdin.read()
"""


def test_two_jobs_take_different_gpus(tmp_path):
    env = {**os.environ, "ICL_GPU_LOCK_DIR": str(tmp_path / "locks")}
    jobs = [subprocess.Popen([sys.executable, "-c", JOB], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    try:
        lines = [job.stdout.readline().split() for job in jobs]  # both hold their GPUs now
    finally:
        for job in jobs:
            job.stdin.close()
        errors = [job.stderr.read() for job in jobs]
        for job in jobs:
            job.wait(timeout=60)
    assert all(len(line) == 3 for line in lines), errors
    indices = sorted(int(index) for index, _current, _uuid in lines)
    assert indices == [0, 1], (lines, errors)
    assert all(index == current for index, current, _uuid in lines), lines  # set_device happened
    assert lines[0][2] != lines[1][2]  # two physical GPUs, not one seen twice
    assert all(job.returncode == 0 for job in jobs), errors
    assert all(err.count("icl: GPU ") == 1 for err in errors), errors
