"""Table of benchmarks/mqar_bisect_run.sh's variants: steps (and shared-GPU seconds) to 98%.

    python benchmarks/mqar_bisect_summary.py FOLDER   (the *.json of benchmarks/plain_mqar.py)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    folder = Path(sys.argv[1])
    device = (folder / "device.txt").read_text().strip() if (folder / "device.txt").exists() else "?"
    print(f"device: {device}\n")
    print("| variant | model | seed | embedding std | block init | plain's weights | exact numerics | attention | step to 98% | s (shared GPU) | last error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted(folder.glob("*.json")):
        r = json.loads(path.read_text())
        hit = r["first_98"]
        last = r["log"][-1] if r["log"] else {}
        print(f"| {path.stem} | {r['model']} | {r.get('seed', 0)} | {r.get('embedding_std') or 'default'} | "
              f"{r.get('block_init', 'ours')} | {r.get('weights_from_plain', False)} | "
              f"{r.get('exact_numerics', False)} | {r.get('attention', 'auto')} | {hit['step'] if hit else 'not reached'} | "
              f"{hit['wall_s'] if hit else last.get('wall_s', 0):.1f} | {last.get('error', float('nan')):.3f} |")


if __name__ == "__main__":
    main()
