# Training writes status.json last (atomically), so a killed job leaves no output
# Snakemake takes as complete; the next attempt resumes from the run's checkpoint.
# The shell command of rule train and of the batch rules below is one text, and the runs it
# names are derived from the outputs (not recorded): see "batches" in common.smk.
TRAIN_SHELL = ("OMP_NUM_THREADS={threads} icl train {params.runs} --runs-dir {params.runs_dir:q}"
               " --one-by-one --no-progress > {log:q} 2>&1")


def runs_args(wildcards, output):
    return " ".join(f"--run {run_id}" for run_id in run_ids_of(output))


def runs_dir_of(wildcards, output):
    return os.path.dirname(os.path.dirname(output[0]))


rule train:
    output:
        f"{RUNS_DIR}/{{run_id}}/status.json",
    wildcard_constraints:
        run_id=UNPACKED_ID,
    params:
        runs=runs_args,
        runs_dir=runs_dir_of,
    conda:
        "../envs/icl.yaml"
    log:
        f"{RUNS_DIR}/{{run_id}}/train.log",
    threads: 1
    resources:
        gpu=GPUS_PER_TRAIN,
    shell:
        TRAIN_SHELL


# One job per batch: its runs train one after another in one process, each alone.
for _name, _ids in TRAIN_BATCHES.items():

    rule:
        name:
            _name
        output:
            [f"{RUNS_DIR}/{run_id}/status.json" for run_id in _ids],
        params:
            runs=runs_args,
            runs_dir=runs_dir_of,
        conda:
            "../envs/icl.yaml"
        log:
            f"{RUNS_DIR}/batches/{_name}.log",
        threads: 1
        resources:
            gpu=GPUS_PER_TRAIN,
        shell:
            TRAIN_SHELL


# One job per pack: its runs train side by side in one process, each into its own folder.
for _name, _ids in PACKS.items():

    rule:
        name:
            _name
        output:
            [f"{RUNS_DIR}/{run_id}/status.json" for run_id in _ids],
        params:
            runs=lambda wildcards, output: " ".join(f"--run {i}" for i in run_ids_of(output)),
            runs_dir=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),
        conda:
            "../envs/icl.yaml"
        log:
            f"{RUNS_DIR}/packs/{_name}.log",
        threads: 1
        resources:
            gpu=GPUS_PER_TRAIN,
            # The runs train side by side in one process: about one run's time, more memory.
            # (The profile's set-resources cannot name these generated rules.)
            runtime=180,
            mem_mb=8000,
        shell:
            "OMP_NUM_THREADS={threads} icl train {params.runs}"
            " --runs-dir {params.runs_dir:q} --no-progress > {log:q} 2>&1"
