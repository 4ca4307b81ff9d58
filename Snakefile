"""The study pipeline: specs -> run table -> train -> eval -> per-task plots -> report.

    snakemake --cores all                          # the smoke study on CPU
    snakemake --cores all --config scale=reduced   # one GPU
    snakemake -n                                   # what would run, and why
    snakemake compare --config 'specs=[A.icl,B.icl]'   # two specs side by side: compare.html

Run folders are named by run id (a hash of what decides the weights), so editing
one line of a spec re-runs exactly the runs that line changes, and the plots and
report that depend on them.
"""
import os.path
import sys

from snakemake.utils import min_version, validate

try:  # the folders are the package only through pyproject.toml's mapping (an install)
    import icl.compiler  # noqa: F401
except ModuleNotFoundError:
    sys.exit("error: the icl package is not installed for this checkout: run `bash .ci/install` "
             "(or `pip install -e .`) and call .venv/bin/snakemake")

min_version("8.0")


# Relative to this file, so `snakemake -s PATH/Snakefile -d WORKDIR` works from anywhere.
configfile: os.path.join(workflow.basedir, "workflow", "config.yaml")


validate(config, os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"))


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{RESULTS}/report.html",
    default_target: True
