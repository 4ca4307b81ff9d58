"""The report: Table-1 verdict rules, ICL plots, the self-contained HTML page, report.md, table1.json.

The fixture trains a tiny study for real (3 steps per run) and evaluates it with the
real evaluate_run, so every JSON the report reads has the exact structure the
pipeline writes. Verdict rules are then checked on constructed numbers: copies of
those real evaluations with their summary numbers replaced.
"""
from __future__ import annotations

import base64
import copy
import dataclasses
import itertools
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from icl.report import build_report, plot_task, verdicts, write_report
from icl.report import table1
from icl.report.render import fmt
from icl.cli import main as icl_main

CELL_KEYS = {"verdict", "paper", "metric", "seeds", "best_lr", "steps"}


# `study` and `built` (a tiny study trained, evaluated and reported for real) are conftest's.


def _evals(study) -> list[dict]:
    return [json.loads((study["runs_dir"] / r.id / f"eval-{r.eval_id}.json").read_text())
            for r in study["runs"]]


# -- constructed numbers ---------------------------------------------------------------

def _cell_runs(study, models: dict[str, list[tuple[float, float | None]]], zero: float = 1.0):
    """Runs and evaluations of one task: models -> [(lr, tail or None for diverged), ...] (one per seed)."""
    real_run = next(r for r in study["runs"] if r.task == "linear_regression" and r.model == "transformer")
    real_eval = json.loads((study["runs_dir"] / real_run.id / f"eval-{real_run.eval_id}.json").read_text())
    runs, evals = [], []
    for model, points in models.items():
        seeds: dict[float, int] = {}
        for lr, tail in points:
            seed = seeds[lr] = seeds.get(lr, -1) + 1
            run = dataclasses.replace(copy.deepcopy(real_run), id=f"{model[:4]}{len(runs):08d}",
                                      eval_id=f"e{len(runs):011d}", model=model, seed=seed, sweep={"train.lr": lr})
            run.train["lr"] = lr
            ev = copy.deepcopy(real_eval)
            ev.update(run_id=run.id, eval_id=run.eval_id, model_name=model, seed=seed,
                      sweep=run.sweep)
            if tail is None:
                ev.update(state="diverged", model=None, summary=None, baselines={}, variants={}, positions=[])
            else:
                ev["summary"]["model_tail"] = tail
                ev["summary"]["baselines_tail"]["zero"] = zero
                ev["validation"]["model_tail"] = tail   # the same on the validation prompts, unless a test says
            runs.append(run)
            evals.append(ev)
    return runs, evals


def test_a_cell_takes_the_specs_names_not_those_the_evaluation_recorded(study):
    # Names are not part of a run's id: a model renamed in the spec (or a probe spec naming a
    # run of another spec anew) keeps its evaluations, which recorded the old name.
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.10)], "mamba": [(1e-3, 0.12)]})
    for ev in evals:
        ev["model_name"], ev["task"] = "old_" + ev["model_name"], "old_task"
    cells = verdicts(evals, runs)
    assert set(cells) == {"linear_regression"}
    assert set(cells["linear_regression"]) == {"transformer", "mamba"}


def test_a_cell_says_when_its_evaluations_averaged_another_share_than_the_rule(study):
    # Token MQAR's rule changed from the last quarter to every query: evaluations written
    # before keep their number, and the cell says over which share it was taken.
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.10)], "mamba": [(1e-3, 0.12)]})
    for ev in evals:
        if ev["model_name"] == "mamba":
            ev["summary"]["tail_fraction"] = 1.0   # linear regression's rule: the last quarter
    cells = verdicts(evals, runs)["linear_regression"]
    assert cells["mamba"]["stale_tail"] == "evaluated over the last 100% of positions, before the rule took 25%"
    assert cells["mamba"]["stale_tail"] in cells["mamba"]["reason"] and cells["mamba"]["stale_tail"] in cells["mamba"]["note"]
    assert cells["transformer"]["stale_tail"] == "" and "evaluated over" not in cells["transformer"]["reason"]


def test_clear_check_gap_and_fails(study):
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.10)], "mamba": [(1e-3, 0.12)],
                                     "s4": [(1e-3, 0.40)], "mambaformer": [(1e-3, 0.80)]})
    cells = verdicts(evals, runs)["linear_regression"]
    assert {m: c["verdict"] for m, c in cells.items()} == {
        "transformer": "check", "mamba": "check", "s4": "gap", "mambaformer": "fails"}
    assert cells["s4"]["best_other"] == pytest.approx(0.10)
    assert cells["transformer"]["best_other"] == pytest.approx(0.12)
    assert cells["transformer"]["paper"] == "check" and cells["s4"]["paper"] is None
    assert cells["mambaformer"]["agrees"] is False and cells["transformer"]["agrees"] is True


def test_each_cell_shows_its_seeds_and_the_arithmetic_of_its_verdict(study):
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.10), (1e-3, 0.30)], "mamba": [(1e-3, 0.12)],
                                     "s4": [(1e-3, 0.40), (1e-3, None)], "mambaformer": [(1e-3, 0.80)]})
    cells = verdicts(evals, runs)["linear_regression"]
    assert [(e["seed"], e["state"]) for e in cells["transformer"]["seed_metrics"]] == [(0, "done"), (1, "done")]
    assert [e["tail"] for e in cells["transformer"]["seed_metrics"]] == pytest.approx([0.10, 0.30])
    assert [(e["tail"], e["state"]) for e in cells["s4"]["seed_metrics"]] == [(0.40, "done"), (None, "diverged")]
    # transformer 0.2 vs best other 0.12: max(1.5 x 0.12, 0.12 + 0.05 x 1) = 0.18 < 0.2 -> gap
    assert cells["transformer"]["verdict"] == "gap"
    assert cells["transformer"]["reason"] == ("0.2 < 0.75 x chance 1 = 0.75; 0.2 > max(1.5 x best other 0.12, "
                                              "best other + 0.05 x chance) = 0.18")
    assert cells["mambaformer"]["reason"] == "0.8 >= 0.75 x chance 1 = 0.75"
    assert cells["mamba"]["reason"].endswith("0.12 <= max(1.5 x best other 0.2, best other + 0.05 x chance) = 0.3")


def test_a_verdicts_arithmetic_never_prints_unequal_numbers_alike(study):
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.7496)], "mamba": [(1e-3, 0.2)],
                                     "s4": [(1e-3, 0.30049)]})
    cells = verdicts(evals, runs)["linear_regression"]
    assert cells["transformer"]["reason"].startswith("0.7496 < 0.75 x chance 1 = 0.75;")
    assert cells["s4"]["reason"].endswith("; 0.3005 > max(1.5 x best other 0.2, best other + 0.05 x chance) = 0.3")


def test_seeds_not_evaluated_yet_are_shown_pending_and_a_lone_cell_says_why(study):
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.10), (1e-3, 0.20)], "mamba": [(1e-3, 0.5)]})
    del evals[1]                  # transformer seed 1 still training
    del evals[-1]                 # mamba not evaluated at all
    cells = verdicts(evals, runs)["linear_regression"]
    assert [(e["seed"], e["state"]) for e in cells["transformer"]["seed_metrics"]] == [(0, "done"), (1, "pending")]
    assert cells["transformer"]["reason"].endswith("; no other architecture evaluated yet")
    alone = verdicts(evals[:1], runs[:2])["linear_regression"]["transformer"]
    assert alone["reason"].endswith("; alone in its task")


def test_fail_threshold_is_relative_to_the_zero_predictor(study):
    # chance 2.0: 1.4 < 0.75 * 2 learns something; 1.5 = 0.75 * 2 fails (the boundary fails).
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 1.4)], "mamba": [(1e-3, 1.5)]}, zero=2.0)
    cells = verdicts(evals, runs)["linear_regression"]
    assert cells["transformer"]["verdict"] == "check" and cells["mamba"]["verdict"] == "fails"
    assert cells["mamba"]["chance"] == pytest.approx(2.0)


