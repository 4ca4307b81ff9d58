"""Run expansion: the study's matrix, sweeps, seeds, stable content-hashed ids, diff."""
from __future__ import annotations

from pathlib import Path

import pytest

from icl.compiler.diff import diff_runs
from icl.compiler.runs import runs_of
from icl.dsl import format_spec, parse_file
from icl.errors import IclError

ROOT = Path(__file__).resolve().parents[1]

PAPER = ROOT / "specs" / "paper" / "study.icl"
# Parameter counts of the released code at D = 256 (../shared/paper.md).
PAPER_PARAMS = {"transformer": 9.5e6, "mamba": 10.5e6, "s4": 3.4e6, "s4_mamba": 9.9e6,
                "standard_hybrid": 8.5e6, "mambaformer": 8.9e6}

BASE = '''
model mamba { layers = "M*2" width = 16 }
model hybrid { layers = "M (A M)*1" width = 16 heads = 2 }
experiment e {
  models = [mamba, hybrid]
  tasks = [linear_regression]
  train { steps = 10 lr = [1e-3, 1e-4] seeds = [0, 1] }
}
'''


def test_paper_study_is_the_full_matrix_with_the_released_parameter_counts():
    runs = runs_of([PAPER])
    assert len(runs) == 9 * 6
    assert {r.task for r in runs} == {
        "linear_regression", "sparse_linear_regression", "relu_2nn_regression", "decision_tree",
        "orthogonal_outlier_regression", "many_outlier_regression", "sparse_parity", "chain_of_thought",
        "vector_mqar"}
    for r in runs:
        if r.task == "linear_regression":
            assert abs(r.params - PAPER_PARAMS[r.model]) / PAPER_PARAMS[r.model] < 0.03, r.model
    lr = {r.task: r.train["lr"] for r in runs}
    assert lr["decision_tree"] == lr["sparse_parity"] == 4e-4 and lr["vector_mqar"] == 2e-4
    assert lr["linear_regression"] == 1e-4
    mqar = next(r for r in runs if r.task == "vector_mqar")
    assert mqar.train["clip"] == 100 and mqar.eval["prompts"] == 12800
    many = next(r for r in runs if r.task == "many_outlier_regression")
    assert many.train["steps"] == 1_000_000
    assert many.task_config["curriculum"]["points"] == {"start": 12, "end": 512, "inc": 2, "interval": 200}
    mf = next(r for r in runs if r.model == "mambaformer")
    assert mf.layers.split().count("M") == 13 and mf.model_config["positions"] == "none"


def test_sweeps_times_seeds(write_spec):
    runs = runs_of([write_spec("s.icl", BASE)])
    assert len(runs) == 2 * 2 * 2
    assert sorted({(r.model, r.sweep["train.lr"], r.seed) for r in runs}) == sorted(
        (m, lr, s) for m in ("mamba", "hybrid") for lr in (1e-3, 1e-4) for s in (0, 1))
    assert len({r.id for r in runs}) == 8
    assert all(r.layers == "M A M" for r in runs if r.model == "hybrid")


def test_ids_ignore_formatting_comments_and_explicit_defaults(write_spec):
    a = runs_of([write_spec("a.icl", BASE)])
    reformatted = format_spec(parse_file(write_spec("b.icl", BASE)))
    b = runs_of([write_spec("b.icl", "# a comment\n" + reformatted)])
    c = runs_of([write_spec("c.icl", BASE.replace('width = 16 }', 'width = 16 d_state = 16 positions = none }'))])
    assert [r.id for r in a] == [r.id for r in b] == [r.id for r in c]


def test_one_line_edit_changes_exactly_its_runs(write_spec):
    a = runs_of([write_spec("a.icl", BASE)])
    b = runs_of([write_spec("b.icl", BASE.replace('layers = "M*2"', 'layers = "M*3"'))])
    d = diff_runs(a, b)
    assert not d.added and not d.removed and d.unchanged == 4
    assert {new.model for _, new, _ in d.changed} == {"mamba"} and len(d.changed) == 4
    assert all("model_config.layers: M M -> M M M" in what for _, _, what in d.changed)


def test_position_init_std_changes_the_id_only_where_it_changes_the_weights(write_spec):
    learned = BASE.replace("heads = 2 }", "heads = 2 positions = learned }")
    a = runs_of([write_spec("a.icl", learned)])
    same = runs_of([write_spec("b.icl", learned.replace("positions = learned", "positions = learned positions_init_std = 0.02"))])
    other = runs_of([write_spec("c.icl", learned.replace("positions = learned", "positions = learned positions_init_std = 1.0"))])
    assert [r.id for r in a] == [r.id for r in same]
    changed = {new.model for old, new in zip(a, other) if old.id != new.id}
    assert changed == {"hybrid"}
    assert all(r.model_config["positions_init_std"] == 1.0 for r in other if r.model == "hybrid")


