"""Train one resolved run: fresh prompts every step, checkpoints, exact resume, divergence stop.

`train_run(run, out_dir)` writes into `out_dir`:
- checkpoint.pt  model + optimizer + step + RNG state, every `train.checkpoint_every` steps
                 and at the end (atomic: tmp file, fsync, os.replace);
- metrics.jsonl  one JSON line per `train.log_every` steps: step, loss (mean since the
                 last line), dims, points, lr, grad_norm, steps_per_s, wall_s; with
                 `train.log_error` N > 0 also error: the task's error averaged over N fresh
                 prompts (stream "monitor") at the step's sizes (time to accuracy);
- tensorboard/   only with `train.tensorboard = true` or $ICL_TENSORBOARD=1: the metrics
                 lines' scalars as TensorBoard event files (training/sinks.py);
- model.pt       the final weights (atomic);
- status.json    written last (atomic): state "done" | "diverged", step, message, final_loss
                 (the mean training loss of the last FINAL_LOSS_STEPS steps: it depends on
                 neither checkpoint_every nor log_every, which are not part of the run id),
                 stopped_early {step, error, stop_error} where train.stop_error ended the run
                 (its first metrics line with error <= stop_error; a "done" run), ...

The folder's file names, records, validating reads and lock live in icl/runfolder.py. While
it trains, a process holds each run's lock (runfolder.run_lock): a second trainer of the same
run stops with a message naming the holder. Nothing in a folder is written or deleted before
every check has passed: a folder of another run, an unreadable checkpoint or model, or a
finished run whose weights are gone (committed results keep no weights) is refused.

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

import contextlib
import json
import math
import platform
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable

import torch

import icl
from icl import atomic, runfolder
from icl.runfolder import CHECKPOINT, METRICS, MODEL, STATUS
from icl.training.curriculum import sizes_at
from icl.training.errors import RunError
from icl.training import compiled, gpu_slots, graphs, sinks
from icl.training.precision import precision_of
from icl.training.seeds import stream_seed
from icl.compiler.build import build_for_run
from icl.compiler.runs import model_settings, train_settings
from icl.training.device import resolve_device
from icl.run import Run

__all__ = ["CHECKPOINT", "METRICS", "MODEL", "STATUS", "train_run", "train_members", "build_for_run",
           "resolve_device"]

# final_loss: the mean training loss over this many last steps (all of them if fewer).
FINAL_LOSS_STEPS = 100


def train_run(run: Run, out_dir: Path, *, max_steps: int | None = None, device: str | None = None,
              progress: bool = True, model_factory: Callable | None = None) -> dict:
    """Train `run` into `out_dir` (resuming from its checkpoint if there is one); returns status.json's dict."""
    return train_members([run], [out_dir], max_steps=max_steps, device=device, progress=progress,
                         model_factory=model_factory)[0]


def train_members(runs: list[Run], out_dirs: list[Path], *, max_steps: int | None = None,
                  device: str | None = None, progress: bool = True,
                  model_factory: Callable | None = None) -> list[dict]:
    """Train runs side by side in one process, each into its own folder; their statuses, in order.

    One run is the plain case (`train_run`); several must share model, task and schedule
    (icl.training.pack.check_pack says which may be packed) and train as one stacked model."""
    out_dirs = [Path(d) for d in out_dirs]
    if max_steps is not None and max_steps < 0:
        raise RunError(f"--max-steps must be >= 0, got {max_steps}")
    train = runs[0].train
    planned = int(train["steps"])
    target = planned if max_steps is None else min(planned, int(max_steps))

    if len({d.resolve() for d in out_dirs}) != len(out_dirs):
        raise RunError("two runs of a pack cannot share a folder: " + ", ".join(map(str, out_dirs)))
    with contextlib.ExitStack() as locks:
        for run, out_dir in zip(runs, out_dirs):
            out_dir.mkdir(parents=True, exist_ok=True)
            locks.enter_context(runfolder.run_lock(out_dir, run.id, "training"))
        return _train_locked(runs, out_dirs, target, planned, device, progress, model_factory)


