"""The one error class training and evaluation raise for user mistakes.

It subclasses the CLI's `IclError`, so `icl train` / `icl eval` print one line
(`error: ...`) and exit with status 2 instead of showing a traceback.
"""
from __future__ import annotations

from icl.errors import IclError


class RunError(IclError):
    """A run cannot be trained or evaluated as asked (missing model, bad device, ...)."""
