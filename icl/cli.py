"""The `icl` command: check, format, list and compare specs; train and evaluate runs.

User mistakes (a bad spec, a missing file, an unknown run) print one positioned
message on stderr and exit with status 2; nothing is written.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from icl.errors import IclError
from icl.run import Run

# The specs `icl train` and `icl eval` read when no SOURCE is given (set by the pipeline).
SPECS_ENV = "ICL_SPECS"
SOURCE_HELP = (f"a .icl spec, or a JSON run table (icl runs --json; - for stdin); default: "
               f"the specs in ${SPECS_ENV} ({os.pathsep}-separated)")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except IclError as e:
        print(str(e), file=sys.stderr)
        return 2
    except BrokenPipeError:  # `icl runs --json | head` (before OSError, of which it is one)
        return 0
    except OSError as e:  # a path the user gave cannot be read or written
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="icl", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="validate specs and print their table of runs")
    c.add_argument("files", nargs="+", metavar="FILE")
    _spec_options(c)
    c.set_defaults(handler=cmd_check)

    f = sub.add_parser("fmt", help="print a spec in canonical form")
    f.add_argument("file", metavar="FILE")
    f.add_argument("--write", action="store_true", help="rewrite the file in place (atomically)")
    f.set_defaults(handler=cmd_fmt)

    r = sub.add_parser("runs", help="print the runs of specs")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--json", action="store_true", help="a JSON array, one object per run")
    _spec_options(r)
    r.set_defaults(handler=cmd_runs)

    d = sub.add_parser("diff", help="which runs spec B adds, removes or changes relative to spec A")
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    _spec_options(d)
    d.set_defaults(handler=cmd_diff)

    t = sub.add_parser("train", help="train runs of a spec (several --run: one packed process)")
    t.add_argument("source", metavar="SOURCE", nargs="?", help=SOURCE_HELP)
    t.add_argument("--run", action="append", metavar="ID",
                   help="run id or unique prefix; repeat to train runs as one pack (default: SOURCE's only run)")
    where = t.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="DIR", help="the run's folder (one run)")
    where.add_argument("--runs-dir", metavar="DIR",
                       help="each run trains into DIR/<run id>/; without --run, every run of SOURCE "
                            "(grouped as --pack auto unless --pack or --one-by-one says otherwise)")
    t.add_argument("--max-steps", type=int, metavar="N",
                   help="stop after N steps (quick checks): trains into a scratch folder unless --force")
    t.add_argument("--force", action="store_true",
                   help="with --max-steps: train into the --out / --runs-dir folder itself")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default=os.environ.get("ICL_DEVICE") or None,
                   help="override the spec's device (default: $ICL_DEVICE)")
    t.add_argument("--one-by-one", action="store_true",
                   help="train the --run runs one after another in this process, each alone (runs of "
                        "any shapes; the pipeline's batches on a CPU), instead of as one pack")
    t.add_argument("--pack", metavar="auto|off|N",
                   help="group the runs (the --run ones, else every run of SOURCE) into packs of runs "
                        "that may share one (same model, task and schedule) and train them pack after "
                        "pack: auto = the pipeline's rule (on a GPU, up to 16 runs of models that pack "
                        "well; on a CPU, none), off, or at most N runs a pack")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(handler=cmd_train)

    e = sub.add_parser("eval", help="evaluate trained runs of a spec")
    e.add_argument("source", metavar="SOURCE", nargs="?", help=SOURCE_HELP)
    e.add_argument("--run", action="append", metavar="ID",
                   help="run id or unique prefix (default: SOURCE's only run); repeat with --runs-dir to "
                        "evaluate several runs one after another in this process")
    e.add_argument("--eval-id", action="append", metavar="EID",
                   help="which evaluation settings, when a run has several: one per --run, in order")
    e.add_argument("--run-dir", metavar="DIR", help="the trained run's folder (one run, with --out)")
    e.add_argument("--out", metavar="FILE", help="where to write the evaluation JSON (one run)")
    e.add_argument("--runs-dir", metavar="DIR",
                   help="instead of --run-dir and --out: each run's folder is DIR/<run id>, its "
                        "evaluation DIR/<run id>/eval-<eval id>.json; without --run, every run of SOURCE")
    e.add_argument("--prompts", type=int, metavar="N", help="override the number of prompts")
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default=os.environ.get("ICL_DEVICE") or None,
                   help="override the spec's device (default: $ICL_DEVICE)")
    e.add_argument("--baseline-cache", metavar="DIR",
                   help="a folder where baselines' errors are kept for the other runs evaluated on the "
                        "same prompts (the pipeline's: RUNS_DIR/baselines; default: none)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(handler=cmd_eval)
    pl = sub.add_parser("plot", help="the ICL-curve figure of one task (pipeline step)")
    pl.add_argument("files", nargs="+", metavar="SPEC")
    pl.add_argument("--task", required=True)
    pl.add_argument("--runs-dir", required=True, metavar="DIR")
    pl.add_argument("--out", required=True, metavar="PNG")
    pl.set_defaults(handler=cmd_plot)

    st = sub.add_parser("status", help="where a study stands: each run evaluated, trained, in progress or not started")
    st.add_argument("files", nargs="+", metavar="SPEC")
    st.add_argument("--runs-dir", metavar="DIR",
                    help="the runs folder (default: results/<scale>/runs beside specs/<scale>/ if it "
                         "exists, else ./runs, the pipeline's default)")
    st.add_argument("--json", action="store_true", help="one JSON object per run instead of the table")
    st.set_defaults(handler=cmd_status)
    rp = sub.add_parser("report", help="the HTML and Markdown report and table1.json (pipeline step)")
    rp.add_argument("files", nargs="+", metavar="SPEC")
    rp.add_argument("--runs-dir", required=True, metavar="DIR")
    rp.add_argument("--out", required=True, metavar="DIR")
    rp.add_argument("--title", default="ICL study")
    rp.add_argument("--compare", action="store_true",
                    help="compare two specs, SPEC A then B: their cells side by side, the difference with its "
                         "interval, the spec diff (OUT/compare.html and compare.md)")
    rp.set_defaults(handler=cmd_report)
    return p


def _spec_options(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that resolve specs (docs/input-limits.md)."""
    parser.add_argument("--max-runs", type=int, metavar="N",
                        help="refuse specs of more than N runs (default: $ICL_MAX_RUNS, else 10000)")
    parser.add_argument("--allow-outside", action="store_true",
                        help="let imports leave the spec's project folder (default: $ICL_ALLOW_OUTSIDE)")


