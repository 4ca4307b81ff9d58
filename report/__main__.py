"""`python -m icl.report RUNS_JSON --runs-dir DIR --out DIR [--title T] [--task TASK --png FILE]`.

Builds the report of the runs in RUNS_JSON (as `icl runs --json` writes, "-" for
stdin) from their folders under --runs-dir; with --task and --png, draws that
task's plot only. User errors print one line and exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from icl.errors import IclError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icl.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_file", help="resolved runs as JSON ('icl runs --json'); '-' reads stdin")
    parser.add_argument("--runs-dir", required=True, help="folder holding one folder per run id")
    parser.add_argument("--out", help="report folder (report.html, report.md, table1.json, plots/)")
    parser.add_argument("--title", default="In-context learning study")
    parser.add_argument("--task", help="draw only this task's plot (needs --png)")
    parser.add_argument("--png", help="where --task's plot goes")
    args = parser.parse_args(argv)
    try:
        from icl.report.build import ReportError, build_report, plot_only

        text = sys.stdin.read() if args.run_file == "-" else _read(args.run_file)
        try:
            runs = json.loads(text)
        except json.JSONDecodeError as error:
            raise ReportError(f"{args.run_file} is not JSON ({error}); use `icl runs --json`") from None
        if args.task:
            if not args.png:
                raise ReportError("--task needs --png FILE")
            print(plot_only(runs, Path(args.runs_dir), args.task, Path(args.png)))
            return 0
        if not args.out:
            raise ReportError("give --out DIR (or --task with --png)")
        paths = build_report(runs, Path(args.runs_dir), Path(args.out), args.title)
    except IclError as error:
        print(error, file=sys.stderr)
        return 2
    print(paths["html"])
    return 0


def _read(path: str) -> str:
    from icl.report.build import ReportError

    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ReportError(f"cannot read {path}: {error.strerror}") from None


if __name__ == "__main__":
    sys.exit(main())