def test_position_init_std_without_positions_is_an_error(write_spec):
    spec = write_spec("a.icl", BASE.replace("heads = 2 }", "heads = 2 positions_init_std = 1.0 }"))
    with pytest.raises(IclError, match=r"a\.icl:3:.*positions_init_std.*positions = none"):
        runs_of([spec])


@pytest.mark.parametrize("parent, child, line", [
    # the child's own setting breaks the parent's: the error is on the child's line
    ("positions = learned positions_init_std = 1.0", "positions = none", 4),
    ("dt_min = 0.01", "dt_max = 0.001", 4),
    # the child sets the blamed key itself
    ("positions = none", "positions_init_std = 1.0", 4),
    # the child writes neither key: the error stays where the parent wrote it
    ("positions = none positions_init_std = 1.0", "width = 32", 3),
])
def test_a_model_error_points_at_the_line_that_makes_it(write_spec, parent, child, line):
    spec = write_spec("a.icl", BASE.replace(
        "model hybrid {", f'model base {{ layers = "M A" width = 16 heads = 2 {parent} }}\n'
                         f"model hybrid extends base {{ {child} }}\nmodel unused {{"))
    with pytest.raises(IclError, match=rf"a\.icl:{line}:"):
        runs_of([spec])


def test_eval_change_keeps_training_id(write_spec):
    a = runs_of([write_spec("a.icl", BASE)])
    b = runs_of([write_spec("b.icl", BASE.replace("seeds = [0, 1] }", "seeds = [0, 1] }\n  eval { prompts = 99 }"))])
    assert [r.id for r in a] == [r.id for r in b]
    assert all(x.eval_id != y.eval_id for x, y in zip(a, b))


def test_parameter_budget_picks_a_width_within_two_percent(write_spec):
    spec = write_spec("p.icl", 'model m { layers = "M*4" params = 200k }\n'
                               'experiment e { models = [m] tasks = [linear_regression] }\n')
    (run,) = runs_of([spec])
    assert abs(run.params - 200_000) / 200_000 <= 0.02
    assert run.model_config["width"] > 0


def test_extends_and_presets_merge_in_order(write_spec):
    spec = write_spec("x.icl", '''
model base { layers = "M*2" width = 16 d_state = 8 }
model wide extends base { width = 32 }
train fast { steps = 5 lr = 1e-2 }
experiment a { models = [wide] tasks = [sparse_parity] train extends fast { steps = 7 } }
experiment b extends a { train { batch = 4 } }
''')
    a, b = runs_of([spec])
    assert a.model_config["width"] == 32 and a.model_config["d_state"] == 8
    assert (a.train["steps"], a.train["lr"], a.train["batch"]) == (7, 1e-2, 64)
    assert (b.train["steps"], b.train["batch"]) == (7, 4)


def test_imports_resolve_relative_to_the_importing_file(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "models.icl").write_text('model m { layers = "S" width = 8 }\n')
    (tmp_path / "study.icl").write_text('import "lib/models.icl"\n'
                                        'experiment e { models = [m] tasks = [decision_tree] }\n')
    (run,) = runs_of([tmp_path / "study.icl"])
    assert run.layers == "S" and run.task_config["depth"] == 4


def test_a_file_imported_twice_by_different_paths_is_loaded_once(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "models.icl").write_text('model m { layers = "M" width = 8 }\n')
    (tmp_path / "lib" / "more.icl").write_text('import "models.icl"\n')
    (tmp_path / "study.icl").write_text('import "lib/models.icl"\nimport "lib/../lib/more.icl"\n'
                                        'experiment e { models = [m] tasks = [sparse_parity] }\n')
    (run,) = runs_of([tmp_path / "study.icl"])
    assert run.model == "m"


def test_precision_is_part_of_the_run_id(write_spec):
    tf32 = runs_of([write_spec("a.icl", BASE)])
    bf16 = runs_of([write_spec("b.icl", BASE.replace("seeds = [0, 1] }", "seeds = [0, 1] precision = bf16 }"))])
    assert {r.train["precision"] for r in tf32} == {"tf32"} and len(tf32) == len(bf16) == 8
    assert all(x.id != y.id for x, y in zip(tf32, bf16))


