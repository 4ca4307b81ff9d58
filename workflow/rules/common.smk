# The run table of the selected specs, read once when the workflow is parsed.
import os.path
import shlex

from icl.errors import IclError
from icl.compiler.runs import runs_of

def _spec_path(scale):
    # Relative when run from the checkout, so moving the checkout changes no rule's params.
    path = os.path.join(workflow.basedir, "specs", scale, "study.icl")
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


SCALE_SPECS = {scale: [_spec_path(scale)] for scale in ("smoke", "reduced", "paper")}
SPECS = list(config["specs"]) or SCALE_SPECS[config["scale"]]
for _spec in SPECS:  # jobs get the specs as one os.pathsep-joined ICL_SPECS
    if os.pathsep in _spec:
        sys.exit(f"error: config specs: {_spec!r} contains {os.pathsep!r}; rename or move the file")
# The report's title names its specs where they are not the scale's study (a probe, a subset),
# and the scale where it says what they are: smoke, the default, is left out for given specs
# (a GPU study such as specs/zoo.icl run without naming a scale is not a smoke check).
if SPECS == SCALE_SPECS[config["scale"]]:
    REPORT_TITLE = f"ICL study ({config['scale']} scale)"
else:
    _scale = "" if config["scale"] == "smoke" else f" ({config['scale']} scale)"
    REPORT_TITLE = f"ICL study{_scale}: " + ", ".join(os.path.basename(spec) for spec in SPECS)
RUNS_DIR = os.path.normpath(config["runs_dir"])
# The specs as shell words for the plot and report commands (paths may hold spaces; every
# other path in the rules' commands is quoted with :q).
SPECS_ARGS = " ".join(shlex.quote(spec) for spec in SPECS)

# Jobs find `icl` and `python` beside the Python running Snakemake (e.g. .venv/bin), so
# `.venv/bin/snakemake` works without activating the environment.
# The config's device and the specs' paths reach icl train/eval through ICL_DEVICE and
# ICL_SPECS, not rule parameters: a run is named by its id, and where it runs or which file
# defines it is not what it is, so switching devices or renaming or moving a spec file
# re-runs nothing already trained or evaluated.
_device = f" ICL_DEVICE={config['device']}" if config["device"] else ""
shell.prefix(f'export PATH="{os.path.dirname(sys.executable)}:$PATH"{_device}'
             f' ICL_SPECS={shlex.quote(os.pathsep.join(SPECS))}; ')

RESULTS = os.path.normpath(config["results_dir"] or f"results/{config['scale']}")
# Whether training runs on a GPU: config device=cuda, or any scale but smoke unless the config
# says cpu. The scheduler (SLURM profile) asks for a GPU per training job, and pack=auto packs.
TRAINS_ON_GPU = config["device"] == "cuda" or (config["device"] != "cpu" and config["scale"] != "smoke")
GPUS_PER_TRAIN = 1 if TRAINS_ON_GPU else 0

try:
    RUNS = runs_of(SPECS)
except IclError as error:
    sys.exit(str(error))  # the spec's own positioned message, no traceback

if not RUNS:
    sys.exit("error: the specs " + ", ".join(SPECS) + " define no runs (no experiment in them)")

# `experiments` narrows the pipeline to some experiments (a study run in chunks, e.g. one
# GPU session each); the report still lists every run of the specs, the others as missing.
_wanted = config.get("experiments") or []
_wanted = [_wanted] if isinstance(_wanted, str) else list(_wanted)
_unknown = sorted(set(_wanted) - {run.experiment for run in RUNS})
if _unknown:
    sys.exit(f"error: config experiments: no experiment {', '.join(map(repr, _unknown))} in "
             + ", ".join(SPECS) + "; the specs have: "
             + ", ".join(sorted({run.experiment for run in RUNS})))
if _wanted:
    RUNS = [run for run in RUNS if run.experiment in _wanted]
RUN_BY_ID = {run.id: run for run in RUNS}
TASKS = sorted({run.task for run in RUNS})


def eval_path(run):
    return f"{RUNS_DIR}/{run.id}/eval-{run.eval_id}.json"


