"""Training of one resolved run.

- curriculum.py  Garg et al.'s per-axis curriculum (a pure function of the step)
- seeds.py       the named random streams (init, train, dropout, eval, bootstrap), disjoint
- train.py       train_run(run, out_dir, ...): checkpoints, exact resume, divergence stop
- atomic.py      tmp + fsync + os.replace writes for every file a run leaves
- errors.py      RunError, the one-line user error of `icl train` / `icl eval`
- runfile.py     reading a run's JSON for `python -m icl.training`
"""
