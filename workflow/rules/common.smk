# The run table of the selected specs, read once when the workflow is parsed.
import os.path

from icl.errors import IclError
from icl.compiler.runs import runs_of

def _spec_path(scale):
    # Relative when run from the checkout, so moving the checkout changes no rule's params.
    path = os.path.join(workflow.basedir, "specs", scale, "study.icl")
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


SCALE_SPECS = {scale: [_spec_path(scale)] for scale in ("smoke", "reduced", "paper")}
SPECS = list(config["specs"]) or SCALE_SPECS[config["scale"]]
RUNS_DIR = os.path.normpath(config["runs_dir"])
RESULTS = os.path.normpath(config["results_dir"] or f"results/{config['scale']}")
# Scales whose training needs a GPU: the scheduler (SLURM profile) asks for one.
GPUS_PER_TRAIN = 0 if config["scale"] == "smoke" and config["device"] != "cuda" else 1
# `--device X` for icl train/eval when the config overrides the specs' device.
DEVICE_OPTION = f"--device {config['device']}" if config["device"] else ""

try:
    RUNS = runs_of(SPECS)
except IclError as error:
    sys.exit(str(error))  # the spec's own positioned message, no traceback

RUN_BY_ID = {run["id"]: run for run in RUNS}
TASKS = sorted({run["task"] for run in RUNS})


def eval_path(run):
    return f"{RUNS_DIR}/{run['id']}/eval-{run['eval_id']}.json"


def evals_of(task):
    return sorted({eval_path(r) for r in RUNS if r["task"] == task})


def spec_of(run_id, eval_id=None):
    for run in RUNS:
        if run["id"] == run_id and (eval_id is None or run["eval_id"] == eval_id):
            return run["spec"]
    raise ValueError(f"no run {run_id} with evaluation {eval_id} in {SPECS}")
