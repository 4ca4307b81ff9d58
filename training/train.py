"""Train one resolved run: fresh prompts every step, checkpoints, exact resume, divergence stop.

`train_run(run, out_dir)` writes into `out_dir`:
- checkpoint.pt  model + optimizer + step + RNG state, every `train.checkpoint_every` steps
                 and at the end (atomic: tmp file, fsync, os.replace);
- metrics.jsonl  one JSON line per `train.log_every` steps: step, loss (mean since the
                 last line), dims, points, lr, grad_norm, steps_per_s, wall_s;
- model.pt       the final weights (atomic);
- status.json    written last (atomic): state "done" | "diverged", step, message, ...

Determinism: every random draw comes from a seed derived from (run seed, step) in a
named stream (training/seeds.py): the init seed, the prompt generator of each step and
the dropout seed of each step. A run killed at any moment (even kill -9) resumes from
its last checkpoint and ends with the same weights, bit for bit, as an uninterrupted
run; on CPU the same seed gives bit-identical weights (deterministic algorithms on).

The loss is only copied to the host at log and checkpoint steps (a sync per step would
stall the GPU); a NaN or Inf loss found there stops the run as "diverged" with the first
bad step, and no checkpoint is ever written after it.
"""
from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import torch

import icl
from icl.training import atomic
from icl.training.curriculum import sizes_at
from icl.training.errors import RunError
from icl.training.seeds import stream_seed

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
METRICS = "metrics.jsonl"
STATUS = "status.json"


