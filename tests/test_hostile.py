"""Hostile and malformed input (issues #29, #22, #31): each case is a one-line positioned error
(exit 2) or a correct result, never a traceback, a hang or a harmed file."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icl.cli import main
from icl.compiler.resolve import load, project_root
from icl.compiler.runs import runs_of
from icl.compiler.values import check_value
from icl.dsl import format_spec, parse, parse_file, read_source
from icl.dsl import limits
from icl.dsl.ast import List, Number
from icl.errors import IclError, SpecError, SpecErrors
from icl.training.errors import RunError
from icl.training.runfile import load_runs

ROOT = Path(__file__).resolve().parents[1]

M = 'model m { layers = "M*2" width = 16 }\n'
E = 'experiment e { models = [m] tasks = [linear_regression] }\n'


def icl(*args, cwd=None, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "icl.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def run_main(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def error_of(path, **kwargs) -> SpecError:
    with pytest.raises(SpecError) as e:
        runs_of([path], **kwargs)
    return e.value


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0]


# -- limits: checked before work starts, one positioned line naming the limit ------------------

def test_thousands_of_nested_sections_are_a_nesting_error(write_spec):
    path = write_spec("deep.icl", "model m { " * 3000 + "}" * 3000 + "\n")
    err = error_of(path)
    assert first_line(err) == (f"{path}:1:{10 * limits.MAX_NESTING + 9}: error: sections and lists nested deeper "
                               f"than the limit of {limits.MAX_NESTING} levels")


def test_thousands_of_nested_lists_are_a_nesting_error(write_spec):
    path = write_spec("deep.icl", "model m { width = " + "[" * 5000 + "1" + "]" * 5000 + " }\n")
    assert "nested deeper than the limit of 16 levels" in first_line(error_of(path))


def test_a_long_extends_chain_is_refused_quickly(write_spec):
    text = 'model m0 { layers = "M" width = 8 }\n' + "".join(
        f"model m{i} extends m{i - 1} {{}}\n" for i in range(1, 1500))
    path = write_spec("chain.icl", text)
    start = time.monotonic()
    err = error_of(path)
    assert time.monotonic() - start < 5
    assert f"extends a chain of more than {limits.MAX_EXTENDS} sections, the limit" in err.message
    assert (err.where.line, err.where.col) == (limits.MAX_EXTENDS + 1, 19)  # the first model past the limit


def test_a_chain_within_the_limit_still_merges(write_spec):
    text = 'model m0 { layers = "M" width = 8 }\n' + "".join(
        f"model m{i} extends m{i - 1} {{}}\n" for i in range(1, 20)) + 'experiment e { models = [m19] tasks = [sparse_parity] }\n'
    (run,) = runs_of([write_spec("chain.icl", text)])
    assert run.model_config["width"] == 8


def test_a_five_thousand_digit_number_is_a_length_error(write_spec):
    path = write_spec("n.icl", "model m { width = " + "9" * 5000 + " }\n")
    assert first_line(error_of(path)) == (f"{path}:1:19: error: a number of 5,000 characters, above the limit "
                                          f"of {limits.MAX_NUMBER_CHARS}")


def test_a_five_thousand_digit_repeat_count_in_a_layer_string(write_spec):
    path = write_spec("n.icl", 'model m { layers = "M*' + "9" * 5000 + '" width = 8 }\n')
    assert "repeat count 999999999999... is above the limit of 10000 layers" in first_line(error_of(path))


def test_a_huge_exponent_is_out_of_range_not_infinite(write_spec):
    path = write_spec("n.icl", M + 'experiment e { models = [m] tasks = [sparse_parity] train { lr = 1e999 } }\n')
    assert error_of(path).message == "'lr' = 1e999 is not a finite number"


def test_a_long_name_is_a_length_error(write_spec):
    path = write_spec("n.icl", "model " + "m" * 1000 + " { width = 8 }\n")
    assert first_line(error_of(path)) == (f"{path}:1:7: error: a name of 1,000 characters, above the limit of "
                                          f"{limits.MAX_NAME_CHARS}")


def test_a_file_above_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "big.icl"
    path.write_text("#" * (limits.MAX_FILE_BYTES + 1))
    with pytest.raises(IclError) as e:
        runs_of([path])
    assert str(e.value) == (f"error: {path} is {limits.MAX_FILE_BYTES + 1:,} bytes, above the limit of "
                            f"{limits.MAX_FILE_BYTES:,} bytes")


def test_deep_import_chains_are_refused(tmp_path):
    for i in range(40):
        (tmp_path / f"f{i}.icl").write_text(f'import "f{i + 1}.icl"\n')
    (tmp_path / "f40.icl").write_text(M)
    err = error_of(tmp_path / "f0.icl")
    assert err.message == f"imports nested deeper than the limit of {limits.MAX_IMPORT_DEPTH} files"


# -- reading: regular files only, bounded ------------------------------------------------------

def test_check_dev_zero_is_refused_at_once():
    start = time.monotonic()
    out = icl("check", "/dev/zero", timeout=20)
    assert time.monotonic() - start < 10
    assert out.returncode == 2 and out.stderr == "error: /dev/zero is not a regular file (a FIFO, socket or " \
                                                 "device)\n  hint: give a .icl file\n"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/stdin"])
def test_importing_a_device_through_a_link_is_refused(tmp_path, device):
    (tmp_path / "dev.icl").symlink_to(device)
    (tmp_path / "s.icl").write_text('import "dev.icl"\n' + M)
    # Outside the project: refused before it is opened.
    assert "is outside the project folder" in error_of(tmp_path / "s.icl").message
    # Allowed outside: still not a regular file (and never read).
    err = error_of(tmp_path / "s.icl", allow_outside=True)
    assert (err.where.line, err.where.col) == (1, 1)
    assert err.message.endswith(("is not a regular file (a FIFO, socket or device)", "no such file or directory"))


def test_importing_a_fifo_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "pipe.icl")
    (tmp_path / "s.icl").write_text('import "pipe.icl"\n' + M)
    start = time.monotonic()
    err = error_of(tmp_path / "s.icl")
    assert time.monotonic() - start < 5
    assert err.message == f"{tmp_path / 'pipe.icl'} is not a regular file (a FIFO, socket or device)"


def test_fmt_on_a_fifo_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "pipe.icl")
    out = icl("fmt", tmp_path / "pipe.icl", timeout=20)
    assert out.returncode == 2 and "is not a regular file" in out.stderr and "Traceback" not in out.stderr


def test_an_import_through_a_symlink_loop_is_an_error(tmp_path):
    (tmp_path / "a.icl").symlink_to(tmp_path / "b.icl")
    (tmp_path / "b.icl").symlink_to(tmp_path / "a.icl")
    (tmp_path / "s.icl").write_text('import "a.icl"\n' + M)
    err = error_of(tmp_path / "s.icl")
    assert first_line(err) == f"{tmp_path / 's.icl'}:1:1: error: cannot read {tmp_path / 'a.icl'}: a loop of " \
                              f"symbolic links"


def test_a_nul_byte_in_an_import_path_is_an_error(write_spec):
    path = write_spec("s.icl", 'import "a\0b.icl"\n' + M)
    assert first_line(error_of(path)) == f"{path}:1:10: error: character U+0000 is not allowed in a spec"
    with pytest.raises(IclError, match="holds a NUL byte"):
        read_source("a\0b.icl")


def test_a_directory_is_refused(tmp_path):
    (tmp_path / "d.icl").mkdir()
    (tmp_path / "s.icl").write_text('import "d.icl"\n' + M)
    assert error_of(tmp_path / "s.icl").message == f"{tmp_path / 'd.icl'} is a directory, not a .icl file"


# -- imports confined to the project (#22.7) ----------------------------------------------------

def test_imports_stay_inside_the_project_and_echo_nothing(tmp_path):
    secret = tmp_path / "secret.icl"
    secret.write_text("root:x:0:0:TOPSECRET:/root:/bin/bash\n")
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / ".git").mkdir()
    (tmp_path / "proj" / "specs").mkdir()
    spec = tmp_path / "proj" / "specs" / "s.icl"
    spec.write_text('import "../../secret.icl"\n' + M)
    assert project_root(spec) == tmp_path / "proj"
    out = icl("check", spec)
    assert out.returncode == 2 and "TOPSECRET" not in out.stderr + out.stdout
    assert out.stderr.startswith(f"{spec}:1:1: error: import {tmp_path / 'proj' / 'specs' / '../../secret.icl'} "
                                 f"is outside the project folder {tmp_path / 'proj'}\n")
    # --allow-outside lets it be read (and then it is not a spec)
    out = icl("check", "--allow-outside", spec)
    assert out.returncode == 2 and "unexpected" in out.stderr


def test_imports_name_icl_files_only(write_spec):
    path = write_spec("s.icl", 'import "../../../../etc/passwd"\n' + M)
    err = error_of(path, allow_outside=True)
    assert err.message == "an import names a .icl file, not '../../../../etc/passwd'"


def test_a_missing_root_file_is_named_without_a_position(tmp_path):
    out = icl("check", tmp_path / "nope.icl")
    assert out.returncode == 2 and out.stderr == f"error: no such file: {tmp_path / 'nope.icl'}\n"


# -- sweep size: counted before expansion (#22.8) ----------------------------------------------

def _sweep(n: int) -> str:
    return ", ".join(str(i) for i in range(n))


def test_a_sweep_of_ten_million_runs_is_refused_at_once(write_spec):
    text = (M + "experiment e {\n  models = [m]\n  tasks = [linear_regression]\n"
            f"  train {{ steps = [{', '.join(str(i) for i in range(1, 1001))}] batch = [{', '.join(str(i) for i in range(1, 101))}] "
            f"seeds = [{_sweep(100)}] }}\n}}\n")
    path = write_spec("s.icl", text)
    start = time.monotonic()
    err = error_of(path)
    assert time.monotonic() - start < 5
    assert first_line(err) == (f"{path}:2:1: error: experiment 'e' makes 10,000,000 runs (10,000,000 in all), "
                               f"above the limit of {limits.MAX_RUNS:,} runs")


def test_the_run_cap_is_overridable(write_spec, capsys, monkeypatch):
    path = write_spec("s.icl", M + f"experiment e {{ models = [m] tasks = [sparse_parity] train {{ seeds = [{_sweep(30)}] }} }}\n")
    assert len(runs_of([path])) == 30
    assert "above the limit of 20 runs" in error_of(path, max_runs=20).message
    code, out, err = run_main(capsys, "check", "--max-runs", "20", path)
    assert code == 2 and "above the limit of 20 runs" in err
    monkeypatch.setenv(limits.MAX_RUNS_ENV, "10")
    code, out, err = run_main(capsys, "runs", path)
    assert code == 2 and "above the limit of 10 runs" in err and "ICL_MAX_RUNS" in err
    monkeypatch.setenv(limits.MAX_RUNS_ENV, "lots")
    code, out, err = run_main(capsys, "runs", path)
    assert code == 2 and err == "error: $ICL_MAX_RUNS must be a whole number of runs, got 'lots'\n"


def test_large_expansions_say_so(write_spec, capsys):
    path = write_spec("s.icl", M + f"experiment e {{ models = [m] tasks = [sparse_parity] train {{ seeds = [{_sweep(2500)}] }} }}\n")
    code, out, err = run_main(capsys, "check", path)
    assert code == 0 and err == "expanding 2,500 runs\n"
    assert out.splitlines()[-1] == "2500 runs in 1 file(s): ok"


def test_duplicate_detection_is_linear():
    nodes = tuple(Number(i, str(i)) for i in range(200_000))
    from icl.compiler.resolve import TRAIN_PARAMS

    seeds = next(p for p in TRAIN_PARAMS if p.name == "seeds")
    start = time.monotonic()
    assert len(check_value(seeds, List(nodes))) == 200_000
    with pytest.raises(Exception, match="'seeds' lists 0 twice"):
        check_value(seeds, List(nodes + (Number(0, "0"),)))
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("key,values,message", [
    ("layers", '["M*4", "M M M M"]', "'layers' lists \"M M M M\", the same as \"M*4\""),
    ("layers", '["(M)*2", "M*2"]', "'layers' lists \"M*2\", the same as \"(M)*2\""),
    ("width", "[16, 16.0]", "'width' lists 16.0, the same as 16"),
])
def test_sweep_values_are_compared_after_normalisation(write_spec, key, values, message):
    text = f'model m {{ layers = "M" width = 16 {key} = {values} }}\n'.replace('layers = "M" ', "" if key == "layers" else 'layers = "M" ')
    text = text.replace("width = 16 width", "width")
    path = write_spec("s.icl", text + E)
    assert error_of(path).message == message


# -- one definition of a line ------------------------------------------------------------------

def test_cr_only_line_endings_are_lines(write_spec):
    text = M + E + "# a comment\n"
    lf = runs_of([write_spec("lf.icl", text)])
    cr = runs_of([write_spec("cr.icl", text.replace("\n", "\r"))])
    crlf = runs_of([write_spec("crlf.icl", text.replace("\n", "\r\n"))])
    assert len(lf) == 1 and [r.id for r in cr] == [r.id for r in crlf] == [r.id for r in lf]
    err = error_of(write_spec("bad.icl", "model m {\r  width = 16\r  d_stat = 1\r}\r"))
    assert (err.where.line, err.where.col) == (3, 3)


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\u2028", "\u2029", "\x85", "\x1b"])
@pytest.mark.parametrize("where", ["string", "comment", "space"])
def test_line_breaking_and_control_characters_are_refused(write_spec, char, where):
    text = {"string": f'model m {{ layers = "M{char}A" width = 8 }}\n',
            "comment": f"# one{char}two\nmodel m {{ width = 8 }}\n",
            "space": f"model m {{{char}width = 8 }}\n"}[where]
    path = write_spec("s.icl", text)
    err = error_of(path)
    assert err.message == f"character U+{ord(char):04X} is not allowed in a spec"
    assert err.where.line == 1


def test_a_raw_cr_inside_a_string_ends_the_line(write_spec):
    with pytest.raises(SpecError, match="unterminated string"):
        parse('model m { layers = "M\rA" }\n')


def test_fmt_keeps_comment_text_and_the_ast_for_odd_line_endings():
    text = "# head\r\n\r\nmodel m {\r  width = 8  # w\r\n  # note\r}\r"
    out = format_spec(parse(text))
    assert parse(out) == parse(text)
    assert [c.text for c in parse(out).comments] == ["# head", "# w", "# note"]
    assert out == "# head\n\nmodel m {\n  width = 8  # w\n  # note\n}\n"


# -- fmt --write: in place, through links, keeping the mode ------------------------------------

UNFORMATTED = 'model m {layers="M*2"   width=16}\n'
FORMATTED = 'model m {\n  layers = "M*2"\n  width = 16\n}\n'


def test_fmt_write_through_a_symlink_formats_the_target(tmp_path, capsys):
    target = tmp_path / "real" / "m.icl"
    target.parent.mkdir()
    target.write_text(UNFORMATTED)
    link = tmp_path / "link.icl"
    link.symlink_to(target)
    assert run_main(capsys, "fmt", "--write", link)[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == FORMATTED
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.icl"]


def test_fmt_write_keeps_the_mode(tmp_path, capsys):
    spec = tmp_path / "m.icl"
    spec.write_text(UNFORMATTED)
    spec.chmod(0o640)
    assert run_main(capsys, "fmt", "--write", spec)[0] == 0
    assert spec.read_text() == FORMATTED and stat.S_IMODE(spec.stat().st_mode) == 0o640


def test_fmt_write_refuses_a_read_only_file(tmp_path, capsys):
    spec = tmp_path / "m.icl"
    spec.write_text(UNFORMATTED)
    spec.chmod(0o444)
    code, out, err = run_main(capsys, "fmt", "--write", spec)
    assert code == 2 and err.startswith(f"error: {spec} is read-only: not rewritten")
    assert spec.read_text() == UNFORMATTED and stat.S_IMODE(spec.stat().st_mode) == 0o444


def test_fmt_write_leaves_a_canonical_file_untouched(tmp_path, capsys):
    spec = tmp_path / "m.icl"
    spec.write_text(FORMATTED)
    os.utime(spec, (1_000_000, 1_000_000))
    assert run_main(capsys, "fmt", "--write", spec)[0] == 0
    assert spec.stat().st_mtime == 1_000_000


def test_fmt_write_refuses_a_comment_with_a_form_feed(tmp_path, capsys):
    spec = tmp_path / "m.icl"
    text = "# one\x0ctwo three\nmodel m { width = 8 }\n"
    spec.write_text(text)
    code, out, err = run_main(capsys, "fmt", "--write", spec)
    assert code == 2 and spec.read_text() == text
    assert err.splitlines()[0] == f"{spec}:1:6: error: character U+000C is not allowed in a spec"


@pytest.mark.parametrize("path", sorted((ROOT / "specs").rglob("*.icl")), ids=lambda p: str(p.relative_to(ROOT)))
def test_fmt_leaves_every_shipped_spec_unchanged(path):
    assert format_spec(parse_file(path)) == path.read_text(encoding="utf-8")


# -- errors: all independent ones, positions of what was left open (#31.3) ---------------------

def test_every_independent_error_is_reported(write_spec, capsys):
    text = ('model a {\n  layers = "M"\n  width = 8\n  d_stat = 1\n  widht = 2\n}\n'
            'model b { layers = "Q" width = 8 }\n'
            'task t { dims = 3 }\n'
            'experiment e { models = [a, b] tasks = [linear_regression] train { lr = "x" } }\n')
    path = write_spec("s.icl", text)
    err = error_of(path)
    assert isinstance(err, SpecErrors)
    assert [(e.where.line, e.where.col, e.message) for e in err.errors] == [
        (4, 3, "unknown key 'd_stat' in model"),
        (5, 3, "unknown key 'widht' in model"),
        (7, 21, "unknown layer token 'Q'"),
        (8, 6, "task 't' does not say which task it is"),
        (9, 73, "'lr' must be a number, got the string \"x\""),
    ]
    code, out, stderr = run_main(capsys, "check", path)
    assert code == 2 and out == ""
    assert [line for line in stderr.splitlines() if ": error: " in line] == [
        f"{path}:{e.where.line}:{e.where.col}: error: {e.message}" for e in err.errors]


def test_the_number_of_errors_shown_is_limited(write_spec):
    path = write_spec("s.icl", "model m {\n" + "".join(f"  bad{i} = 1\n" for i in range(50)) + "}\n")
    err = error_of(path)
    assert len(err.errors) == limits.MAX_ERRORS and err.more == 50 - limits.MAX_ERRORS
    assert str(err).splitlines()[-1] == f"error: {50 - limits.MAX_ERRORS} more error(s) not shown"


@pytest.mark.parametrize("text,line,col,message", [
    ("model m {\n  width = 8\n", 2, 12, "unexpected end of file: the section opened with '{' at 1:9 is not closed"),
    ("model m {\n  width = [1, 2\n}\n", 3, 1, "unexpected symbol '}'"),
    ("model m {\n  width = [1, 2", 2, 16, "unexpected end of file: the list opened with '[' at 2:11 is not closed"),
    ('model m {\n  layers = "M*2\n}\n', 2, 12, "unterminated string: line 2 ends at column 16 before its closing '\"'"),
])
def test_what_was_left_open_is_pointed_at(write_spec, text, line, col, message):
    err = error_of(write_spec("s.icl", text))
    assert (err.where.line, err.where.col, err.message) == (line, col, message)


def test_lexical_errors_on_several_lines_are_all_reported(write_spec):
    path = write_spec("s.icl", 'model m {\n  layers = "M\n  width = 8\x0c\n  x = "y\n}\n')
    err = error_of(path)  # a forbidden character is reported before anything else
    assert (err.where.line, err.message) == (3, "character U+000C is not allowed in a spec")
    path = write_spec("t.icl", 'model m {\n  layers = "M\n  width = 8\n  x = "y\n}\n')
    assert [e.where.line for e in error_of(path).errors] == [2, 4]


# -- the command line --------------------------------------------------------------------------

def test_check_prints_the_summary_on_stdout_and_diagnostics_on_stderr(write_spec):
    out = icl("check", write_spec("s.icl", M + E))
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.splitlines()[-1] == "1 runs in 1 file(s): ok"


@pytest.mark.parametrize("args", [["--help"], ["check", "{spec}"], ["fmt", "{spec}"], ["runs", "--json", "{spec}"],
                                  ["diff", "{spec}", "{spec}"]])
def test_spec_commands_do_not_import_torch_or_triton(args):
    spec = str(ROOT / "specs" / "paper" / "study.icl")
    code = ("import sys, io, contextlib\nfrom icl.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'triton'))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code, *(a.replace("{spec}", spec) for a in args)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# -- run tables fed to train and eval -----------------------------------------------------------

def _table(tmp_path, runs) -> Path:
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(runs))
    return path


@pytest.fixture(scope="module")
def smoke_run():
    """The first run of the smoke study, as a JSON object of a run table (`icl runs --json`)."""
    return runs_of([ROOT / "specs" / "smoke" / "study.icl"])[0].to_dict()


@pytest.mark.parametrize("edit,message", [
    (lambda r: r.pop("model_config"), "the run lacks model_config"),
    (lambda r: r.update(model_config=[1, 2]), "'model_config' must be a JSON object, not a list"),
    (lambda r: r["model_config"].pop("width"), "'model_config' lacks width"),
    (lambda r: r["model_config"].update(width="16"), "'model_config.width' must be int, not \"16\""),
    (lambda r: r["train"].update(lr=[1e-3]), "'train.lr' must be float, not [0.001]"),
    (lambda r: r["train"].update(steps=True), "'train.steps' must be int, not true"),
    (lambda r: r["task_config"].update(kind="nope"), "'task_config.kind' must name a task kind, not \"nope\""),
    (lambda r: r["task_config"].update(curriculum={"dims": 3}),
     "'task_config.curriculum.dims' must map start, end, inc, interval to integers"),
    (lambda r: r.update(id=5), "'id' must be a non-empty string, not a number"),
    (lambda r: r.update(seed="0"), "'seed' must be an integer, not a string"),
])
def test_a_bad_run_table_is_a_one_line_error(tmp_path, smoke_run, edit, message):
    run = json.loads(json.dumps(smoke_run))
    edit(run)
    path = _table(tmp_path, [run])
    with pytest.raises(RunError) as e:
        load_runs(str(path), [smoke_run["id"]])
    assert e.value.message == f"{path}: run 1: {message} (write the table with icl runs --json)"


def test_a_run_table_that_is_not_a_list_of_objects(tmp_path, smoke_run):
    with pytest.raises(RunError, match="run 2: a run is a JSON object, not a number"):
        load_runs(str(_table(tmp_path, [smoke_run, 3])), ["x"])
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunError, match="nested too deeply"):
        load_runs(str(deep), ["x"])


def test_icl_train_on_a_bad_run_table_is_one_line(tmp_path, smoke_run):
    run = json.loads(json.dumps(smoke_run))
    run["train"] = "fast"
    out = icl("train", _table(tmp_path, [run]), "--run", run["id"], "--out", tmp_path / "out")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and "'train' must be a JSON object, not a string" in out.stderr
    assert not (tmp_path / "out").exists()


def test_load_reads_the_shipped_studies(tmp_path):
    for study in ("smoke", "reduced", "paper"):
        assert load(ROOT / "specs" / study / "study.icl").experiments
