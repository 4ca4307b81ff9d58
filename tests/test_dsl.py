"""The .icl language: parsing, numbers, layer strings, the formatter and golden files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from icl.dsl import Assignment, List, Number, Section, String, Word, format_spec, parse, parse_file
from icl.dsl.layers import LayerSyntaxError, expand, flat
from icl.dsl.parse import number_value

ROOT = Path(__file__).resolve().parents[1]

SPECS = sorted((ROOT / "specs").rglob("*.icl"))
GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("text,value", [
    ("1", 1), ("-3", -3), ("1e-4", 1e-4), ("0.5", 0.5), (".5", 0.5), ("500_000", 500000),
    ("500k", 500000), ("10M", 10_000_000), ("2G", 2_000_000_000), ("2.5k", 2500), ("1.5e3", 1500.0),
])
def test_number_literals(text, value):
    assert number_value(text) == value
    assert type(number_value(text)) is type(value)


def test_parse_builds_typed_ast_with_positions():
    spec = parse('import "m.icl"\nmodel m extends base {\n  layers = "M*2"\n  lr = [1e-4, 4e-5]\n'
                 '  flag = true\n  train { x = 1 }\n}\n', "f.icl")
    imp, model = spec.items
    assert imp.path == "m.icl" and (imp.pos.line, imp.pos.col) == (1, 1)
    assert isinstance(model, Section) and (model.kind, model.name, model.base) == ("model", "m", "base")
    layers, lr, flag, train = model.entries
    assert layers == Assignment("layers", String("M*2"))
    assert (layers.pos.line, layers.pos.col, layers.value.pos.col) == (3, 3, 12)
    assert lr.value == List((Number(1e-4, ""), Number(4e-5, "")))
    assert flag.value == Word("true")
    assert isinstance(train, Section) and train.kind == "train" and train.name is None


def test_strings_keep_hash_signs_and_escapes():
    spec = parse('m x { s = "a # b \\" c" }  # comment')
    assert spec.items[0].entries[0].value.value == 'a # b " c'
    assert [c.text for c in spec.comments] == ["# comment"]


@pytest.mark.parametrize("layers,expected", [
    ("M", "M"), ("M*3", "M M M"), ("M (A M)*2", "M A M A M"), ("(A F)*2", "A F A F"),
    ("((A)*2 M)*2", "A A M A A M"), ("SM M2 S", "SM M2 S"), ("  A  ", "A"), ("(A M) * 2", "A M A M"),
])
def test_layer_strings_expand(layers, expected):
    assert flat(expand(layers)) == expected


def test_mambaformer_layer_string_has_exactly_the_written_blocks():
    tokens = [t.token for t in expand("M (A M)*12")]
    assert len(tokens) == 25 and tokens.count("M") == 13 and tokens.count("A") == 12


@pytest.mark.parametrize("layers,offset,message", [
    ("", 0, "empty layer string"),
    ("M (A M", 2, "unbalanced '(' in layer string"),
    ("M A)", 3, "unbalanced ')' in layer string"),
    ("()", 1, "empty group '()' in layer string"),
    ("*3", 0, "'*' must follow a token or a group"),
    ("M*", 1, "'*' must be followed by a repeat count"),
    ("M*0", 1, "repeat count must be at least 1, got 0"),
    ("M + A", 2, "unexpected '+' in layer string"),
])
def test_layer_string_errors_have_offsets(layers, offset, message):
    with pytest.raises(LayerSyntaxError) as e:
        expand(layers)
    assert (e.value.offset, e.value.message) == (offset, message)


def test_format_is_canonical_and_idempotent():
    text = ('model m {layers="M*2"   width=32 # w\n# about lr\nlr=[1e-4,4e-5,]}\n'
            'experiment e{train{lr=1}\neval{prompts=8}}')
    once = format_spec(parse(text))
    assert once == ('model m {\n  layers = "M*2"\n  width = 32  # w\n  # about lr\n  lr = [1e-4, 4e-5]\n}\n\n'
                    'experiment e {\n  train { lr = 1 }\n  eval { prompts = 8 }\n}\n')
    assert format_spec(parse(once)) == once
    assert parse(once) == parse(text)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_golden_spec_roundtrip(path):
    """spec -> canonical text (committed) -> the same AST."""
    canonical = format_spec(parse_file(path))
    golden = GOLDEN / (str(path.relative_to(ROOT / "specs")).replace(os.sep, "__") + ".fmt")
    if os.environ.get("ICL_UPDATE_GOLDEN"):
        golden.write_text(canonical, encoding="utf-8")
    assert golden.exists(), f"missing golden file {golden}; run with ICL_UPDATE_GOLDEN=1"
    assert canonical == golden.read_text(encoding="utf-8")
    assert parse(canonical) == parse_file(path)
    # Every comment of the spec survives formatting.
    assert [c.text for c in parse(canonical).comments] == [c.text for c in parse_file(path).comments]
