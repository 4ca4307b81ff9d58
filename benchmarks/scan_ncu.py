"""One forward + backward of the sequential Triton scan at the packed study shape (K = 16 runs of
batch 64: 1024 rows, D 256, L 280, N 16, softplus, D skip, z gate, delta bias; (batch, L, dim)
memory as the Mamba block gives it), repeated, for Nsight Compute to read the kernels' counters:

    ncu --clock-control none --kernel-name regex:_seq_ --launch-skip 2 --launch-count 2 \\
        --section WarpStateStats --section SchedulerStats ... python3 benchmarks/scan_ncu.py

(benchmarks/scan_ncu_run.sh runs it on the device tool's GPU). --config: a SeqConfig as
comma-separated fields (default: the kernel's launch_config); --dtype fp32 | bf16.
"""
from __future__ import annotations

import argparse

import torch

from icl.kernels.selective_scan_seq import selective_scan_seq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--length", type=int, default=280)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--config", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cpu: a check that it runs (TRITON_INTERPRET=1)")
    args = parser.parse_args()
    dev, dtype = torch.device(args.device), {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    config = tuple(int(v) for v in args.config.split(",")) if args.config else None
    g = torch.Generator(device=dev).manual_seed(0)
    rows, dim, length, n = args.rows, args.dim, args.length, args.state

    def tokens_last(*shape, scale=1.0):  # (rows, L, x) memory seen as (rows, x, L)
        return (scale * torch.randn(rows, length, *shape, device=dev, generator=g)).to(dtype).requires_grad_()

    u, delta_raw, z = tokens_last(dim), tokens_last(dim, scale=0.5), tokens_last(dim)
    B, C = tokens_last(n), tokens_last(n)
    A = (-torch.rand(dim, n, device=dev, generator=g) - 0.1).requires_grad_()
    D = torch.randn(dim, device=dev, generator=g).requires_grad_()
    bias = (0.1 * torch.randn(dim, device=dev, generator=g)).requires_grad_()
    dout = torch.randn(rows, dim, length, device=dev, generator=g).to(dtype)
    for _ in range(args.repeats):
        out = selective_scan_seq(u.transpose(1, 2), delta_raw.transpose(1, 2), A, B.transpose(1, 2),
                                 C.transpose(1, 2), D, z.transpose(1, 2), bias, delta_softplus=True,
                                 config=config)
        out.backward(dout)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    print(f"scan forward + backward x{args.repeats}: rows {rows}, D {dim}, L {length}, N {n}, {args.dtype}")


if __name__ == "__main__":
    main()
