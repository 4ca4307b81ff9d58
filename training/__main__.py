"""`python -m icl.training RUN_JSON --out DIR [--run ID] [--max-steps N] [--device D]`.

Trains one resolved run (a JSON file as `icl runs --json` writes, "-" for stdin).
`icl train` calls the same `train_run`. A diverged run still exits 0 (status.json
says "diverged") so the rest of a study goes on; user errors print one line, exit 2.
"""
from __future__ import annotations

import argparse
import sys

from icl.training.errors import RunError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icl.training", description=__doc__.splitlines()[0])
    parser.add_argument("run_file", help="resolved run(s) as JSON; '-' reads stdin")
    parser.add_argument("--run", dest="run_id", help="id of the run when the file holds several")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, metrics, model, status)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps (quick checks)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda[:i] (default: the run's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        from icl.training.runfile import load_run
        from icl.training.train import train_run

        run = load_run(args.run_file, args.run_id)
        status = train_run(run, args.out, max_steps=args.max_steps, device=args.device,
                           progress=not args.quiet)
    except RunError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"run {run['id']}: {status['state']} at step {status['step']}: {status['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