def _check_folder(run: Run, out_dir: Path, target: int) -> tuple[dict | None, dict | None, int]:
    """(status dict if the run is finished as far as asked, else None; its checkpoint or None;
    the last step in its metrics.jsonl, where a resumed run starts logging again).

    Reads and validates every file that decides what to do, writing nothing: a file of another
    run, an unreadable one, or a finished run whose weights are gone is refused here."""
    status = runfolder.read_status(out_dir, run.id)
    checkpoint = runfolder.load_checkpoint(out_dir, run.id)
    weights = runfolder.load_model(out_dir, run.id)
    metrics = runfolder.read_metrics(out_dir)
    # At most `checkpoint_every` steps past the checkpoint; without one a run starts at 0.
    logged = metrics[-1]["step"] if metrics and checkpoint is not None else 0
    if status is None:
        return None, checkpoint, logged
    if status.state == "diverged":
        return status.data, checkpoint, logged  # training is deterministic: it would diverge again
    done = status.steps_done if status.steps_done is not None else status.step
    if weights is None:
        raise RunError(f"{out_dir}: run {run.id} finished ({done} steps, {STATUS}) but its weights "
                       f"{MODEL} are not there; training again would replace its metrics and "
                       "evaluation; to retrain it, move the folder away first")
    if done >= target or status.data.get("stopped_early"):  # train.stop_error ended it: finished
        return status.data, checkpoint, logged
    if checkpoint is None:  # a capped run to extend, without the state to resume it
        raise RunError(f"{out_dir}: run {run.id} trained {done} steps but {CHECKPOINT} is not there "
                       f"to resume from; to retrain it, move the folder away first")
    return None, checkpoint, logged


def _train_locked(runs, out_dirs, target, planned, device, progress, model_factory) -> list[dict]:
    train = train_settings(runs[0])
    checked = [_check_folder(run, out_dir, target) for run, out_dir in zip(runs, out_dirs)]
    statuses: list[dict | None] = [finished for finished, _, _ in checked]
    todo = [i for i, s in enumerate(statuses) if s is None]
    if not todo:
        return statuses
    sinks.check_sinks(train)  # e.g. TensorBoard asked for but not installed: one line, nothing written
    # Every check passed: from here on the folders of the runs to train are ours to write.
    for i in todo:
        atomic.remove_stale_temporaries(out_dirs[i])  # safe: we hold the run's lock
        (out_dirs[i] / STATUS).unlink(missing_ok=True)  # a run in progress has no status
    checkpoints = {i: checked[i][1] for i in todo}

    # A pack's runs step together: its work is its furthest-behind run's steps to go.
    work = max(target - checked[i][2] for i in todo)
    dev = resolve_device(device if device is not None else train["device"], max(work, 0))
    rng_devices = [dev] if dev.type == "cuda" else []
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    # Bit-identical CPU runs: deterministic kernels (CUDA would also need a cuBLAS
    # workspace setting, so there we only promise exact resume, not bit-identity).
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        # fork_rng: seeding for this run leaves the caller's global RNG untouched.
        with torch.random.fork_rng(devices=rng_devices):
            done = _train([runs[i] for i in todo], [out_dirs[i] for i in todo],
                          [checkpoints[i] for i in todo], dev, target, planned,
                          progress, model_factory, packed=len(runs) > 1)
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
    for i, status in zip(todo, done):
        statuses[i] = status
    return statuses


class _Member:
    """One run of a pack: its task, folder and the bookkeeping of its loop. Its weights and
    optimizer state live in the pack's engine (training/engine.py), at index `k`."""

    def __init__(self, k: int, run: Run, out_dir: Path, checkpoint: dict | None, model_factory):
        self.k, self.run, self.out_dir = k, run, out_dir
        self.seed = int(run.seed)
        self.lr = float(run.train["lr"])
        settings = train_settings(run)
        _check_optimizer(settings)
        # train.stop_error: the run ends at the first metrics line whose error is at or below it.
        self.stop_error = settings.get("stop_error")
        if self.stop_error is not None and not int(settings["log_error"]):
            raise RunError(f"run {run.id}: train.stop_error {self.stop_error:g} needs train.log_error > 0 "
                           f"(the prompts whose error it reads)")
        self.stopped: tuple[int, float] | None = None   # (step, error) where stop_error ended it
        torch.manual_seed(stream_seed("init", self.seed))
        # Built alone (K = 1) from its own init seed: the engine stacks it with the others.
        self.model, self.task, self.layout = build_for_run(run, model_factory)
        self.checkpoint = checkpoint
        self.start, self.window, self.wall_before = 0, [], 0.0
        # The losses of the last steps, for final_loss (a checkpoint carries them across a resume).
        self.recent: deque = deque(maxlen=FINAL_LOSS_STEPS)
        if checkpoint is not None:
            self.start = int(checkpoint["step"])
            self.window = list(checkpoint["window"])
            self.wall_before = float(checkpoint["wall_s"])
            self.recent.extend(checkpoint.get("recent", []))
        kept = _truncate_metrics(out_dir, self.start)
        if self.stop_error is not None and self.start > 0:
            # Killed after the checkpoint of the step its stop_error ended it at, before its
            # status: that step's line says so, and the run finishes there (as it would have).
            last = kept[-1:]
            error = last[0].get("error") if last and last[0]["step"] == self.start else None
            if isinstance(error, (int, float)) and error <= self.stop_error:
                self.stopped = (self.start, float(error))
        self.losses: list[torch.Tensor] = []   # device scalars since the last host sync
        self.norms: list[torch.Tensor] = []
        self.first_unsynced = self.start
        self.diverged: tuple[int, str] | None = None
        self.monitored: float | None = None   # the error of train.log_error prompts, for the next metrics line
        self.status: dict | None = None
        self.metrics = open(out_dir / METRICS, "a", encoding="utf-8")
        self.sinks = sinks.open_sinks(train_settings(run), out_dir, self.start)  # TensorBoard, if asked

    def sample(self, step: int, batch: int, sizes: dict, dev: torch.device):
        generator = torch.Generator(device=dev)
        generator.manual_seed(stream_seed("train", self.seed, step))
        return self.task.sample(generator, batch, dims=sizes["dims"], points=sizes["points"])


