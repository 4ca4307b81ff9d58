"""Time to accuracy (issue #26, item 4): from a run's metrics.jsonl (train.log_error's `error`
beside `step` and `wall_s`), the first logged step and seconds at or below each error threshold,
shown on the run's page, in a section of the report (HTML and Markdown) and as
time_to_accuracy.csv.

Fast: the runs are compiled from a spec but not trained; their metrics.jsonl and status.json
are written here, as training writes them, and the report reads them through build_report.
"""
from __future__ import annotations

import csv
import json
import re

import pytest

from icl import atomic, runfolder
from icl.report import build_report, time_to_accuracy
from test_report_browser import _open_report, chromium  # noqa: F401  (chromium: a fixture, headless over CDP)

# (step, wall_s, error): 0.10 is first reached at 0.05 (step 300), 0.02 at 0.015 (step 400; the
# later 0.03 does not undo it), 0.01 at 0.005 (step 600).
LOGGED = [(100, 2.5, 0.5), (200, 5.0, 0.2), (300, 7.75, 0.05), (400, 10.25, 0.015),
          (500, 12.5, 0.03), (600, 15.0, 0.005)]

SPEC = '''
model transformer { layers = "A F" width = 16 heads = 2 positions = learned }
task mqar { kind = token_mqar vocab = 16 seq_len = 16 pairs = 2 }
experiment quick_mqar {
  models = [transformer]
  tasks = [mqar]
  train { steps = 600 batch = 8 lr = 1e-3 log_every = 100 log_error = 64 seeds = [0, 1] }
  eval { prompts = 16 bootstrap = 20 batch = 16 }
}
'''


def _lines(logged=LOGGED, error=True) -> list[dict]:
    return [{"step": step, "loss": 1.0 / step, "lr": 1e-3, "grad_norm": 0.5, "steps_per_s": 40.0,
             "wall_s": wall, **({"error": err} if error else {})} for step, wall, err in logged]


def _write_metrics(folder, lines) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")


def test_first_crossings_of_a_synthetic_metrics_file(tmp_path):
    _write_metrics(tmp_path, _lines())
    found = time_to_accuracy.crossings(runfolder.read_metrics(tmp_path))   # the report's own reader
    assert [(t["threshold"], t["reached"], t["step"], t["wall_s"], t["error"]) for t in found["thresholds"]] == [
        (0.10, True, 300, 7.75, 0.05), (0.02, True, 400, 10.25, 0.015), (0.01, True, 600, 15.0, 0.005)]
    assert found["best"] == {"error": 0.005, "step": 600, "wall_s": 15.0}
    assert found["logged"] == 6 and found["last_step"] == 600


def test_a_threshold_met_exactly_is_reached_and_one_never_met_is_not(tmp_path):
    found = time_to_accuracy.crossings(_lines([(10, 1.0, 0.3), (20, 2.0, 0.1), (30, 3.0, 0.04), (40, 4.0, 0.06)]))
    first, second, third = found["thresholds"]
    assert (first["reached"], first["step"], first["wall_s"]) == (True, 20, 2.0)   # error <= 0.1, at 0.1
    assert not second["reached"] and second["step"] is None and second["wall_s"] is None
    assert not third["reached"]
    assert found["best"] == {"error": 0.04, "step": 30, "wall_s": 3.0}


def test_lines_without_an_error_are_skipped_and_a_run_without_any_has_none():
    mixed = _lines(error=False)[:2] + _lines()[2:]
    found = time_to_accuracy.crossings(mixed)
    assert found["logged"] == 4 and found["thresholds"][0]["step"] == 300
    assert time_to_accuracy.crossings(_lines(error=False)) is None
    assert time_to_accuracy.crossings([]) is None
    assert time_to_accuracy.run_time_to_accuracy({"task_config": {"kind": "token_mqar"}}, {}, {},
                                                 _lines(error=False)) is None


