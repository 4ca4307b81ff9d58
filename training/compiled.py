"""The training forward under torch.compile: `train { compile = on }` (off by default).

Inductor fuses the elementwise work between the model's products, norms and scans (copies
and casts were 17 % of a Transformer pack's bf16 step in the H100 profile of 2026-12-07):
on the whole-step CUDA graph it gained 0-14 % per architecture for a lone run on an H100
(benchmarks/results/train_step_compiled.md) and 11-24 % for packs of 16 on an H200
(train_step_packed.before-2026-12-07-h200.md's compiled columns), both measured before the
Triton conv, norm and sequential-scan kernels took much of that elementwise work and by the
benchmark's own compile of the model, not through this module. Off by default until it is
timed at today's kernels and its GPU tests (tests/test_compiled.py) have run; a run that
compiles pays seconds of compilation for each new prompt shape, which a short run does not
win back. On the CPU it compiles with inductor's C++ backend, slowly, and the reference
scan's Python loop over the sequence makes a new graph at every prompt length. Never with
dropout: inductor draws its masks from its own generator, not from the run's dropout stream.

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


def wanted(runs: list[Run]) -> bool:
    """Whether a pack of `runs` trains through torch.compile: every run's setting is on and
    none has dropout."""
    if not all(train_settings(r)["compile"] == "on" for r in runs):
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
