"""benchmarks/quick_mqar_summary.py reads each run's first logged error <= 2% and the plain loop's
JSON into one table; benchmarks/plain_mqar.py trains and writes that JSON (a few CPU steps)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def metrics(folder: Path, errors: list[float], status: dict | None = None) -> None:
    folder.mkdir(parents=True)
    lines = [{"step": 50 * (i + 1), "loss": 1.0, "error": e, "wall_s": 0.5 * (i + 1)} for i, e in enumerate(errors)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if status is not None:
        (folder / "status.json").write_text(json.dumps(status))


def test_summary_reads_crossings_and_the_plain_loop(tmp_path):
    metrics(tmp_path / "alone_lr1e-3", [0.7, 0.3, 0.019, 0.0], {"steps_per_s": 300.0, "device": "GPU X"})
    metrics(tmp_path / "pack5_lr3e-4", [0.7, 0.66])                      # never reaches 98%
    (tmp_path / "alone_plain_1e-3.json").write_text(json.dumps({
        "model": "plain", "lr": 1e-3, "weight_decay": 0.0, "device": "GPU X",
        "log": [{"step": 50, "loss": 2.0, "error": 0.5, "wall_s": 1.0},
                {"step": 100, "loss": 0.1, "error": 0.01, "wall_s": 2.0}]}))
    out = tmp_path / "summary"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quick_mqar_summary.py"), str(tmp_path), str(out)],
                   check=True, capture_output=True, text=True)
    rows = {r["name"]: r for r in json.loads(out.with_suffix(".json").read_text())}
    assert (rows["alone_lr1e-3"]["step_98"], rows["alone_lr1e-3"]["wall_98_s"]) == (150, 1.5)
    assert rows["alone_lr1e-3"]["gpu"] == "alone" and rows["pack5_lr3e-4"]["gpu"] == "pack of 5"
    assert rows["pack5_lr3e-4"]["step_98"] is None and rows["pack5_lr3e-4"]["best_error"] == 0.66
    assert (rows["alone_plain_1e-3"]["step_98"], rows["alone_plain_1e-3"]["steps_per_s"]) == (100, 50.0)
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# Quick token MQAR") and "GPU X" in md
    # no status.json (a run its call's time limit cut): steps/s from its last metrics line
    assert "| pack5_lr3e-4 | pipeline | ? | pack of 5 | lr3e-4 | - | - | 0.5 | 0.6600 | 100 | 100 |" in md
    assert "| alone_plain_1e-3 | plain eager (plain model) | GPU X | alone | lr 0.001, wd 0 | 100 | 2.0 | 1.0 |" in md


def test_summary_refuses_a_run_without_logged_errors(tmp_path):
    (tmp_path / "alone_x").mkdir()
    (tmp_path / "alone_x" / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quick_mqar_summary.py"), str(tmp_path),
                           str(tmp_path / "s")], capture_output=True, text=True)
    assert done.returncode != 0 and "logs no error" in done.stderr and "Traceback" not in done.stderr


def test_plain_loop_trains_and_writes_its_log(tmp_path):
    out = tmp_path / "plain.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plain_mqar.py"), str(out), "--steps", "50",
                    "--batch", "2", "--score", "4", "--device", "cpu", "--weight-decay", "0.1"],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    record = json.loads(out.read_text())
    assert record["device"] == "cpu" and record["weight_decay"] == 0.1 and record["first_98"] is None
    assert [e["step"] for e in record["log"]] == [50] and 0.0 <= record["log"][0]["error"] <= 1.0
