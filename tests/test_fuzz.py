"""Property-based fuzzing of the spec commands (issue #29).

Inputs: specs generated from the grammar (hypothesis' `from_lark` over dsl/icl.lark), specs
generated from the language's real sections, keys and values, and byte-level mutations of
the shipped specs. Each runs through `icl check`, `fmt`, `fmt --write`, `runs --json` and `diff`
(in-process, through `icl.cli.main`). Properties:

- exit 0, or exit 2 with `error:` lines (each `FILE:LINE:COL: error: ...` or `error: ...`, followed
  only by indented excerpt and hint lines); never a traceback;
- every command finishes within BOUND_S seconds;
- fmt round-trips: parse(fmt(x)) == parse(x), fmt(fmt(x)) == fmt(x), comments kept verbatim;
- no file changes but the one `fmt --write` rewrites.

The default run (CI) tries CI_EXAMPLES cases per test (over 2,000 in all, well under 60 s on two
cores); `pytest -m fuzz` runs the `fuzz`-marked tests, FUZZ_EXAMPLES cases per test (over 100,000
in all). The `fuzz` marker is skipped unless `-m` names it (tests/conftest.py).
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from icl.blocks.catalog import BLOCK_OPTIONS, BLOCKS, MODEL_OPTIONS
from icl import cli
from icl.cli import main
from icl.compiler.resolve import EVAL_PARAMS, TRAIN_PARAMS
from icl.dsl import format_spec, parse
from icl.dsl.parse import _parser
from icl.errors import SpecError
from icl.tasks.catalog import TASKS

ROOT = Path(__file__).resolve().parents[1]

# Cases per test: (mutated shipped specs, generated specs, specs from the grammar).
CI_EXAMPLES = (1_300, 400, 300)           # 2,000 in the default run
FUZZ_EXAMPLES = (60_000, 25_000, 15_000)  # 100,000 under -m fuzz
BOUND_S = 5.0            # one command on one input

SHIPPED = sorted((ROOT / "specs").rglob("*.icl"))
SEEDS = [p.read_bytes() for p in SHIPPED]
SMOKE = ROOT / "specs" / "smoke"

ERROR_LINE = re.compile(r"^(\S.*:\d+:\d+: )?error: ")


# -- running the commands and checking the properties -----------------------------------------

def _run(*args) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue(), time.monotonic() - start


def _outcome(args, code: int, out: str, err: str, took: float) -> bool:
    """Check the common properties of one command; True if it succeeded."""
    assert took < BOUND_S, f"icl {' '.join(map(str, args))} took {took:.1f} s"
    assert "Traceback" not in err
    if code == 0:
        assert "error" not in err, err
        return True
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert lines and ERROR_LINE.match(lines[0]), err
    for line in lines[1:]:
        assert ERROR_LINE.match(line) or line.startswith("  "), err
    assert out == "" or args[0] == "check", out
    return False


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {p.name: (info.st_size, info.st_mtime_ns, info.st_mode, info.st_ino)
            for p in folder.iterdir() for info in [p.lstat()]}


def exercise(folder: Path, data: bytes, also: tuple[str, ...] = ("runs", "diff")) -> None:
    """All properties for one input, written as `fuzz.icl` beside the smoke study's files: fmt,
    check and fmt --write always, `runs --json` and `diff` as `also` says (a valid study takes
    most of the time, in resolving it: the CI-sized suite runs one of the two per case)."""
    spec = folder / "fuzz.icl"
    spec.write_bytes(data)
    before = _snapshot(folder)

    def command(*args) -> tuple[bool, str]:
        code, out, err, took = _run(*args)
        ok = _outcome(args, code, out, err, took)
        assert _snapshot(folder) == before, f"icl {args[0]} changed a file"
        return ok, out

    # fmt: succeeds exactly when the file parses, and round-trips
    try:
        text = data.decode("utf-8")
        tree = parse(text, str(spec))
    except (UnicodeDecodeError, SpecError):
        tree = None
    ok, formatted = command("fmt", spec)
    assert ok == (tree is not None)
    if ok:
        again = parse(formatted, str(spec))
        assert again == tree
        assert format_spec(again) == formatted
        assert [c.text for c in again.comments] == [c.text for c in tree.comments]

    ok, table = command("check", spec)
    if ok and "runs" in also:
        ok_runs, runs_json = command("runs", "--json", spec)
        runs = json.loads(runs_json)
        assert ok_runs and table.splitlines()[-1] == f"{len(runs)} runs in 1 file(s): ok"
    if ok and "diff" in also:
        ok_diff, diff = command("diff", spec, spec)
        unique = len({line.split()[0] for line in table.splitlines()[1:-1]})
        assert ok_diff and re.fullmatch(r"0 added, 0 removed, 0 changed, \d+ unchanged", diff.splitlines()[-1])
        assert int(diff.split()[-2]) >= unique
    if not ok and "runs" in also:
        assert not command("runs", "--json", spec)[0]

    # fmt --write: only the spec changes, to exactly what fmt printed
    code, _, err, took = _run("fmt", "--write", spec)
    _outcome(("fmt", "--write", spec), code, "", err, took)
    after = _snapshot(folder)
    assert {k: v for k, v in after.items() if k != "fuzz.icl"} == {k: v for k, v in before.items() if k != "fuzz.icl"}
    assert spec.read_bytes() == (formatted.encode("utf-8") if code == 0 else data)


@pytest.fixture(scope="module", autouse=True)
def one_argument_parser():
    """The command line's parser built once, not once per command: it is most of a command's time
    on a small input, and the fuzz suite runs hundreds of thousands of commands."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "_parser", functools.lru_cache(maxsize=1)(cli._parser))
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The smoke study's files (what the fuzzed specs import) in a folder of their own."""
    path = tmp_path_factory.mktemp("fuzz")
    for name in ("models.icl", "tasks.icl", "study.icl"):
        shutil.copy(SMOKE / name, path / name)
    return path