def test_thresholds_read_as_accuracy_where_the_task_reports_it():
    record = {"task_config": {"kind": "linear_regression"}, "train": {"log_error": 64}}
    as_error = time_to_accuracy.run_time_to_accuracy(record, {"reports_accuracy": False}, {}, _lines())
    assert [t["label"] for t in as_error["thresholds"]] == ["error <= 0.1", "error <= 0.02", "error <= 0.01"]
    as_accuracy = time_to_accuracy.run_time_to_accuracy(record, {"reports_accuracy": True}, {"device": "H100"},
                                                        _lines())
    assert [t["label"] for t in as_accuracy["thresholds"]] == ["90%", "98%", "99%"]
    assert as_accuracy["device"] == "H100" and as_accuracy["best"]["text"] == "accuracy 99.5%"
    # not evaluated yet: the task class says (token MQAR reports accuracy, linear regression not)
    assert time_to_accuracy.reports_accuracy({}, {"kind": "token_mqar"}) is True
    assert time_to_accuracy.reports_accuracy({}, {"kind": "linear_regression"}) is False
    assert time_to_accuracy.reports_accuracy({}, {"kind": "no_such_task"}) is False


# -- the report: run pages, the section, the CSV ----------------------------------------------

@pytest.fixture
def mqar_study(tmp_path):
    """Two compiled runs of a token-MQAR experiment with log_error: seed 0 logged its errors
    (LOGGED, on an 'NVIDIA H100 80GB HBM3'), seed 1 only losses; neither evaluated."""
    from icl.compiler.runs import runs_of

    spec = tmp_path / "mqar.icl"
    spec.write_text(SPEC, encoding="utf-8")
    runs = sorted(runs_of([spec]), key=lambda r: r.seed)
    runs_dir = tmp_path / "runs"
    for run, error in zip(runs, (True, False)):
        folder = runs_dir / run.id
        _write_metrics(folder, _lines(error=error))
        atomic.write_json(folder / "status.json", {
            "run_id": run.id, "state": "done", "step": 600, "steps_done": 600, "steps_planned": 600,
            "capped": False, "message": "trained 600 steps", "final_loss": 0.01, "wall_s": 15.2,
            "steps_per_s": 39.5, "device": "NVIDIA H100 80GB HBM3", "backend": "reference"})
    return {"runs": runs, "runs_dir": runs_dir, "out": tmp_path / "report"}


