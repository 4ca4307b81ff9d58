"""Benchmark of the selective scan, forward + backward: the project's Triton kernel, mamba-ssm's
CUDA kernel and the pure-PyTorch reference, side by side in one run on one GPU.

Every speed is reported only after the implementation's output and gradients were checked
against the reference at that shape (relative norm error under the dtype's tolerance).

    python benchmarks/selective_scan.py                      # full grid -> benchmarks/results/
    python benchmarks/selective_scan.py --quick --out DIR    # three shapes, for a smoke run
    python benchmarks/selective_scan.py --configs "4,64,4;8,32,4"   # also time Triton launch shapes
    python benchmarks/selective_scan.py --packed             # the study's packed shapes (issue #24):
        the sequential kernel (selective_scan_seq) vs the chunked one vs mamba-ssm, forward and
        forward+backward -> benchmarks/results/selective_scan_packed.{json,md}

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
                    record["config"] = list(config or launch_config(dim, length, n_state, batch))
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
        tri = pick(key, "triton", launch_config(dim, length, n_state, batch))
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



# ---------------------------------------------------------------------------------------------
# Packed shapes (issue #24): K runs of batch 64 in one scan, short L, N 16.

H200_BANDWIDTH = 4.8e12  # bytes/s, the H200's datasheet HBM bandwidth (the copy rate measured is in the JSON)
PACKED_BATCHES = (64, 256, 1024, 4096)
PACKED_DIMS = (256, 512)
PACKED_LENGTHS = (80, 280)


def packed_min_bytes(batch, dim, length, n_state, elem, mode):
    """Bytes that must move. Forward: read u, delta, z, B, C, write out. Forward + backward:
    that, then read u, delta, z, B, C, dout and write du, ddelta, dz, dB, dC (min_bytes)."""
    if mode == "fwd":
        return elem * (4 * batch * dim * length + 2 * batch * n_state * length)
    return min_bytes(batch, dim, length, n_state, elem)


def in_layout(inputs, layout):
    """The inputs laid out in memory as (batch, L, dim) and (batch, L, N) ("bld": channels
    contiguous, the sequential kernel's best) or (batch, dim, L) and (batch, N, L) ("bdl":
    time contiguous, mamba-ssm's and the chunked kernel's), same logical shapes."""
    if layout == "bdl":
        return {k: (v.contiguous() if v is not None else None) for k, v in inputs.items()}
    out = dict(inputs)
    for name in ("u", "delta", "z", "B", "C"):
        out[name] = inputs[name].transpose(1, 2).contiguous().transpose(1, 2)
    return out


def measure_copy_bandwidth(device):
    """Device-to-device copy rate (bytes read + written per second) of a 2 GiB buffer."""
    from triton.testing import do_bench
    src = torch.randn(2 ** 29, device=device)
    dst = torch.empty_like(src)
    ms = do_bench(lambda: dst.copy_(src), warmup=25, rep=200, return_mode="median")
    del src, dst
    return 2 * 2 ** 29 * 4 / ms * 1e3


def packed_impls(kernels, seq_configs, seq_default=None, with_bdl=False):
    """name -> (function, layout of its inputs). "triton_seq" runs seq_default (None: its
    launch_config); "triton_seq[...]" the other launch shapes asked for."""
    from icl.kernels.selective_scan_seq import selective_scan_seq
    from icl.kernels.selective_scan_triton import selective_scan_triton
    impls = {}
    for config in seq_configs:
        suffix = "" if config is None else "[" + ",".join(map(str, config)) + "]"
        config = seq_default if config is None else config
        impls["triton_seq" + suffix] = (lambda config=config, **kw: selective_scan_seq(**kw, config=config), "bld")
        if suffix == "" and with_bdl:
            impls["triton_seq(bdl)"] = (lambda config=config, **kw: selective_scan_seq(**kw, config=config), "bdl")
    impls["triton"] = (selective_scan_triton, "bdl")
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        impls["mamba_ssm"] = (selective_scan_fn, "bdl")
    except Exception as error:  # noqa: BLE001 -- the peer is optional; say why it is missing
        print(f"mamba_ssm unavailable: {type(error).__name__}: {error}")
    return impls


def run_packed(dtypes, batches, dims, lengths, seq_configs, only=None, device="cuda", seq_default=None,
               with_bdl=False, out_dir=None):
    from triton.testing import do_bench
    kernels = import_kernels()
    device = torch.device(device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    bandwidth = measure_copy_bandwidth(device)
    print(f"{device_name}: device-to-device copy {bandwidth / 1e12:.2f} TB/s", flush=True)
    impls = packed_impls(kernels, seq_configs, seq_default, with_bdl)
    if only:
        # an implementation's launch shapes go with it: "triton_seq" keeps "triton_seq[64,1,...]"
        impls = {k: v for k, v in impls.items() if k.split("[")[0] in only or k == "triton"}
    records = []
    n_state = 16
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        elem = torch.finfo(dtype).bits // 8
        for dim in dims:
            for length in lengths:
                for batch in batches:
                    base = make_inputs(batch, dim, length, n_state, dtype, device)
                    dout_base = torch.randn(batch, dim, length, device=device).to(dtype)
                    # Checked against the reference at the smallest batch; above it, against the
                    # chunked kernel (itself checked against the reference at the smallest batch).
                    if batch == batches[0]:
                        check_against = fwd_bwd(kernels.selective_scan_ref, base, dout_base)
                    else:
                        check_against = fwd_bwd(impls["triton"][0], base, dout_base)
                    for name, (fn, layout) in impls.items():
                        inputs = in_layout(base, layout)
                        dout = dout_base.transpose(1, 2).contiguous().transpose(1, 2) if layout == "bld" else dout_base
                        record = dict(device=device_name, impl=name, layout=layout, B=batch, K=batch // 64, D=dim,
                                      L=length, N=n_state, dtype=dtype_name,
                                      date=time.strftime("%Y-%m-%d"), copy_bandwidth=round(bandwidth / 1e9, 1))
                        try:
                            out, grads = fwd_bwd(fn, inputs, dout)
                            torch.cuda.synchronize()
                        except Exception as error:  # noqa: BLE001 -- record the failure, go on
                            record.update(error=f"{type(error).__name__}: {error}"[:300])
                            print(f"FAILED {name}: {record['error']}", flush=True)
                            records.append(record)
                            continue
                        errors = {"out": rel_err(out, check_against[0])}
                        errors.update({f"d{n}": rel_err(g, r) for n, g, r in zip(GRAD_NAMES, grads, check_against[1])})
                        record["max_rel_err"] = max(errors.values())
                        record["checked_against"] = "reference" if batch == batches[0] else "triton"
                        del out, grads
                        if not record["max_rel_err"] <= TOLERANCE[dtype]:
                            record["error"] = "failed the check: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
                            print(f"CHECK FAILED {name} {batch}x{dim}x{length} {dtype_name}: {errors}", flush=True)
                            records.append(record)
                            continue
                        leaves = {k: v.detach().requires_grad_() for k, v in inputs.items()}

                        def forward():
                            return fn(**leaves, delta_softplus=True)

                        def forward_backward():
                            out = fn(**leaves, delta_softplus=True)
                            return torch.autograd.grad(out, [leaves[k] for k in GRAD_NAMES], dout)

                        for mode, call in (("fwd", forward), ("fwd_bwd", forward_backward)):
                            ms = do_bench(call, warmup=10, rep=60, return_mode="median")
                            nbytes = packed_min_bytes(batch, dim, length, n_state, elem, mode)
                            record[f"{mode}_ms"] = round(ms, 4)
                            record[f"{mode}_min_bytes"] = nbytes
                            record[f"{mode}_of_floor"] = round(nbytes / H200_BANDWIDTH * 1e3 / ms, 4)
                        records.append(record)
                        print(f"{name:28s} {dtype_name} B{batch:5d} D{dim} L{length:4d}  fwd {record['fwd_ms']:8.3f} ms "
                              f"({record['fwd_of_floor']:.0%})  fwd+bwd {record['fwd_bwd_ms']:8.3f} ms "
                              f"({record['fwd_bwd_of_floor']:.0%})  err {record['max_rel_err']:.1e}", flush=True)
                        del leaves, inputs
                    del base, dout_base, check_against
                    torch.cuda.empty_cache()
                    if out_dir is not None:  # after every shape: a run cut short keeps what it measured
                        write_packed(records, out_dir, seq_default)
    return records


def write_packed(records, out_dir, seq_default=None):
    out_dir.mkdir(parents=True, exist_ok=True)
    for r in records:
        if r["impl"] == "triton_seq" and seq_default is not None:
            r["config"] = list(seq_default)
    (out_dir / "selective_scan_packed.json").write_text(json.dumps(records, indent=1) + "\n")
    (out_dir / "selective_scan_packed.md").write_text(packed_markdown(records))


def packed_markdown(records):
    device = records[0]["device"] if records else "?"
    date = records[0].get("date", "?") if records else "?"
    copy = records[0].get("copy_bandwidth", 0) / 1e3 if records else 0
    lines = [f"# Selective scan at the packed study shapes ({device}, {date})", "",
             "K runs of batch 64 packed into one scan (B = 64 K), N = 16, delta_softplus, D, z and "
             "delta_bias given. Median ms (triton.testing.do_bench). 'floor' = the bytes that must move "
             "(forward: read u, delta, z, B, C, write out; forward + backward: also read them and dout "
             "and write du, ddelta, dz, dB, dC) over 4.8 TB/s, the H200's HBM bandwidth (a 2 GiB "
             f"device-to-device copy ran at {copy:.2f} TB/s in this run); '% floor' = floor / time. "
             "Inputs: triton_seq reads (batch, L, dim) and (batch, L, N) memory (channels contiguous, "
             "'bld'); triton (the chunked kernel) and mamba_ssm read (batch, dim, L) and (batch, N, L) "
             "('bdl', their native layout); triton_seq(bdl) is the sequential kernel on those. Every "
             "timed implementation was first checked (output and all gradients) against the reference "
             "at B = 64 and against the chunked kernel above it.", ""]
    keys = []
    for r in records:
        key = (r["dtype"], r["D"], r["L"], r["B"])
        if key not in keys:
            keys.append(key)

    def pick(key, impl):
        rows = [r for r in records if (r["dtype"], r["D"], r["L"], r["B"]) == key and r["impl"] == impl
                and r.get("fwd_ms") is not None]
        return rows[0] if rows else None

    for mode, title in (("fwd", "Forward"), ("fwd_bwd", "Forward + backward")):
        lines += [f"## {title}", "",
                  "| dtype | D | L | K | B | triton_seq ms | % floor | triton_seq(bdl) ms | triton ms | "
                  "mamba_ssm ms | floor ms | speedup vs mamba_ssm | speedup vs triton |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key in keys:
            dtype, dim, length, batch = key
            seq, seq_bdl, tri, mam = (pick(key, i) for i in ("triton_seq", "triton_seq(bdl)", "triton", "mamba_ssm"))

            def ms(r):
                return f"{r[mode + '_ms']:.3f}" if r else "n/a"

            def speedup(other):
                return f"{other[mode + '_ms'] / seq[mode + '_ms']:.2f}x" if seq and other else "n/a"
            any_r = seq or tri or mam
            floor = any_r[mode + "_min_bytes"] / H200_BANDWIDTH * 1e3 if any_r else float("nan")
            of_floor = f"{seq[mode + '_of_floor']:.0%}" if seq else "n/a"
            lines.append(f"| {dtype} | {dim} | {length} | {batch // 64} | {batch} | {ms(seq)} | {of_floor} | "
                         f"{ms(seq_bdl)} | {ms(tri)} | {ms(mam)} | {floor:.3f} | {speedup(mam)} | {speedup(tri)} |")
        lines.append("")
    configs = sorted({tuple(r["config"]) for r in records if r["impl"] == "triton_seq" and r.get("config")})
    if configs:
        lines += [f"triton_seq launch shape (block_d, warps, block_d_bwd, warps_bwd, chunk): {configs[0]}.", ""]
    extra = sorted({r["impl"] for r in records} - {"triton_seq", "triton_seq(bdl)", "triton", "mamba_ssm"})
    if extra:
        lines += ["Other launch shapes of triton_seq timed (block_d, warps, block_d_bwd, warps_bwd, chunk): "
                  + ", ".join(extra) + " (in the JSON).", ""]
    failed = [r for r in records if r.get("error")]
    if failed:
        lines += ["Failed (not timed):", ""]
        lines += [f"- {r['impl']} {r['dtype']} B{r['B']} D{r['D']} L{r['L']}: {r['error']}" for r in failed]
    return "\n".join(lines) + "\n"


def profile_seq(batch, dim, length, dtype_name, out_dir):
    """torch.profiler table of one forward + backward of the sequential kernel (bld inputs)."""
    from torch.profiler import ProfilerActivity, profile
    from icl.kernels.selective_scan_seq import selective_scan_seq
    import_kernels()
    device = torch.device("cuda")
    dtype = DTYPES[dtype_name]
    inputs = in_layout(make_inputs(batch, dim, length, 16, dtype, device), "bld")
    dout = torch.randn(batch, length, dim, device=device).to(dtype).transpose(1, 2)
    for _ in range(3):
        fwd_bwd(selective_scan_seq, inputs, dout)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            fwd_bwd(selective_scan_seq, inputs, dout)
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=12)
    print(f"profile: triton_seq fwd+bwd x5, B{batch} D{dim} L{length} {dtype_name}\n{table}", flush=True)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"profile_seq_B{batch}_D{dim}_L{length}_{dtype_name}.txt").write_text(table)


def parse_seq_configs(text):
    if not text:
        return [None]
    return [None if item.strip() == "default" else tuple(int(v) for v in item.split(","))
            for item in text.split(";")]


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
    parser.add_argument("--packed", action="store_true",
                        help="the packed study shapes: triton_seq vs triton vs mamba_ssm, forward and forward+backward")
    parser.add_argument("--batches", default=",".join(map(str, PACKED_BATCHES)), help="--packed: batch sizes")
    parser.add_argument("--dims", default=",".join(map(str, PACKED_DIMS)), help="--packed: channel counts")
    parser.add_argument("--lengths", default=",".join(map(str, PACKED_LENGTHS)), help="--packed: sequence lengths")
    parser.add_argument("--seq-configs", default="", help="--packed: triton_seq launch shapes "
                        "'block_d,warps,block_d_bwd,warps_bwd,chunk[,reduce[,max_registers_bwd[,max_registers_fwd]]];...' "
                        "('default' = launch_config)")
    parser.add_argument("--only", default="", help="--packed: time only these implementations (and triton), "
                        "';'-separated; one names its launch shapes too (triton_seq: triton_seq[...])")
    parser.add_argument("--seq-default", default="", help="--packed: the launch shape of the 'triton_seq' "
                        "column (default: launch_config)")
    parser.add_argument("--with-bdl", action="store_true", help="--packed: also time triton_seq on (batch, dim, L) inputs")
    parser.add_argument("--profile", default="", help="'B,D,L,dtype': torch.profiler table of triton_seq there")
    args = parser.parse_args(argv)
    if args.markdown_from is not None:
        import_kernels()
        records = json.loads(args.markdown_from.read_text())
        if args.packed:
            (args.out / "selective_scan_packed.md").write_text(packed_markdown(records))
        else:
            (args.out / "selective_scan.md").write_text(markdown(records))
        return
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/selective_scan.py: needs a CUDA device")
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise SystemExit(f"benchmarks/selective_scan.py: unknown dtype {unknown[0]!r}; use fp32 and/or bf16")
    started = time.time()
    if args.profile:
        batch, dim, length, dtype_name = args.profile.split(",")
        profile_seq(int(batch), int(dim), int(length), dtype_name, args.out)
    if args.packed:
        def ints(text):
            return [int(v) for v in text.split(",") if v]
        seq_default = tuple(ints(args.seq_default)) if args.seq_default else None
        records = run_packed(dtypes, ints(args.batches), ints(args.dims), ints(args.lengths),
                             parse_seq_configs(args.seq_configs), [v for v in args.only.split(";") if v],
                             seq_default=seq_default, with_bdl=args.with_bdl, out_dir=args.out)
        write_packed(records, args.out, seq_default)
        print(packed_markdown(records))
        print(f"benchmark wall time {time.time() - started:.0f} s")
        return
    if args.profile:
        return
    records = run(QUICK_SHAPES if args.quick else SHAPES, dtypes, parse_configs(args.configs), args.ref_reps)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "selective_scan.json").write_text(json.dumps(records, indent=1) + "\n")
    table = markdown(records)
    (args.out / "selective_scan.md").write_text(table)
    print(table)
    print(f"benchmark wall time {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
