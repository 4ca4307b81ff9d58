"""Checking one spec value against its `Param` declaration.

`"False"` is a string and never a boolean; an integer parameter never silently
truncates 0.5; a list given to a scalar parameter is a sweep (one run per value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from icl.schema import Param
from icl.dsl.ast import List, Number, String, Value, Word
from icl.dsl.format import format_value
from icl.errors import did_you_mean


class BadValue(Exception):
    """A value that does not fit its parameter; the caller adds the position."""

    def __init__(self, message: str, hint: str | None = None, node: Value | None = None):
        super().__init__(message)
        self.message, self.hint, self.node = message, hint, node


@dataclass(frozen=True)
class Sweep:
    """A scalar parameter given a list: one run per value, in the written order."""

    values: tuple[Any, ...]


def check_value(param: Param, node: Value, choices: tuple[str, ...] | None = None) -> Any:
    """The Python value of `node` for `param`, or a `Sweep` of them."""
    if param.is_list:
        items = node.items if isinstance(node, List) else (node,)
        item_type = param.type[len("list["):-1]
        if not items:
            raise BadValue(f"'{param.name}' is an empty list", "give at least one value", node)
        return _distinct(param, items, tuple(_scalar(param, item_type, item, choices) for item in items))
    if isinstance(node, List):
        if not param.sweepable:
            raise BadValue(f"'{param.name}' takes one value, not a list", node=node)
        if not node.items:
            raise BadValue(f"empty sweep for '{param.name}'", "give at least one value", node)
        values = _distinct(param, node.items, tuple(_scalar(param, param.type, item, choices)
                                                     for item in node.items))
        return values[0] if len(values) == 1 else Sweep(values)
    return _scalar(param, param.type, node, choices)


def first_repeat(keys) -> tuple[int, int] | None:
    """(i, j): the first value at i equal to an earlier one at j; None when all differ. Linear time."""
    seen: dict = {}
    for i, key in enumerate(keys):
        j = seen.setdefault(key, i)
        if j != i:
            return i, j
    return None


def repeat_message(name: str, written: str, first_written: str) -> str:
    """The one wording of a repeated value, for every key: values compare after normalisation
    (numbers by value, layer strings by their layers), so a repeat may be written differently."""
    if written == first_written:
        return f"'{name}' lists {written} twice"
    return f"'{name}' lists {written}, the same as {first_written}"


def _distinct(param: Param, nodes, values: tuple) -> tuple:
    """A value listed twice (1e-4 and 0.0001 too) would silently collapse two runs into one."""
    repeat = first_repeat(values)
    if repeat is not None:
        i, j = repeat
        raise BadValue(repeat_message(param.name, format_value(nodes[i]), format_value(nodes[j])),
                       "remove the repeat", nodes[i])
    return values


def _scalar(param: Param, type_: str, node: Value, choices: tuple[str, ...] | None) -> Any:
    written = format_value(node)
    if isinstance(node, List):
        raise BadValue(f"'{param.name}' takes a single value here, not a nested list", node=node)
    if type_ in ("int", "float"):
        if not isinstance(node, Number):
            hint = "write the number without quotes" if isinstance(node, String) else None
            raise BadValue(f"'{param.name}' must be a number, got {_kind(node)} {written}", hint, node)
        value = node.value
        if isinstance(value, float) and not math.isfinite(value):
            raise BadValue(f"'{param.name}' = {written} is not a finite number", f"allowed: {param.describe()}",
                           node)
        if type_ == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise BadValue(f"'{param.name}' must be an integer, got {written}", node=node)
                value = int(value)
        else:
            value = float(value)
        _check_range(param, value, written, node)
        return value
    if type_ == "bool":
        if isinstance(node, Word) and node.name in ("true", "false"):
            return node.name == "true"
        hint = f"write {str(node.value).lower()} without quotes" if isinstance(node, String) and \
            node.value.lower() in ("true", "false") else "write true or false"
        raise BadValue(f"'{param.name}' must be true or false, got {_kind(node)} {written}", hint, node)
    if type_ == "str":
        if not isinstance(node, String):
            raise BadValue(f"'{param.name}' must be a string in double quotes, got {_kind(node)} {written}",
                              f'write {param.name} = "{written}"', node)
        return node.value
    if type_ in ("choice", "ref"):
        options = choices if choices is not None else param.choices
        if not isinstance(node, (Word, String)):
            raise BadValue(f"'{param.name}' must be a name, got {_kind(node)} {written}",
                              did_you_mean("", options) if options else None, node)
        name = node.name if isinstance(node, Word) else node.value
        # Choices given by the caller restrict even when empty (nothing of the kind declared,
        # often a lost import); a parameter's own empty choices mean any name.
        if (choices is not None or options) and name not in options:
            what = "unknown" if type_ == "ref" else "invalid value"
            hint = did_you_mean(name, options) if options else "none is declared here; is an import missing?"
            raise BadValue(f"{what} '{name}' for '{param.name}'", hint, node)
        return name
    raise AssertionError(type_)


def _check_range(param: Param, value: float, written: str, node: Value) -> None:
    too_low = param.min is not None and value < param.min
    too_high = param.max is not None and value > param.max
    if too_low or too_high:
        raise BadValue(f"'{param.name}' = {written} is out of range", f"allowed: {param.describe()}", node)


def _kind(node: Value) -> str:
    return {Number: "the number", String: "the string", Word: "the name", List: "the list"}[type(node)]


def map_values(value: Any, fn: Callable[[Any], Any]) -> Any:
    """Apply `fn` to a value or to every value of a sweep."""
    if isinstance(value, Sweep):
        return Sweep(tuple(fn(v) for v in value.values))
    return fn(value)
