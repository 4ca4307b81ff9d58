"""`python -m icl.evaluation RUN_JSON --run-dir DIR --out FILE [--run ID] [--device D] [--prompts N]`.

Evaluates one trained run (a JSON file as `icl runs --json` writes, "-" for stdin);
`icl eval` calls the same `evaluate_run`. User errors print one line and exit 2.
"""
from __future__ import annotations

import argparse
import sys

from icl.training.errors import RunError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icl.evaluation", description=__doc__.splitlines()[0])
    parser.add_argument("run_file", help="resolved run(s) as JSON; '-' reads stdin")
    parser.add_argument("--run", dest="run_id", help="id of the run when the file holds several")
    parser.add_argument("--run-dir", required=True, help="the run's training folder (model.pt, status.json)")
    parser.add_argument("--out", required=True, help="evaluation JSON to write")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda[:i] (default: the run's)")
    parser.add_argument("--prompts", type=int, default=None, help="override eval.prompts")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        from icl.evaluation.evaluate import evaluate_run
        from icl.training.runfile import load_run

        run = load_run(args.run_file, args.run_id)
        result = evaluate_run(run, args.run_dir, args.out, device=args.device, prompts=args.prompts,
                              progress=not args.quiet)
    except RunError as error:
        print(error, file=sys.stderr)
        return 2
    summary = result.get("summary") or {}
    print(f"run {run['id']}: {result['state']}; model tail error {summary.get('model_tail')}; "
          f"best baseline {summary.get('best_baseline')} {summary.get('best_baseline_tail')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
