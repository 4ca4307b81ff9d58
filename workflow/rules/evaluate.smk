from icl import runfolder

# The shell command of rule evaluate and of the batch rules below is one text, and the runs it
# names are derived from the outputs (not recorded): see "batches" in common.smk.
EVAL_SHELL = ("OMP_NUM_THREADS={threads} icl eval {params.runs} --runs-dir {params.runs_dir:q}"
              " --baseline-cache {params.baselines:q} --no-progress > {log:q} 2>&1")


def trained_status(run_id):
    """The run's status.json; ancient() when its weights are not here and it is not retrained.

    Without the weights (model.pt, training.train.MODEL) an evaluation cannot be redone, so
    one that exists is final: in a clone of committed results, whose files get checkout-order
    times, a status.json newer than its evaluation must not ask for one. With the weights
    here, or a training forced in this invocation, a newer status.json re-evaluates as usual."""
    status = f"{RUNS_DIR}/{run_id}/status.json"
    if os.path.exists(f"{RUNS_DIR}/{run_id}/model.pt") or _training_forced(status):
        return status
    return ancient(status)


def evaluation_input(wildcards):
    """The status.json of the runs the evaluation was made with (`evaluated_with`: its batch,
    as that batch's rule had them; see "batches" in common.smk), or the run's own. Its batch
    mates' are ancient(): a mate trained anew (or deleted and trained again) re-evaluates
    itself, not this run."""
    own = wildcards.run_id
    mates = [own]
    try:
        record = runfolder.read_eval(f"{RUNS_DIR}/{own}/eval-{wildcards.eval_id}.json")
    except IclError:
        record = None  # unreadable: made anew, and icl eval says what was wrong with it
    # a mate neither here nor in the plan cannot be asked for: then this evaluation is made anew
    if record is not None and all(m in RUN_BY_ID or os.path.exists(f"{RUNS_DIR}/{m}/status.json")
                                  for m in record.evaluated_with):
        mates = list(record.evaluated_with)
    return [trained_status(m) if m == own else ancient(f"{RUNS_DIR}/{m}/status.json") for m in mates]


def eval_args(wildcards, output):
    """--run ID --eval-id EID for each runs/<id>/eval-<eid>.json of the outputs."""
    return " ".join(f"--run {run_id} --eval-id {os.path.basename(path)[len('eval-'):-len('.json')]}"
                    for run_id, path in zip(run_ids_of(output), output))


def _training_forced(status):
    """--forcerun names a training rule (train, a pack) or this status.json."""
    forced = set(workflow.dag_settings.forcerun)
    return (bool(forced & {"train", *PACKS, *TRAIN_BATCHES})
            or os.path.abspath(status) in {os.path.abspath(f) for f in forced})


rule evaluate:
    input:
        evaluation_input,
    output:
        f"{RUNS_DIR}/{{run_id}}/eval-{{eval_id}}.json",
    wildcard_constraints:
        run_id=UNBATCHED_EVAL_ID,
    params:
        runs=eval_args,
        runs_dir=runs_dir_of,
        # every run of a task evaluated on the same prompts shares their baselines' errors
        baselines=f"{RUNS_DIR}/baselines",
    conda:
        "../envs/icl.yaml"
    log:
        f"{RUNS_DIR}/{{run_id}}/eval-{{eval_id}}.log",
    threads: 1
    # a trained run is evaluated before another training starts: a pipeline that is stopped
    # keeps more finished results
    priority: 1
    resources:
        # CPU jobs on a cluster, unless the config sends evaluation to CUDA.
        gpu=1 if config["device"] == "cuda" else 0,
    shell:
        EVAL_SHELL


# One job per batch: its runs are evaluated one after another in one process.
for _name, _ids in EVAL_BATCHES.items():

    rule:
        name:
            _name
        input:
            # a function: which trainings are forced is known once the DAG is built
            lambda wildcards, ids=_ids: [trained_status(run_id) for run_id in ids],
        output:
            [eval_path(RUN_BY_ID[run_id]) for run_id in _ids],
        params:
            runs=eval_args,
            runs_dir=runs_dir_of,
            baselines=f"{RUNS_DIR}/baselines",
        conda:
            "../envs/icl.yaml"
        log:
            f"{RUNS_DIR}/batches/{_name}.log",
        threads: 1
        priority: 1
        resources:
            gpu=1 if config["device"] == "cuda" else 0,
        shell:
            EVAL_SHELL
