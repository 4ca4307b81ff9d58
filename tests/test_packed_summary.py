"""benchmarks/packed_summary.py: merges train_step.py JSONs into the packed engine's table; a
later file's row replaces an earlier one, and the ratios and targets come from the rows."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("packed_summary", ROOT / "benchmarks" / "packed_summary.py")
packed_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(packed_summary)


def row(arch, impl, pack, ms, precision="tf32", error=None):
    return {"device": "test GPU", "arch": arch, "task": "sparse_parity", "tokens": 280, "impl": impl,
            "batch": 64, "pack": pack, "precision": precision, "width": 128, "layers": "A F",
            "ms_per_step": ms, "mfu": None if ms is None else 0.01, **({"error": error} if error else {})}


def test_merge_and_ratios(tmp_path):
    first = [row("transformer", "eager_peer", 1, 20.0), row("transformer", "project", 1, 8.0),
             row("transformer", "project", 16, 9.9), row("transformer", "project", 64, None, error="OutOfMemoryError: x")]
    second = [row("transformer", "project", 16, 2.0)]  # redone: replaces the 9.9 row
    paths = []
    for name, rows in (("a.json", first), ("b.json", second)):
        (tmp_path / name).write_text(json.dumps(rows))
        paths.append(tmp_path / name)
    assert packed_summary.main([*map(str, paths), "--out", str(tmp_path / "out")]) == 0
    merged = json.loads((tmp_path / "out" / "train_step_packed.json").read_text())
    assert len(merged) == 4 and [r["ms_per_step"] for r in merged if r["pack"] == 16] == [2.0]
    md = (tmp_path / "out" / "train_step_packed.md").read_text()
    assert "# Packed training engine, test GPU" in md
    assert "| transformer | 20.00 | 8.00 | - | 2.00 | OOM | 1.0% | 10.0x | 4.0x |" in md
    assert "| transformer | 280 | <= 1.0 ms | 2.00 | - | 10.0x (target >= 10x) | 4.0x (target >= 5x) |" in md
