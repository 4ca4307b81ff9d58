rule evaluate:
    input:
        f"{RUNS_DIR}/{{run_id}}/status.json",
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
        " --run-dir {params.run_dir} --baseline-cache {params.baselines} --out {output} --no-progress"
        " > {log} 2>&1"