def _train(runs, out_dirs, checkpoints, dev, target, planned, progress, model_factory, packed) -> list[dict]:
    from icl.training.engine import PackedEngine

    train = train_settings(runs[0])
    use_graphs = graphs.wanted(dev, runs)
    members = [_Member(k, run, out_dir, checkpoint, model_factory)
               for k, (run, out_dir, checkpoint) in enumerate(zip(runs, out_dirs, checkpoints))]
    for m in members:  # a checkpoint past a new, smaller cap: report what it holds
        m.target = m.start if m.stopped is not None else max(target, m.start)
    batch = int(train["batch"])
    log_every = max(1, int(train["log_every"]))
    checkpoint_every = max(1, int(train["checkpoint_every"]))
    log_error = int(train["log_error"])
    task_config = runs[0].task_config
    dropout = float(model_settings(runs[0])["dropout"])
    label = runs[0].id if len(runs) == 1 else f"{runs[0].id}+{len(runs) - 1}"
    engine = PackedEngine([m.model for m in members], [train_settings(r) for r in runs], dropout,
                          precision_of(runs[0]), dev, label if compiled.wanted(runs) else None)
    for m in members:
        if m.checkpoint is not None:
            engine.load_run(m.k, m.checkpoint)
            # RNG states must stay on the CPU.
            _set_rng_state({k: v.cpu() for k, v in m.checkpoint["rng"].items()}, dev)
        m.model, m.checkpoint = None, None  # the engine holds the weights now
    stepper = graphs.Stepper(dev, use_graphs, label=" ".join(r.id for r in runs))

    first = min(m.start for m in members)
    last = max(m.target for m in members)
    bar = _progress_bar(progress, last, first, label)
    t0 = time.perf_counter()
    for m in members:
        m.pack = [r.id for r in runs] if packed else None
        m.engine = engine
        m.stepper = stepper
    # The step's active mask lives in one tensor for the whole loop: a CUDA graph reads the memory
    # it was captured with, so a mask made anew each step would be freed after the capture and its
    # memory reused (seen on an H200: a lone run's loss masked out, its gradient zero, from the
    # fifth replay on).
    mask = torch.ones(len(members), dtype=torch.bool, device=dev)
    try:
        for step in range(first, last):
            active = [m for m in members if m.start <= step < m.target and m.status is None]
            if not active:
                continue
            sizes = sizes_at(task_config, step)
            # Every run of the pack computes (the stacked model holds them all); only the active
            # ones count and step. A run waiting for its resume step computes on prompts of its
            # own task (an active run's where one shares it: no extra sampling).
            sampled = {m.k: m.sample(step, batch, sizes, dev) for m in active}
            prompts = [_stand_in(m, sampled, active, lambda: m.sample(step, batch, sizes, dev))
                       for m in members]
            mask.copy_(torch.tensor([m in active for m in members]))
            dropout_seeds = [stream_seed("dropout", m.seed, step) for m in members]

            def one_step(prompts_now, seed_dropout, mask=mask, dropout_seeds=dropout_seeds):
                # A task whose loss reads few positions (Task.loss_rows): the read-out only there.
                rows = [m.task.loss_rows(p) for m, p in zip(members, prompts_now)]
                rows = None if any(r is None for r in rows) else rows
                return engine.step([p.inputs for p in prompts_now],
                                   [_loss_fn(m.task, p, rows is not None) for m, p in zip(members, prompts_now)],
                                   mask, dropout_seeds if seed_dropout else None, rows)
            # A new curriculum stage or a run leaving the pack changes the step: a new graph.
            key = (tuple(sizes.values()), tuple(id(m) for m in active))
            step_losses, step_norms = stepper.run(key, one_step, prompts)
            for m in active:
                m.losses.append(step_losses[m.k])
                m.norms.append(step_norms[m.k])

            done = step + 1
            if log_error and done % log_every == 0:
                _monitor(engine, members, active, done, log_error, sizes, dev)
            for m in active:
                _after_step(m, done, sizes, log_every, checkpoint_every, t0, bar, dev)
            if bar is not None and (done % log_every == 0 or done % checkpoint_every == 0):
                bar.update(done - bar.n)
            if done % log_every == 0:
                gpu_slots.update_work(last - done)
            if all(m.status is not None for m in members):
                break
    finally:
        for m in members:
            m.metrics.close()
            for sink in m.sinks:
                sink.close()
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    for m in members:
        if m.status is None:  # a member whose range was empty (resumed at its target)
            _finish(m, dev, elapsed)
    return [m.status for m in members]


