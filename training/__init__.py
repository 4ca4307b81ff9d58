"""Training of resolved runs, one at a time or several packed into one batched model.

- curriculum.py  Garg et al.'s per-axis curriculum (a pure function of the step)
- seeds.py       the named random streams (init, train, dropout, eval, bootstrap), disjoint
- train.py       train_run(run, out_dir, ...): checkpoints, exact resume, divergence stop;
                 train_members(runs, out_dirs, ...), the same loop for several runs at once
- pack.py        train_pack(runs, out_dirs, ...): runs differing in seed/lr/clip as one stacked
                 model, each with its own optimizer, clipping, files and divergence stop;
                 `icl train SPEC --run ID --run ID --runs-dir DIR` (the pipeline's)
- grouping.py    which runs may share a pack (torch-free; the pipeline plans its jobs with it)
- graphs.py      whole-step CUDA graphs (on CUDA by default), re-captured per curriculum stage
- precision.py   fp32 | tf32 | bf16 products on CUDA (train.precision)
- sinks.py       optional sinks of the metrics lines: TensorBoard (train.tensorboard,
                 $ICL_TENSORBOARD; off by default)
- gpu_slots.py   which of a host's GPUs a job takes (the least busy; file locks, no SLURM)
- (icl/runfolder.py: the run folder's files, validating reads, atomic writes, lock)
- errors.py      RunError, the one-line user error of `icl train` / `icl eval`
- runfile.py     reading a run's JSON for `python -m icl.training`
"""
