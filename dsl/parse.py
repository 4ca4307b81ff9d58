"""Parse .icl text into the typed AST (dsl/ast.py), with positioned errors.

The grammar lives in dsl/icl.lark (LALR, positions kept). Lark's exceptions are
mapped to `SpecError`s that name the file, line and column and say what was
expected in words a spec author knows.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from icl.dsl.ast import Assignment, Comment, Import, List, Number, Pos, Section, SpecFile, String, Word
from icl.errors import SpecError, Where

_SUFFIX = {"k": 1_000, "M": 1_000_000, "G": 1_000_000_000}

# How lark's terminal names read in an error message.
_TERMINAL_WORDS = {
    "NAME": "a name", "STRING": 'a string ("...")', "NUMBER": "a number",
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "EQUAL": "'='",
    "COMMA": "','", "IMPORT": "'import'", "EXTENDS": "'extends'", "$END": "end of file",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "icl.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def read_source(path: str | Path, where: Where | None = None) -> str:
    """Read a spec as UTF-8; a missing, unreadable or non-UTF-8 file is a SpecError."""
    path = Path(path)
    at = where or Where(str(path), 1, 1)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(at, f"no such file: {path}") from None
    except IsADirectoryError:
        raise SpecError(at, f"{path} is a directory, not a .icl file") from None
    except OSError as e:
        raise SpecError(at, f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError(Where(str(path), line, col),
                        f"file is not valid UTF-8 (byte 0x{data[e.start]:02x})",
                        "save the spec as UTF-8") from None


def parse_file(path: str | Path) -> SpecFile:
    return parse(read_source(path), str(path))


def parse(text: str, path: str = "<string>") -> SpecFile:
    """Parse spec text; raise SpecError on any syntax error."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, path) from None
    builder = _Builder(path)
    items = tuple(builder.item(child) for child in tree.children)
    return SpecFile(path, items, _comments(text), text)


def _comments(text: str) -> tuple[Comment, ...]:
    """The comments of a file, kept for the formatter (the grammar ignores them)."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        in_string = escaped = False
        for col, char in enumerate(line, start=1):
            if escaped:
                escaped = False
            elif char == "\\" and in_string:
                escaped = True
            elif char == '"':
                in_string = not in_string
            elif char == "#" and not in_string:
                found.append(Comment(line[col - 1:].rstrip(), number, col))
                break
    return tuple(found)


def _strip_strings(text: str) -> str:
    return re.sub(r'"([^"\\\n]|\\.)*"', '""', text)


def _syntax_error(e: UnexpectedInput, text: str, path: str) -> SpecError:
    lines = text.splitlines()
    line, col = e.line, e.column
    at_end = isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END")
    if at_end or line < 1:
        line = max(1, len(lines))
        col = len(lines[-1]) + 1 if lines else 1
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    where = Where(path, line, col, src)
    if isinstance(e, UnexpectedCharacters):
        char = e.char
        if char == '"':
            return SpecError(where, "unterminated string", 'close the string with " on the same line')
        return SpecError(where, f"unexpected character {char!r}", _expected(e.allowed))
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            return SpecError(where, "unexpected end of file", _missing_close(text) or _expected(e.expected))
        shown = tok.value if tok.type != "STRING" else tok.value[:40]
        return SpecError(where, f"unexpected {_describe(tok)} {shown!r}", _expected(e.expected))
    return SpecError(where, "unexpected end of file", _missing_close(text) or _expected(e.expected))


def _describe(tok: Token) -> str:
    return {"NAME": "name", "NUMBER": "number", "STRING": "string"}.get(tok.type, "symbol")


def _expected(names) -> str | None:
    names = set(names or ())
    if {"NUMBER", "STRING", "LSQB"} <= names:  # the start of any value
        names -= {"NUMBER", "STRING", "LSQB", "NAME"}
        names.add("a value")
    words = sorted({_TERMINAL_WORDS.get(n, n if " " in n else n.lower()) for n in names})
    return "expected " + " or ".join(words) if words else None


def _missing_close(text: str) -> str | None:
    stripped = _strip_strings(re.sub(r"#[^\n]*", "", text))
    if stripped.count("{") > stripped.count("}"):
        return "a section is missing its closing '}'"
    if stripped.count("[") > stripped.count("]"):
        return "a list is missing its closing ']'"
    return None


class _Builder:
    """Turns lark's parse tree into AST nodes."""

    def __init__(self, path: str):
        self.path = path

    def pos(self, node: Tree | Token) -> Pos:
        if isinstance(node, Token):
            return Pos(self.path, node.line, node.column)
        return Pos(self.path, node.meta.line, node.meta.column)

    def item(self, node: Tree):
        if node.data == "import_stmt":
            return Import(_unquote(node.children[0]), self.pos(node))
        return self.section(node)

    def section(self, node: Tree) -> Section:
        kind, name, base, *entries = node.children
        built = tuple(self.section(e) if e.data == "section" else self.assignment(e) for e in entries)
        return Section(
            str(kind), str(name) if name is not None else None, str(base) if base is not None else None,
            built, self.pos(kind), self.pos(name) if name is not None else None,
            self.pos(base) if base is not None else None, node.meta.end_line)

    def assignment(self, node: Tree) -> Assignment:
        key, value = node.children
        return Assignment(str(key), self.value(value), self.pos(key))

    def value(self, node: Tree):
        if node.data == "list":
            items = tuple(self.value(c) for c in node.children if c is not None)
            return List(items, self.pos(node))
        tok = node.children[0]
        if node.data == "number":
            return Number(number_value(tok), str(tok), self.pos(tok))
        if node.data == "string":
            return String(_unquote(tok), self.pos(tok))
        return Word(str(tok), self.pos(tok))


def number_value(text: str) -> int | float:
    """`500_000` -> 500000, `500k` -> 500000, `10M` -> 10000000, `1e-4` -> 0.0001."""
    body = text.replace("_", "")
    scale = 1
    if body and body[-1] in _SUFFIX:
        scale = _SUFFIX[body[-1]]
        body = body[:-1]
    if re.fullmatch(r"[+-]?\d+", body):
        return int(body) * scale
    value = float(body) * scale
    # 2.5k is an integer count; 1e-4 stays a float.
    if scale > 1 and value.is_integer():
        return int(value)
    return value


def _unquote(tok: Token) -> str:
    inner = str(tok)[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), inner)