def _monitor(engine, members, active, done: int, prompts: int, sizes: dict, dev) -> None:
    """Score each active run on `prompts` fresh prompts (stream "monitor": never a training or
    evaluation prompt) with its weights after step `done`; the next metrics line records it."""
    drawn = {}
    for m in active:
        generator = torch.Generator(device=dev)
        generator.manual_seed(stream_seed("monitor", m.seed, done))
        drawn[m.k] = m.task.sample(generator, prompts, dims=sizes["dims"], points=sizes["points"])
    # the pack computes every run
    chosen = [_stand_in(m, drawn, active, lambda: m.task.sample(torch.Generator(device=dev).manual_seed(0),
                                                                prompts, dims=sizes["dims"], points=sizes["points"]))
              for m in members]
    outputs = engine.outputs([p.inputs for p in chosen])
    for m in active:
        p = drawn[m.k]
        m.monitored = float(torch.nanmean(m.task.error(p.gather(outputs[m.k]), p)).item())


def _stand_in(m: _Member, drawn: dict, active: list, draw: Callable):
    """Member m's prompts: its own where drawn, else those of an active run of the same task
    (a pack may hold several tasks of one prompt shape), else draw() (prompts of its task, for
    a run that only computes: masked out, it neither counts nor steps)."""
    if m.k in drawn:
        return drawn[m.k]
    same = next((a for a in active if a.run.task_config == m.run.task_config), None)
    return drawn[same.k] if same is not None else draw()


def _loss_fn(task, prompts, on_rows: bool = False):
    """The run's loss on its prompts, as a function of the model's output for them (on_rows: the
    output at the task's loss_rows only)."""
    if on_rows:
        return lambda out: task.loss_on_rows(out, prompts)
    return lambda out: task.loss(prompts.gather(out), prompts)


def _after_step(m: _Member, done: int, sizes: dict, log_every: int, checkpoint_every: int, t0: float,
                bar, dev) -> None:
    """Host sync at log and checkpoint steps: divergence check, metrics line, stop at
    train.stop_error, checkpoint, finish."""
    at_log = done % log_every == 0
    at_checkpoint = done % checkpoint_every == 0 or done == m.target
    if not (at_log or at_checkpoint):
        return
    # Look for the first non-finite loss or gradient norm since the last sync.
    host_losses = torch.stack(m.losses).double().cpu().tolist()
    host_norms = torch.stack(m.norms).double().cpu().tolist()
    m.losses, m.norms = [], []
    for offset, (value, norm) in enumerate(zip(host_losses, host_norms)):
        if not (math.isfinite(value) and math.isfinite(norm)):
            bad_step = m.first_unsynced + offset
            what = "loss" if not math.isfinite(value) else "gradient norm"
            m.diverged = (bad_step, f"{what} became {value if what == 'loss' else norm} "
                                    f"at step {bad_step} (lr {m.lr:g}); run stopped as diverged")
            _finish(m, dev, time.perf_counter() - t0)
            return
    m.first_unsynced = done
    m.window.extend(host_losses)
    m.recent.extend(host_losses)
    elapsed = time.perf_counter() - t0
    rate = (done - m.start) / elapsed if elapsed > 0 else 0.0
    if bar is not None:
        bar.set_postfix(loss=f"{host_losses[-1]:.4g}", dims=sizes["dims"], points=sizes["points"])
    if at_log:
        entry = {"step": done, "loss": sum(m.window) / len(m.window), "dims": sizes["dims"],
                 "points": sizes["points"], "lr": m.lr, "grad_norm": host_norms[-1],
                 "steps_per_s": rate, "wall_s": m.wall_before + elapsed}
        if m.monitored is not None:
            entry["error"], m.monitored = m.monitored, None
            if m.stop_error is not None and entry["error"] <= m.stop_error:
                m.stopped, m.target, at_checkpoint = (done, entry["error"]), done, True
        m.metrics.write(json.dumps(entry) + "\n")
        m.metrics.flush()
        for sink in m.sinks:
            sink.write(entry)
        m.window = []
    if at_checkpoint:
        m.metrics.flush()
        for sink in m.sinks:
            sink.flush()
        _save_checkpoint(m.out_dir / CHECKPOINT, m.run, m.engine.run_weights(m.k),
                         m.engine.run_optimizer_state(m.k), done, m.window, m.recent,
                         m.wall_before + elapsed, dev)
    if done == m.target:
        _finish(m, dev, elapsed)