def test_near_zero_errors_are_on_par_through_the_slack(study):
    # 1e-2 is 100x the best other, but within 0.05 * chance of it: check, not gap.
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 1e-4)], "mamba": [(1e-3, 1e-2)],
                                     "s4": [(1e-3, 0.2)]})
    cells = verdicts(evals, runs)["linear_regression"]
    assert cells["mamba"]["verdict"] == "check" and cells["s4"]["verdict"] == "gap"


def test_best_learning_rate_and_mean_over_seeds(study, tmp_path):
    runs, evals = _cell_runs(study, {
        "transformer": [(1e-3, 0.30), (1e-3, 0.50), (1e-2, 0.10), (1e-2, 0.20)],
        "mamba": [(1e-3, 0.12)]})
    cell = verdicts(evals, runs)["linear_regression"]["transformer"]
    assert cell["best_lr"] == 1e-2 and cell["seeds"] == 2 and cell["metric"] == pytest.approx(0.15)
    assert cell["sweep"]["lr"] == [1e-3, 1e-2] and len(cell["configs"]) == 2
    assert cell["steps"] == 3 and cell["verdict"] == "check"
    best = table1.best_configs(evals, runs)["linear_regression"]
    assert best["transformer"]["lr"] == 1e-2 and len(best["transformer"]["evals"]) == 2
    assert plot_task(evals, runs, tmp_path / "seeds.png").stat().st_size > 0   # two seeds: one band


def test_a_diverged_seed_counts_as_chance_and_is_flagged(study):
    # lr 1e-2: one seed at 0.05, one diverged -> (0.05 + 1.0) / 2 = 0.525; lr 1e-3 (0.2) wins.
    runs, evals = _cell_runs(study, {"transformer": [(1e-2, 0.05), (1e-2, None), (1e-3, 0.2)],
                                     "mamba": [(1e-3, None)]})
    cells = verdicts(evals, runs)["linear_regression"]
    assert cells["transformer"]["best_lr"] == 1e-3 and cells["transformer"]["metric"] == pytest.approx(0.2)
    assert cells["transformer"]["diverged"] == 1
    assert cells["mamba"]["verdict"] == "fails" and cells["mamba"]["seeds"] == 0
    assert cells["mamba"]["note"] == "every run diverged"


# -- issue #25's protocol: selection by validation, the interval over seeds, convergence ------

def _protocol_runs(study, validation: dict[tuple[str, float], list[float]] | None = None):
    """transformer: lr 1e-3 best on the test prompts (0.10, 0.12), lr 1e-2 best on the validation
    prompts (0.15, 0.17 against 0.30, 0.32); mamba one seed at 0.2."""
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.10), (1e-3, 0.12), (1e-2, 0.20), (1e-2, 0.22)],
                                     "mamba": [(1e-3, 0.2)]})
    validation = validation or {("transformer", 1e-3): [0.30, 0.32], ("transformer", 1e-2): [0.15, 0.17]}
    for (model, lr), values in validation.items():
        picked = [ev for ev, run in zip(evals, runs) if run.model == model and run.train["lr"] == lr]
        for ev, value in zip(picked, values):
            ev["validation"]["model_tail"] = value
    return runs, evals


def test_a_cell_takes_the_configuration_best_on_the_validation_prompts(study):
    runs, evals = _protocol_runs(study)
    cell = verdicts(evals, runs)["linear_regression"]["transformer"]
    assert cell["selected_by"] == "validation" and cell["best_lr"] == 1e-2
    assert cell["metric"] == pytest.approx(0.21)          # the test score of the chosen lr, not 0.11
    assert cell["validation"] == pytest.approx(0.16)
    assert [c["validation"] for c in cell["configs"]] == pytest.approx([0.31, 0.16])
    assert [e["tail"] for e in cell["seed_metrics"]] == pytest.approx([0.20, 0.22])
    # the plots draw the same sweep point
    assert table1.best_configs(evals, runs)["linear_regression"]["transformer"]["lr"] == 1e-2


def test_without_validation_scores_a_cell_falls_back_to_the_test_prompts_and_says_so(study, tmp_path):
    runs, evals = _protocol_runs(study)
    lr2 = next(ev for ev, run in zip(evals, runs) if run.model == "transformer" and run.train["lr"] == 1e-2)
    del lr2["validation"]                                  # an evaluation from before validation sets
    cells = verdicts(evals, runs)["linear_regression"]
    assert cells["transformer"]["selected_by"] == "test (no validation recorded)"
    assert cells["transformer"]["best_lr"] == 1e-3 and cells["transformer"]["metric"] == pytest.approx(0.11)
    assert cells["transformer"]["configs"][1]["validation"] is None   # the lr 1e-2 seed without one
    assert cells["mamba"]["selected_by"] == "validation"
    paths = write_report(evals, runs, {}, {}, tmp_path, "Fallback")
    assert "1 cell chose its sweep point by the test prompts" in paths["md"].read_text(encoding="utf-8")


def test_the_metric_has_a_bootstrap_interval_over_three_seeds_and_none_with_one(study, tmp_path):
    import csv
    from icl.report import intervals

    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.10), (1e-3, 0.20), (1e-3, 0.30)],
                                     "mamba": [(1e-3, 0.25)]})
    cells = verdicts(evals, runs)["linear_regression"]
    low, high = cells["transformer"]["metric_ci"]
    assert cells["transformer"]["metric"] == pytest.approx(0.2)
    assert 0.1 <= low < 0.2 < high <= 0.3
    assert [low, high] == list(intervals.seed_interval([0.10, 0.20, 0.30])[1:])
    assert cells["mamba"]["metric_ci"] is None
    paths = write_report(evals, runs, {}, {}, tmp_path, "CI")
    shown = f"{fmt(0.2)} [{table1.format_number(low, 2)}, {table1.format_number(high, 2)}]"
    assert f"✓ check {shown} (3s)" in paths["md"].read_text(encoding="utf-8")
    html = paths["html"].read_text(encoding="utf-8")
    assert f'<span class="nw ci">[{table1.format_number(low, 2)}, {table1.format_number(high, 2)}]</span>' in html
    with open(paths["table1_csv"], newline="", encoding="utf-8") as f:
        rows = {r["architecture"]: r for r in csv.DictReader(f)}
    assert float(rows["transformer"]["metric_ci_low"]) == low and float(rows["transformer"]["metric_ci_high"]) == high
    assert rows["mamba"]["metric_ci_low"] == "" and rows["mamba"]["selected_by"] == "validation"


def _losses(falling: bool) -> list[dict]:
    """metrics.jsonl entries of 20k steps: still falling 12% over the last 2k, or flat there."""
    import math
    curve = ((lambda s: 2.0 * math.exp(-s / 15_000)) if falling else (lambda s: 0.5 + 1.5 * math.exp(-s / 1_000)))
    return [{"step": s, "loss": curve(s)} for s in range(0, 20_001, 100)]


