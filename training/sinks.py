"""Optional sinks for training's metrics lines, beside metrics.jsonl (which is always written).

TensorBoard, off by default: with `train.tensorboard = true` in the spec, or $ICL_TENSORBOARD=1
(0 turns it off whatever the spec says), each run also writes every number of its metrics lines
(loss, lr, grad_norm, steps_per_s, wall_s, dims, points and, with train.log_error, error) as
scalars `train/<name>` at the line's step to TensorBoard event files in `<run>/tensorboard/`:

    tensorboard --logdir runs/          # every run's curves, one per run folder

The setting says how to run, not what to compute: it is not part of the run id. Runs of a pack
each write into their own folder. A resumed run asks TensorBoard to hide the events after its
checkpoint's step (`purge_step`), as metrics.jsonl drops its lines after it.

Needs the `tensorboard` package (`pip install 'icl-compiler[tensorboard]'`); asked for without
it, training stops before it starts with one line saying so (TensorBoardMissing).
"""
from __future__ import annotations

import os
from pathlib import Path

from icl.training.errors import RunError

TENSORBOARD_DIR = "tensorboard"
ENV = "ICL_TENSORBOARD"
INSTALL = "pip install 'icl-compiler[tensorboard]'"


class TensorBoardMissing(RunError):
    """TensorBoard logging was asked for and the tensorboard package is not installed."""


def tensorboard_wanted(train: dict) -> bool:
    """Whether runs with these train settings write TensorBoard events: $ICL_TENSORBOARD (1 or 0)
    when set, else the spec's `train.tensorboard`."""
    env = os.environ.get(ENV, "").strip()
    if env:
        if env not in ("0", "1"):
            raise RunError(f"${ENV} must be 1 (write TensorBoard events) or 0 (don't), got {env!r}")
        return env == "1"
    return bool(train.get("tensorboard", False))


def require_tensorboard() -> None:
    """Raise TensorBoardMissing, one line naming the install, unless torch's SummaryWriter works."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (imports tensorboard)
    except ImportError:
        raise TensorBoardMissing(f"train.tensorboard = true (or ${ENV}=1) needs the tensorboard "
                                 f"package, which is not installed: {INSTALL}") from None


class TensorBoardSink:
    """One run's TensorBoard event writer, in `<out_dir>/tensorboard/`."""

    def __init__(self, out_dir: Path, start_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(out_dir) / TENSORBOARD_DIR
        # Events after the step training resumes from were logged by a run that was killed and
        # will be logged again: TensorBoard hides them (a fresh start hides every earlier event).
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=start_step + 1)

    def write(self, entry: dict) -> None:
        """A metrics line: each of its numbers but `step` as scalar `train/<name>` at `step`."""
        step = int(entry["step"])
        for name, value in entry.items():
            if name != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"train/{name}", value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def open_sinks(train: dict, out_dir: Path, start_step: int) -> list:
    """The sinks a run's metrics lines go to besides metrics.jsonl (none by default)."""
    return [TensorBoardSink(out_dir, start_step)] if tensorboard_wanted(train) else []


def check_sinks(train: dict) -> None:
    """Before training starts: a clear error when a wanted sink cannot be written."""
    if tensorboard_wanted(train):
        require_tensorboard()
