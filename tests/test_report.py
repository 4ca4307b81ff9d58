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

import numpy as np
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
    assert list(runs) == [r["id"] for r in study["runs"]]
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
        lines = (study["runs_dir"] / run["id"] / "metrics.jsonl")
        entries = [json.loads(l) for l in lines.read_text().splitlines()] if lines.exists() else []
        mine = [r for r in logged if r["run_id"] == run["id"]]
        assert [int(r["step"]) for r in mine] == [e["step"] for e in entries]
        assert [float(r["loss"]) for r in mine] == [e["loss"] for e in entries]
    assert len(logged) == 3 * len([r for r in study["runs"] if r["id"] != "d1ver9ed0000"])


def test_every_figure_is_also_svg_and_pdf_the_same_bytes_each_time(study, built, tmp_path):
    for task in ("linear_regression", "vector_mqar"):
        png = built["out"] / "plots" / f"{task}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = png.with_suffix(".svg").read_text(encoding="utf-8")
        assert svg.startswith("<?xml") and "<svg" in svg and "<dc:date>" not in svg
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    evals = [e for e in _evals(study) if e["task"] == "linear_regression"]
    runs = [r for r in study["runs"] if r["task"] == "linear_regression"]
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
    assert sorted(rows) == sorted((r["task"], r["model"], "diverged" if r["id"] == "d1ver9ed0000" else "done")
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