# -- inputs ------------------------------------------------------------------------------------

# Byte-level mutations of a shipped spec: delete, insert, overwrite, duplicate or cut a span.
PIECES = st.sampled_from([b"{", b"}", b"[", b"]", b"=", b",", b'"', b"#", b"\n", b"\r", b"\r\n", b"\x0c",
                          b"\x00", b"\xff", b"\xe2\x80\xa8", b"\t", b" ", b"*", b"(", b")", b"9" * 60,
                          b"extends", b"import", b"model", b"experiment", b"train", b"[" * 20, b"{" * 20,
                          b"1e999", b"-1", b"0", b"M", b"A M", b'"../x.icl"', "\u00e9".encode()]) | st.binary(max_size=8)
EDITS = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 4), PIECES, st.floats(0, 1)), min_size=1, max_size=5)


def mutate(seed: bytes, edits) -> bytes:
    data = seed
    for where, op, piece, other in edits:
        i = int(where * len(data))
        j = int(other * len(data))
        if op == 0:
            data = data[:i] + data[i + 1 + len(piece):]
        elif op == 1:
            data = data[:i] + piece + data[i:]
        elif op == 2:
            data = data[:i] + piece + data[i + len(piece):]
        elif op == 3:
            lo, hi = sorted((i, j))
            data = data[:hi] + data[lo:hi] + data[hi:]
        else:
            lo, hi = sorted((i, j))
            data = data[:lo] + data[hi:]
    return data


# Specs built from the language's own sections, keys and values: they get past the syntax and
# exercise checking, extends, sweeps and expansion.
_KEYS = sorted({p.name for p in (*MODEL_OPTIONS, *BLOCK_OPTIONS.values(), *TRAIN_PARAMS, *EVAL_PARAMS)}
               | {p.name for t in TASKS.values() for p in t.params} | {"models", "tasks", "kind", "start", "end"})
