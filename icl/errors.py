"""User-facing errors: one positioned message, a source excerpt with a caret, an optional hint.

Every mistake a user can make in a spec or on the command line becomes an
`IclError`; the CLI prints `str(error)` to stderr and exits with status 2, so
users never see a Python traceback for their own mistakes.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass


class IclError(Exception):
    """An error caused by user input (a spec, a path, an option)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


@dataclass(frozen=True)
class Where:
    """A place in a spec file (1-based line and column)."""

    file: str
    line: int
    col: int
    source_line: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SpecError(IclError):
    """An error at a position of a spec file: `FILE:LINE:COL: error: MESSAGE`."""

    def __init__(self, where: Where, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.where = where

    def __str__(self) -> str:
        text = f"{self.where}: error: {self.message}"
        src = self.where.source_line.rstrip("\n")
        if src:
            # Tabs keep their width in the caret line so the caret lines up.
            pad = "".join("\t" if c == "\t" else " " for c in src[: self.where.col - 1])
            text += f"\n  {src}\n  {pad}^"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


def did_you_mean(word: str, candidates) -> str | None:
    """A hint naming the closest candidate, or the list of candidates when none is close."""
    candidates = sorted(set(candidates))
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if candidates and len(candidates) <= 30:
        return "expected one of: " + ", ".join(candidates)
    return None
