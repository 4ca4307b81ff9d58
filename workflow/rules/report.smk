# One ICL-curve figure per task (PNG, and the same figure as SVG and PDF beside it: `icl
# plot` writes all three), then one report over everything with its downloads. The report
# also writes files no rule names as outputs, since their set varies: a page per run
# (pages/<run id>.html) and, where pyarrow is installed, Parquet copies of the CSVs.
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


# Two specs compared (not part of `all`): their Table-1 cells side by side, each difference
# with its interval over seeds, and the spec diff (icl/report/compare.py). Give the two specs
# as the config's specs, A first:
#   snakemake compare --config 'specs=[A.icl,B.icl]'
# Their runs are trained and evaluated as the study's are (the ones they share once).
def compare_evals(wildcards):
    if len(SPECS) != 2:
        raise WorkflowError(
            f"the compare target compares two specs: give them as --config 'specs=[A.icl,B.icl]' "
            f"(got {len(SPECS)}: {', '.join(SPECS)})")
    return sorted({eval_path(run) for run in RUNS})


rule compare:
    input:
        evals=compare_evals,
    output:
        html=f"{RESULTS}/compare.html",
        markdown=f"{RESULTS}/compare.md",
    params:
        specs=SPECS_ARGS,
        runs_dir=RUNS_DIR,
        results=lambda wildcards, output: os.path.dirname(output.html),
    conda:
        "../envs/icl.yaml"
    log:
        f"{RESULTS}/logs/compare.log",
    shell:
        "icl report {params.specs} --compare --runs-dir {params.runs_dir:q} --out {params.results:q}"
        " > {log:q} 2>&1"