def evals_of(task):
    return sorted({eval_path(r) for r in RUNS if r.task == task})


# -- packed training -------------------------------------------------------------------------
# Runs of one spec, model and prompt shape that differ only in seed, task, lr, clip or weight
# decay can train together in one process as one batched model (icl.training.pack): a rule per pack, whose outputs are
# its runs' status.json files. `pack` in the config: auto (on a GPU, packs of up to AUTO_PACK
# runs whose blocks pack well, see below), off, or a pack size (any runs that can be packed).
#
# Re-runs stay incremental: a run already trained keeps the rule that trained it (its
# status.json names its pack), so editing one run re-packs only runs still to train, and
# every pack rule has the same shell command with the varying parts derived from its
# outputs, so Snakemake sees no code or params change for the runs it already has.
import hashlib
import json

from icl.training.grouping import group_runs, pack_plan


def pack_rule_name(run_ids):
    digest = hashlib.sha1(",".join(sorted(run_ids)).encode()).hexdigest()
    return f"train_pack_{digest[:12]}"


def _recorded_pack(run_id):
    """None: not trained yet; []: trained alone; else the runs it was trained with."""
    try:
        with open(f"{RUNS_DIR}/{run_id}/status.json", encoding="utf-8") as f:
            status = json.load(f)
    except (OSError, ValueError):
        return None
    return list((status.get("pack") or {}).get("runs") or [])


def plan_packs(runs, size, eligible=None):
    """The pack rules to define, {name => run ids}; runs in none train alone (rule train).
    `eligible(run)`: which runs still to train may be packed (None: all)."""
    packs = {}
    pending = {}
    for run_id, run in {r.id: r for r in runs}.items():
        recorded = _recorded_pack(run_id)
        if recorded is None and (eligible is None or eligible(run)):
            pending.setdefault(run.spec, []).append(run)
        elif recorded:
            packs.setdefault(pack_rule_name(recorded), []).append(run_id)
    if size > 1:
        for spec in sorted(pending):
            for pack in group_runs(pending[spec], size):
                if len(pack) > 1:
                    packs[pack_rule_name([r.id for r in pack])] = [r.id for r in pack]
    return packs


try:
    PACK_SIZE, PACK_ELIGIBLE = pack_plan(config.get("pack", "auto"), TRAINS_ON_GPU)
except IclError as error:
    sys.exit(f"{error} (config key pack)")
PACKS = plan_packs(RUNS, PACK_SIZE, PACK_ELIGIBLE)
PACKED_IDS = {run_id for ids in PACKS.values() for run_id in ids}


