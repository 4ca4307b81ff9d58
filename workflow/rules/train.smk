# Training writes status.json last (atomically), so a killed job leaves no output
# Snakemake takes as complete; the next attempt resumes from the run's checkpoint.
rule train:
    output:
        f"{RUNS_DIR}/{{run_id}}/status.json",
    params:
        spec=lambda wildcards: spec_of(wildcards.run_id),
        out=lambda wildcards: f"{RUNS_DIR}/{wildcards.run_id}",
        device=DEVICE_OPTION,
    conda:
        "../envs/icl.yaml"
    log:
        f"{RUNS_DIR}/{{run_id}}/train.log",
    threads: 1
    resources:
        gpu=GPUS_PER_TRAIN,
    shell:
        "OMP_NUM_THREADS={threads} icl train {params.spec} --run {wildcards.run_id} --out {params.out}"
        " {params.device} --no-progress > {log} 2>&1"
