"""Parse .icl text into the typed AST (dsl/ast.py), with positioned errors.

The grammar lives in dsl/icl.lark (LALR, positions kept). Lark's exceptions are
mapped to `SpecError`s that name the file, line and column and say what was
expected in words a spec author knows.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from icl.dsl import limits
from icl.dsl.ast import Assignment, Comment, Import, List, Number, Pos, Section, SpecFile, String, Word
from icl.errors import ErrorList, IclError, SpecError, Where

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
    """Read a spec as UTF-8, from a regular file of at most MAX_FILE_BYTES bytes.

    FIFOs, devices and folders are refused before a byte is read (a FIFO is opened
    non-blocking, so no writer is waited for); a symlink loop, a NUL byte in the path, a
    missing, unreadable, too large or non-UTF-8 file is an error. `where`: the import
    that names the file (None for a file named on the command line: such an error names
    the file without a position).
    """
    name = str(path)

    def fail(message: str, hint: str | None = None) -> IclError:
        return SpecError(where, message, hint) if where is not None else IclError(message, hint)

    if "\0" in name:
        raise fail(f"the path {name!r} holds a NUL byte")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise fail(f"no such file: {name}") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise fail(f"cannot read {name}: a loop of symbolic links") from None
        raise fail(f"cannot read {name}: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise fail(f"{name} is a directory, not a .icl file")
        if not stat.S_ISREG(info.st_mode):
            raise fail(f"{name} is not a regular file (a FIFO, socket or device)", "give a .icl file")
        if info.st_size > limits.MAX_FILE_BYTES:
            raise fail(f"{name} is {info.st_size:,} bytes, above the limit of {limits.MAX_FILE_BYTES:,} bytes")
        chunks, size = [], 0
        while size <= limits.MAX_FILE_BYTES:
            chunk = os.read(fd, limits.MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise fail(f"cannot read {name}: {e.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limits.MAX_FILE_BYTES:  # it grew while being read
        raise fail(f"{name} is more than the limit of {limits.MAX_FILE_BYTES:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError(Where(name, line, col),
                        f"file is not valid UTF-8 (byte 0x{data[e.start]:02x})",
                        "save the spec as UTF-8") from None


def parse_file(path: str | Path) -> SpecFile:
    return parse(read_source(path), str(path))


def normalise_lines(text: str) -> str:
    """The one definition of a line: it ends at LF, CRLF or a lone CR, all read as LF.

    The grammar, error positions and the formatter all see this text. Other characters that
    some editors break lines at (VT, FF, NEL, U+2028, U+2029) are refused by `_scan`. A
    byte-order mark at the start is dropped.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def parse(text: str, path: str = "<string>") -> SpecFile:
    """Parse spec text; raise SpecError (or SpecErrors) on any syntax error or exceeded limit."""
    return _parse(text, path)


@lru_cache(maxsize=32)  # the tree is immutable: a file imported by several specs is parsed once
def _parse(text: str, path: str) -> SpecFile:
    text = normalise_lines(text)
    scan = _scan(text, path)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, path, scan) from None
    builder = _Builder(path)
    items = tuple(builder.item(child) for child in tree.children)
    return SpecFile(path, items, tuple(scan.comments), text)


# Characters refused anywhere in a spec: control characters but TAB and LF (CR is a line end,
# read as LF), and the characters some editors but not others break lines at.
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")

# The lexer's view of the text, enough to find comments, strings and brackets: the same
# STRING and COMMENT as icl.lark, so a '#' inside a string is never a comment.
_LEXEME = re.compile(r"""
    (?P<string>"(?:[^"\\\n]|\\[^\n])*")
  | (?P<quote>")
  | (?P<comment>\#[^\n]*)
  | (?P<open>[{\[])
  | (?P<close>[}\]])
  | (?P<word>[A-Za-z0-9_.+\-]+)
  | (?P<newline>\n)
  | (?P<other>[^"\#{}\[\]A-Za-z0-9_.+\-\n]+)
""", re.X)
_CLOSES = {"{": "}", "[": "]"}
_WHAT = {"{": "section", "[": "list"}


@dataclass
class _Scan:
    comments: list[Comment] = field(default_factory=list)
    open: list[tuple[str, int, int]] = field(default_factory=list)  # brackets still open at the end


