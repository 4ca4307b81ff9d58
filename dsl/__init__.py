"""The .icl language: grammar (icl.lark), parser, typed AST, formatter, layer strings.

Knows syntax, not semantics: which sections and keys exist is checked by icl.compiler.
"""
from icl.dsl.ast import Assignment, Import, List, Number, Pos, Section, SpecFile, String, Word
from icl.dsl.format import format_spec, format_value
from icl.dsl.parse import parse, parse_file, read_source

__all__ = ["Assignment", "Import", "List", "Number", "Pos", "Section", "SpecFile", "String", "Word",
           "format_spec", "format_value", "parse", "parse_file", "read_source"]