def resolve_device(requested: str | None) -> torch.device:
    """"auto" (or None) = cuda when available, else cpu; a clear error for unusable devices."""
    name = (requested or "auto").strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise RunError(f"unknown device {name!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
    return device


def build_for_run(run: dict, model_factory: Callable | None = None):
    """(model, task, layout) of a resolved run, the model on the CPU.

    model_factory(model_config, layout) replaces build_model (tests use small stand-ins)."""
    from icl.tasks import make_task
    from icl.tasks.catalog import TASKS

    task_config = run["task_config"]
    kind = task_config.get("kind")
    if kind not in TASKS:
        raise RunError(f"run {run.get('id')}: unknown task kind {kind!r}")
    layout = TASKS[kind].layout(task_config)
    task = make_task(task_config)
    if model_factory is None:
        from icl.compiler.build import build_model

        backend = run.get("train", {}).get("backend", "auto")
        model = build_model(run["model_config"], layout, backend=backend)
    else:
        model = model_factory(run["model_config"], layout)
    return model, task, layout


def train_run(run: dict, out_dir: Path, *, max_steps: int | None = None, device: str | None = None,
              progress: bool = True, model_factory: Callable | None = None) -> dict:
    """Train `run` into `out_dir` (resuming from its checkpoint if there is one); returns status.json's dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temporaries(out_dir)
    train = run["train"]
    planned = int(train["steps"])
    if max_steps is not None and max_steps < 0:
        raise RunError(f"--max-steps must be >= 0, got {max_steps}")
    target = planned if max_steps is None else min(planned, int(max_steps))

    previous = _read_status(out_dir)
    if previous is not None and previous.get("run_id") == run["id"]:
        if previous.get("state") == "diverged":
            return previous  # training is deterministic: it would diverge again
        if (previous.get("state") == "done" and previous.get("steps_done", -1) >= target
                and (out_dir / MODEL).exists()):
            return previous
    (out_dir / STATUS).unlink(missing_ok=True)  # a run in progress has no status

    dev = resolve_device(device if device is not None else train.get("device", "auto"))
    _forget_backend_use()
    rng_devices = [dev] if dev.type == "cuda" else []
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    # Bit-identical CPU runs: deterministic kernels (CUDA would also need a cuBLAS
    # workspace setting, so there we only promise exact resume, not bit-identity).
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        # fork_rng: seeding for this run leaves the caller's global RNG untouched.
        with torch.random.fork_rng(devices=rng_devices):
            return _train(run, out_dir, dev, target, planned, progress, model_factory)
    finally:
        torch.use_deterministic_algorithms(deterministic_before)


def _train(run, out_dir, dev, target, planned, progress, model_factory) -> dict:
    train = run["train"]
    seed = int(run.get("seed", 0))
    torch.manual_seed(stream_seed("init", seed))
    model, task, layout = build_for_run(run, model_factory)
    model.to(dev)
    optimizer = _make_optimizer(model, train)

    start, window, wall_before = 0, [], 0.0
    checkpoint = _load_checkpoint(out_dir / CHECKPOINT, run, dev)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start = int(checkpoint["step"])
        window = list(checkpoint["window"])
        wall_before = float(checkpoint["wall_s"])
        _set_rng_state(checkpoint["rng"], dev)
    _truncate_metrics(out_dir / METRICS, start)
    target = max(target, start)  # a checkpoint past a new, smaller cap: report what it holds

    batch = int(train["batch"])
    clip = float(train["clip"])
    lr = float(train["lr"])
    log_every = max(1, int(train.get("log_every", 100)))
    checkpoint_every = max(1, int(train.get("checkpoint_every", 1000)))
    task_config = run["task_config"]

    bar = _progress_bar(progress, target, start, run["id"])
    t0 = time.perf_counter()
    losses: list[torch.Tensor] = []   # device scalars since the last host sync
    norms: list[torch.Tensor] = []
    first_unsynced = start
    diverged = None
    last_loss = None  # mean loss of the last synced steps, for the status
    model.train()
    with open(out_dir / METRICS, "a", encoding="utf-8") as metrics:
        for step in range(start, target):
            sizes = sizes_at(task_config, step)
            generator = torch.Generator(device=dev)
            generator.manual_seed(stream_seed("train", seed, step))
            prompts = task.sample(generator, batch, dims=sizes["dims"], points=sizes["points"])
            torch.manual_seed(stream_seed("dropout", seed, step))
            pred = prompts.gather(model(prompts.inputs))
            loss = task.loss(pred, prompts)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            losses.append(loss.detach())
            norms.append(grad_norm.detach())

            done = step + 1
            at_log = done % log_every == 0
            at_checkpoint = done % checkpoint_every == 0 or done == target
            if not (at_log or at_checkpoint):
                continue
            # Host sync: look for the first non-finite loss or gradient norm since the last one.
            host_losses = torch.stack(losses).double().cpu().tolist()
            host_norms = torch.stack(norms).double().cpu().tolist()
            losses, norms = [], []
            for offset, (value, norm) in enumerate(zip(host_losses, host_norms)):
                if not (math.isfinite(value) and math.isfinite(norm)):
                    bad_step = first_unsynced + offset
                    what = "loss" if not math.isfinite(value) else "gradient norm"
                    diverged = (bad_step, f"{what} became {value if what == 'loss' else norm} "
                                          f"at step {bad_step} (lr {lr:g}); run stopped as diverged")
                    break
            if diverged is not None:
                break
            first_unsynced = done
            window.extend(host_losses)
            last_loss = sum(host_losses) / len(host_losses)
            elapsed = time.perf_counter() - t0
            rate = (done - start) / elapsed if elapsed > 0 else 0.0
            if bar is not None:
                bar.update(done - bar.n)
                bar.set_postfix(loss=f"{host_losses[-1]:.4g}", dims=sizes["dims"], points=sizes["points"])
            if at_log:
                entry = {"step": done, "loss": sum(window) / len(window), "dims": sizes["dims"],
                         "points": sizes["points"], "lr": lr, "grad_norm": host_norms[-1],
                         "steps_per_s": rate, "wall_s": wall_before + elapsed}
                metrics.write(json.dumps(entry) + "\n")
                metrics.flush()
                window = []
            if at_checkpoint:
                metrics.flush()
                _save_checkpoint(out_dir / CHECKPOINT, run, model, optimizer, done, window,
                                 wall_before + elapsed, dev)
    if bar is not None:
        bar.close()

    elapsed = time.perf_counter() - t0
    steps_run = (diverged[0] if diverged else target) - start
    status = {
        "run_id": run["id"],
        "state": "diverged" if diverged else "done",
        "step": diverged[0] if diverged else target,
        "message": diverged[1] if diverged else
        (f"trained {target} of {planned} steps (capped by --max-steps)" if target < planned
         else f"trained {planned} steps"),
        "steps_done": diverged[0] if diverged else target,
        "steps_planned": planned,
        "capped": target < planned,
        "resumed_from": start,
        "final_loss": None if diverged else last_loss,
        "wall_s": wall_before + elapsed,
        "steps_per_s": steps_run / elapsed if elapsed > 0 and steps_run > 0 else 0.0,
        "device": _device_name(dev),
        "backend": _backend_used(train.get("backend", "auto")),
        "deterministic": dev.type == "cpu",
        "versions": {"torch": torch.__version__, "python": platform.python_version(),
                     "icl": getattr(icl, "__version__", "unknown")},
    }
    if not diverged:
        atomic.torch_save(out_dir / MODEL, {
            "run_id": run["id"], "step": target,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        })
    atomic.write_json(out_dir / STATUS, status)
    return status


def _make_optimizer(model: torch.nn.Module, train: dict) -> torch.optim.Optimizer:
    name = str(train.get("optimizer", "adam")).lower()
    lr = float(train["lr"])
    weight_decay = float(train.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise RunError(f"unknown optimizer {name!r}; use adam or adamw")


# -- checkpoints -----------------------------------------------------------------------

def _rng_state(dev: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if dev.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(dev)
    return state


def _set_rng_state(state: dict, dev: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if dev.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], dev)


def _save_checkpoint(path, run, model, optimizer, step, window, wall_s, dev) -> None:
    atomic.torch_save(path, {
        "run_id": run["id"], "step": step, "window": list(window), "wall_s": wall_s,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": _rng_state(dev),
    })


def _load_checkpoint(path: Path, run: dict, dev: torch.device) -> dict | None:
    if not path.exists():
        return None
    try:
        checkpoint = torch.load(path, map_location=dev, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user problem
        raise RunError(f"cannot read checkpoint {path} ({type(error).__name__}); "
                       f"delete it to train run {run['id']} from scratch") from None
    if checkpoint.get("run_id") != run["id"]:
        raise RunError(f"checkpoint {path} belongs to run {checkpoint.get('run_id')}, "
                       f"not {run['id']}; use another --out folder")
    # RNG states must stay on the CPU whatever map_location did.
    checkpoint["rng"] = {k: v.cpu() for k, v in checkpoint["rng"].items()}
    return checkpoint


# -- metrics and status ----------------------------------------------------------------

def _read_metrics(path: Path) -> list[dict]:
    entries = []
    if not path.exists():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
    return entries


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep only entries up to the checkpoint's step, so a resumed run logs no duplicates."""
    kept = [e for e in _read_metrics(path) if isinstance(e, dict) and e.get("step", 0) <= step]
    atomic.write_bytes(path, "".join(json.dumps(e) + "\n" for e in kept).encode())


def _read_status(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / STATUS).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


# -- environment -----------------------------------------------------------------------

def _progress_bar(progress: bool, total: int, initial: int, run_id: str):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"train {run_id}", unit="step",
                file=sys.stderr, dynamic_ncols=True)


def _forget_backend_use() -> None:
    """The kernels remember the backend of their last call in this process; forget an earlier
    run's, so the status names the backend this run used ("none" when it has no scan)."""
    import icl.kernels as kernels

    record = getattr(kernels, "record_use", None) or getattr(getattr(kernels, "dispatch", None), "record_use", None)
    if record is not None:
        record(None)


def _backend_used(requested: str) -> str:
    import icl.kernels as kernels

    used = getattr(kernels, "backend_used", None)
    if used is None:
        return str(requested)
    try:
        name = used()
    except Exception:  # noqa: BLE001 - metadata only; never fail a finished run over it
        return str(requested)
    return "none (no selective scan)" if name is None else str(name)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
