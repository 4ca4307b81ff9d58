"""Evaluation of one trained run.

- evaluate.py   evaluate_run(run, run_dir, out_path, ...): per-position error curves of the
                model and the baselines on the same prompts, variants, Table-1 summary
- bootstrap.py  per-position means with 5%/95% bootstrap bands (vectorised over resamples)
- baselines.py  the classical in-context learners of Garg et al. (tasks engineer)
"""
