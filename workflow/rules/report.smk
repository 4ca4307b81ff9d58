# One ICL-curve figure per task, then one report over everything.
rule plot:
    input:
        lambda wildcards: evals_of(wildcards.task),
    output:
        f"{RESULTS}/plots/{{task}}.png",
    params:
        specs=SPECS_ARGS,
        runs_dir=RUNS_DIR,
    conda:
        "../envs/icl.yaml"
    log:
        f"{RESULTS}/logs/plot-{{task}}.log",
    shell:
        "icl plot {params.specs} --task {wildcards.task} --runs-dir {params.runs_dir:q}"
        " --out {output:q} > {log:q} 2>&1"


rule report:
    input:
        evals=sorted({eval_path(run) for run in RUNS}),
        plots=expand(f"{RESULTS}/plots/{{task}}.png", task=TASKS),
    output:
        html=f"{RESULTS}/report.html",
        markdown=f"{RESULTS}/report.md",
        table=f"{RESULTS}/table1.json",
    params:
        specs=SPECS_ARGS,
        title=REPORT_TITLE,
        # runs/<id>/eval-<eid>.json -> runs
        runs_dir=lambda wildcards, input: os.path.dirname(os.path.dirname(input.evals[0])),
        results=lambda wildcards, output: os.path.dirname(output.html),
    conda:
        "../envs/icl.yaml"
    log:
        f"{RESULTS}/logs/report.log",
    shell:
        "icl report {params.specs} --runs-dir {params.runs_dir:q} --out {params.results:q} --title {params.title:q}"
        " > {log:q} 2>&1"