# -- batches: many small jobs as a few processes ---------------------------------------------
# Starting Python with torch and the project costs a job about 2.5 s on a CPU, more than a smoke
# run's training or evaluation (benchmarks/results/smoke_pipeline.md). A batch job trains (or
# evaluates) several runs one after another in one process, each alone and into its own files,
# as their own jobs would. Only runs still to train (evaluate) are batched, and a batch rule's
# shell command is the one-run rule's, with the runs it names derived from its outputs (a
# parameter Snakemake does not record), so a later plan that gives a run to the one-run rule
# sees the same code and params and re-runs nothing.
# Inputs are recorded too: a training batch has none; an evaluation's inputs are its runs'
# status.json files, so every evaluation file records the runs evaluated with it
# (`evaluated_with`) and rule evaluate asks for those runs' status.json again (evaluation_input).
# A batch mate trained anew therefore re-evaluates the batch's other runs as well.
def _batch_size(setting, todo):
    """Runs per batch job for the config's `batch` setting, with `todo` jobs to share out."""
    if setting in ("off", False):
        return 1
    if setting == "auto":  # on a CPU: three jobs per core keep the cores busy to the end
        # (the smoke study on 2 cores: 153 s with two a core, 137 s with three)
        cores = workflow.resource_settings.cores or os.cpu_count() or 1  # a dry run may give no --cores
        return 1 if TRAINS_ON_GPU else max(1, -(-todo // (3 * cores)))
    return int(setting)


def batch_rule_name(kind, keys):
    digest = hashlib.sha1(",".join(sorted(keys)).encode()).hexdigest()
    return f"{kind}_batch_{digest[:12]}"


def plan_batches(kind, keys, setting):
    """{rule name => run ids} for the runs still to make, in order; a run in no batch is made
    by the one-run rule."""
    size = _batch_size(setting, len(keys))
    if size < 2:
        return {}
    chunks = [keys[i:i + size] for i in range(0, len(keys), size)]
    return {batch_rule_name(kind, chunk): chunk for chunk in chunks if len(chunk) > 1}


def unbatched_pattern(run_ids):
    """A wildcard constraint matching these run ids alone (none: a pattern matching nothing)."""
    return "|".join(sorted(run_ids)) or "(?!)"


BATCH_SETTING = config.get("batch", "auto")
TRAIN_BATCHES = plan_batches(
    "train", [r for r in RUN_BY_ID if r not in PACKED_IDS and not os.path.exists(f"{RUNS_DIR}/{r}/status.json")],
    BATCH_SETTING)
BATCHED_IDS = {run_id for ids in TRAIN_BATCHES.values() for run_id in ids}
# rule train makes the status.json of every run no pack or batch rule makes.
UNPACKED_ID = unbatched_pattern(set(RUN_BY_ID) - PACKED_IDS - BATCHED_IDS)

EVAL_BATCHES = plan_batches(
    "eval", [r for r, run in RUN_BY_ID.items() if not os.path.exists(eval_path(run))], BATCH_SETTING)
# rule evaluate makes the evaluation of every run no evaluation batch makes.
UNBATCHED_EVAL_ID = unbatched_pattern(set(RUN_BY_ID) - {r for ids in EVAL_BATCHES.values() for r in ids})


def run_ids_of(outputs):
    return [os.path.basename(os.path.dirname(path)) for path in outputs]


# -- one pipeline per runs folder --------------------------------------------------------------
# Snakemake locks its working directory, not the runs folder, and deletes a job's outputs before
# it runs it and after it fails: two pipelines with different working directories on one runs
# folder would delete and rewrite each other's results. The pipeline that starts first holds the
# runs folder's lock (icl.runfolder.pipeline_lock: flock, dropped by the OS when the process
# ends, even under kill -9) until it ends; a second one stops before running any job. Dry runs
# take no lock. Each job also holds its run's own lock (icl train / icl eval).
from icl.runfolder import RunFolderLocked, pipeline_lock

_PIPELINE_LOCK = pipeline_lock(RUNS_DIR)


# -- the progress line -------------------------------------------------------------------------
# A run (not a dry run) shows one progress line instead of Snakemake's job log: config
# `progress: line`, or `auto` when the output is a terminal (a log file keeps the whole log:
# workflow/scripts/detached_study.sh reads it). icl/pipeline_progress.py. Installed when the
# jobs start (onstart: a dry run starts none), so the plan's job table is printed before it.
from snakemake.logging import logger as _snakemake_logger

from icl.pipeline_progress import install as install_progress_line

PROGRESS_LINE = None


def _progress_end(message):
    if PROGRESS_LINE is not None:
        PROGRESS_LINE.finish(message)


onstart:
    try:
        _PIPELINE_LOCK.acquire()
    except RunFolderLocked as error:
        raise WorkflowError(str(error)) from None
    global PROGRESS_LINE
    PROGRESS_LINE = install_progress_line(
        _snakemake_logger, config.get("progress", "auto"), runs=len(RUN_BY_ID),
        trained={r for r in RUN_BY_ID if os.path.exists(f"{RUNS_DIR}/{r}/status.json")},
        evaluated={r for r, run in RUN_BY_ID.items() if os.path.exists(eval_path(run))})


onsuccess:
    _PIPELINE_LOCK.release()
    report = f"{RESULTS}/report.html"
    _progress_end(f"[icl] done; the report: {report}" if os.path.exists(report) else "[icl] done")


onerror:
    _PIPELINE_LOCK.release()
    _progress_end("[icl] stopped: a job failed (its error and log file are above); finished runs are kept, "
                  "and the same command goes on from there")