def test_the_report_shows_time_to_accuracy_on_the_page_the_run_page_and_the_csv(mqar_study):
    runs, out = mqar_study["runs"], mqar_study["out"]
    logged, quiet = runs
    paths = build_report(runs, mqar_study["runs_dir"], out, "Quick MQAR", replot=False)
    html = paths["html"].read_text(encoding="utf-8")
    assert '<h2 id="time-to-accuracy">Time to accuracy</h2>' in html
    section = html[html.index('id="time-to-accuracy"'):]
    section = section[:section.index("</table>")]
    # token MQAR reports accuracy: the headers say so
    assert "<th>to 90% accuracy</th><th>to 98% accuracy</th><th>to 99% accuracy</th>" in section
    rows = re.findall(r'<tr data-run="([0-9a-z]+)">(.*?)</tr>', section, re.S)
    assert [run_id for run_id, _ in rows] == [logged.id]          # the run without errors: no row
    row = rows[0][1]
    assert f'<a href="pages/{logged.id}.html"><code>{logged.id}</code></a>' in row
    assert "NVIDIA H100 80GB HBM3" in row
    assert ('7.8 s<br><span class="detail">step 300</span></td><td class="num">10.2 s<br><span class="detail">'
            'step 400</span></td><td class="num">15.0 s<br><span class="detail">step 600</span>') in row
    assert 'href="time_to_accuracy.csv"' in html and (out / "time_to_accuracy.csv").is_file()

    md = paths["md"].read_text(encoding="utf-8")
    assert "## Time to accuracy" in md
    assert (f"| [`{logged.id}`](pages/{logged.id}.html) | transformer | mqar | 0 | 0.001 | NVIDIA H100 80GB HBM3 |"
            " 7.8 s (step 300) | 10.2 s (step 400) | 15.0 s (step 600) | accuracy 99.5% (step 600) |") in md
    assert quiet.id not in md[md.index("## Time to accuracy"):md.index("## What stands behind")]
    for link in re.findall(r"\]\(([^)]+)\)", md):
        assert (out / link).is_file(), link

    page = (out / "pages" / f"{logged.id}.html").read_text(encoding="utf-8")
    table = page[page.index('<table class="tta" id="tta">'):]
    table = table[:table.index("</table>")]
    assert re.findall(r'<tr data-threshold="([0-9.]+)"><td>([^<]+)</td><td class="num">([^<]+)</td>'
                      r'<td class="num">([^<]+)</td>', table) == [
        ("0.1", "90%", "7.8 s", "300"), ("0.02", "98%", "10.2 s", "400"), ("0.01", "99%", "15.0 s", "600")]
    assert '<span id="tta-device">NVIDIA H100 80GB HBM3</span>' in page and "64 fresh prompts" in page
    quiet_page = (out / "pages" / f"{quiet.id}.html").read_text(encoding="utf-8")
    assert 'id="time-to-accuracy"' not in quiet_page and 'class="tta"' not in quiet_page

    with open(out / "time_to_accuracy.csv", newline="", encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert [(r["run_id"], r["threshold_error"], r["threshold_accuracy"], r["reached"], r["step"], r["wall_s"],
             r["error"]) for r in exported] == [
        (logged.id, "0.1", "0.9", "true", "300", "7.75", "0.05"),
        (logged.id, "0.02", "0.98", "true", "400", "10.25", "0.015"),
        (logged.id, "0.01", "0.99", "true", "600", "15.0", "0.005")]
    assert {(r["device"], r["log_error"], r["best_error"], r["logged_errors"]) for r in exported} == {
        ("NVIDIA H100 80GB HBM3", "64", "0.005", "6")}


def test_a_threshold_not_reached_says_so_with_the_best_logged(mqar_study):
    runs, out = mqar_study["runs"], mqar_study["out"]
    _write_metrics(mqar_study["runs_dir"] / runs[0].id, _lines(LOGGED[:4]))   # best 0.015: 99% not reached
    paths = build_report(runs, mqar_study["runs_dir"], out, "Quick MQAR", replot=False)
    html = paths["html"].read_text(encoding="utf-8")
    row = re.search(rf'<tr data-run="{runs[0].id}">(.*?)</tr>', html, re.S).group(1)
    assert '<td class="num unreached">not reached</td>' in row and "accuracy 98.5%" in row
    page = (out / "pages" / f"{runs[0].id}.html").read_text(encoding="utf-8")
    assert ('<tr data-threshold="0.01" class="unreached"><td>99%</td><td class="num">not reached</td>'
            '<td class="num">—</td>') in page


def test_runs_without_logged_errors_give_no_section_and_no_csv(mqar_study):
    runs, out = mqar_study["runs"], mqar_study["out"]
    build_report(runs, mqar_study["runs_dir"], out, "Quick MQAR", replot=False)
    assert (out / "time_to_accuracy.csv").is_file()
    _write_metrics(mqar_study["runs_dir"] / runs[0].id, _lines(error=False))   # retrained without log_error
    paths = build_report(runs, mqar_study["runs_dir"], out, "Quick MQAR", replot=False)
    html, md = paths["html"].read_text(encoding="utf-8"), paths["md"].read_text(encoding="utf-8")
    assert "Time to accuracy" not in html and "time_to_accuracy" not in html
    assert "Time to accuracy" not in md
    assert not (out / "time_to_accuracy.csv").exists()                 # the earlier build's is removed
    assert "time_to_accuracy_csv" not in paths
    for run in runs:
        assert 'id="time-to-accuracy"' not in (out / "pages" / f"{run.id}.html").read_text(encoding="utf-8")


def test_in_chromium_the_section_and_the_run_pages_table_fit_a_laptop_screen(mqar_study, chromium):
    """At 1366 x 768 neither the section's table nor the run page's overflows the page (the
    chromium fixture skips, saying so, where no Chromium is installed)."""
    runs, out = mqar_study["runs"], mqar_study["out"]
    _write_metrics(mqar_study["runs_dir"] / runs[1].id, _lines(LOGGED[:4]))   # two rows, one not reached
    paths = build_report(runs, mqar_study["runs_dir"], out, "Quick MQAR", replot=False)
    for html in (paths["html"], out / "pages" / f"{runs[0].id}.html"):
        _open_report(chromium, {"html": html})
        page = chromium.evaluate("({scroll: document.documentElement.scrollWidth,"
                                 " client: document.documentElement.clientWidth})")
        assert page["client"] > 1300 and page["scroll"] <= page["client"], html.name
        table = chromium.evaluate(
            "(() => { const t = document.querySelector('table.tta'); const box ="
            " (t.closest('.scroll') || t.parentElement).getBoundingClientRect();"
            " return {right: t.getBoundingClientRect().right, box: box.right, rows: t.tBodies[0].rows.length}; })()")
        assert table["right"] <= table["box"] + 0.5, html.name
        assert table["rows"] == (2 if html == paths["html"] else 4), html.name   # pages: 3 thresholds + best
