"""Pick the quick-MQAR lr from a sweep's runs (benchmarks/gpu_check_run.sh).

Usage: python benchmarks/quick_mqar_pick.py SWEEP_SPEC RUNS_DIR OUT_JSON
Prints the chosen run's lr: the run whose logged error first reaches <= 0.02 (fewest steps;
the lowest logged error where none does). Writes every run's crossing (report/
time_to_accuracy.py's) to OUT_JSON.
"""

import json
import subprocess
import sys
from pathlib import Path

from icl import runfolder
from icl.report.time_to_accuracy import crossings

spec, runs_dir, out = sys.argv[1:4]
table = json.loads(subprocess.run([sys.executable, "-m", "icl.cli", "runs", spec, "--json"],
                                  check=True, capture_output=True, text=True).stdout)
rows = []
for run in table:
    found = crossings(runfolder.read_metrics(Path(runs_dir) / run["id"]), (0.02,))
    if found is not None:
        rows.append({"id": run["id"], "lr": run["train"]["lr"], "step_98": found["thresholds"][0]["step"],
                     "best": found["best"], "last_step": found["last_step"]})
if not rows:
    sys.exit(f"error: no run of {spec} under {runs_dir} logged an error (train.log_error)")
reached = [r for r in rows if r["step_98"] is not None]
best = (min(reached, key=lambda r: r["step_98"]) if reached
        else min(rows, key=lambda r: r["best"]["error"]))
Path(out).write_text(json.dumps({"rows": rows, "chosen": best}, indent=1))
print(best["lr"])