def _runs(files: list[str], args=None) -> list[Run]:
    from icl.compiler.runs import runs_of

    return runs_of(files, max_runs=getattr(args, "max_runs", None),
                   allow_outside=getattr(args, "allow_outside", None),
                   progress=lambda message: print(message, file=sys.stderr, flush=True))


def cmd_check(args) -> int:
    runs = _runs(args.files, args)
    rows = [("id", "experiment", "model", "params", "task", "seed", "sweep", "layers")]
    for r in runs:
        sweep = " ".join(f"{k}={v}" for k, v in r.sweep.items()) or "-"
        tokens = r.layers.split()
        layers = r.layers if len(r.layers) <= 32 else f"{r.layers[:28]}... ({len(tokens)} layers)"
        rows.append((r.id, r.experiment, r.model, _human(r.params), r.task, str(r.seed),
                     sweep, layers))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f"{len(runs)} runs in {len(args.files)} file(s): ok")  # the summary is output; stderr is diagnostics
    return 0


def _human(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def cmd_fmt(args) -> int:
    from icl.dsl import format_spec, parse, read_source

    source = read_source(args.file)  # a regular file only: never a FIFO or device
    text = format_spec(parse(source, args.file))
    if args.write:
        if text != source:  # an already canonical file is left alone, its mtime too
            _write_in_place(args.file, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return 0


def _write_in_place(path: str, data: bytes) -> None:
    """Replace the file `path` names by `data`, atomically: through a symlink to its target, with the
    target's mode; a read-only file is refused. The one file ever deleted is the temporary made here."""
    import stat
    import tempfile

    target = os.path.realpath(path)
    info = os.stat(target)
    if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(target, os.W_OK):
        raise IclError(f"{path} is read-only: not rewritten", "make it writable (chmod u+w) or drop --write")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".fmt.tmp",
                               dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), stat.S_IMODE(info.st_mode))
            if info.st_uid != os.geteuid():
                try:  # as root, formatting someone's file leaves it theirs
                    os.fchown(f.fileno(), info.st_uid, info.st_gid)
                except PermissionError:
                    pass  # not root: the file becomes ours, as any editor's save would make it
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def cmd_runs(args) -> int:
    runs = _runs(args.files, args)
    if args.json:
        json.dump([r.to_dict() for r in runs], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for r in runs:
            print(r.id, r.experiment, r.model, r.task, r.seed)
    return 0


def cmd_status(args) -> int:
    from icl.report.progress import render_progress, study_progress, summary

    runs = _runs(args.files)
    runs_dir = Path(args.runs_dir) if args.runs_dir else _default_runs_dir(args.files)
    rows = study_progress(runs, runs_dir)  # a runs folder that is not there is an error
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        print(summary(rows), file=sys.stderr)
    else:
        print(render_progress(rows))
    return 0


def _default_runs_dir(specs: list[str]) -> Path:
    """Where a spec's results live: results/<scale>/runs of the checkout holding
    specs/<scale>/SPEC (the reduced study's committed runs), else ./runs (the pipeline's)."""
    spec = Path(specs[0]).resolve()
    candidates = []
    if spec.parent.parent.name == "specs":
        candidates.append(spec.parent.parent.parent / "results" / spec.parent.name / "runs")
    candidates.append(Path("runs"))
    for folder in candidates:
        if folder.is_dir():
            print(f"runs folder: {folder} (--runs-dir to pick another)", file=sys.stderr)
            return folder
    raise IclError("no runs folder: looked in " + " and ".join(map(str, candidates)),
                   "give --runs-dir DIR, the folder holding one folder per run id")


def cmd_diff(args) -> int:
    from icl.compiler.diff import diff_runs, render_diff

    print(render_diff(diff_runs(_runs([args.a], args), _runs([args.b], args))))
    return 0


def _run_source(args) -> str | list[str]:
    """SOURCE, else the specs in $ICL_SPECS (the pipeline's: a study's spec paths are where
    to find a run, not what it is, so they reach jobs outside the rules' tracked params)."""
    if args.source:
        return args.source
    specs = [p for p in os.environ.get(SPECS_ENV, "").split(os.pathsep) if p]
    if not specs:
        raise IclError(f"icl {args.command}: give SOURCE (a .icl spec or a JSON run table) or set {SPECS_ENV}")
    return specs


def cmd_train(args) -> int:
    from icl.training.runfile import load_runs, load_table

    if args.pack is not None and args.one_by_one:
        raise IclError("--pack and --one-by-one are two ways to group runs: give one")
    # --runs-dir without --run: every run of the source, grouped as --pack says (default auto)
    if not args.run and args.out is None:
        runs = load_table(_run_source(args))[0]
        if args.pack is None and not args.one_by_one and len(runs) > 1:
            args.pack = "auto"
    else:
        runs = load_runs(_run_source(args), args.run)
    if args.out is not None and len(runs) > 1:
        raise IclError("--out is the folder of one run; give --runs-dir DIR to train several")
    folders = [Path(args.out)] if args.out else [Path(args.runs_dir) / r.id for r in runs]
    if args.force and args.max_steps is None:
        raise IclError("--force only goes with --max-steps")
    if args.max_steps is not None and not args.force:
        # A capped run is a quick check, not a result: keep it out of the real run folders.
        import tempfile

        scratch = Path(tempfile.gettempdir()) / "icl-scratch"
        folders = [scratch / f"{r.id}-max-steps-{args.max_steps}" for r in runs]
        print(f"note: --max-steps: training into scratch folder(s) {', '.join(map(str, folders))}, "
              f"not {args.out or args.runs_dir} (--force trains there)", file=sys.stderr)
    folder_of = {r.id: folder for r, folder in zip(runs, folders)}
    if args.pack is not None:
        from icl.training.grouping import group_for_training

        groups = group_for_training(runs, args.pack, _trains_on_gpu(runs, args.device))
    elif args.one_by_one:
        groups = [[run] for run in runs]
    else:
        groups = [runs]  # one run, or the --run runs as one pack
    progress = not args.no_progress
    failed = []
    for group in groups:
        try:
            statuses = _train_group(group, [folder_of[r.id] for r in group], args, progress)
        except Exception as error:  # the other groups still train; the command fails at the end
            if len(groups) == 1:
                raise
            names = ", ".join(r.id for r in group)
            if isinstance(error, IclError):  # a user mistake: its one line
                print(f"error: run(s) {names}: {error}", file=sys.stderr)
            else:  # a defect: its traceback, then one line naming the runs
                import traceback

                traceback.print_exc()
                print(f"error: run(s) {names}: internal error ({type(error).__name__}: {error}); "
                      "the other runs go on", file=sys.stderr)
            failed += [r.id for r in group]
            continue
        for run, status in zip(group, statuses):
            _print_trained(run, folder_of[run.id], status)
    if failed:
        raise IclError(f"{len(failed)} of {len(runs)} runs failed: {', '.join(failed)} (their errors above)")
    return 0


def _train_group(group: list[Run], folders: list[Path], args, progress: bool) -> list[dict]:
    """Train one run alone, or several as one pack; their statuses."""
    if len(group) == 1:
        from icl.training.train import train_run

        return [train_run(group[0], folders[0], max_steps=args.max_steps, device=args.device,
                          progress=progress)]
    from icl.training.pack import train_pack

    return train_pack(group, folders, max_steps=args.max_steps, device=args.device, progress=progress)


def _trains_on_gpu(runs: list[Run], device: str | None) -> bool:
    """Whether training will run on a GPU: --device, else the runs' train.device (auto: CUDA
    when one is visible)."""
    wanted = device or runs[0].train.get("device", "auto")
    if wanted != "auto":
        return wanted == "cuda"
    import torch

    return torch.cuda.is_available()


def _print_trained(run: Run, folder: Path, status: dict) -> None:
    # A diverged run is a result, not an error: the rest of the study goes on (exit 0).
    print(f"{folder}: run {run.id} {status['state']} at step {status['step']}: {status['message']}",
          file=sys.stderr)


def cmd_eval(args) -> int:
    from icl.evaluation.evaluate import evaluate_run
    from icl.training.runfile import load_table, select_runs

    ids, eval_ids = args.run or [], args.eval_id or []
    if args.runs_dir is None:
        if args.run_dir is None or args.out is None:
            raise IclError("icl eval needs --run-dir and --out (one run), or --runs-dir")
        if len(ids) > 1 or len(eval_ids) > 1:
            raise IclError("--run-dir and --out are one run's; give --runs-dir DIR to evaluate several")
    elif args.run_dir is not None or args.out is not None:
        raise IclError("--runs-dir replaces --run-dir and --out; give one or the other")
    if eval_ids and len(eval_ids) != max(1, len(ids)):
        raise IclError(f"{len(eval_ids)} --eval-id for {len(ids)} --run: give one per run, in order")
    pairs = list(zip(ids or [None], eval_ids or [None] * max(1, len(ids))))
    table = load_table(_run_source(args))  # specs resolved once for all the runs
    jobs = []
    # --runs-dir without --run: every run of the source (each of its evaluation settings)
    chosen = table[0] if args.runs_dir is not None and not ids and not eval_ids else \
        [select_runs(*table, [run_id] if run_id else None, eval_id)[0] for run_id, eval_id in pairs]
    for run in chosen:
        if args.runs_dir is None:
            jobs.append((run, Path(args.run_dir), Path(args.out)))
        else:
            folder = Path(args.runs_dir) / run.id
            jobs.append((run, folder, folder / f"eval-{run.eval_id}.json"))
    if args.prompts is not None:
        for run, _, out in jobs:
            planned = run.eval.get("prompts")
            if args.prompts != planned and out.name == f"eval-{run.eval_id}.json":
                # That name says "the spec's evaluation": the pipeline and the report read it as such.
                raise IclError(f"--prompts {args.prompts} differs from the spec's eval prompts ({planned}), but "
                               f"{out} is the spec's evaluation file", "write the override to another --out")
    failed = []
    together = [run.id for run, _, _ in jobs]  # recorded in each file (the pipeline's batches)
    for run, folder, out in jobs:
        try:
            evaluate_run(run, folder, out, device=args.device, prompts=args.prompts,
                         progress=not args.no_progress, evaluated_with=together,
                         baseline_cache=Path(args.baseline_cache) if args.baseline_cache else None)
        except IclError as error:  # the other runs still get evaluated; the job fails at the end
            if len(jobs) == 1:
                raise
            print(f"error: {out}: run {run.id}: {error}", file=sys.stderr)
            failed.append(run.id)
    if failed:
        raise IclError(f"{len(failed)} of {len(jobs)} evaluations failed: {', '.join(failed)} (their errors above)")
    return 0


def cmd_plot(args) -> int:
    from icl.report.build import plot_only

    plot_only(_runs(args.files), Path(args.runs_dir), args.task, Path(args.out))
    return 0


def cmd_report(args) -> int:
    from icl.report.build import build_report

    if args.compare:
        from icl.compiler.diff import diff_runs, render_diff
        from icl.report.compare import build_comparison

        if len(args.files) != 2:
            raise IclError(f"--compare compares two specs, A and B; got {len(args.files)}")
        a, b = _runs(args.files[:1]), _runs(args.files[1:])
        build_comparison(a, b, Path(args.runs_dir), Path(args.out), args.files, render_diff(diff_runs(a, b)))
        return 0
    # The pipeline has drawn the plots already (one rule per task); the report embeds them.
    build_report(_runs(args.files), Path(args.runs_dir), Path(args.out), args.title, replot=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