def test_a_run_still_learning_is_not_converged_never_failed_and_not_counted(study, tmp_path):
    from icl.report.render import _agreement

    # linear regression: the study says check for all three
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.80)], "mamba": [(1e-3, 0.85)],
                                     "mambaformer": [(1e-3, 0.10), (1e-3, 0.12)]})
    for ev in evals:
        del ev["convergence"]                              # read from the training curves instead
    falling = {runs[0].id: _losses(True), runs[1].id: _losses(False),
               runs[2].id: _losses(False), runs[3].id: _losses(True)}
    table = verdicts(evals, runs, falling)
    cells = table["linear_regression"]
    still = cells["transformer"]
    assert still["verdict"] == "not converged" and still["rule_verdict"] == "fails"
    assert still["converged"] is False and still["agrees"] is None
    assert still["reason"] == ("0.8 >= 0.75 x chance 1 = 0.75; training loss of s0 still falling over the "
                               "last 10% of steps: not converged, not fails")
    assert still["seed_metrics"][0]["convergence"] == "not converged"
    flat = cells["mamba"]                                  # as bad, but its loss had stopped falling
    assert flat["verdict"] == "fails" and flat["converged"] is True and flat["agrees"] is False
    check = cells["mambaformer"]                           # one seed still falling: a check stays check
    assert check["verdict"] == "check" and check["converged"] is False and check["agrees"] is True
    assert _agreement(table) == {"compared": 2, "agree": 1, "not_converged": 1, "unjudged": 0, "by_test": 0}
    assert table1.SYMBOLS["not converged"] and "not converged" in table1.VERDICTS
    # without the training curves nothing is known: the rule's verdict stands
    unknown = verdicts(evals, runs)["linear_regression"]
    assert unknown["transformer"]["verdict"] == "fails" and unknown["transformer"]["converged"] is None
    # an evaluation's own record is read first
    evals[0]["convergence"] = {"state": "converged", "drop": 0.0, "t": 0.0, "points": 21}
    assert verdicts(evals, runs, falling)["linear_regression"]["transformer"]["verdict"] == "fails"
    evals[0]["convergence"]["state"] = "not converged"
    # and the page shows it: the verdict, the mark on the check, the tally
    paths = write_report(evals, runs, {}, {}, tmp_path, "Converge", training=falling)
    html = paths["html"].read_text(encoding="utf-8")
    assert 'data-verdict="not converged"' in html and html.count('class="flag unconverged"') == 1
    assert "Agreement: 1 of 2 cells the study judged (1 more not converged, counted neither way)." in html
    md = paths["md"].read_text(encoding="utf-8")
    assert "| ↘ not converged 0.8 (1s) / ✓ |" in md and "↘ not converged) / ✓ **=** |" in md
    from icl.report.exports import table1_latex
    assert "$\\searrow$ 0.8 ($\\checkmark$)" in table1_latex(table, "t")


def test_a_gap_of_a_run_still_learning_is_not_converged_too(study):
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.10)], "mamba": [(1e-3, 0.40)]})
    evals[1]["convergence"] = {"state": "not converged", "drop": 0.1, "t": -9.0, "points": 21}
    mamba = verdicts(evals, runs)["linear_regression"]["mamba"]
    assert mamba["rule_verdict"] == "gap" and mamba["verdict"] == "not converged" and mamba["agrees"] is None


def test_an_evaluation_records_its_runs_training_convergence(study, tmp_path):
    from icl.evaluation.evaluate import training_convergence

    for ev in _evals(study):
        if ev["state"] == "done":   # 3 logged steps: too few to judge
            assert ev["convergence"]["state"] == "unknown" and ev["convergence"]["points"] == 1
    assert training_convergence(tmp_path) == {"state": "unknown", "drop": None, "t": None, "points": 0}
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in _losses(True)))
    found = training_convergence(tmp_path)
    assert found["state"] == "not converged" and found["drop"] > 0.05 and found["points"] == 21
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in _losses(False)))
    assert training_convergence(tmp_path)["state"] == "converged"


def test_a_run_its_stop_error_ended_is_converged_and_not_cut_short(tmp_path):
    """A run that train.stop_error ended reached the error it was trained for: converged (its
    loss may still fall), said in words on its page, and not among the runs --max-steps cut."""
    from icl.evaluation.evaluate import training_convergence
    from icl.report.render import _done_less_than_planned
    from icl.report.runpages import convergence_text

    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in _losses(True)))
    stopped = {"step": 2000, "error": 0.0042, "stop_error": 0.01}
    status = {"state": "done", "steps_done": 2000, "steps_planned": 20000, "capped": False, "stopped_early": stopped}
    assert training_convergence(tmp_path)["state"] == "not converged"
    assert convergence_text(training_convergence(tmp_path)).startswith("not converged: loss fell ")
    assert convergence_text(None) == "unknown (0 logged losses in the last 10% of steps)"
    found = training_convergence(tmp_path, status)
    assert found["state"] == "converged" and found["stopped_early"] == stopped
    assert convergence_text(found) == "converged: stopped at step 2000, error 0.0042 <= train.stop_error 0.01"
    assert not _done_less_than_planned(status)
    assert _done_less_than_planned({k: v for k, v in status.items() if k != "stopped_early"})


def test_cells_without_evaluation_have_no_verdict(study):
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.1)], "mamba": [(1e-3, 0.1)]})
    cells = verdicts(evals[:1], runs)["linear_regression"]
    assert cells["transformer"]["verdict"] == "check"
    assert cells["mamba"]["verdict"] is None and cells["mamba"]["metric"] is None
    assert cells["mamba"]["note"] == "not evaluated yet"


def test_paper_verdicts_cover_the_study():
    assert set(table1.PAPER_VERDICTS) == {
        "linear_regression", "sparse_linear_regression", "relu_2nn_regression", "decision_tree",
        "orthogonal_outlier_regression", "many_outlier_regression", "sparse_parity", "chain_of_thought",
        "vector_mqar"}
    assert table1.paper_verdict("sparse_parity", "standard_hybrid") == "fails"
    assert table1.paper_verdict("sparse_parity", "transformer") == "fails"
    assert table1.paper_verdict("vector_mqar", "mamba") == "fails"
    assert table1.paper_verdict("decision_tree", "mamba") == "gap"
    assert table1.paper_verdict("many_outlier_regression", "transformer") == "gap"
    assert table1.paper_verdict("linear_regression", "s4") is None
    assert table1.paper_verdict("my_linear", "mamba", kind="linear_regression") == "check"
    for marks in table1.PAPER_VERDICTS.values():
        assert {"transformer", "mamba", "mambaformer"} <= set(marks)
        assert set(marks.values()) <= set(table1.VERDICTS)


# -- the real pipeline's files -----------------------------------------------------------

def test_table1_json_has_the_contract_shape(study, built):
    table = json.loads(built["json"].read_text())
    assert set(table) == {"linear_regression", "vector_mqar"}
    assert set(table["linear_regression"]) == {"transformer", "s4", "mamba"}
    for task, cells in table.items():
        for model, cell in cells.items():
            assert CELL_KEYS <= set(cell), (task, model)
            assert cell["verdict"] in table1.VERDICTS
            assert cell["paper"] == table1.paper_verdict(task, model)
            assert cell["steps"] == 3
    lin = table["linear_regression"]
    assert lin["transformer"]["seeds"] == 1 and lin["transformer"]["best_lr"] in (1e-3, 1e-2)
    # chosen by the validation prompts (the evaluation scores them), reported on the test prompts
    chosen = min(lin["transformer"]["configs"], key=lambda c: c["validation"])
    assert lin["transformer"]["selected_by"] == "validation" and lin["transformer"]["best_lr"] == chosen["lr"]
    assert lin["transformer"]["metric"] == pytest.approx(chosen["metric"])
    assert lin["transformer"]["metric_ci"] is None   # one seed: no interval
    assert lin["mamba"]["diverged"] == 1 and lin["mamba"]["verdict"] == "fails"
    assert table == json.loads(json.dumps(verdicts(_evals(study), study["runs"])))


def test_report_html_is_self_contained(built):
    html = built["html"].read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html.lower() and "url(" not in html
    # one inline script (the runs table's sorting and filters), nothing loaded from elsewhere
    assert re.findall(r"<script[^>]*>", html, re.I) == ["<script>"]
    assert " import " not in html and "fetch(" not in html and "XMLHttpRequest" not in html
    sources = re.findall(r'src\s*=\s*"([^"]*)"', html)
    assert len(sources) == 2   # one plot per task
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<style>" in html


def test_report_html_content(built):
    html = built["html"].read_text(encoding="utf-8")
    assert "SMOKE SCALE" in html            # a smoke/ spec: the numbers say nothing
    assert "Table 1" in html and "fails: metric &gt;= 0.75 x chance." in html
    assert 'class="diverged' in html and "DIVERGED" in html and "loss became nan at step 2" in html
    assert "No learning-rate sweep" not in html   # linear_regression sweeps two rates
    for model in ("transformer", "s4", "mamba"):
        assert f"<th>{model}</th>" in html
    assert "parameters" in html and "FLOPs / token" in html and "cpu" in html


