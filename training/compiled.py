"""The training forward under torch.compile: `train { compile = auto | on | off }`.

Inductor fuses the elementwise work between the model's products, norms and scans (the
copies, casts and activations that were a sixth of a Transformer pack's step in the profile):
on the whole-step CUDA graph it gained 0-14 % per architecture for a lone run on an H100
(benchmarks/results/train_step_compiled.md) and 11-24 % for packs of 16 on an H200
(train_step_packed.before-2026-12-07-h200.md's compiled columns). `auto` is on for CUDA
runs of AUTO_MIN_STEPS steps or more, off for shorter runs (compiling costs seconds for each
prompt shape) and on the CPU (where the reference scan's Python loop over the sequence
compiles into a new graph at every prompt length, for no gain). Never with dropout: inductor draws its masks from
its own generator, not from the run's dropout stream.

Only the training step's forward is compiled (its backward follows through AOTAutograd);
the metrics' and evaluation's forwards run the plain model. The first step of each new
prompt shape compiles (the curriculum's second shape makes its lengths dynamic, so later
stages mostly reuse the graph); those steps are among the CUDA graph's eager warm-up steps,
never inside a capture. A compilation that fails prints one line and the run goes on with
the plain model, as a failed graph capture does; errors of the run itself (out of memory,
a bad value) pass through unchanged.
"""
from __future__ import annotations

import sys

import torch

from icl.compiler.runs import model_settings, train_settings
from icl.run import Run


# auto compiles runs of at least this many planned steps: compiling costs seconds per prompt
# shape, which a short run (the quick MQAR stops after ~2,000 steps) does not win back.
AUTO_MIN_STEPS = 20_000


def wanted(dev: torch.device, runs: list[Run]) -> bool:
    """Whether a pack of `runs` on `dev` trains through torch.compile: every run's setting is
    on (auto: on CUDA for runs of AUTO_MIN_STEPS steps or more) and none has dropout."""
    def on(run: Run) -> bool:
        settings = train_settings(run)
        if settings["compile"] == "auto":
            return dev.type == "cuda" and int(settings["steps"]) >= AUTO_MIN_STEPS
        return settings["compile"] == "on"
    if not all(on(r) for r in runs):
        return False
    if any(float(model_settings(r)["dropout"]) > 0 for r in runs):
        print(f"torch.compile off for run {runs[0].id}: dropout > 0", file=sys.stderr)
        return False
    return True


def _compile_error(error: BaseException) -> bool:
    """An error of dynamo or inductor (tracing, lowering, a generated kernel's build), not of
    the computation they run."""
    from torch._dynamo.exc import TorchDynamoException
    from torch._inductor.exc import InductorError

    return isinstance(error, (TorchDynamoException, InductorError))


class CompiledForward:
    """Calls `model` through torch.compile while that works; after a compilation error,
    the plain model (one line on stderr says why)."""

    def __init__(self, model: torch.nn.Module, enabled: bool, label: str):
        self.model, self.label = model, label
        self.requested = enabled
        self.compiled = torch.compile(model) if enabled else None
        self.failed: str | None = None

    def __call__(self, *args, **kwargs):
        if self.compiled is None:
            return self.model(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - only compilation errors are caught below
            if not _compile_error(error):
                raise
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            self.failed = f"{type(error).__name__}: {first}"
            self.compiled = None
            print(f"torch.compile failed for run {self.label} ({self.failed}); training on without it",
                  file=sys.stderr)
            return self.model(*args, **kwargs)

    def summary(self) -> dict | None:
        """For status.json: None when not asked for, else whether it stayed on."""
        if not self.requested:
            return None
        return {"on": self.compiled is not None, **({"failed": self.failed} if self.failed else {})}
