"""Compile the project's Triton kernels for an H100/H200 (sm_90) on a machine without a GPU and
count their SASS: registers, spill bytes, and instructions by opcode in the main loop. Triton's
wheel carries ptxas and cuobjdump, so this needs no CUDA device and no driver: a check of a
kernel change (did the registers fit, did a rewrite cut instructions) between GPU sessions.

    python benchmarks/kernel_sass.py scan_bwd [--config 64,1,32,1,3,3]   # SeqConfig fields
    python benchmarks/kernel_sass.py scan_fwd --config 64,1,32,1,3,3,0,128
    python benchmarks/kernel_sass.py conv_bwd
    python benchmarks/kernel_sass.py conv_fwd [--maxnreg 128]

Shapes: the reduced study's packed Mamba layer (1024 rows = 16 runs x batch 64, L 280, 256
channels, N 16; the scan's operands in (batch, L, dim) memory as the block gives them, so their
channel strides are 1 and specialised as Triton does at launch). The loop counted is the last
backward branch of the SASS (the kernel's outer loop). Counts are static: what runs per loop
trip, not time; a GPU measurement still decides (benchmarks/scan_device_run.sh).
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

ROWS, LENGTH, DIM, STATE = 1024, 280, 256, 16


def scan_ints(chunk: int) -> dict[str, int]:
    """Integer arguments of the sequential scan's kernels: strides of (batch, L, dim) memory."""
    ints = {"dim": DIM, "length": LENGTH, "n_chunks": -(-LENGTH // chunk), "n_saved": -(-LENGTH // chunk),
            "rows_per_group": 64}
    for p in ("su", "sdt", "sz", "so", "sdo", "sdu", "sddt", "sdz"):
        ints.update({f"{p}_b": LENGTH * DIM, f"{p}_d": 1, f"{p}_t": DIM})
    for p in ("sB", "sC"):
        ints.update({f"{p}_b": LENGTH * STATE, f"{p}_n": 1, f"{p}_t": STATE})
    for p in ("sdBp", "sdCp"):
        ints.update({f"{p}_p": ROWS * LENGTH * STATE, f"{p}_b": LENGTH * STATE, f"{p}_n": 1, f"{p}_t": STATE})
    ints.update({"sdl_b": DIM * STATE, "sdl_d": 1, "sdl_n": DIM})
    return ints


def conv_ints() -> dict[str, int]:
    return {"batch": 64, "length": LENGTH, "channels": DIM, "sxk": 64 * LENGTH * DIM, "sxb": LENGTH * DIM,
            "sxl": DIM, "sxc": 1}


def compile_kernel(kernel, constexprs: dict, ints: dict[str, int], num_warps: int, maxnreg: int | None):
    """triton.compile for sm_90 with Triton's launch-time specialisation: an int argument equal
    to 1 becomes a constexpr, pointers and multiples of 16 are marked 16-divisible."""
    signature, consts, attrs = {}, {}, {}
    for i, name in enumerate(kernel.arg_names):
        if name in constexprs:
            signature[name], consts[name] = "constexpr", constexprs[name]
        elif name.endswith("_ptr"):
            signature[name], attrs[(i,)] = "*fp32", [["tt.divisibility", 16]]
        elif ints[name] == 1:
            signature[name], consts[name] = "constexpr", 1
        else:
            signature[name] = "i32"
            if ints[name] % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    options = {"num_warps": num_warps, **({"maxnreg": maxnreg} if maxnreg else {})}
    return triton.compile(ASTSource(kernel, signature, consts, attrs), target=GPUTarget("cuda", 90, 32),
                          options=options)


def sass_report(cubin: bytes) -> str:
    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.cubin"
        path.write_bytes(cubin)
        sass = subprocess.run([tools / "cuobjdump", "-sass", path], capture_output=True, text=True, check=True).stdout
        usage = subprocess.run([tools / "cuobjdump", "-res-usage", path], capture_output=True, text=True,
                               check=True).stdout
    lines = [(int(m.group(1), 16), m.group(2), m.group(3)) for line in sass.splitlines()
             if (m := re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+((?:@!?U?P\w+\s+)?[A-Z][A-Z0-9_.]*)(.*)", line))]
    ops = [(addr, op.split()[-1]) for addr, op, _ in lines]
    # the outer loop: the last branch back to a lower address
    backs = [(addr, int(m.group(1), 16)) for addr, op, rest in lines if op.split()[-1] == "BRA"
             and (m := re.search(r"0x([0-9a-f]+)", rest)) and int(m.group(1), 16) < addr]
    regs = re.search(r"REG:(\d+)", usage)
    stack = re.search(r"STACK:(\d+)", usage)
    out = [f"registers {regs.group(1) if regs else '?'}, stack (spills) {stack.group(1) if stack else '?'} bytes, "
           f"{len(ops)} instructions in all"]
    if backs:
        end, start = backs[-1]
        loop = collections.Counter(op for addr, op in ops if start <= addr <= end)
        out.append(f"main loop ({start:#x}-{end:#x}): {sum(loop.values())} instructions: "
                   + ", ".join(f"{op} {n}" for op, n in loop.most_common(16)))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernel", choices=("scan_fwd", "scan_bwd", "conv_fwd", "conv_bwd"))
    parser.add_argument("--config", default=None, help="the scan's SeqConfig fields, comma-separated")
    parser.add_argument("--maxnreg", type=int, default=None, help="a register cap (else the config's, if any)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning
    if args.kernel.startswith("scan"):
        from icl.kernels import selective_scan_seq as seq
        try:
            cfg = seq.SeqConfig(*(int(v) for v in args.config.split(","))) if args.config else \
                seq.launch_config(ROWS, DIM, LENGTH, STATE)
        except (TypeError, ValueError):
            parser.error(f"--config {args.config!r}: up to {len(seq.SeqConfig._fields)} integers, "
                         f"{', '.join(seq.SeqConfig._fields)}")
        flags = dict(HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=True, N=STATE, T=cfg.chunk)
        if args.kernel == "scan_fwd":
            compiled = compile_kernel(seq._seq_forward_kernel, {**flags, "SAVE": True, "BLOCK_D": cfg.block_d},
                                      scan_ints(cfg.chunk), cfg.warps, args.maxnreg or cfg.max_registers_fwd)
        else:
            compiled = compile_kernel(seq._seq_backward_kernel,
                                      {**flags, "HAS_DLAST": False, "BLOCK_D": cfg.block_d_bwd, "REDUCE": cfg.reduce,
                                       "NV": 32, "BITS": 5, "PREFETCH": bool(cfg.prefetch)}, scan_ints(cfg.chunk), cfg.warps_bwd,
                                      args.maxnreg or cfg.max_registers_bwd)
        print(f"{args.kernel} {tuple(cfg)}")
    else:
        from icl.kernels import causal_conv as conv
        if args.kernel == "conv_fwd":
            compiled = compile_kernel(conv._conv_fwd_kernel, dict(WIDTH=4, SILU=True, BLOCK_C=conv.BLOCK_C,
                                                                  BLOCK_L=conv.BLOCK_L), conv_ints(), 4, args.maxnreg)
        else:
            compiled = compile_kernel(conv._conv_bwd_kernel, dict(WIDTH=4, SILU=True, BLOCK_C=conv.BLOCK_C_BWD),
                                      conv_ints(), conv.BLOCK_C_BWD // 32, args.maxnreg)
        print(args.kernel)
    print(sass_report(compiled.asm["cubin"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
