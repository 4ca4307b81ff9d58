"""The typed syntax tree of a .icl file.

Positions are kept on every node for error messages but excluded from equality,
so `parse(fmt(x)) == parse(x)` compares meaning, not layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    col: int


def _pos() -> Pos:
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Number:
    value: int | float
    text: str = field(compare=False)  # as written (500k, 1e-4), kept by the formatter
    pos: Pos = _pos()


@dataclass(frozen=True)
class String:
    value: str
    pos: Pos = _pos()


@dataclass(frozen=True)
class Word:
    """A bare name: true/false, an enum value (learned), or a reference (mamba)."""

    name: str
    pos: Pos = _pos()


@dataclass(frozen=True)
class List:
    items: tuple["Value", ...]
    pos: Pos = _pos()


Value = Union[Number, String, Word, List]


@dataclass(frozen=True)
class Assignment:
    key: str
    value: Value
    pos: Pos = _pos()


@dataclass(frozen=True)
class Section:
    """`KIND [NAME] [extends BASE] { entries }`."""

    kind: str
    name: str | None
    base: str | None
    entries: tuple[Union[Assignment, "Section"], ...]
    pos: Pos = _pos()
    name_pos: Pos = _pos()
    base_pos: Pos = _pos()
    end_line: int = field(default=0, compare=False, repr=False)

    def assignments(self) -> list[Assignment]:
        return [e for e in self.entries if isinstance(e, Assignment)]

    def sections(self) -> list["Section"]:
        return [e for e in self.entries if isinstance(e, Section)]


@dataclass(frozen=True)
class Import:
    path: str
    pos: Pos = _pos()


@dataclass(frozen=True)
class Comment:
    text: str
    line: int
    col: int


@dataclass(frozen=True)
class SpecFile:
    path: str = field(compare=False)
    items: tuple[Union[Import, Section], ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

    def line(self, n: int) -> str:
        """Line `n` of the source (lines end at LF only: dsl.parse.normalise_lines made them so)."""
        lines = self.source.split("\n")
        return lines[n - 1] if 0 < n <= len(lines) else ""
