"""Input limits of the spec language, checked before any work starts (docs/input-limits.md).

Each limit exceeded is a one-line positioned error naming the limit. They keep hostile or
broken input (a file of a few thousand nested brackets, a 5,000-digit number, a sweep of
ten million runs) from turning into a traceback, a hang or a machine out of memory; the
shipped studies use a small fraction of each.
"""
from __future__ import annotations

import os

from icl.errors import IclError

MAX_FILE_BYTES = 1_000_000     # one spec file, in bytes
MAX_FILES = 200                # files one root spec may load through its imports
MAX_IMPORT_DEPTH = 16          # a imports b imports c ...: the longest chain
MAX_NESTING = 16               # sections and lists inside one another
MAX_EXTENDS = 32               # sections in one `extends` chain
MAX_NAME_CHARS = 100           # a name (model, key, section kind, word value)
MAX_NUMBER_CHARS = 50          # a number as written (digits, sign, exponent, suffix, underscores)
MAX_ERRORS = 20                # errors reported for one command; more are counted, not shown
MAX_RUNS = 10_000              # runs of the root specs of one command, counted before expansion
MAX_RUNS_ENV = "ICL_MAX_RUNS"  # overrides MAX_RUNS (so does `--max-runs N`)
ALLOW_OUTSIDE_ENV = "ICL_ALLOW_OUTSIDE"  # 1: imports may leave the project folder (so does --allow-outside)


def max_runs(override: int | None = None) -> int:
    """The run cap: `override` (a --max-runs flag), else $ICL_MAX_RUNS, else MAX_RUNS."""
    if override is not None:
        return override
    text = os.environ.get(MAX_RUNS_ENV, "").strip()
    if not text:
        return MAX_RUNS
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise IclError(f"${MAX_RUNS_ENV} must be a whole number of runs, got {text[:40]!r}")
    return int(text)


def allow_outside(override: bool | None = None) -> bool:
    if override:
        return True
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip() in ("1", "true", "yes")
