# The learning-rate sweep behind specs/quick/mqar.icl's lr: the same model and task at five
# constant lrs, trained as one pack on the GPU (benchmarks/gpu_check_run.sh). The lr whose
# logged error first reaches <= 0.02 (98% accuracy) is the headline spec's.

model transformer {
  layers = "(A F)*2"
  width = 128
  heads = 2
  positions = learned
}

task mqar {
  kind = token_mqar
  vocab = 8192
  seq_len = 64
  pairs = 8
}

experiment quick_mqar_sweep {
  models = [transformer]
  tasks = [mqar]
  train {
    steps = 3000
    batch = 256
    lr = [5e-4, 1e-3, 2e-3, 4e-3, 8e-3]
    log_every = 25
    log_error = 256
    checkpoint_every = 1000
  }
}
