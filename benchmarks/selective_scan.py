"""Benchmark of the selective scan, forward + backward: the project's Triton kernel, mamba-ssm's
CUDA kernel and the pure-PyTorch reference, side by side in one run on one GPU.

Every speed is reported only after the implementation's output and gradients were checked
against the reference at that shape (relative norm error under the dtype's tolerance).

    python benchmarks/selective_scan.py                      # full grid -> benchmarks/results/
    python benchmarks/selective_scan.py --quick --out DIR    # three shapes, for a smoke run
    python benchmarks/selective_scan.py --configs "4,64,4;8,32,4"   # also time Triton launch shapes

Needs only torch and triton (mamba_ssm is optional): the kernels are imported straight from
the checkout when the project is not installed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BANDWIDTH_FLOOR = 3.0e12  # bytes/s: the H100's measured device-to-device copy rate
TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 2e-2}  # relative norm error vs the reference
SHAPES = [(64, 512, L, 16) for L in (80, 128, 202, 280, 512, 1024, 2048)] + [(8, 2048, 2048, 16)]
QUICK_SHAPES = [(64, 512, 80, 16), (64, 512, 512, 16), (8, 2048, 2048, 16)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def import_kernels():
    """icl.kernels, from the installed project or else straight from this checkout."""
    if importlib.util.find_spec("icl") is None:
        import types
        package = types.ModuleType("icl")
        package.__path__ = [str(ROOT / "icl")]
        sys.modules["icl"] = package
    try:
        import icl.kernels as kernels
        return kernels
    except ImportError:
        spec = importlib.util.spec_from_file_location(
            "icl.kernels", ROOT / "kernels" / "__init__.py", submodule_search_locations=[str(ROOT / "kernels")])
        module = importlib.util.module_from_spec(spec)
        sys.modules["icl.kernels"] = module
        spec.loader.exec_module(module)
        return module


def make_inputs(batch, dim, length, n_state, dtype, device, seed=0):
    """Inputs as a Mamba block feeds them: softplus(delta + bias) in [1e-3, 1e-1] at init,
    S4D-real A, fp32 parameters, activations in `dtype`."""
    g = torch.Generator(device=device).manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, device=device) * scale).to(dtype)

    dt = torch.exp(torch.rand(dim, generator=g, device=device) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    delta_bias = dt + torch.log(-torch.expm1(-dt))  # inverse softplus
    A = -torch.arange(1, n_state + 1, device=device, dtype=torch.float32).repeat(dim, 1)
    return dict(u=randn(batch, dim, length), delta=randn(batch, dim, length, scale=0.5), A=A,
                B=randn(batch, n_state, length), C=randn(batch, n_state, length),
                D=torch.randn(dim, generator=g, device=device), z=randn(batch, dim, length),
                delta_bias=delta_bias)


def min_bytes(batch, dim, length, n_state, elem):
    """Bytes a perfect fwd+bwd must move: forward reads u, delta, z, B, C and writes out;
    backward reads u, delta, z, B, C, dout and writes du, ddelta, dz, dB, dC."""
    return elem * (11 * batch * dim * length + 6 * batch * n_state * length)


def implementations(kernels, configs):
    impls = {}
    for config in configs:
        def triton_fn(config=config, **kw):
            from icl.kernels.selective_scan_triton import selective_scan_triton
            return selective_scan_triton(**kw, config=config)
        impls[("triton", config)] = triton_fn
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        impls[("mamba_ssm", None)] = selective_scan_fn
    except Exception as error:  # noqa: BLE001 -- the peer is optional; say why it is missing
        print(f"mamba_ssm unavailable: {type(error).__name__}: {error}")
    impls[("reference", None)] = kernels.selective_scan_ref
    return impls


GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def fwd_bwd(fn, inputs, dout):
    leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    out = fn(**leaves, delta_softplus=True)
    grads = torch.autograd.grad(out, [leaves[k] for k in GRAD_NAMES], dout)
    return out, grads


def rel_err(x, ref):
    x, ref = x.double(), ref.double()
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def time_ms(fn, reps):
    """Median of `reps` timings with CUDA events, after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def run(shapes, dtypes, configs, ref_reps):
    kernels = import_kernels()
    device = torch.device("cuda")
    device_name = torch.cuda.get_device_name(device)
    impls = implementations(kernels, configs)
    records = []
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for batch, dim, length, n_state in shapes:
            inputs = make_inputs(batch, dim, length, n_state, dtype, device)
            dout = torch.randn(batch, dim, length, device=device).to(dtype)
            ref_out, ref_grads = fwd_bwd(kernels.selective_scan_ref, inputs, dout)
            nbytes = min_bytes(batch, dim, length, n_state, torch.finfo(dtype).bits // 8)
            for (impl, config), fn in impls.items():
                record = dict(device=device_name, impl=impl, B=batch, D=dim, L=length, N=n_state,
                              dtype=dtype_name, min_bytes=nbytes)
                if impl == "triton":
                    from icl.kernels.selective_scan_triton import launch_config
                    record["config"] = list(config or launch_config(dim, length, n_state))
                    record["default_launch"] = config is None
                try:
                    if impl == "reference":
                        out, grads = ref_out, ref_grads
                    else:
                        out, grads = fwd_bwd(fn, inputs, dout)
                    torch.cuda.synchronize()
                except Exception as error:  # noqa: BLE001 -- record the failure, go on with the others
                    record.update(fwd_bwd_ms=None, gbps=None, error=f"{type(error).__name__}: {error}"[:300])
                    print(f"FAILED {impl} {config}: {record['error']}")
                    records.append(record)
                    continue
                errors = {"out": rel_err(out, ref_out)}
                errors.update({f"d{name}": rel_err(g, r) for name, g, r in zip(GRAD_NAMES, grads, ref_grads)})
                worst = max(errors.values())
                record["max_rel_err"] = worst
                if not worst <= TOLERANCE[dtype]:  # NaN fails too
                    record.update(fwd_bwd_ms=None, gbps=None, error="failed the check against the reference: "
                                  + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
                    print(f"CHECK FAILED {impl} {config} {batch}x{dim}x{length}x{n_state} {dtype_name}: {errors}")
                else:
                    del out, grads
                    if impl == "reference":
                        ms = time_ms(lambda: fwd_bwd(fn, inputs, dout), ref_reps)
                    else:
                        from triton.testing import do_bench
                        ms = do_bench(lambda: fwd_bwd(fn, inputs, dout), warmup=25, rep=200, return_mode="median")
                    record.update(fwd_bwd_ms=round(ms, 4), gbps=round(nbytes / ms / 1e6, 1),
                                  floor_fraction=round(nbytes / BANDWIDTH_FLOOR * 1e3 / ms, 4))
                records.append(record)
                print(json.dumps(record), flush=True)
            del ref_out, ref_grads, inputs
            torch.cuda.empty_cache()
    return records


def markdown(records):
    device = records[0]["device"] if records else "?"
    lines = [f"# Selective scan, forward + backward ({device})", "",
             "Median ms per forward+backward (delta_softplus, D, z and delta_bias given); "
             "the Triton column is the launch shape the dispatcher picks (launch_config); "
             "the last column is the fastest launch shape tried (all are in the JSON). "
             "floor = min_bytes / 3.0 TB/s; 'of floor' = floor / Triton time. "
             "Every timed implementation was first checked against the reference at that shape.", "",
             "| B | D | L | N | dtype | triton ms | mamba_ssm ms | reference ms | triton / mamba_ssm | floor ms | of floor | triton GB/s | triton launch (BLOCK_D, T, warps) | best launch tried: ms (shape) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    keys = []
    for r in records:
        key = (r["dtype"], r["B"], r["D"], r["L"], r["N"])
        if key not in keys:
            keys.append(key)

    def pick(key, impl, launch=None):
        rows = [r for r in records if (r["dtype"], r["B"], r["D"], r["L"], r["N"]) == key and r["impl"] == impl
                and r.get("fwd_bwd_ms") is not None and (launch is None or tuple(r.get("config", ())) == launch)]
        return min(rows, key=lambda r: r["fwd_bwd_ms"]) if rows else None

    def fmt(r):
        return f"{r['fwd_bwd_ms']:.3f}" if r else "n/a"

    for key in keys:
        dtype, batch, dim, length, n_state = key
        from icl.kernels.selective_scan_triton import launch_config
        # The Triton column is the launch shape that selective_scan picks by default.
        tri = pick(key, "triton", launch_config(dim, length, n_state))
        best = pick(key, "triton")
        mam, ref = pick(key, "mamba_ssm"), pick(key, "reference")
        ratio = f"{tri['fwd_bwd_ms'] / mam['fwd_bwd_ms']:.2f}x" if tri and mam else "n/a"
        nbytes = (tri or mam or ref or {"min_bytes": 0})["min_bytes"]
        floor = nbytes / BANDWIDTH_FLOOR * 1e3
        of_floor = f"{floor / tri['fwd_bwd_ms']:.0%}" if tri else "n/a"
        gbps = f"{tri['gbps']:.0f}" if tri else "n/a"
        launch = tuple(tri["config"]) if tri else "n/a"
        best_text = f"{best['fwd_bwd_ms']:.3f} {tuple(best['config'])}" if best else "n/a"
        lines.append(f"| {batch} | {dim} | {length} | {n_state} | {dtype} | {fmt(tri)} | {fmt(mam)} | {fmt(ref)} "
                     f"| {ratio} | {floor:.3f} | {of_floor} | {gbps} | {launch} | {best_text} |")
    if any(r.get("default_launch_at_run") for r in records):
        lines += ["", "Provenance: during this run the built-in launch shape was (32, 16, 4) for every size; "
                  "launch_config was then set from this sweep (every launch shape above was measured in "
                  "this same run)."]
    failed = [r for r in records if r.get("error")]
    if failed:
        lines += ["", "Failed checks (not timed):", ""]
        lines += [f"- {r['impl']} {r['B']}x{r['D']}x{r['L']}x{r['N']} {r['dtype']}: {r['error']}" for r in failed]
    return "\n".join(lines) + "\n"


def parse_configs(text):
    if not text:
        return [None]
    configs = []
    for item in text.split(";"):
        if item.strip() == "default":
            configs.append(None)
        else:
            configs.append(tuple(int(v) for v in item.split(",")))
    return configs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                        help="folder for selective_scan.json and selective_scan.md")
    parser.add_argument("--quick", action="store_true", help="three shapes only")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--configs", default="", help="Triton launch shapes 'BLOCK_D,T,warps;...' "
                                                      "('default' = the built-in choice)")
    parser.add_argument("--ref-reps", type=int, default=3, help="timed repetitions of the slow reference")
    parser.add_argument("--markdown-from", type=Path, default=None,
                        help="only rewrite the Markdown table from an existing JSON file")
    args = parser.parse_args(argv)
    if args.markdown_from is not None:
        import_kernels()
        records = json.loads(args.markdown_from.read_text())
        (args.out / "selective_scan.md").write_text(markdown(records))
        return
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/selective_scan.py: needs a CUDA device")
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise SystemExit(f"benchmarks/selective_scan.py: unknown dtype {unknown[0]!r}; use fp32 and/or bf16")
    started = time.time()
    records = run(QUICK_SHAPES if args.quick else SHAPES, dtypes, parse_configs(args.configs), args.ref_reps)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "selective_scan.json").write_text(json.dumps(records, indent=1) + "\n")
    table = markdown(records)
    (args.out / "selective_scan.md").write_text(table)
    print(table)
    print(f"benchmark wall time {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
