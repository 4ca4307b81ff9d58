"""Random text and random mutations of valid specs: the checker returns runs or raises SpecError, nothing else."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icl.compiler.resolve import load
from icl.compiler.runs import expand
from icl.dsl import parse
from icl.errors import SpecError

from conftest import ROOT

SEEDS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "specs" / "smoke").glob("*.icl"))] + [
    'model m { layers = "M (A M)*2" width = 16 heads = 2 }\n'
    'experiment e { models = [m] tasks = [linear_regression] train { lr = [1e-3, 1e-4] } }\n'
]
ALPHABET = st.sampled_from(list('{}[]()=,*"#\n -_.0123456789eEkMG') + ["model", "task", "experiment", "train",
                           "layers", "width", "extends", "import", "A", "M", "true", "False"])


def _check(tmp_path, text: str) -> None:
    path = tmp_path / "fuzz.icl"
    path.write_text(text, encoding="utf-8")
    try:
        expand(load(path))
    except SpecError as e:
        assert str(e).startswith(f"{path}:")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_random_text(tmp_path, text):
    try:
        parse(text)
    except SpecError:
        pass
    _check(tmp_path, text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), ALPHABET),
                                        min_size=1, max_size=4))
def test_mutated_specs(tmp_path, seed, edits):
    text = seed
    for where, what, piece in edits:
        i = int(where * len(text))
        if what == 0:
            text = text[:i] + text[i + 1:]          # delete a character
        elif what == 1:
            text = text[:i] + piece + text[i:]      # insert a piece
        elif what == 2:
            text = text[:i] + piece + text[i + len(piece):]  # overwrite
        else:
            j = int(where * len(text) / 2)
            text = text[:j] + text[i:]              # cut a span
    _check(tmp_path, text)