_NAMES = ["m", "n", "base", "e", "t", "fast", *list(TASKS)[:4], "true", "false", "learned", "none", "all", "adam"]
_LAYERS = st.lists(st.sampled_from([*BLOCKS, "(A M)*2", "M*3", "(", ")", "*2", "X", "m"]), max_size=4).map(" ".join)
_NUMBERS = st.sampled_from(["0", "1", "2", "4", "8", "16", "64", "1e-3", "0.5", "-1", "500k", "1M", "2.5k", "1e999",
                            "3.5", "100", "1_000"])
_SCALARS = st.one_of(_NUMBERS, _LAYERS.map(json.dumps), st.sampled_from(_NAMES))
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=4).map(lambda v: "[" + ", ".join(v) + "]"))
_SPACE = st.sampled_from([" ", "\n", "  ", "\r\n", "\n\n", " # note\n", "\t"])


def _section(kinds, depth: int):
    entry = st.tuples(st.sampled_from(_KEYS), _SPACE, _VALUES).map(lambda t: f"{t[0]} ={t[1]}{t[2]}")
    if depth:
        entry = entry | _section(["train", "eval", "curriculum", "dims", "points", "model"], depth - 1)
    return st.tuples(st.sampled_from(kinds), st.sampled_from(["", *_NAMES[:6]]),
                     st.sampled_from(["", "", *_NAMES[:6]]), st.lists(st.tuples(entry, _SPACE), max_size=4)).map(
        lambda t: f"{t[0]} {t[1]}{' extends ' + t[2] if t[2] else ''} {{"
                  + "".join(e + s for e, s in t[3]) + "}")


SPECS = st.lists(st.tuples(_section(["model", "task", "train", "eval", "experiment", "model", "experiment"], 1),
                           _SPACE), max_size=3).map(lambda items: "".join(s + w for s, w in items))
VALID = ('model m { layers = "M*2" width = 8 }\n'
         'experiment e { models = [m] tasks = [sparse_parity] train { steps = 4 } }\n')
GRAMMAR = from_lark(_parser(), start="start")


def _settings(examples: int, derandomize: bool):
    return settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.filter_too_much, HealthCheck.data_too_large])


def _cases(examples: tuple[int, int, int]):
    """The three fuzz tests at one size (the CI's derandomized: the same cases each run)."""
    fixed = examples == CI_EXAMPLES

    also = st.sampled_from([("runs",), ("diff",)]) if fixed else st.just(("runs", "diff"))

    @_settings(examples[0], fixed)
    @given(st.sampled_from(SEEDS), EDITS, also)
    def mutated(folder, seed, edits, commands):
        exercise(folder, mutate(seed, edits), commands)

    @_settings(examples[1], fixed)
    @given(SPECS, st.booleans(), also)
    def generated(folder, text, with_valid, commands):
        exercise(folder, ((VALID if with_valid else "") + text).encode("utf-8"), commands)

    @_settings(examples[2], fixed)
    @given(GRAMMAR, also)
    def from_grammar(folder, text, commands):
        exercise(folder, text.encode("utf-8", "surrogatepass"), commands)

    return mutated, generated, from_grammar


test_mutated_shipped_specs, test_generated_specs, test_specs_from_the_grammar = _cases(CI_EXAMPLES)
_full = _cases(FUZZ_EXAMPLES)
test_fuzz_mutated_shipped_specs = pytest.mark.fuzz(_full[0])
test_fuzz_generated_specs = pytest.mark.fuzz(_full[1])
test_fuzz_specs_from_the_grammar = pytest.mark.fuzz(_full[2])


def test_the_fuzz_inputs_reach_every_outcome(folder):
    """The generators are not all syntax errors: shipped specs pass, the valid prefix makes runs."""
    for seed in SEEDS:
        exercise(folder, seed)
    exercise(folder, VALID.encode())
    assert _run("check", folder / "fuzz.icl")[1].splitlines()[-1] == "1 runs in 1 file(s): ok"
