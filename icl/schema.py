"""Declarations of spec parameters: name, type, default and allowed range.

Blocks and tasks declare their parameters with `Param` next to their definition
(`blocks/catalog.py`, `tasks/catalog.py`); the checker in `compiler/resolve.py`
reads them from there. This module imports nothing heavy so that `icl check`
stays fast (no torch).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Value types a parameter may have. A scalar type given a list in a spec is a
# sweep (one run per value); a list type takes the list as its value.
SCALAR_TYPES = ("int", "float", "bool", "str", "choice")
LIST_TYPES = ("list[int]", "list[float]", "list[str]", "list[choice]", "list[ref]")


# Param.legacy's "none": every value of the parameter is part of the run id.
NO_LEGACY = object()


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any = None
    doc: str = ""
    min: float | None = None  # inclusive bounds for int/float
    max: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    # Whether a list value sweeps this parameter (one run per value).
    sweepable: bool = True
    # For a task or train parameter added after runs were trained: the value that reproduces how the
    # task behaved before it existed. A run at this value leaves the parameter out of its id
    # (compiler/runs.py), so adding an option never orphans runs already trained.
    legacy: Any = NO_LEGACY

    def __post_init__(self) -> None:
        if self.type not in SCALAR_TYPES + LIST_TYPES:
            raise ValueError(f"param {self.name}: unknown type {self.type!r}")
        if self.type in ("choice", "list[choice]") and not self.choices:
            raise ValueError(f"param {self.name}: a choice needs choices")

    @property
    def is_list(self) -> bool:
        return self.type in LIST_TYPES

    def describe(self) -> str:
        """One-line description of the allowed values, for error hints (compiler/values.py)."""
        if self.choices:
            kind = " | ".join(self.choices)
        else:
            kind = self.type
        rng = ""
        if self.min is not None or self.max is not None:
            lo = "-inf" if self.min is None else _num(self.min)
            hi = "inf" if self.max is None else _num(self.max)
            rng = f" in [{lo}, {hi}]"
        return f"{self.name}: {kind}{rng}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


@dataclass(frozen=True)
class Section:
    """The keys (and nested sections) one kind of spec section accepts."""

    kind: str
    params: tuple[Param, ...]
    subsections: dict[str, "Section"] = field(default_factory=dict)
    doc: str = ""

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]
