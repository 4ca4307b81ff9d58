"""The packed engine's benchmark table (issue #24): merges the JSONs of several
benchmarks/train_step.py runs (each a shape: the reduced study's linear regression and sparse
parity, the paper's width) into train_step_packed.{json,md}, with the targets read off them.

    python benchmarks/packed_summary.py RUN.json [RUN.json ...] --out benchmarks/results

A later file's row replaces an earlier one of the same (arch, task, width, impl, K, precision).
Torch-free: it reads only the JSONs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ARCHS = ("transformer", "mamba", "s4", "s4_mamba", "standard_hybrid", "mambaformer")
PACKS = (1, 4, 16, 64)
# Targets of issue #24 at the reduced shape (ms per step per run at K = 16).
TARGET_MS = {"transformer": 1.0, "mamba": 3.0, "mambaformer": 3.0}


def merge(paths: list[Path]) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for path in paths:
        for r in json.loads(path.read_text()):
            rows[(r["arch"], r["task"], r["width"], r["impl"], r["pack"], r["precision"])] = r
    rank = {arch: i for i, arch in enumerate(ARCHS)}
    return sorted(rows.values(), key=lambda r: (r["width"], r["tokens"], rank.get(r["arch"], 99),
                                                r["impl"], r["precision"], r["pack"]))


def find(rows: list[dict], arch: str, task: str, width: int, impl: str, pack: int, precision: str) -> dict | None:
    for r in rows:
        if (r["arch"], r["task"], r["width"], r["impl"], r["pack"], r["precision"]) == (arch, task, width, impl, pack, precision):
            return r
    return None


def ms(rows: list[dict], arch: str, task: str, width: int, impl: str, pack: int, precision: str):
    r = find(rows, arch, task, width, impl, pack, precision)
    return (r.get("ms_per_step"), r.get("mfu"), r.get("error")) if r else (None, None, None)


def cell(value, fmt="{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def provenance(rows: list[dict]) -> list[str]:
    """Which code each group of rows was measured with (train_step.py --code)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r.get("code") or "not recorded (earlier runs, before train_step.py --code)", []).append(r)
    if len(groups) == 1 and "code" not in rows[0]:
        return []
    lines = ["Code of the rows:", ""]
    for code, members in groups.items():
        tasks = ", ".join(sorted({r["task"] for r in members}))
        packs = ", ".join(str(k) for k in sorted({r["pack"] for r in members}))
        precisions = ", ".join(sorted({r["precision"] for r in members}))
        impls = ", ".join(sorted({r["impl"] for r in members}))
        lines.append(f"- {code}: {len(members)} rows ({tasks}; {impls}; K {packs}; {precisions})")
    return lines + [""]


def markdown(rows: list[dict]) -> str:
    device = rows[0]["device"]
    shapes = sorted({(r["width"], r["task"], r["tokens"]) for r in rows}, key=lambda s: (s[0], s[2]))
    lines = [f"# Packed training engine, {device}", "",
             "ms per training step of one run (a pack's step time / K), batch 64, prompts at the "
             "curriculum's final sizes, whole-step CUDA graphs; a pack of K runs is one stacked model "
             "(training/engine.py). peer = transformers' GPT2Model / mamba_ssm's Mamba modules, eager, "
             "at the row's precision. mfu against the dense peak of the precision (H100 and H200 SXM: TF32 495, "
             "bf16 989 TFLOP/s). Measured by benchmarks/train_step.py (one process per shape, median of "
             "3 blocks), merged by benchmarks/packed_summary.py; every row's figures are in "
             "train_step_packed.json.", ""] + provenance(rows)
    for width, task, tokens in shapes:
        archs = [a for a in ARCHS if any(r["arch"] == a and r["task"] == task and r["width"] == width for r in rows)]
        lines += [f"## width {width}, {task} ({tokens} tokens)", "",
                  "| arch | peer tf32 | K=1 | K=4 | K=16 | K=64 | mfu K=16 | K=16 vs peer | K=16 vs K=1 | "
                  "peer bf16 | bf16 K=1 | bf16 K=16 | compiled K=1 | compiled K=16 |",
                  "|" + " --- |" * 14]
        for arch in archs:
            get = lambda impl, k, p="tf32": ms(rows, arch, task, width, impl, k, p)  # noqa: E731
            # a project cell measured with other code than the K=16 tf32 cell is starred
            newest = (find(rows, arch, task, width, "project", 16, "tf32") or {}).get("code")

            def mark(text, impl, k, p="tf32"):
                r = find(rows, arch, task, width, impl, k, p)
                stale = r and impl != "eager_peer" and newest is not None and r.get("code") != newest
                return text + "*" if stale else text
            peer = get("eager_peer", 1)[0]
            by_k = {k: get("project", k) for k in PACKS}
            k16, k1 = by_k[16][0], by_k[1][0]
            packs = [mark(cell(v) if v is not None else ("OOM" if e and "OutOfMemory" in e else "-"), "project", k)
                     for k, (v, _, e) in by_k.items()]
            lines.append(
                f"| {arch} | {cell(peer)} | " + " | ".join(packs)
                + f" | {cell(by_k[16][1] and 100 * by_k[16][1], '{:.1f}%')}"
                + f" | {cell(peer / k16 if peer and k16 else None, '{:.1f}x')}"
                + f" | {cell(k1 / k16 if k1 and k16 else None, '{:.1f}x')}"
                + f" | {cell(get('eager_peer', 1, 'bf16')[0])}"
                + f" | {mark(cell(get('project', 1, 'bf16')[0]), 'project', 1, 'bf16')}"
                + f" | {mark(cell(get('project', 16, 'bf16')[0]), 'project', 16, 'bf16')}"
                + f" | {mark(cell(get('project_compiled', 1)[0]), 'project_compiled', 1)}"
                + f" | {mark(cell(get('project_compiled', 16)[0]), 'project_compiled', 16)} |")
        if any("*" in line for line in lines[-len(archs):]):
            lines += ["", "\\* measured with other (earlier) code than the row's K=16 tf32 cell: see Code of the rows."]
        lines.append("")
    lines += ["## Targets (issue #24: H200, reduced shape, per run)", "",
              "| arch | tokens | target K=16 | tf32 K=16 | bf16 K=16 | best vs peer (same precision) | K=16 vs K=1 (tf32) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for width, task, tokens in shapes:
        if width != 128:
            continue
        for arch in ARCHS:
            tf32, bf16 = ms(rows, arch, task, width, "project", 16, "tf32")[0], ms(rows, arch, task, width, "project", 16, "bf16")[0]
            if tf32 is None:
                continue
            k1 = ms(rows, arch, task, width, "project", 1, "tf32")[0]
            ratios = [peer / ours for peer, ours in
                      ((ms(rows, arch, task, width, "eager_peer", 1, p)[0], o) for p, o in (("tf32", tf32), ("bf16", bf16)))
                      if peer and ours]
            target = TARGET_MS.get(arch)
            lines.append(f"| {arch} | {tokens} | {cell(target, '<= {:.1f} ms')} | {cell(tf32)} | {cell(bf16)} | "
                         f"{cell(max(ratios) if ratios else None, '{:.1f}x')} (target >= 10x) | "
                         f"{cell(k1 / tf32 if k1 else None, '{:.1f}x')} (target >= 5x) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="train_step.py JSONs, in order")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    rows = merge(args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_step_packed.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "train_step_packed.md").write_text(markdown(rows))
    print(f"wrote {args.out / 'train_step_packed.json'} and {args.out / 'train_step_packed.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
