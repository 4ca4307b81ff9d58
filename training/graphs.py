"""Whole-step CUDA graphs: one training step (forward, backward, clipping, optimizer) as one graph.

Small models at batch 64 spend most of a step launching kernels; replaying a captured
graph launches them all at once. Prompts are sampled eagerly (each run's own seeded
generator, as without graphs) and copied into the graph's static input buffers; the
graph holds the rest of the step (StackedAdam needs no host sync). Whatever else the step
reads must stay at the address it had at capture (training/train.py keeps the mask of active
runs in one tensor for that reason). Shapes change with the
curriculum (points, hence prompt length) and when a packed run stops, so the graph is
captured again for each new (sizes, runs) key, after a few eager warm-up steps.

On by default when the device is CUDA (ICL_CUDA_GRAPHS=0 turns them off; checked against
eager training and lone runs on an H200 by tests/test_packing.py's GPU tests, timed by
benchmarks/train_step.py), never with dropout (its masks would need the generator seeded
inside the graph). A capture that fails prints one line and the run goes on eagerly.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Callable

import torch

from icl.compiler.runs import model_settings
from icl.run import Run

ENV = "ICL_CUDA_GRAPHS"
WARMUP_STEPS = 3  # eager steps before a capture: lazy state (optimizer moments, cuBLAS) exists by then


def wanted(dev: torch.device, runs: list[Run]) -> bool:
    if dev.type != "cuda" or os.environ.get(ENV, "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    if any(float(model_settings(r)["dropout"]) > 0 for r in runs):
        print(f"cuda graphs off for run {runs[0].id}: dropout > 0", file=sys.stderr)
        return False
    return True


def make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """After loading a state saved without graphs: the step counts move to the device."""
    for group in optimizer.param_groups:
        group["capturable"] = True
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(device=p.device, dtype=torch.float32)


class Stepper:
    """Runs one training step eagerly, or through the graph captured for its key."""

    def __init__(self, dev: torch.device, enabled: bool, label: str):
        self.dev, self.enabled, self.label = dev, enabled, label
        self.requested = enabled
        self.key, self.graph, self.warm = None, None, 0
        self.captures, self.replays = 0, 0  # for status.json: were graphs used, how often captured

    def summary(self) -> dict | None:
        if not self.requested:
            return None
        return {"on": self.enabled, "captures": self.captures, "replays": self.replays}

    def run(self, key, step_fn: Callable, prompts: list):
        """step_fn(prompts, seed_dropout) -> (losses, norms), device tensors."""
        if not self.enabled:
            return step_fn(prompts, True)
        key = (key, [_signature(p) for p in prompts])  # a graph replays only the shapes it captured
        if key != self.key:
            self.key, self.graph, self.warm = key, None, 0
        if self.graph is None and self.warm < WARMUP_STEPS:
            self.warm += 1
            return warm_up(step_fn, prompts, self.dev)
        if self.graph is None:
            try:
                self.graph = CapturedStep(step_fn, prompts)
                self.captures += 1
            except Exception as error:  # noqa: BLE001 - any capture failure: train eagerly
                first_line = (str(error).strip().splitlines() or [""])[0][:200]
                print(f"cuda graphs off for {self.label}: capture failed ({type(error).__name__}: "
                      f"{first_line}); training eagerly", file=sys.stderr)
                self.enabled, self.graph = False, None
                return step_fn(prompts, True)
        self.replays += 1
        return self.graph.replay(prompts)


def warm_up(step_fn: Callable, prompts: list, dev: torch.device):
    """An eager step on a side stream, as the capture will run (PyTorch's recipe for graphs)."""
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        out = step_fn(prompts, False)
    torch.cuda.current_stream(dev).wait_stream(side)
    return out


class CapturedStep:
    """A captured step: static copies of the prompts in, static losses and norms out."""

    def __init__(self, step_fn: Callable, prompts: list):
        self.static = [_map_tensors(p, lambda t: t.clone()) for p in prompts]
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = step_fn(self.static, False)

    def replay(self, prompts: list):
        for static, fresh in zip(self.static, prompts):
            _copy_tensors(static, fresh)
        self.graph.replay()
        return tuple(t.clone() for t in self.out)  # the graph overwrites its outputs next step


def _signature(prompts) -> list:
    """Shapes and dtypes of every tensor of a batch of prompts."""
    tensors = [getattr(prompts, f.name) for f in dataclasses.fields(prompts)] + list(prompts.info.values())
    return [(tuple(t.shape), t.dtype) for t in tensors if isinstance(t, torch.Tensor)]


def _map_tensors(prompts, fn):
    changes = {f.name: fn(getattr(prompts, f.name)) for f in dataclasses.fields(prompts)
               if isinstance(getattr(prompts, f.name), torch.Tensor)}
    info = {k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in prompts.info.items()}
    return dataclasses.replace(prompts, **changes, info=info)


def _copy_tensors(static, fresh) -> None:
    for f in dataclasses.fields(static):
        target = getattr(static, f.name)
        if isinstance(target, torch.Tensor):
            target.copy_(getattr(fresh, f.name))
    for k, target in static.info.items():
        if isinstance(target, torch.Tensor):
            target.copy_(fresh.info[k])