def test_report_md_and_plot_files(built):
    md = built["md"].read_text(encoding="utf-8")
    assert "| task | transformer | mamba | s4 |" in md
    assert "fails: metric >= 0.75 x chance." in md and "WARNING:** SMOKE SCALE" in md
    # cell by cell: each judged cell with its seeds' errors and its verdict's arithmetic
    table = json.loads(built["json"].read_text())
    cell = table["linear_regression"]["transformer"]
    row = (f"| linear_regression | transformer | {table1.SYMBOLS[cell['verdict']]} {cell['verdict']} "
           f"{fmt(cell['metric'])} | ✓ check: **{'agrees' if cell['agrees'] else 'differs'}** | "
           f"s0 {fmt(cell['seed_metrics'][0]['tail'])} | {cell['reason']} |")
    assert "## Cell by cell" in md and row in md and " x chance " in cell["reason"]
    links = re.findall(r"\]\((plots/[^)]+\.png)\)", md)
    assert sorted(links) == ["plots/linear_regression.png", "plots/vector_mqar.png"]
    for link in links:
        data = (built["out"] / link).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000
    assert not list(built["out"].rglob(".*.tmp"))   # atomic writes leave no temporaries


def test_paper_scale_has_no_smoke_warning(study, tmp_path):
    runs = [dataclasses.replace(r, spec="specs/paper/study.icl", train={**r.train, "steps": 500_000})
            for r in study["runs"]]
    statuses = {r.id: json.loads((study["runs_dir"] / r.id / "status.json").read_text()) for r in runs}
    paths = write_report(_evals(study), runs, statuses, {"linear_regression": None}, tmp_path, "Paper")
    html = paths["html"].read_text(encoding="utf-8")
    assert "loss became nan at step 2" in html   # statuses given as a dict by run id
    assert "SMOKE SCALE" not in html and "Scale: <strong>paper</strong>" in html
    assert "no plot" in html


@pytest.mark.parametrize("lengths, said", [((20_000, 20_000), "Reduced scale: 20,000 steps (the study"),
                                            ((20_000, 50_000), "Reduced scale: 20,000 to 50,000 steps")])
def test_reduced_scale_note_names_the_training_lengths(study, tmp_path, lengths, said):
    runs = [dataclasses.replace(r, spec="specs/reduced/study.icl", train={**r.train, "steps": lengths[i % 2]})
            for i, r in enumerate(study["runs"])]
    statuses = {r.id: json.loads((study["runs_dir"] / r.id / "status.json").read_text()) for r in runs}
    paths = write_report(_evals(study), runs, statuses, {}, tmp_path, "Reduced")
    md = paths["md"].read_text(encoding="utf-8")
    assert said in md and "Scale: **reduced**" in md


def test_a_spec_without_the_studys_tasks_is_beyond_the_study(tmp_path):
    from icl.compiler.runs import runs_of
    from icl.report.render import describe_scale

    scale = describe_scale(runs_of([ROOT / "specs" / "quick" / "mqar.icl"]), {})   # token MQAR only
    notes = " ".join(scale["warnings"])
    assert scale["label"] == "beyond the study" and "Reduced scale" not in notes
    assert "No learning-rate sweep: every cell rests on a single learning rate." in notes
    zoo = describe_scale(runs_of([ROOT / "specs" / "zoo.icl"]), {})   # sparse parity is the study's
    assert zoo["label"] == "reduced" and "Reduced scale: 50,000 steps (the study" in " ".join(zoo["warnings"])
    # short runs: a task beyond the study (6,000 steps here) is not smoke by its length; the
    # study's tasks are, below SMOKE_STEPS, whatever else the spec holds
    assert scale["label"] == "beyond the study" and 6000 in {r.train["steps"] for r in runs_of(
        [ROOT / "specs" / "quick" / "mqar.icl"])}
    short = [dataclasses.replace(r, train={**r.train, "steps": 5000}) for r in runs_of([ROOT / "specs" / "zoo.icl"])]
    smoke = describe_scale(short, {})
    assert smoke["label"] == "smoke" and "train for 5,000 steps" in " ".join(smoke["warnings"])


def test_one_run_is_not_called_runs(study, tmp_path):
    runs = [r for r in study["runs"] if r.task == "linear_regression"][:1]
    statuses = {r.id: json.loads((study["runs_dir"] / r.id / "status.json").read_text()) for r in runs}
    evals = [e for e in _evals(study) if e["run_id"] == runs[0].id]
    paths = write_report(evals, runs, statuses, {}, tmp_path, "One")
    assert "1 run: " in paths["md"].read_text(encoding="utf-8")
    assert "1 run: " in paths["html"].read_text(encoding="utf-8")


def test_plot_task_with_diverged_and_single_readout(study, tmp_path):
    evals = _evals(study)
    lin = [e for e in evals if e["task"] == "linear_regression"]
    path = plot_task(lin, [r for r in study["runs"] if r.task == "linear_regression"], tmp_path / "a.png")
    mqar = [e for e in evals if e["task"] == "vector_mqar"]
    path2 = plot_task(mqar, [r for r in study["runs"] if r.task == "vector_mqar"], tmp_path / "b.png")
    from PIL import Image

    with Image.open(path) as a, Image.open(path2) as b:
        # variants add a row of panels under the 7 x 4.5 in main plot at 120 dpi
        assert a.size[0] == 840 and a.size[1] > 540 and b.size[0] == 840
    only_diverged = [e for e in lin if e["state"] == "diverged"]
    assert plot_task(only_diverged, study["runs"], tmp_path / "c.png").exists()


def test_a_long_plot_title_stays_inside_the_figure(study):
    from icl.report.plots import _task_figure

    # the title of orthogonal_outlier_regression with seeds 1/2 ran off the right edge
    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.5), (1e-3, 0.4)], "s4": [(1e-3, 0.3)]})
    for task in ("orthogonal_outlier_regression", "orthogonal_outlier_regression_at_half_the_dimensions"):
        runs = [dataclasses.replace(r, task=task) for r in runs]
        for item in evals:
            item["task"] = task
        fig = _task_figure(evals, runs)
        fig.canvas.draw()
        title = fig.axes[0].title
        assert "1/2 seed(s)" in title.get_text()
        box, page = title.get_window_extent(fig.canvas.get_renderer()), fig.bbox
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1


def test_parity_plot_draws_the_query_only_level(study):
    from icl.report.plots import _task_figure

    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.45)], "mamba": [(1e-3, 0.0)]})
    fig = _task_figure(evals, runs)   # linear regression: no closed-form level
    assert not [l for l in fig.axes[0].get_lines() if l.get_linestyle() == ":"]
    for item in evals:
        item["task"] = "sparse_parity"
    runs = [dataclasses.replace(r, task="sparse_parity",   # k: the default, 2
                                task_config={"kind": "sparse_parity", "dims": 10, "points": 140}) for r in runs]
    fig = _task_figure(evals, runs)
    dotted = [l for l in fig.axes[0].get_lines() if l.get_linestyle() == ":"]
    assert [l.get_label() for l in dotted] == ["query-only guess (0.445)"]
    assert list(dotted[0].get_ydata()) == [0.4453125, 0.4453125]


