"""Pick the quick-MQAR lr from a sweep's runs (benchmarks/gpu_check_run.sh).

Usage: python benchmarks/quick_mqar_pick.py SWEEP_SPEC RUNS_DIR OUT_JSON
Prints the chosen run's lr and position-table init std: the run whose logged error first
reaches <= 0.02 (fewest steps; the lowest final error where none does). Writes every run's
first step / wall_s at 98% and its last error to OUT_JSON.
"""

import json
import subprocess
import sys
from pathlib import Path

spec, runs_dir, out = sys.argv[1:4]
table = json.loads(subprocess.run([sys.executable, "-m", "icl.cli", "runs", spec, "--json"],
                                  check=True, capture_output=True, text=True).stdout)
rows = []
for run in table:
    path = Path(runs_dir) / run["id"] / "metrics.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    logged = [x for x in lines if x.get("error") is not None]
    hit = next((x for x in logged if x["error"] <= 0.02), None)
    rows.append({"id": run["id"], "lr": run["train"]["lr"],
                 "positions_init_std": run["model_config"].get("positions_init_std"),
                 "step_98": hit and hit["step"], "wall_s_98": hit and hit.get("wall_s"),
                 "last_error": logged[-1]["error"] if logged else None,
                 "last_step": logged[-1]["step"] if logged else None})
reached = [r for r in rows if r["step_98"] is not None]
best = (min(reached, key=lambda r: r["step_98"]) if reached
        else min((r for r in rows if r["last_error"] is not None), key=lambda r: r["last_error"]))
Path(out).write_text(json.dumps({"rows": rows, "chosen": best}, indent=1))
print(best["lr"], best["positions_init_std"] or "default")
