# One ICL-curve figure per task (PNG, and the same figure as SVG and PDF beside it: `icl
# plot` writes all three), then one report over everything with its downloads.
PLOT_FORMATS = ("png", "svg", "pdf")


rule plot:
    input:
        lambda wildcards: evals_of(wildcards.task),
    output:
        png=f"{RESULTS}/plots/{{task}}.png",
        svg=f"{RESULTS}/plots/{{task}}.svg",
        pdf=f"{RESULTS}/plots/{{task}}.pdf",
    params:
        specs=SPECS_ARGS,
        runs_dir=RUNS_DIR,
    conda:
        "../envs/icl.yaml"
    log:
        f"{RESULTS}/logs/plot-{{task}}.log",
    shell:
        "icl plot {params.specs} --task {wildcards.task} --runs-dir {params.runs_dir:q}"
        " --out {output.png:q} > {log:q} 2>&1"


rule report:
    input:
        evals=sorted({eval_path(run) for run in RUNS}),
        plots=expand(f"{RESULTS}/plots/{{task}}.{{ext}}", task=TASKS, ext=PLOT_FORMATS),
    output:
        html=f"{RESULTS}/report.html",
        markdown=f"{RESULTS}/report.md",
        table=f"{RESULTS}/table1.json",
        # the downloads the report links (icl/report/exports.py's EXPORTS)
        table_csv=f"{RESULTS}/table1.csv",
        table_tex=f"{RESULTS}/table1.tex",
        runs_csv=f"{RESULTS}/metrics/runs.csv",
        training_csv=f"{RESULTS}/metrics/training.csv",
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
