"""User-facing errors: one positioned message, a source excerpt with a caret, an optional hint.

Every mistake a user can make in a spec or on the command line becomes an
`IclError`; the CLI prints `str(error)` to stderr and exits with status 2, so
users never see a Python traceback for their own mistakes.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass


_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


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
        # The excerpt shows a control or line-separator character as U+FFFD: one column, no line break.
        src = _UNPRINTABLE.sub("\ufffd", self.where.source_line.rstrip("\n"))
        if src:
            # Tabs keep their width in the caret line so the caret lines up.
            pad = "".join("\t" if c == "\t" else " " for c in src[: self.where.col - 1])
            text += f"\n  {src}\n  {pad}^"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SpecErrors(SpecError):
    """Several independent errors of one command, in the order found (at most MAX_ERRORS shown).

    It reads as its first error (`where`, `message`, `hint`) and prints them all, one
    `FILE:LINE:COL: error: ...` line (with its excerpt and hint) each.
    """

    def __init__(self, errors: list[SpecError], more: int = 0):
        first = errors[0]
        super().__init__(first.where, first.message, first.hint)
        self.errors = list(errors)
        self.more = more  # errors found beyond those kept

    def __str__(self) -> str:
        text = "\n".join(SpecError.__str__(e) for e in self.errors)
        if self.more:
            text += f"\nerror: {self.more} more error(s) not shown"
        return text


class ErrorList:
    """Independent errors collected while checking, each kept once; the first `limit` are shown."""

    def __init__(self, limit: int):
        self.limit = limit
        self.kept: list[SpecError] = []
        self.keys: set[tuple] = set()
        self.more = 0

    def add(self, error: SpecError) -> None:
        if isinstance(error, SpecErrors):
            self.more += error.more
        for one in error.errors if isinstance(error, SpecErrors) else [error]:
            key = (one.where.file, one.where.line, one.where.col, one.message)
            if key in self.keys:
                continue
            self.keys.add(key)
            if len(self.kept) < self.limit:
                self.kept.append(one)
            else:
                self.more += 1

    def __bool__(self) -> bool:
        return bool(self.kept)

    def raise_any(self) -> None:
        """Raise what was collected, if anything: one error as itself, several as SpecErrors."""
        if len(self.kept) == 1 and not self.more:
            raise self.kept[0]
        if self.kept:
            raise SpecErrors(self.kept, self.more)


def did_you_mean(word: str, candidates) -> str | None:
    """A hint naming the closest candidate, or the list of candidates when none is close."""
    candidates = sorted(set(candidates))
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if candidates and len(candidates) <= 30:
        return "expected one of: " + ", ".join(candidates)
    return None
