"""Benchmark of one training step (prompt sampling, forward, backward, clipping, Adam) of the
study's six architectures at paper size (width 256), batch 64, on one GPU, side by side with
eager peers built from the packages the study's released code uses.

Implementations (the JSON's `impl`):
- project        the project's trainer with train.compile = off: whole-step CUDA graph
                 (icl.training.graphs), packs of K runs as one stacked model (icl.training.engine),
                 K = 1, 4, 16;
- project_eager  the same step without graphs (ICL_CUDA_GRAPHS off), K = 1;
- project_compiled  the project's step with graphs and its training forward under torch.compile
                 (icl.training.compiled, what the trainer runs with train.compile = on), K of
                 --compiled-packs; opt-in (`--impls`);
- eager_peer     Transformer: transformers' GPT2Model; Mamba: mamba_ssm's Mamba modules
                 (pre-norm residual blocks), each with a linear read-in and read-out, eager
                 PyTorch, torch.optim.Adam; K = 1. The other four architectures have no peer.

ms_per_step is the median over `--repeats` timed blocks of `--steps` steps, divided by the
block's steps and by K (for a pack: the pack's step time per run). mfu = 3 x forward FLOPs
(icl.compiler.accounting's flops_per_token x tokens x batch) / time / the device's dense fp32
peak of the row's precision (train.precision: fp32 on the CUDA cores, TF32 or bf16 on the tensor
cores). Every prompt has the curriculum's final sizes.

    python benchmarks/train_step.py                        # -> benchmarks/results/train_step.{json,md}
    python benchmarks/train_step.py --archs transformer --packs 1 --out /tmp/x   # one quick row
    python benchmarks/train_step.py --device cpu --width 16 --layers-cap 2 --batch 4 --steps 2 \\
        --repeats 1 --packs 1,2 --out /tmp/cpu   # a check that the script runs (no graphs on CPU)

The peers need `transformers` and `mamba_ssm` (+ einops); one that cannot be imported is
recorded with its error instead of a time. `--merge [JSON]` keeps the records of an earlier
run's JSON (default benchmarks/results/train_step.json) that this run does not redo (same
device, arch, task, impl, K, precision).

On the GPU machine of the device tool (Python 3.12 with torch, triton, transformers, einops):
carry the mamba_ssm wheel of /work/shared/wheels and lark's wheel in a git-ignored folder,
install them with `pip install --no-index --no-deps --target /tmp/site`, and make the checkout's
folders the icl subpackages: `pip install --no-deps --no-build-isolation -e .` where setuptools
>= 77 is there, else a sitecustomize.py on PYTHONPATH holding
`import sys; sys.path.insert(0, CHECKOUT); import icl; icl.__path__.append(CHECKOUT)`. Then

    python3 benchmarks/train_step.py --out $OUT                       # paper size, linear regression
    python3 benchmarks/train_step.py --task all --impls project --packs 1 --precisions tf32 --out $OUT
    python3 benchmarks/train_step.py --spec specs/reduced/study.icl --task all --impls project \
        --packs 1,2 --precisions tf32 --out $OUT                      # the reduced study's cells
    python3 benchmarks/study_cost.py --spec specs/reduced/study.icl --steps $OUT/train_step.json

and copy $OUT/train_step.{json,md} to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import re
import statistics
import sys
import time
import types
from pathlib import Path

import torch

from icl.run import Run
from icl.training.precision import matmul_precision

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("transformer", "mamba", "s4", "s4_mamba", "standard_hybrid", "mambaformer")
# Dense peaks by precision, FLOP/s (no sparsity): NVIDIA's data sheets (SXM parts).
PEAKS = {"H100": {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12},
         "H200": {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12},
         "A100": {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12}}


def study_runs(spec: Path, tasks: str, archs: tuple[str, ...] = ARCHS, seed: int = 0) -> dict[tuple[str, str], Run]:
    """One resolved run per (architecture, task) of the spec, for the given tasks ("all": every
    task of the spec), models (the spec's model names: the study's six, or another spec's, such
    as the zoo's mixers) and seed."""
    from icl.compiler.runs import runs_of

    runs = {}
    for run in runs_of([spec]):
        if (tasks == "all" or run.task in tasks.split(",")) and run.seed == seed and run.model in archs:
            runs.setdefault((run.model, run.task), run)
    return runs


def resize(run: Run, width: int | None, layers_cap: int | None, batch: int) -> Run:
    """The run at another width / fewer layers (CPU checks of this script), at `batch`."""
    run = copy.deepcopy(run)
    run.train["batch"] = batch
    if width is not None:
        run.model_config["width"] = width
        if "heads" in run.model_config:
            run.model_config["heads"] = min(run.model_config["heads"], max(1, width // 8))
        if "headdim" in run.model_config:
            run.model_config["headdim"] = min(run.model_config["headdim"], width)
    if layers_cap is not None:
        run.model_config["layers"] = " ".join(run.model_config["layers"].split()[:layers_cap])
    return run


def make_pack(run: Run, k: int) -> list[Run]:
    return [dataclasses.replace(copy.deepcopy(run), id=f"{i:012x}", seed=i) for i in range(k)]


def project_step(runs: list[Run], dev: torch.device, graphs_on: bool, compiled: bool = False):
    """A step function of the project's trainer for a pack of `runs` at the curriculum's end;
    returns (step, info) where step() runs one training step of every run. `compiled`: each
    training forward under torch.compile (compiled during the graph's warm-up steps, before capture)."""
    from icl.compiler.runs import model_settings, train_settings
    from icl.training import graphs
    from icl.training import train as trainer
    from icl.training.curriculum import sizes_at
    from icl.training.engine import PackedEngine
    from icl.training.precision import precision_of
    from icl.training.seeds import stream_seed

    models, tasks = [], []
    for run in runs:
        torch.manual_seed(stream_seed("init", run.seed))
        model, task, _ = trainer.build_for_run(run)
        models.append(model)
        tasks.append(task)
    engine = PackedEngine(models, [train_settings(r) for r in runs], float(model_settings(runs[0])["dropout"]),
                          precision_of(runs[0]), dev, f"benchmark {runs[0].model}" if compiled else None)
    stepper = graphs.Stepper(dev, graphs_on and dev.type == "cuda", label=f"benchmark {runs[0].model}")
    sizes = sizes_at(runs[0].task_config, 10 ** 12)
    batch = int(runs[0].train["batch"])
    active = torch.ones(len(runs), dtype=torch.bool, device=dev)
    counter = {"step": 0}

    def step():
        counter["step"] += 1
        prompts = []
        for run, task in zip(runs, tasks):
            generator = torch.Generator(device=dev)
            generator.manual_seed(stream_seed("train", run.seed, counter["step"]))
            prompts.append(task.sample(generator, batch, dims=sizes["dims"], points=sizes["points"]))

        def one_step(prompts_now, seed_dropout):
            return engine.step([p.inputs for p in prompts_now],
                               [trainer._loss_fn(t, p) for t, p in zip(tasks, prompts_now)], active, None)
        return stepper.run(("bench",), one_step, prompts)

    info = lambda: {"pack_mode": engine.mode, "cuda_graphs": stepper.summary(),  # noqa: E731
                    **({"compile": engine.train_forward.summary()} if compiled else {})}
    return step, info


class ReadInOut(torch.nn.Module):
    """A peer body between the project's read-in and read-out (the task's token and output sizes)."""

    def __init__(self, body: torch.nn.Module, token_dim: int, out_dim: int, width: int, hidden_states: bool):
        super().__init__()
        self.read_in = torch.nn.Linear(token_dim, width)
        self.body = body
        self.read_out = torch.nn.Linear(width, out_dim)
        self.hidden_states = hidden_states

    def forward(self, x):
        h = self.body(inputs_embeds=self.read_in(x)).last_hidden_state if self.hidden_states \
            else self.body(self.read_in(x))
        return self.read_out(h)


class MambaStack(torch.nn.Module):
    """mamba_ssm's Mamba mixers in pre-norm residual blocks, then a final norm."""

    def __init__(self, n_layers: int, width: int, d_state: int, d_conv: int, expand: int):
        super().__init__()
        from mamba_ssm.modules.mamba_simple import Mamba

        self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(width) for _ in range(n_layers))
        self.mixers = torch.nn.ModuleList(Mamba(d_model=width, d_state=d_state, d_conv=d_conv, expand=expand)
                                          for _ in range(n_layers))
        self.final = torch.nn.LayerNorm(width)

    def forward(self, x):
        for norm, mixer in zip(self.norms, self.mixers):
            x = x + mixer(norm(x))
        return self.final(x)


def peer_step(run: Run, dev: torch.device):
    """An eager step of the architecture's peer model, or None when it has none."""
    from icl.tasks import make_task
    from icl.tasks.catalog import TASKS
    from icl.training.curriculum import sizes_at

    config, layers = run.model_config, run.model_config["layers"].split()
    layout = TASKS[run.kind].layout(run.task_config)
    width = config["width"]
    if run.model == "transformer":
        from transformers import GPT2Config, GPT2Model

        gpt = GPT2Config(n_embd=width, n_layer=layers.count("A"), n_head=config["heads"],
                         n_positions=layout.tokens, n_inner=config["mlp_ratio"] * width,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = ReadInOut(GPT2Model(gpt), layout.token_dim, layout.out_dim, width, hidden_states=True)
    elif run.model == "mamba":
        body = MambaStack(layers.count("M"), width, config["d_state"], config["d_conv"], config["expand"])
        model = ReadInOut(body, layout.token_dim, layout.out_dim, width, hidden_states=False)
    else:
        return None
    model.to(dev).train()
    task = make_task(run.task_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(run.train["lr"]))
    sizes = sizes_at(run.task_config, 10 ** 12)
    batch, clip = int(run.train["batch"]), float(run.train["clip"])
    generator = torch.Generator(device=dev)
    generator.manual_seed(0)

    def step():
        prompts = task.sample(generator, batch, dims=sizes["dims"], points=sizes["points"])
        loss = task.loss(prompts.gather(model(prompts.inputs).float()), prompts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss.detach()
    return step


def run_tokens(run: Run) -> int:
    from icl.tasks.catalog import TASKS

    return TASKS[run.kind].layout(run.task_config).tokens


def profile(step, dev: torch.device, label: str, log: Path, steps: int = 5) -> None:
    """The GPU time of a few steps by kernel (torch.profiler), appended to `log`."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
    sort = "cuda_time_total" if dev.type == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=30, max_name_column_width=70)
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n## {label} ({steps} steps)\n{table}\n")


def time_steps(step, dev: torch.device, warmup: int, steps: int, repeats: int) -> tuple[float, float]:
    """(median ms per step over `repeats` blocks of `steps` steps after `warmup` steps, seconds
    of the warm-up steps: what compilation and graph capture cost a run once per prompt shape)."""
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warmup_s = time.perf_counter() - start
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        blocks.append((time.perf_counter() - start) * 1000 / steps)
    return statistics.median(blocks), warmup_s


def device_peak(dev: torch.device) -> dict[str, float] | None:
    if dev.type != "cuda":
        return None
    name = torch.cuda.get_device_name(dev)
    return next((peaks for key, peaks in PEAKS.items() if key in name), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "paper" / "study.icl"))
    parser.add_argument("--task", default="linear_regression", help="task(s) of the spec: a,b or all")
    parser.add_argument("--profile", default=None,
                        help="append torch.profiler kernel tables of each architecture's K = 1 eager step (impl "
                             "project_eager) and of its largest pack up to 16 without graphs to this file")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--packs", default="1,4,16", help="pack sizes K of the project's trainer")
    parser.add_argument("--compiled-packs", default="1", help="pack sizes K of impl project_compiled")
    parser.add_argument("--precisions", default="tf32,fp32,bf16",
                        help="train.precision values: the first with every pack size (and the eager "
                             "rows), the others at K = 1 and 16; peers at the first two")
    parser.add_argument("--impls", default="eager_peer,project_eager,project",
                        help="of eager_peer, project_eager, project, project_compiled")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=None, help="override the spec's width (CPU checks)")
    parser.add_argument("--layers-cap", type=int, default=None, help="keep the first N layers (CPU checks)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--name", default="train_step",
                        help="file stem of the results in --out (train_step_packed: the packed engine's table)")
    parser.add_argument("--code", default=None,
                        help="what code the rows were measured with (a commit, 'uncommitted: ...'), kept in each record")
    parser.add_argument("--merge", default=None, nargs="?", const=str(ROOT / "benchmarks" / "results" / "train_step.json"),
                        help="keep the records of this earlier JSON that this run does not redo")
    args = parser.parse_args(argv)

    dev = torch.device(args.device)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = device_peak(dev)
    packs = [int(k) for k in args.packs.split(",") if k]
    compiled_packs = [int(k) for k in args.compiled_packs.split(",") if k]
    precisions = [p for p in args.precisions.split(",") if p]
    impls = set(args.impls.split(","))
    runs = study_runs(Path(args.spec), args.task, tuple(a for a in args.archs.split(",") if a))
    profile_log = Path(args.profile) if args.profile else None
    records = []

    def base_of(arch, impl, pack, run):
        return {"device": device_name, "arch": arch, "task": run.task, "tokens": run_tokens(run),
                "impl": impl, "batch": args.batch, "pack": pack,
                "precision": run.train["precision"], "width": run.model_config["width"],
                "layers": run.model_config["layers"], **({"code": args.code} if args.code else {})}

    def fail(arch, impl, pack, run, error):
        message = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
        records.append({**base_of(arch, impl, pack, run), "ms_per_step": None, "mfu": None, "error": message})
        print(f"{arch:16s} {impl:14s} K={pack:<3d} {run.train['precision']} failed: {message}", flush=True)

    def record(arch, impl, pack, run, step_fn, extra=None):
        from icl.compiler.accounting import account
        from icl.tasks.catalog import TASKS

        base = base_of(arch, impl, pack, run)
        try:
            if step_fn is None:
                raise RuntimeError("no peer for this architecture")
            with matmul_precision(run.train["precision"], dev):
                ms, warmup_s = time_steps(step_fn, dev, args.warmup, args.steps, args.repeats)
                ms /= pack
        except Exception as error:  # noqa: BLE001 - a failed implementation is a row, not a crash
            fail(arch, impl, pack, run, error)
            return
        layout = TASKS[run.kind].layout(run.task_config)
        flops = 3 * account(run.model_config, layout)["flops_per_token"] * layout.tokens * args.batch
        mfu = flops / (ms / 1000) / peak[base["precision"]] if peak else None
        records.append({**base, **(extra() if callable(extra) else extra or {}), "ms_per_step": round(ms, 4),
                        "mfu": None if mfu is None else round(mfu, 5), "warmup_s": round(warmup_s, 2)})
        print(f"{arch:16s} {run.task:30s} {impl:14s} K={pack:<3d} {base['precision']} {ms:9.3f} ms/step per run "
              f"(warm-up {warmup_s:.1f} s)", flush=True)

    earlier = []
    if args.merge and Path(args.merge).exists():
        earlier = json.loads(Path(args.merge).read_text())

    cells = [(arch, task) for arch in args.archs.split(",") if arch
             for (a, task) in sorted(runs) if a == arch]
    for arch, task in cells:
        write(records, args, device_name, peak, earlier)  # what is measured so far survives a timeout
        run = resize(runs[(arch, task)], args.width, args.layers_cap, args.batch)
        run.train["device"] = args.device
        for i, precision_name in enumerate(precisions):
            run.train["precision"] = precision_name
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                if i < 2 and "eager_peer" in impls:  # the peers as released (fp32) and at the default precision
                    try:
                        peer = peer_step(run, dev)
                    except Exception as error:  # noqa: BLE001 - e.g. the peer package is not installed
                        peer = None
                        fail(arch, "eager_peer", 1, run, error)
                    if peer is not None:
                        record(arch, "eager_peer", 1, run, peer)
                if i == 0 and "project_eager" in impls:
                    step, info = project_step(make_pack(run, 1), dev, graphs_on=False)
                    record(arch, "project_eager", 1, run, step, info)
                    if profile_log is not None:  # eager: the profiler sees each kernel
                        with matmul_precision(precision_name, dev):
                            profile(step, dev, f"{arch} {task} {precision_name}, eager", profile_log)
                if "project_compiled" in impls:
                    for k in (compiled_packs if i == 0 else [1]):
                        step, info = project_step(make_pack(run, k), dev, graphs_on=True, compiled=True)
                        record(arch, "project_compiled", k, run, step, info)
                        del step, info
                for k in (packs if i == 0 else [k for k in packs if k in (1, 16)]):
                    step, info = project_step(make_pack(run, k), dev, graphs_on=True)
                    record(arch, "project", k, run, step, info)
                    del step, info
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                if i == 0 and profile_log is not None and max(packs) > 1:  # the largest pack up to 16, eager
                    k = max([k for k in packs if 1 < k <= 16] or [min(k for k in packs if k > 1)])
                    step, _ = project_step(make_pack(run, k), dev, graphs_on=False)
                    with matmul_precision(precision_name, dev):
                        profile(step, dev, f"{arch} {task} {precision_name}, pack of {k}, eager", profile_log)
                    del step

    write(records, args, device_name, peak, earlier)
    print(f"wrote {Path(args.out) / (args.name + '.json')} and {Path(args.out) / (args.name + '.md')}")
    return 0


def write(records: list[dict], args, device_name: str, peak: dict[str, float] | None, earlier: list[dict]) -> None:
    """<name>.{json,md} in --out: these records, and those of `earlier` that they do not redo."""
    key = lambda r: (r["device"], r["arch"], r.get("task"), r["impl"], r["pack"], r.get("precision"))  # noqa: E731
    redone = {key(r) for r in records}
    records = [r for r in earlier if key(r) not in redone] + records
    # grouped by architecture (the study's order) and task; a redone row stays in its group
    rank = {arch: i for i, arch in enumerate(ARCHS)}
    records.sort(key=lambda r: (rank.get(r["arch"], len(rank)), r.get("task") or ""))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(records, indent=1) + "\n")
    (out / f"{args.name}.md").write_text(markdown(records, device_name, peak, args))


def markdown(records: list[dict], device_name: str, peak: dict[str, float] | None, args) -> str:
    lines = [f"# Training step, {device_name}", "",
             f"Median ms per training step of one run (a pack's step time / K), batch {args.batch}, "
             f"prompts at the curriculum's final sizes; mfu against the dense peak of the row's precision ("
             + ", ".join(f"{name} {value / 1e12:.0f}" for name, value in peak.items()) + " TFLOP/s)." if peak else
             f"Median ms per training step of one run (a pack's step time / K), batch {args.batch}, fp32.",
             "project = whole-step CUDA graph (+ stacked pack of K runs); project_eager = the same step "
             "without graphs; project_compiled = project with its training forward under torch.compile; "
             "eager_peer = transformers GPT2Model / mamba_ssm Mamba, eager.", "",
             "| arch | task | tokens | impl | precision | K | ms / step / run | mfu | pack mode | note |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in records:
        ms = "-" if r.get("ms_per_step") is None else f"{r['ms_per_step']:.3f}"
        mfu = "-" if r.get("mfu") is None else f"{100 * r['mfu']:.1f}%"
        graphs = r.get("cuda_graphs") or {}
        note = r.get("error") or ("graphs off (capture failed)" if graphs and not graphs.get("on") else "")
        lines.append(f"| {r['arch']} | {r.get('task', '-')} | {r.get('tokens', '-')} | {r['impl']} | {r.get('precision', 'fp32')} | {r['pack']} | {ms} | {mfu} | "
                     f"{r.get('pack_mode', '-')} | "
                     f"{re.sub(r'[|]', '/', note)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
