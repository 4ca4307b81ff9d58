"""One forward + backward of the sequential Triton scan at the packed study shape (K = 16 runs of
batch 64: 1024 rows, D 256, L 280, N 16; the inputs of benchmarks/selective_scan.py in (batch, L,
dim) memory, as the Mamba block gives them), repeated, for Nsight Compute to read the kernels'
counters:

    ncu --clock-control none --kernel-name regex:_seq_ --launch-skip 2 --launch-count 2 \\
        --section WarpStateStats --section SchedulerStats ... python3 benchmarks/scan_ncu.py

(benchmarks/scan_ncu_run.sh runs it on the device tool's GPU). --config: a SeqConfig as
comma-separated fields (default: the kernel's launch_config); --dtype fp32 | bf16.
"""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import selective_scan as bench  # noqa: E402  (benchmarks/selective_scan.py: inputs and the step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--length", type=int, default=280)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--dtype", default="fp32", choices=tuple(bench.DTYPES))
    parser.add_argument("--config", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cpu: a check that it runs (TRITON_INTERPRET=1)")
    args = parser.parse_args()
    bench.import_kernels()
    from icl.kernels.selective_scan_seq import selective_scan_seq

    device, dtype = torch.device(args.device), bench.DTYPES[args.dtype]
    config = tuple(int(v) for v in args.config.split(",")) if args.config else None
    inputs = bench.in_layout(bench.make_inputs(args.rows, args.dim, args.length, args.state, dtype, device), "bld")
    dout = torch.randn(args.rows, args.length, args.dim, device=device).to(dtype).transpose(1, 2)
    for _ in range(args.repeats):
        bench.fwd_bwd(functools.partial(selective_scan_seq, config=config), inputs, dout)
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(f"scan forward + backward x{args.repeats}: rows {args.rows}, D {args.dim}, L {args.length}, "
          f"N {args.state}, {args.dtype}")


if __name__ == "__main__":
    main()
