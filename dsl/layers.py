"""Layer strings: `"M (A M)*12"` -> the flat token list `M A M A M ... A M`.

Syntax only: a token is a letter followed by letters or digits (`A`, `M`, `SM`,
`M2`); parentheses group; `*N` repeats the token or group before it. Whether a
token names a real block is checked by the compiler against blocks/catalog.py.
Errors carry the column inside the string; the caller adds the string's position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_LEXEME = re.compile(r"\s*(?:(?P<token>[A-Za-z][A-Za-z0-9]*)|(?P<open>\()|(?P<close>\))|(?P<star>\*)\s*(?P<count>[0-9]+)?|(?P<other>\S))")


class LayerSyntaxError(ValueError):
    def __init__(self, offset: int, message: str, hint: str | None = None):
        super().__init__(message)
        self.offset = offset  # 0-based offset inside the string
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class LayerToken:
    token: str
    offset: int  # 0-based offset inside the layer string, for positioned errors


MAX_LAYERS = 10_000


def expand(text: str) -> list[LayerToken]:
    """Expand a layer string into its tokens, in order."""
    stack: list[list[LayerToken]] = [[]]
    opens: list[int] = []
    last: list[LayerToken] | None = None  # what a following *N repeats
    pos = 0
    text_end = len(text.rstrip())
    while pos < text_end:
        m = _LEXEME.match(text, pos)
        assert m is not None
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        pos = m.end()
        if m.group("token"):
            last = [LayerToken(m.group("token"), start)]
            stack[-1].extend(last)
        elif m.group("open"):
            stack.append([])
            opens.append(start)
            last = None
        elif m.group("close"):
            if not opens:
                raise LayerSyntaxError(start, "unbalanced ')' in layer string", "remove it or add '(' before")
            opens.pop()
            group = stack.pop()
            if not group:
                raise LayerSyntaxError(start, "empty group '()' in layer string")
            stack[-1].extend(group)
            last = group
        elif m.group("star"):
            if m.group("count") is None:
                raise LayerSyntaxError(start, "'*' must be followed by a repeat count", 'write e.g. "(A M)*12"')
            if last is None:
                raise LayerSyntaxError(start, "'*' must follow a token or a group", 'write e.g. "M*24" or "(A M)*12"')
            if len(m.group("count").lstrip("0")) > len(str(MAX_LAYERS)):  # before int(): no 5,000-digit counts
                raise LayerSyntaxError(start, f"repeat count {m.group('count')[:12]}... is above the limit of "
                                              f"{MAX_LAYERS} layers")
            count = int(m.group("count").lstrip("0") or "0")
            if count < 1:
                raise LayerSyntaxError(start, f"repeat count must be at least 1, got {count}")
            if len(stack[-1]) + len(last) * (count - 1) > MAX_LAYERS:
                raise LayerSyntaxError(start, f"layer string expands to more than {MAX_LAYERS} layers")
            stack[-1].extend(last * (count - 1))
            last = None  # "M*2*3" is ambiguous: ask for a group
        else:
            raise LayerSyntaxError(start, f"unexpected {m.group('other')!r} in layer string",
                                   "tokens are names like A or M2, grouped with ( ) and repeated with *N")
    if opens:
        raise LayerSyntaxError(opens[-1], "unbalanced '(' in layer string", "close the group with ')'")
    if not stack[0]:
        raise LayerSyntaxError(0, "empty layer string", 'give at least one layer, e.g. "M*24"')
    return stack[0]


def flat(tokens: list[LayerToken]) -> str:
    return " ".join(t.token for t in tokens)
