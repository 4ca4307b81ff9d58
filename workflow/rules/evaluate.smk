def trained_run(wildcards):
    """The run's status.json; ancient() when its weights are not here and it is not retrained.

    Without the weights (model.pt, training.train.MODEL) an evaluation cannot be redone, so
    one that exists is final: in a clone of committed results, whose files get checkout-order
    times, a status.json newer than its evaluation must not ask for one. With the weights
    here, or a training forced in this invocation, a newer status.json re-evaluates as usual."""
    status = f"{RUNS_DIR}/{wildcards.run_id}/status.json"
    if os.path.exists(f"{RUNS_DIR}/{wildcards.run_id}/model.pt") or _training_forced(status):
        return status
    return ancient(status)


def _training_forced(status):
    """--forcerun names a training rule (train, a pack) or this status.json."""
    forced = set(workflow.dag_settings.forcerun)
    return (bool(forced & {"train", *PACKS, *TRAIN_BATCHES})
            or os.path.abspath(status) in {os.path.abspath(f) for f in forced})


rule evaluate:
    input:
        trained_run,
    output:
        f"{RUNS_DIR}/{{run_id}}/eval-{{eval_id}}.json",
    params:
        run_dir=lambda wildcards: f"{RUNS_DIR}/{wildcards.run_id}",
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
        "OMP_NUM_THREADS={threads} icl eval --run {wildcards.run_id} --eval-id {wildcards.eval_id}"
        " --run-dir {params.run_dir:q} --baseline-cache {params.baselines:q} --out {output:q} --no-progress"
        " > {log:q} 2>&1"