def test_build_report_without_replot_embeds_the_plots_it_finds(study, tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    drawn = plots / "linear_regression.png"
    drawn.write_bytes(b"\x89PNG\r\n\x1a\n the plot rule's output")
    paths = build_report(study["runs"], study["runs_dir"], tmp_path, "Embed", replot=False)
    assert drawn.read_bytes().endswith(b"the plot rule's output")   # embedded, not redrawn
    assert paths["plots"] == {"linear_regression": drawn, "vector_mqar": None}
    html = paths["html"].read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 1 and "vector_mqar: no plot" in html


def test_icl_plot_and_report_commands(study, tmp_path, capsys):
    spec = str(study["spec"])
    assert icl_main(["plot", spec, "--runs-dir", str(study["runs_dir"]), "--task", "vector_mqar",
                     "--out", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").exists()
    assert icl_main(["report", spec, "--runs-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert icl_main(["plot", spec, "--runs-dir", str(study["runs_dir"]), "--task", "nope",
                     "--out", str(tmp_path / "n.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_layer_strings_are_folded_back_into_repeats():
    from icl.report.render import compact_layers

    assert compact_layers("M " + " ".join(["A M"] * 12)) == "M (A M)*12"
    assert compact_layers(" ".join(["M"] * 24)) == "M*24"
    assert compact_layers("A F A F") == "(A F)*2"
    assert compact_layers("A F M") == "A F M" and compact_layers("S") == "S"


def test_y_axis_fits_the_models_not_a_baseline_that_explodes():
    from matplotlib.figure import Figure
    from icl.report.plots import TOP_OVER_MODELS, _fit_y_axis
    import numpy as np

    models = [np.array([1.0, 0.9, 0.8, 0.7])]
    # least squares at the interpolation threshold (n = d) peaks far above every model
    spike = np.array([1.2, 5e4, 3.0, 0.9])
    ax = Figure().add_subplot()
    _fit_y_axis(ax, models, [spike])
    assert ax.get_yscale() == "linear" and ax.get_ylim() == (0.0, 1.0 * TOP_OVER_MODELS)

    # an exact solver reaching 1e-15 makes the axis logarithmic, floored 4 decades down
    ax = Figure().add_subplot()
    _fit_y_axis(ax, [np.array([1.0, 0.1, 0.01])], [np.array([1.0, 1e-15, 1e-15])])
    low, high = ax.get_ylim()
    assert ax.get_yscale() == "log" and high == 1.5 and 1e-5 < low < 1e-3


# -- downloads: Table 1 as CSV and LaTeX, raw per-run metrics, figures as SVG and PDF ------

def test_table1_csv_holds_every_cell_of_table1_json_exactly(built):
    import csv

    table = json.loads(built["json"].read_text())
    with open(built["out"] / "table1.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # table1.json's keys are sorted; the CSV keeps Table 1's order (the spec's tasks, the study's models)
    assert [(r["task"], r["architecture"]) for r in rows] == [
        (t, m) for t in ("linear_regression", "vector_mqar") for m in table1.ordered_models(table[t])]
    for row in rows:
        cell = table[row["task"]][row["architecture"]]
        assert row["verdict"] == (cell["verdict"] or "") and row["paper"] == (cell["paper"] or "")
        assert row["agrees"] == {True: "true", False: "false", None: ""}[cell["agrees"]]
        assert float(row["metric"]) == cell["metric"]            # full precision: no rounding
        assert float(row["chance"]) == cell["chance"] and int(row["seeds"]) == cell["seeds"]
        assert float(row["best_lr"]) == cell["best_lr"] and int(row["steps"]) == cell["steps"]
        assert int(row["diverged"]) == cell["diverged"] and row["reason"] == cell["reason"]
        assert row["seed_tails"] == ";".join(f"{e['seed']}:{e['tail']!r}" if e["state"] == "done"
                                             else f"{e['seed']}:{e['state']}" for e in cell["seed_metrics"])


def test_table1_latex_has_one_row_per_task_with_our_and_the_studys_verdicts(built):
    from icl.report.exports import LATEX_SYMBOLS, latex_escape

    table = json.loads(built["json"].read_text())
    tex = (built["out"] / "table1.tex").read_text(encoding="utf-8")
    assert tex.count("\\begin{tabular}{lccc}") == 1 and "\\toprule" in tex and "\\end{table}" in tex
    assert "Task & transformer & mamba & s4 \\\\" in tex
    body = tex[tex.index("\\midrule") + len("\\midrule"):tex.index("\\bottomrule")].strip().splitlines()
    assert len(body) == len(table)
    for line, (task, cells) in zip(body, table.items()):
        fields = [f.strip() for f in line.removesuffix("\\\\").split(" & ")]
        assert fields[0] == latex_escape(task) and "\\_" in fields[0]
        for field, model in zip(fields[1:], ("transformer", "mamba", "s4")):
            cell = cells.get(model)
            if cell is None:
                assert field == "--"
                continue
            expected = f"{LATEX_SYMBOLS[cell['verdict']]} {table1.format_number(cell['metric'])}"
            expected += "$^\\dagger$" if cell["diverged"] else ""
            expected += f" ({LATEX_SYMBOLS[cell['paper']]})" if cell["paper"] else ""
            assert field == expected, (task, model)
    assert "$^\\dagger$" in body[0]   # the diverged mamba run of linear regression
    assert latex_escape("a_b & 50% {x}") == "a\\_b \\& 50\\% \\{x\\}"


def test_raw_metrics_hold_each_runs_evaluation_summary_and_training_curve(study, built):
    import csv

    with open(built["out"] / "metrics" / "runs.csv", newline="", encoding="utf-8") as f:
        runs = {r["run_id"]: r for r in csv.DictReader(f)}
    assert list(runs) == [r.id for r in study["runs"]]
    for ev in _evals(study):
        row = runs[ev["run_id"]]
        assert row["eval_state"] == ev["state"] and row["architecture"] == ev["model_name"]
        if ev["state"] == "done":
            assert float(row["model_tail"]) == ev["summary"]["model_tail"]
            for name, tail in ev["summary"]["baselines_tail"].items():
                assert float(row[f"baseline_tail.{name}"]) == tail
    assert runs["d1ver9ed0000"]["train_state"] == "diverged" and runs["d1ver9ed0000"]["model_tail"] == ""

    with open(built["out"] / "metrics" / "training.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames[:3] == ["run_id", "step", "loss"]
        logged = list(reader)
    for run in study["runs"]:
        lines = (study["runs_dir"] / run.id / "metrics.jsonl")
        entries = [json.loads(l) for l in lines.read_text().splitlines()] if lines.exists() else []
        mine = [r for r in logged if r["run_id"] == run.id]
        assert [int(r["step"]) for r in mine] == [e["step"] for e in entries]
        assert [float(r["loss"]) for r in mine] == [e["loss"] for e in entries]
    assert len(logged) == 3 * len([r for r in study["runs"] if r.id != "d1ver9ed0000"])


def test_every_figure_is_also_svg_and_pdf_the_same_bytes_each_time(study, built, tmp_path):
    for task in ("linear_regression", "vector_mqar"):
        png = built["out"] / "plots" / f"{task}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = png.with_suffix(".svg").read_text(encoding="utf-8")
        assert svg.startswith("<?xml") and "<svg" in svg and "<dc:date>" not in svg
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    evals = [e for e in _evals(study) if e["task"] == "linear_regression"]
    runs = [r for r in study["runs"] if r.task == "linear_regression"]
    first, second = plot_task(evals, runs, tmp_path / "a" / "x.png"), plot_task(evals, runs, tmp_path / "b" / "x.png")
    for suffix in (".png", ".svg", ".pdf"):
        assert first.with_suffix(suffix).read_bytes() == second.with_suffix(suffix).read_bytes(), suffix


def test_every_link_of_the_report_resolves_to_a_file_it_wrote(built):
    html = built["html"].read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"#]+)"', html))
    assert {"table1.csv", "table1.tex", "table1.json", "metrics/runs.csv", "metrics/training.csv",
            "plots/linear_regression.svg", "plots/vector_mqar.pdf"} <= links
    for link in links:
        assert (built["out"] / link).is_file(), link
    md = built["md"].read_text(encoding="utf-8")
    md_links = set(re.findall(r"\]\(([^)]+)\)", md))
    assert "metrics/training.csv" in md_links and "plots/vector_mqar.svg" in md_links
    for link in md_links:
        assert (built["out"] / link).is_file(), link


def test_runs_table_carries_sort_keys_and_filter_values(study, built):
    html = built["html"].read_text(encoding="utf-8")
    table = html[html.index('<table class="runs" id="runs">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r'<tr class="[^"]*" title="[^"]*"\s+data-task="([^"]+)" data-model="([^"]+)" '
                      r'data-training="([^"]+)">', table)
    assert sorted(rows) == sorted((r.task, r.model, "diverged" if r.id == "d1ver9ed0000" else "done")
                                  for r in study["runs"])
    # a tail error is shown rounded, and sorted by its exact value; none sorts last ("")
    tails = {e["run_id"]: e["summary"]["model_tail"] for e in _evals(study) if e["state"] == "done"}
    for run_id, tail in tails.items():
        row = table[table.index(f"<code>{run_id}</code>"):]
        assert f'data-value="{tail!r}">{fmt(tail)}</td>' in row[:row.index("</tr>")]
    assert '<option>s4</option>' in html and '<option>diverged</option>' in html


# -- plot fixes -----------------------------------------------------------------------------

def _curves(study, models: dict[str, list[float]], baselines: dict[str, list[float]]):
    """Runs and evaluations of linear regression whose curves (one seed each) are the values given."""
    runs, evals = _cell_runs(study, {m: [(1e-3, float(np.mean(v[-5:])))] for m, v in models.items()})
    for ev, values in zip(evals, models.values()):
        n = len(values)
        ev["positions"] = list(range(n))
        ev["model"] = {"mean": values, "lo": [v * 0.9 for v in values], "hi": [v * 1.1 for v in values],
                       "prompts": 16}
        ev["baselines"] = {k: {"mean": b, "lo": b, "hi": b, "prompts": 16} for k, b in baselines.items()}
        ev["summary"]["baselines_tail"] = {k: float(np.mean(b[-5:])) for k, b in baselines.items()}
        ev["variants"] = {}
    return runs, evals


def test_counts_of_examples_get_integer_ticks(study):
    from icl.report.plots import _task_figure

    curve = list(np.linspace(1.0, 0.5, 21))
    runs, evals = _curves(study, {"transformer": curve, "s4": curve}, {"zero": [1.0] * 21})
    fig = _task_figure(evals, runs)
    fig.canvas.draw()
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) >= 4 and all(float(t).is_integer() for t in ticks), ticks


def test_zeros_on_a_log_axis_are_drawn_on_a_marked_floor(study):
    from icl.report.plots import FLOOR_COLOUR, _task_figure
    from matplotlib.colors import to_hex

    # transformer reaches an error of exactly 0; an exact solver reaches 1e-15
    runs, evals = _curves(study, {"transformer": [1.0, 0.1, 0.01, 0.0, 0.0, 0.0], "s4": [1.0] * 6},
                          {"zero": [1.0] * 6, "least_squares": [1.0, 0.5, 1e-15, 1e-15, 1e-15, 1e-15]})
    fig = _task_figure(evals, runs)
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert ax.get_yscale() == "log"
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        assert (y[np.isfinite(y)] > bottom).all(), line.get_label()   # nothing drops out of sight
    floor = min(np.min(l.get_ydata()) for l in ax.get_lines() if l.get_label() == "transformer")
    assert bottom < floor < 1e-2
    assert any(to_hex(p.get_facecolor()) == FLOOR_COLOUR for p in ax.patches)   # the shaded strip
    assert any("zeros too" in t.get_text() for t in ax.texts)


def test_many_baselines_are_cut_to_the_best_few_and_the_rest_named(study):
    from icl.report.plots import MAX_BASELINES, _task_figure

    n = 10
    bases = {name: [level] * n for name, level in (("zero", 1.0), ("least_squares", 1.3), ("knn_3", 1.1),
             ("averaging", 1.2), ("tree_depth_4", 0.9), ("tree_unlimited", 1.4), ("gradient_boosting", 0.8))}
    runs, evals = _curves(study, {"transformer": [0.9] * n, "s4": [0.7] * n}, bases)
    fig = _task_figure(evals, runs)
    ax = fig.axes[0]
    dashed = {l.get_label() for l in ax.get_lines() if l.get_label() in bases}
    assert dashed == {"zero", "gradient_boosting", "tree_depth_4", "knn_3"} and len(dashed) == MAX_BASELINES + 1
    styles = [str(l._unscaled_dash_pattern) for l in ax.get_lines() if l.get_label() in bases]
    assert len(set(styles)) == len(styles)   # each baseline its own dash pattern
    label = " ".join(ax.get_xlabel().split())
    assert "not drawn (higher tail error): averaging 1.2, least_squares 1.3, tree_unlimited 1.4" in label


def test_architectures_take_the_okabe_ito_palette_and_only_they_are_coloured():
    from icl.report.plots import BASELINE_STYLES, MODEL_COLOURS, ZERO_STYLE
    from matplotlib.colors import to_rgb

    okabe_ito = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    assert set(MODEL_COLOURS.values()) <= okabe_ito and len(set(MODEL_COLOURS.values())) == len(MODEL_COLOURS)
    for colour, _ in BASELINE_STYLES + (ZERO_STYLE,):
        r, g, b = to_rgb(colour)
        assert r == g == b   # grey: a baseline is never mistaken for an architecture


def test_a_swept_value_of_zero_stays_on_a_log_x_axis():
    from matplotlib.figure import Figure
    from icl.report.plots import _sweep_panel
    from icl.tasks.catalog import VariantSweep

    def part(value):
        return {"positions": [31], "model": {"mean": [value], "lo": [value], "hi": [value]}}

    members = ["noisy_query:0.0", "noisy_query:0.5", "noisy_query:2.0"]
    ev = {"variants": {m: part(0.1 * (i + 1)) for i, m in enumerate(members)}}
    ax = Figure().add_subplot()
    _sweep_panel(ax, {"mamba": [ev]}, members, {"mamba": "#D55E00"}, VariantSweep("noise_sigmas", "sigma"))
    assert ax.get_xscale() == "symlog"   # log would drop sigma 0
    low, high = ax.get_xlim()
    assert low <= 0.0 and high >= 2.0 and list(ax.get_lines()[0].get_xdata()) == [0.0, 0.5, 2.0]
    ax = Figure().add_subplot()
    _sweep_panel(ax, {"mamba": [ev]}, members[1:], {"mamba": "#D55E00"}, VariantSweep("noise_sigmas", "sigma"))
    assert ax.get_xscale() == "log"


# -- run pages, seeds' intervals, lr sensitivity, comparison, Parquet (issue #27) ----------------

def test_each_run_has_a_page_with_its_curves_config_and_spec_lines(study, built):
    html = built["html"].read_text(encoding="utf-8")
    for run in study["runs"]:
        assert f'<a href="pages/{run.id}.html"><code>{run.id}</code></a>' in html
        page = (built["out"] / "pages" / f"{run.id}.html").read_text(encoding="utf-8")
        assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<script" not in page
        config = json.loads(page[page.index('<pre class="config">') + 20:page.index("</pre>", page.index('<pre class="config">'))]
                            .replace("&#34;", '"').replace("&quot;", '"').replace("&#39;", "'"))
        assert config == run.to_dict()   # the exact run, as `icl runs --json` prints it
        if run.id == "d1ver9ed0000":   # diverged before logging: no curve, said so
            assert "No logged training step" in page and "No finished evaluation" in page
            continue
        train = page[page.index('id="training-curve"'):]
        assert train.index("<svg") < train.index("</figure>") and 'data-label="training loss"' in train
        points = re.search(r'data-label="training loss" points="([^"]+)"', page).group(1).split()
        assert len(points) == 3   # the tiny study logs steps 1, 2, 3
        # the spec lines: the experiment's block with its line numbers, and the model's and task's
        spec_lines = study["spec"].read_text().splitlines()
        experiment = next(i for i, l in enumerate(spec_lines, 1) if l.startswith(f"experiment {run.experiment} "))
        assert f"lines {experiment}&ndash;" in page and f"(experiment {run.experiment})" in page
        assert f"(model {run.model})" in page and f"(task {run.task})" in page and "(train tiny)" in page
        assert f'<span class="lineno">{experiment:4d}</span>  experiment {run.experiment} {{' in page
        assert 'href="../report.html#runs"' in page
        for link in re.findall(r'href="([^"#]+)"', page):
            assert (built["out"] / "pages" / link).resolve().is_file(), link
    lr = next(r for r in study["runs"] if r.task == "linear_regression" and r.model == "transformer")
    page = (built["out"] / "pages" / f"{lr.id}.html").read_text(encoding="utf-8")
    assert 'id="eval-curve"' in page and 'data-label="zero predictor (chance)"' in page
    ev = next(e for e in _evals(study) if e["run_id"] == lr.id)
    assert f'<td class="num" id="validation-tail">{fmt(ev["validation"]["model_tail"])} (' in page


def test_a_page_of_a_run_no_longer_in_the_table_is_removed(study, tmp_path):
    runs = study["runs"]
    build_report(runs, study["runs_dir"], tmp_path, "All", replot=False)
    build_report(runs[:2], study["runs_dir"], tmp_path, "Two", replot=False)
    assert sorted(p.stem for p in (tmp_path / "pages").glob("*.html")) == sorted(r.id for r in runs[:2])


def test_seed_bands_are_a_bootstrap_interval_over_seeds_not_an_envelope(study):
    from icl.report import intervals
    from icl.report.plots import _seed_curve

    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.1), (1e-3, 0.2), (1e-3, 0.3), (1e-3, 0.4)]})
    for i, ev in enumerate(evals):
        ev["model"] = {"mean": [1.0 + i, 0.5 + i], "lo": [0.0, 0.0], "hi": [9.0, 9.0], "prompts": [16, 16]}
        ev["positions"] = [0, 1]
    x, mean, lo, hi = _seed_curve(evals, None)
    assert list(mean) == pytest.approx([2.5, 2.0])
    # over seeds (1, 2, 3, 4): inside the seeds' range, not the prompts' 0..9 envelope
    assert 1.0 <= lo[0] < 2.5 < hi[0] <= 4.0 and (lo[0], hi[0]) != (0.0, 9.0)
    assert (mean[0], lo[0], hi[0]) == pytest.approx(intervals.seed_interval([1.0, 2.0, 3.0, 4.0]))
    assert _seed_curve(evals[:1], None)[2][0] == 0.0   # one seed: its own band over prompts
    # the same numbers give the same interval (a fixed resampling seed): the plots' bytes stay put
    assert intervals.seed_interval([0.3, 0.1, 0.7]) == intervals.seed_interval([0.3, 0.1, 0.7])


def test_difference_intervals_pair_seeds_when_both_sides_have_them():
    from icl.report import intervals

    diff, lo, hi = intervals.difference_interval([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], paired=True)
    assert (diff, lo, hi) == pytest.approx((0.5, 0.5, 0.5))   # every seed gained 0.5
    diff, lo, hi = intervals.difference_interval([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], paired=False)
    assert diff == pytest.approx(0.5) and lo < 0 < hi          # unpaired, the seeds' spread counts
    assert intervals.difference_interval([], [1.0], paired=False) == (None, None, None)


def test_lr_sensitivity_panel_where_a_cell_sweeps_lr_and_a_note_where_none_does(study, built):
    from icl.report.plots import _task_figure
    from icl.report.sensitivity import lr_sensitivity

    runs, evals = _cell_runs(study, {"transformer": [(1e-3, 0.3), (1e-3, 0.5), (1e-2, 0.1), (1e-2, None)],
                                     "mamba": [(1e-3, 0.2), (1e-2, 0.25)]})
    found = lr_sensitivity(evals, runs)["linear_regression"]
    assert found["swept"] and found["lrs"] == [1e-3, 1e-2]
    transformer = {p["lr"]: p for p in found["models"]["transformer"]}
    assert transformer[1e-3]["metric"] == pytest.approx(0.4) and transformer[1e-3]["seeds"] == 2
    assert transformer[1e-2]["metric"] == pytest.approx((0.1 + 1.0) / 2) and transformer[1e-2]["diverged"] == 1
    assert transformer[1e-3]["lo"] <= 0.4 <= transformer[1e-3]["hi"]
    fig = _task_figure(evals, runs)
    panel = next(ax for ax in fig.axes if ax.get_xlabel() == "learning rate")
    assert panel.get_xscale() == "log" and {t.get_text() for t in panel.get_legend().get_texts()} >= {"transformer", "mamba"}
    one_lr = [r for r in runs if r.train["lr"] == 1e-3]
    assert not any(ax.get_xlabel() == "learning rate" for ax in
                   _task_figure([e for e in evals if e["run_id"] in {r.id for r in one_lr}], one_lr).axes)
    # the tiny study sweeps lr for linear regression only: a table there, a note for vector_mqar
    html = built["html"].read_text(encoding="utf-8")
    assert '<table class="lr-sensitivity" data-task="linear_regression">' in html
    assert 'data-task="vector_mqar"' not in html[html.index('id="lr-sensitivity"'):html.index("<h2>Architectures")]
    assert "vector_mqar (lr 0.001)" in html[html.index('id="lr-not-swept"'):]
    assert "## Learning-rate sensitivity" in built["md"].read_text(encoding="utf-8")


def test_report_compare_puts_two_specs_side_by_side_with_the_difference_and_the_spec_diff(study, tmp_path, capsys):
    spec_a = study["spec"]
    text = spec_a.read_text()
    spec_b = spec_a.with_name("one_lr.icl")   # one line edited (lr 1e-3 only), the mqar experiment dropped
    spec_b.write_text(text[:text.index("experiment vector_mqar")].replace("lr = [1e-3, 1e-2]", "lr = 1e-3"))
    out = tmp_path / "cmp"
    assert icl_main(["report", str(spec_a), str(spec_b), "--compare", "--runs-dir", str(study["runs_dir"]),
                     "--out", str(out)]) == 0
    html = (out / "compare.html").read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html
    table = json.loads(json.dumps(verdicts(_evals(study), study["runs"])))["linear_regression"]
    for model in ("transformer", "s4"):
        row = re.search(rf'<tr class="[^"]*" data-task="linear_regression" data-model="{model}">(.*?)</tr>',
                        html[:html.index("</table>")], re.S).group(1)
        ev = next(e for e in _evals(study) if e["model_name"] == model and e["sweep"] == {"train.lr": 1e-3})
        expected = ev["summary"]["model_tail"] - table[model]["metric"]   # B (lr 1e-3) - A (best lr)
        assert f"{expected:+.3g}" in row and "1, 1 (paired)" in row
        assert expected >= 0
    one_side = html[html.index('id="compare-one-side"'):]
    assert 'data-task="vector_mqar" data-model="transformer"' in one_side and "only in A" in one_side
    assert '<span class="del">-  train extends tiny { lr = [1e-3, 1e-2] }</span>' in html
    assert re.search(r'<span class="(add|del)">[+-]experiment vector_mqar', html)
    # icl diff: the runs at lr 1e-2 (transformer, s4) and the mqar run removed, those at 1e-3 kept
    assert "0 added, 3 removed, 0 changed, 2 unchanged" in html
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "| linear_regression | transformer |" in md and "```diff" in md
    assert icl_main(["report", str(spec_a), "--compare", "--runs-dir", str(study["runs_dir"]),
                     "--out", str(out)]) == 2
    assert "--compare compares two specs" in capsys.readouterr().err


def test_without_pyarrow_the_downloads_say_why_there_is_no_parquet(study, tmp_path, monkeypatch):
    from icl.report import exports

    monkeypatch.setattr(exports, "parquet_available", lambda: False)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "runs.parquet").write_bytes(b"stale")
    paths = build_report(study["runs"], study["runs_dir"], tmp_path, "No parquet", replot=False)
    html, md = paths["html"].read_text(encoding="utf-8"), paths["md"].read_text(encoding="utf-8")
    assert '<li id="parquet-note">Parquet files are not written: pyarrow is not installed' in html
    assert "Parquet files are not written" in md and ".parquet" not in html
    assert not list(tmp_path.rglob("*.parquet"))   # an earlier build's file would be stale


def test_with_pyarrow_table1_and_the_metrics_are_parquet_too(study, built):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed (pip install -e '.[parquet]')")
    import csv

    out = built["out"]
    for parquet, csv_file in (("table1.parquet", "table1.csv"), ("metrics/runs.parquet", "metrics/runs.csv"),
                              ("metrics/training.parquet", "metrics/training.csv")):
        rows = pq.read_table(out / parquet).to_pylist()
        with open(out / csv_file, newline="", encoding="utf-8") as f:
            expected = list(csv.DictReader(f))
        assert len(rows) == len(expected) and list(rows[0]) == list(expected[0])
        for row, want in zip(rows, expected):
            for key, value in row.items():
                if isinstance(value, float):
                    assert value == pytest.approx(float(want[key]), nan_ok=True), (parquet, key)
                elif value is not None and not isinstance(value, (bool, str)):
                    assert value == int(want[key]), (parquet, key)
    html = built["html"].read_text(encoding="utf-8")
    assert 'href="table1.parquet"' in html and "parquet-note" not in html


# -- in a real browser: the curves, the sortable table, the run pages, the comparison, the downloads

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class _Browser:
    """Headless Chromium driven over the DevTools protocol (websocket-client): navigate, evaluate."""

    def __init__(self, profile: Path):
        import websocket

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        marker, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (marker.exists() and marker.read_text().split()[:1] and marker.read_text().split()[0].isdigit()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"Chromium ({CHROMIUM}) did not start")
            time.sleep(0.1)
        port = int(marker.read_text().split()[0])
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.loads(response.read()) if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.ids, self.events = itertools.count(1), []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)

    def send(self, method: str, **params) -> dict:
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                assert "error" not in message, (method, message)
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_load(self) -> None:
        deadline = time.monotonic() + 60
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, "the page did not load"
            self.events.append(json.loads(self.ws.recv()))

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_load()

    def errors(self) -> list:
        return [e for e in self.events if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]

    def files_linked(self, root: Path) -> set[Path]:
        links = self.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        assert all(link.startswith("file://") for link in links), links   # nothing online
        return {Path(urllib.request.url2pathname(urllib.parse.urlparse(link).path)) for link in links}

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary installed (Debian: apt-get install -y chromium)")
def test_in_chromium_curves_sortable_runs_run_pages_comparison_and_downloads(study, built, tmp_path, monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    out = built["out"].resolve()
    browser = _Browser(tmp_path / "profile")
    try:
        browser.open(built["html"].resolve().as_uri())
        # the curves: every figure decodes
        sizes = browser.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        assert sizes and all(width > 0 for width in sizes)
        # the runs table sorts by a column
        order = browser.evaluate(
            "(() => { const th = Array.from(document.querySelectorAll('#runs thead th')).find("
            "h => h.textContent.trim() === 'final loss'); th.querySelector('button').click();"
            " const i = Array.from(th.parentElement.cells).indexOf(th);"
            " return [th.getAttribute('aria-sort'), Array.from(document.querySelectorAll('#runs tbody tr'))"
            ".map(r => r.cells[i].getAttribute('data-value'))]; })()")
        assert order[0] == "ascending"
        numbers = [float(v) for v in order[1] if v]
        assert numbers == sorted(numbers) and len(numbers) >= 4
        # every link of the report (downloads, figures, run pages) is a file of the report
        files = browser.files_linked(out)
        assert {out / "table1.csv", out / "table1.tex", out / "metrics" / "runs.csv",
                out / "metrics" / "training.csv"} | {out / "pages" / f"{r.id}.html" for r in study["runs"]} <= files
        for path in files:
            assert path.is_file() and out in path.parents, path
        assert browser.errors() == []
        # a run's id opens its page: the training loss curve is drawn, with its evaluation
        run = next(r for r in study["runs"] if r.task == "linear_regression" and r.model == "transformer")
        browser.events.clear()
        browser.evaluate(f"document.querySelector('a[href=\"pages/{run.id}.html\"]').click()")
        browser.wait_load()
        assert browser.evaluate("location.pathname").endswith(f"/pages/{run.id}.html")
        curves = browser.evaluate(
            "Array.from(document.querySelectorAll('svg.chart polyline.series')).map(p => ({label: p.dataset.label,"
            " width: p.getBBox().width, height: p.getBoundingClientRect().height}))")
        labels = [c["label"] for c in curves]
        assert "training loss" in labels and "zero predictor (chance)" in labels
        assert all(c["width"] > 100 for c in curves)
        assert browser.evaluate("document.querySelector('pre.config').textContent").count(run.id) >= 1
        assert browser.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        for path in browser.files_linked(out):
            assert path.is_file(), path
        assert browser.errors() == []
        # the comparison page: cells side by side, the difference, the spec diff
        spec_b = study["spec"].with_name("browser_b.icl")
        spec_b.write_text(study["spec"].read_text().replace("lr = [1e-3, 1e-2]", "lr = 1e-2"))
        assert icl_main(["report", str(study["spec"]), str(spec_b), "--compare", "--runs-dir",
                         str(study["runs_dir"]), "--out", str(tmp_path / "cmp")]) == 0
        browser.open((tmp_path / "cmp" / "compare.html").as_uri())
        rows = browser.evaluate(
            "Array.from(document.querySelectorAll('#compare tbody tr')).map(r => ({model: r.dataset.model,"
            " difference: r.querySelector('td.difference').textContent.trim(), call: r.querySelector('td.call').textContent}))")
        assert {r["model"] for r in rows} == {"transformer", "s4"}
        assert all(re.fullmatch(r"[+-][0-9.e+-]+", r["difference"]) for r in rows)
        assert browser.evaluate("document.querySelectorAll('#text-diff .del, #text-diff .add').length") == 2
        assert browser.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        assert browser.errors() == []
    finally:
        browser.close()


# -- the pipeline: the default profile and the compare target ------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_a_plain_snakemake_reads_the_default_profile(run_snakemake, tiny_spec, tmp_path):
    import yaml

    profile = ROOT / "profiles" / "default" / "config.yaml"
    settings = yaml.safe_load(profile.read_text())
    assert settings["cores"] == "all"   # a plain `snakemake` runs without --cores
    assert not {"executor", "jobs", "resources", "default-resources"} & set(settings)   # SLURM's to set
    spec = tmp_path / "tiny.icl"
    spec.write_text(tiny_spec)
    result = run_snakemake(tmp_path, spec, "-n")
    assert result.returncode == 0, result.stderr
    assert "Using workflow specific profile" in result.stdout + result.stderr
    assert "profiles/default" in result.stdout + result.stderr


def test_the_compare_target_takes_two_specs(run_snakemake, job_counts, tiny_spec, tmp_path):
    a, b = tmp_path / "a.icl", tmp_path / "b.icl"
    a.write_text(tiny_spec)
    b.write_text(tiny_spec.replace("lr = 1e-3", "lr = 3e-3"))
    one = run_snakemake(tmp_path, a, "compare", "-n")
    assert one.returncode != 0 and "the compare target compares two specs" in one.stdout + one.stderr
    two = run_snakemake(tmp_path, a, "compare", "-n", config=(f"specs=[{a},{b}]",))
    assert two.returncode == 0, two.stderr
    counts = job_counts(two.stdout)
    assert counts.get("compare") == 1 and "report" not in counts and "plot" not in counts