def test_log_error_is_how_to_run_not_part_of_the_run_id(write_spec):
    a = runs_of([write_spec("a.icl", BASE)])
    b = runs_of([write_spec("b.icl", BASE.replace("seeds = [0, 1] }", "seeds = [0, 1] log_error = 64 }"))])
    assert [r.id for r in a] == [r.id for r in b]
    assert {r.train["log_error"] for r in b} == {64}


@pytest.mark.parametrize("setting", ["compile = off", "compile = on"])
def test_compile_is_how_to_run_not_part_of_the_run_id(write_spec, setting):
    a = runs_of([write_spec("a.icl", BASE)])
    b = runs_of([write_spec("b.icl", BASE.replace("seeds = [0, 1] }", f"seeds = [0, 1] {setting} }}"))])
    assert [r.id for r in a] == [r.id for r in b]
    assert {r.train["compile"] for r in b} == {setting.split(" = ")[1]}


def test_a_task_option_at_its_legacy_value_keeps_the_ids_trained_before_it(write_spec):
    """token_mqar's `layout` came after runs were trained on its first layout (echo): a run at
    layout = echo hashes as it did before the option existed, the default (zoology) does not."""
    from icl.compiler.resolve import TRAIN_HOW_KEYS
    from icl.compiler.runs import content_hash

    spec = '''
model t { layers = "A F" width = 16 heads = 2 }
task recall { kind = token_mqar vocab = 32 seq_len = 24 pairs = 3 LAYOUT }
experiment e { models = [t] tasks = [recall] train { steps = 10 } }
'''
    echo, = runs_of([write_spec("a.icl", spec.replace("LAYOUT", "layout = echo"))])
    zoology, = runs_of([write_spec("b.icl", spec.replace("LAYOUT", ""))])
    assert echo.task_config["layout"] == "echo" and zoology.task_config["layout"] == "zoology"
    before = {"model": echo.model_config, "seed": 0,
              "task": {k: v for k, v in echo.task_config.items() if k != "layout"},
              "train": {k: v for k, v in echo.train.items() if k not in TRAIN_HOW_KEYS + ("stop_error",)}}
    assert echo.id == content_hash(before)
    assert echo.id != zoology.id


def test_a_train_option_at_its_legacy_value_keeps_the_ids_trained_before_it(write_spec):
    """train.stop_error came after runs were trained: off (none, its legacy value) leaves it out
    of the id; set, it is part of the id (it decides the final weights)."""
    from icl.compiler.resolve import TRAIN_HOW_KEYS
    from icl.compiler.runs import content_hash

    off = runs_of([write_spec("a.icl", BASE)])
    on = runs_of([write_spec("b.icl", BASE.replace("seeds = [0, 1] }", "seeds = [0, 1] log_error = 16 stop_error = 0.01 }"))])
    swept = runs_of([write_spec("c.icl", BASE.replace("seeds = [0, 1] }", "seeds = [0, 1] log_error = 16 stop_error = [0.01, 0.1] }"))])
    run = off[0]
    assert run.train["stop_error"] is None and on[0].train["stop_error"] == 0.01
    before = {"model": run.model_config, "seed": run.seed, "task": run.task_config,
              "train": {k: v for k, v in run.train.items() if k not in TRAIN_HOW_KEYS + ("stop_error",)}}
    assert run.id == content_hash(before)
    assert not {r.id for r in off} & {r.id for r in on}
    assert len(swept) == 2 * len(on) and {r.id for r in on} < {r.id for r in swept}


def test_stop_error_without_log_error_is_an_error_at_its_line(write_spec):
    spec = write_spec("a.icl", BASE.replace("seeds = [0, 1] }", "seeds = [0, 1]\n stop_error = 0.01 }"))
    with pytest.raises(IclError, match=r"a\.icl:\d+:\d+: .*stop_error reads the error of train.log_error prompts"):
        runs_of([spec])


@pytest.mark.parametrize("spec, runs", [("specs/zoo_probes.icl", "results/zoo/runs"),
                                         ("specs/quick/mqar.icl", "results/quick/runs")])
def test_committed_runs_are_runs_of_their_specs(spec, runs):
    """The trained runs committed without weights (the zoo probe's, the quick MQAR's) stay runs
    of their specs, so a change that moves their ids (a new task option without a legacy value,
    say) fails here rather than orphaning them in their reports."""
    ids = {r.id for r in runs_of([ROOT / spec])}
    folders = {p.name for p in (ROOT / runs).iterdir() if p.is_dir()}
    assert folders and folders <= ids
