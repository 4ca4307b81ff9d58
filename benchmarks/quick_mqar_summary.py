"""Summarise the quick token-MQAR measurements (issue #26) as JSON and Markdown.

Usage: python benchmarks/quick_mqar_summary.py FOLDER OUT_STEM

FOLDER holds what the device calls brought back: a subfolder per pipeline run (its
metrics.jsonl, and status.json where there is one; else FOLDER/../device.txt names the GPU) and benchmarks/plain_mqar.py's JSON files
for the plain eager loop, each named by how it had the GPU: `alone_...` (to itself, as
benchmarks/quick_mqar_lone_run.sh runs them), `pack5_...` (in a pack of five: its wall times
are the pack's) or `shared4_...` (four processes at once). Writes OUT_STEM.json and OUT_STEM.md: for each, the first logged step and
training wall time at error <= 2% (98% accuracy), the best error, the last step.
"""

import json
import sys
from pathlib import Path

from icl import runfolder
from icl.report.time_to_accuracy import crossings


GPU_USE = {"alone": "alone", "pack5": "pack of 5", "shared4": "shared by 4 processes"}


def gpu_use(name: str) -> str:
    """How the run had the GPU, from its name's prefix (alone_, pack5_, shared4_)."""
    prefix = name.partition("_")[0]
    if prefix not in GPU_USE:
        sys.exit(f"error: {name}: the name must start with one of {', '.join(p + '_' for p in GPU_USE)}")
    return GPU_USE[prefix]


def pipeline_row(folder: Path, device: str | None) -> dict:
    """device: the GPU's name where the run has no status.json (a run its call's time limit cut)."""
    metrics = runfolder.read_metrics(folder)
    found = crossings(metrics, (0.02,))
    if found is None:
        sys.exit(f"error: {folder}/metrics.jsonl logs no error (train.log_error)")
    status_path = folder / "status.json"
    status = json.loads(status_path.read_text()) if status_path.exists() else {}
    last = metrics[-1]
    hit = found["thresholds"][0]
    return {"name": folder.name, "loop": "pipeline", "gpu": gpu_use(folder.name),
            "setting": folder.name.partition("_")[2], "step_98": hit["step"], "wall_98_s": hit["wall_s"],
            "best_error": found["best"]["error"], "last_step": found["last_step"],
            "steps_per_s": status.get("steps_per_s", last["step"] / last["wall_s"]),
            "first_log_s": metrics[0]["wall_s"], "device": status.get("device", device)}


def plain_row(path: Path) -> dict:
    record = json.loads(path.read_text())
    found = crossings(record["log"], (0.02,))
    hit = found["thresholds"][0]
    log = record["log"]
    return {"name": path.stem, "loop": f"plain eager ({record['model']} model)", "gpu": gpu_use(path.stem),
            "setting": f"lr {record['lr']:g}, wd {record.get('weight_decay', 0):g}",
            "step_98": hit["step"], "wall_98_s": hit["wall_s"], "best_error": found["best"]["error"],
            "last_step": found["last_step"], "steps_per_s": log[-1]["step"] / log[-1]["wall_s"],
            "first_log_s": log[0]["wall_s"], "device": record["device"]}


def cell(value, digits=1):
    return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def main() -> None:
    folder, stem = Path(sys.argv[1]), sys.argv[2]
    device_file = folder.parent / "device.txt"   # benchmarks/quick_mqar_lone_run.sh writes it
    device = device_file.read_text().strip() if device_file.exists() else None
    rows = [pipeline_row(d, device) for d in sorted(folder.iterdir()) if d.is_dir()]
    rows += [plain_row(p) for p in sorted(folder.glob("*.json"))]
    Path(f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    devices = ", ".join(sorted({r["device"] for r in rows if r["device"]}))
    lines = [f"# Quick token MQAR (specs/quick/mqar.icl's task and model), {devices}", "",
             "Error <= 2% is 98% accuracy on 256 fresh prompts, scored every 50 steps; training "
             "seconds are the pipeline's metrics wall_s (from the start of training: CUDA-graph capture "
             "and the error scoring included) and, for the plain loop, from the end of its first "
             "step. \"s at first log\" is that clock at the first logged step (50): for the pipeline "
             "it holds the start (Triton compiles on a fresh machine, CUDA-graph capture), which the "
             "plain loop's clock leaves out. A pack of 5 or a GPU shared by 4 processes makes the "
             "wall times longer; steps are comparable.", "",
             "| run | loop | device | GPU | setting | step at 98% | training s at 98% | s at first log "
             "| best error | last step | steps/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['loop']} | {r['device'] or '?'} | {r['gpu']} | {r['setting']} "
                     f"| {cell(r['step_98'])} | {cell(r['wall_98_s'])} | {cell(r['first_log_s'])} "
                     f"| {cell(r['best_error'], 4)} | {r['last_step']} "
                     f"| {cell(r['steps_per_s'], 0)} |")
    Path(f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
