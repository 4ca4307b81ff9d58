"""benchmarks/kernel_sass.py compiles the Triton kernels for sm_90 on a machine without a GPU
(Triton's wheel carries ptxas and cuobjdump) and reports registers, spills and the main loop's
instructions. Run in a subprocess: the kernel tests import Triton in interpreter mode."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def sass(*args: str) -> str:
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernel_sass.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_conv_backward_report():
    out = sass("conv_bwd")
    assert "registers" in out and "stack (spills) 0 bytes" in out
    assert "main loop" in out and "LDG" in out  # the walk over the sequence loads x and dy


def test_scan_backward_register_cap_is_applied():
    # a cap below what the kernel wants makes ptxas spill: the cap reached the compiler
    free, capped = sass("scan_bwd"), sass("scan_bwd", "--maxnreg", "96")
    assert "registers 96," in capped and "stack (spills) 0 bytes" not in capped
    assert "registers 96," not in free
