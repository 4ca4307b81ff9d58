"""The canonical text of a spec: `icl fmt`.

Two-space indentation, one entry per line, `key = value`, one blank line between
top-level sections, numbers as written. Comments stay where they were, their text
unchanged (but trailing blanks): a comment on its own line is emitted before the
entry that follows it, a comment at the end of a line stays at the end of that
entry's line; a top-level comment followed by a blank line keeps one blank line.
"""
from __future__ import annotations

import json

from icl.dsl.ast import Assignment, Import, List, Number, Section, SpecFile, String, Value, Word


_END = 10**9  # a line after every line of a file


def format_spec(spec: SpecFile) -> str:
    return _Formatter(spec).run()


def format_value(value: Value) -> str:
    if isinstance(value, Number):
        return value.text
    if isinstance(value, String):
        return json.dumps(value.value, ensure_ascii=False)
    if isinstance(value, Word):
        return value.name
    if isinstance(value, List):
        return "[" + ", ".join(format_value(v) for v in value.items) + "]"
    raise TypeError(value)


class _Formatter:
    def __init__(self, spec: SpecFile):
        self.spec = spec
        self.pending = list(spec.comments)  # in source order
        self.out: list[str] = []

    def run(self) -> str:
        previous = None
        for item in self.spec.items:
            line = item.pos.line if item.pos else 0
            if previous is not None and not (isinstance(previous, Import) and isinstance(item, Import)):
                self.out.append("")
            self.leading(line, 0)
            if isinstance(item, Import):
                self.out.append(f"import {json.dumps(item.path, ensure_ascii=False)}" + self.trailing(line))
            else:
                self.section(item, 0)
            previous = item
        self.leading(_END, 0)
        return "\n".join(self.out).rstrip("\n") + "\n"

    def leading(self, line: int, depth: int) -> None:
        """Emit the comments that come before `line`. At the top level, a blank line after a
        comment (a file's header, a note about the sections below) is kept, as one."""
        while self.pending and self.pending[0].line < line:
            comment = self.pending.pop(0)
            self.out.append("  " * depth + comment.text)
            following = self.pending[0].line if self.pending and self.pending[0].line < line else line
            if depth == 0 and comment.line + 1 < following < _END:
                self.out.append("")

    def trailing(self, line: int) -> str:
        """A comment at the end of `line`, if any."""
        if self.pending and self.pending[0].line == line:
            return "  " + self.pending.pop(0).text
        return ""

    def inline(self, section: Section, head: str) -> str | None:
        """`dims { start = 5  end = 20 }`: small nested sections written on one line stay on one."""
        if not all(isinstance(e, Assignment) for e in section.entries) or len(section.entries) > 4:
            return None
        # A comment cannot sit inside a one-line section ('#' runs to the end of the line).
        if section.end_line != (section.pos.line if section.pos else 0):
            return None
        body = "  ".join(f"{e.key} = {format_value(e.value)}" for e in section.entries)
        text = f"{head} {{ {body} }}"
        return text if len(text) <= 100 else None

    def section(self, section: Section, depth: int) -> None:
        pad = "  " * depth
        head = section.kind
        if section.name:
            head += f" {section.name}"
        if section.base:
            head += f" extends {section.base}"
        line = section.pos.line if section.pos else 0
        if not section.entries:
            self.out.append(f"{pad}{head} {{}}" + self.trailing(line))
            return
        lines = [e.pos.line if e.pos else 0 for e in section.entries]
        inline = self.inline(section, pad + head) if depth > 0 else None
        if inline is not None:
            self.out.append(inline + self.trailing(line))
            return
        # A comment at the end of a line belongs to the last entry that starts on that line.
        self.out.append(f"{pad}{head} {{" + ("" if line in lines else self.trailing(line)))
        for i, entry in enumerate(section.entries):
            self.leading(lines[i], depth + 1)
            last_on_line = i + 1 == len(lines) or lines[i + 1] != lines[i]
            if isinstance(entry, Assignment):
                tail = self.trailing(lines[i]) if last_on_line else ""
                self.out.append(f"{pad}  {entry.key} = {format_value(entry.value)}" + tail)
            else:
                self.section(entry, depth + 1)
        self.leading(section.end_line, depth + 1)
        self.out.append(f"{pad}}}" + self.trailing(section.end_line))