def _finish(m: _Member, dev: torch.device, elapsed: float) -> None:
    """Write the run's final weights (unless diverged) and its status.json, last."""
    run, train, target = m.run, m.run.train, m.target
    planned = int(train["steps"])
    diverged = m.diverged
    steps_run = (diverged[0] if diverged else target) - m.start
    if diverged:
        message = diverged[1]
    elif m.stopped is not None:
        message = (f"stopped at step {target} of {planned}: error {m.stopped[1]:.4g} <= "
                   f"train.stop_error {m.stop_error:g}")
    elif target < planned:
        message = f"trained {target} of {planned} steps (capped by --max-steps)"
    else:
        message = f"trained {planned} steps"
    m.status = {
        "run_id": run.id,
        "state": "diverged" if diverged else "done",
        "step": diverged[0] if diverged else target,
        "message": message,
        "steps_done": diverged[0] if diverged else target,
        "steps_planned": planned,
        "capped": target < planned and m.stopped is None,
        "resumed_from": m.start,
        "final_loss": None if diverged or not m.recent else sum(m.recent) / len(m.recent),
        "wall_s": m.wall_before + elapsed,
        "steps_per_s": steps_run / elapsed if elapsed > 0 and steps_run > 0 else 0.0,
        "device": _device_name(dev),
        "backend": m.engine.model.scan_backend(),  # what this run's own model ran
        "deterministic": dev.type == "cpu",
        "versions": {"torch": torch.__version__, "python": platform.python_version(),
                     "icl": getattr(icl, "__version__", "unknown")},
    }
    if m.stopped is not None:  # train.stop_error ended it: the metrics line of that step
        m.status["stopped_early"] = {"step": m.stopped[0], "error": m.stopped[1], "stop_error": m.stop_error}
    if m.pack is not None:  # trained side by side with other runs (icl.training.pack)
        m.status["pack"] = {"runs": m.pack, "mode": m.engine.mode}
    if m.stepper.summary() is not None:  # CUDA graphs asked for (icl.training.graphs)
        m.status["cuda_graphs"] = m.stepper.summary()
    if m.engine.train_forward.summary() is not None:  # torch.compile asked for (icl.training.compiled)
        m.status["compile"] = m.engine.train_forward.summary()
    if not diverged:
        runfolder.save_torch(m.out_dir / MODEL, {
            "run_id": run.id, "step": target,
            "model": m.engine.run_weights(m.k),
        })
    runfolder.write_status(m.out_dir, m.status)


def _check_optimizer(train: dict) -> None:
    name = str(train["optimizer"]).lower()
    if name not in ("adam", "adamw"):
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


def _save_checkpoint(path, run, weights, optimizer_state, step, window, recent, wall_s, dev) -> None:
    """A run's checkpoint, in the format of a lone run (its weights and torch.optim.Adam state),
    whether it trained alone or in a pack."""
    runfolder.save_torch(path, {
        "run_id": run.id, "step": step, "window": list(window), "recent": list(recent), "wall_s": wall_s,
        "model": weights, "optimizer": optimizer_state, "rng": _rng_state(dev),
    })


# -- metrics and status ----------------------------------------------------------------

def _truncate_metrics(out_dir: Path, step: int) -> list[dict]:
    """Keep only entries up to the checkpoint's step, so a resumed run logs no duplicates; the
    entries kept."""
    kept = [e for e in runfolder.read_metrics(out_dir) if e["step"] <= step]
    runfolder.write_metrics(out_dir, kept)
    return kept


# -- environment -----------------------------------------------------------------------

def _progress_bar(progress: bool, total: int, initial: int, run_id: str):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"train {run_id}", unit="step",
                file=sys.stderr, dynamic_ncols=True)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
