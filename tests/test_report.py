"""The report: Table-1 verdict rules, ICL plots, the self-contained HTML page, report.md, table1.json.

The fixture trains a tiny study for real (3 steps per run) and evaluates it with the
real evaluate_run, so every JSON the report reads has the exact structure the
pipeline writes. Verdict rules are then checked on constructed numbers: copies of
those real evaluations with their summary numbers replaced.
"""
from __future__ import annotations

import base64
import copy
import json
import re

import pytest

from icl.report import build_report, plot_task, verdicts, write_report
from icl.report import table1
from icl.report.render import fmt
from icl.cli import main as icl_main

CELL_KEYS = {"verdict", "paper", "metric", "seeds", "best_lr", "steps"}


# `study` and `built` (a tiny study trained, evaluated and reported for real) are conftest's.


def _evals(study) -> list[dict]:
    return [json.loads((study["runs_dir"] / r["id"] / f"eval-{r['eval_id']}.json").read_text())
            for r in study["runs"]]


# -- constructed numbers ---------------------------------------------------------------

def _cell_runs(study, models: dict[str, list[tuple[float, float | None]]], zero: float = 1.0):
    """Runs and evaluations of one task: models -> [(lr, tail or None for diverged), ...] (one per seed)."""
    real_run = next(r for r in study["runs"] if r["task"] == "linear_regression" and r["model"] == "transformer")
    real_eval = json.loads((study["runs_dir"] / real_run["id"] / f"eval-{real_run['eval_id']}.json").read_text())
    runs, evals = [], []
    for model, points in models.items():
        seeds: dict[float, int] = {}
        for lr, tail in points:
            seed = seeds[lr] = seeds.get(lr, -1) + 1
            run = copy.deepcopy(real_run)
            run.update(id=f"{model[:4]}{len(runs):08d}", eval_id=f"e{len(runs):011d}", model=model, seed=seed,
                       sweep={"train.lr": lr})
            run["train"]["lr"] = lr
            ev = copy.deepcopy(real_eval)
            ev.update(run_id=run["id"], eval_id=run["eval_id"], model_name=model, seed=seed,
                      sweep=run["sweep"])
            if tail is None:
                ev.update(state="diverged", model=None, summary=None, baselines={}, variants={}, positions=[])
            else:
                ev["summary"]["model_tail"] = tail
                ev["summary"]["baselines_tail"]["zero"] = zero
            runs.append(run)
            evals.append(ev)
    return runs, evals


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
    assert lin["transformer"]["metric"] == pytest.approx(min(
        c["metric"] for c in lin["transformer"]["configs"]))
    assert lin["mamba"]["diverged"] == 1 and lin["mamba"]["verdict"] == "fails"
    assert table == json.loads(json.dumps(verdicts(_evals(study), study["runs"])))


def test_report_html_is_self_contained(built):
    html = built["html"].read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower() and "url(" not in html
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
    runs = copy.deepcopy(study["runs"])
    for run in runs:
        run["train"]["steps"] = 500_000
        run["spec"] = "specs/paper/study.icl"
    statuses = {r["id"]: json.loads((study["runs_dir"] / r["id"] / "status.json").read_text()) for r in runs}
    paths = write_report(_evals(study), runs, statuses, {"linear_regression": None}, tmp_path, "Paper")
    html = paths["html"].read_text(encoding="utf-8")
    assert "loss became nan at step 2" in html   # statuses given as a dict by run id
    assert "SMOKE SCALE" not in html and "Scale: <strong>paper</strong>" in html
    assert "no plot" in html


@pytest.mark.parametrize("lengths, said", [((20_000, 20_000), "Reduced scale: 20,000 steps (the study"),
                                            ((20_000, 50_000), "Reduced scale: 20,000 to 50,000 steps")])
def test_reduced_scale_note_names_the_training_lengths(study, tmp_path, lengths, said):
    runs = copy.deepcopy(study["runs"])
    for i, run in enumerate(runs):
        run["train"]["steps"] = lengths[i % 2]
        run["spec"] = "specs/reduced/study.icl"
    statuses = {r["id"]: json.loads((study["runs_dir"] / r["id"] / "status.json").read_text()) for r in runs}
    paths = write_report(_evals(study), runs, statuses, {}, tmp_path, "Reduced")
    md = paths["md"].read_text(encoding="utf-8")
    assert said in md and "Scale: **reduced**" in md


def test_one_run_is_not_called_runs(study, tmp_path):
    runs = [r for r in study["runs"] if r["task"] == "linear_regression"][:1]
    statuses = {r["id"]: json.loads((study["runs_dir"] / r["id"] / "status.json").read_text()) for r in runs}
    evals = [e for e in _evals(study) if e["run_id"] == runs[0]["id"]]
    paths = write_report(evals, runs, statuses, {}, tmp_path, "One")
    assert "1 run: " in paths["md"].read_text(encoding="utf-8")
    assert "1 run: " in paths["html"].read_text(encoding="utf-8")


def test_plot_task_with_diverged_and_single_readout(study, tmp_path):
    evals = _evals(study)
    lin = [e for e in evals if e["task"] == "linear_regression"]
    path = plot_task(lin, [r for r in study["runs"] if r["task"] == "linear_regression"], tmp_path / "a.png")
    mqar = [e for e in evals if e["task"] == "vector_mqar"]
    path2 = plot_task(mqar, [r for r in study["runs"] if r["task"] == "vector_mqar"], tmp_path / "b.png")
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
        for item in runs + evals:
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
    for item in runs + evals:
        item["task"] = "sparse_parity"
    for run in runs:
        run["task_config"] = {"kind": "sparse_parity", "dims": 10, "points": 140}   # k: the default, 2
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