def _scan(text: str, path: str) -> _Scan:
    """One linear pass before the grammar: comments, brackets left open, and the input limits.

    Reports every lexical error of the file (up to MAX_ERRORS): forbidden characters, names
    and numbers above their length limits, unterminated strings; nesting deeper than
    MAX_NESTING stops the scan. The grammar then meets only bounded input, so nothing
    downstream recurses deeper than MAX_NESTING.
    """
    lines = text.split("\n")
    errors = ErrorList(limits.MAX_ERRORS)

    def error(line: int, col: int, message: str, hint: str | None = None) -> SpecError:
        return SpecError(Where(path, line, col, lines[line - 1]), message, hint)

    for m in _FORBIDDEN.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        errors.add(error(line, col, f"character U+{ord(m.group()):04X} is not allowed in a spec",
                         "lines end with LF, CRLF or CR; other control and line-separator characters "
                         "are refused"))
        if errors.more:
            break
    errors.raise_any()

    out = _Scan()
    line, line_start = 1, 0
    for m in _LEXEME.finditer(text):
        kind = m.lastgroup
        col = m.start() - line_start + 1
        if kind == "newline":
            line, line_start = line + 1, m.end()
        elif kind == "comment":
            out.comments.append(Comment(m.group().rstrip(" \t"), line, col))
        elif kind == "quote":
            end = len(lines[line - 1]) + 1
            errors.add(error(line, col, f"unterminated string: line {line} ends at column {end} before its "
                                        f"closing '\"'", 'close the string with " on the same line'))
        elif kind == "word":
            word = m.group()
            if word[0] in "0123456789.+-":
                if len(word) > limits.MAX_NUMBER_CHARS:
                    errors.add(error(line, col, f"a number of {len(word):,} characters, above the limit of "
                                                f"{limits.MAX_NUMBER_CHARS}"))
            elif len(word) > limits.MAX_NAME_CHARS:
                errors.add(error(line, col, f"a name of {len(word):,} characters, above the limit of "
                                            f"{limits.MAX_NAME_CHARS}"))
        elif kind == "open":
            out.open.append((m.group(), line, col))
            if len(out.open) > limits.MAX_NESTING:
                errors.add(error(line, col, f"sections and lists nested deeper than the limit of "
                                            f"{limits.MAX_NESTING} levels"))
                break
        elif kind == "close":
            if out.open and _CLOSES[out.open[-1][0]] == m.group():
                out.open.pop()
            else:  # the grammar reports it, where it is
                out.open.clear()
        if errors.more:
            break
    errors.raise_any()
    return out


def _syntax_error(e: UnexpectedInput, text: str, path: str, scan: _Scan) -> SpecError:
    lines = text.split("\n")
    line, col = e.line, e.column
    at_end = isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END")
    if at_end or line < 1:  # the end of the last line (not the empty one after a final newline)
        line = len(lines) - 1 if len(lines) > 1 and lines[-1] == "" else len(lines)
        col = len(lines[line - 1]) + 1
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    where = Where(path, line, col, src)
    if isinstance(e, UnexpectedCharacters):
        char = e.char
        if char == '"':
            return SpecError(where, "unterminated string", 'close the string with " on the same line')
        return SpecError(where, f"unexpected character {char!r}", _expected(e.allowed))
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        tok = e.token
        shown = tok.value if tok.type != "STRING" else tok.value[:40]
        return SpecError(where, f"unexpected {_describe(tok)} {shown!r}", _expected(e.expected))
    if scan.open:
        bracket, open_line, open_col = scan.open[-1]
        return SpecError(where, f"unexpected end of file: the {_WHAT[bracket]} opened with '{bracket}' at "
                                f"{open_line}:{open_col} is not closed",
                         f"close it with '{_CLOSES[bracket]}'")
    return SpecError(where, "unexpected end of file", _expected(getattr(e, "expected", None)))


def _describe(tok: Token) -> str:
    return {"NAME": "name", "NUMBER": "number", "STRING": "string"}.get(tok.type, "symbol")


def _expected(names) -> str | None:
    names = set(names or ())
    if {"NUMBER", "STRING", "LSQB"} <= names:  # the start of any value
        names -= {"NUMBER", "STRING", "LSQB", "NAME"}
        names.add("a value")
    words = sorted({_TERMINAL_WORDS.get(n, n if " " in n else n.lower()) for n in names})
    return "expected " + " or ".join(words) if words else None


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
