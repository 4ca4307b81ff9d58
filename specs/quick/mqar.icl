# Headline check (issue #26): a 2-layer Transformer at width 128 learns zoology's token MQAR
# (vocabulary 8192, 64 tokens, 8 key-value pairs) to >= 98% accuracy within 60 s of training
# on one GPU. Each metrics line records the error on 256 fresh prompts (log_error), so the
# time to accuracy is read from the run's metrics.jsonl (wall_s at the first line with
# error <= 0.02). Its lr (and position init) come from specs/quick/mqar_sweep.icl.
# Not yet run on a GPU (2026-12-05: no device could be started).

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

experiment quick_mqar {
  models = [transformer]
  tasks = [mqar]
  train {
    steps = 10000
    batch = 256
    lr = 1e-3
    log_every = 50
    log_error = 256
    checkpoint_every = 2000
  }
  eval {
    prompts = 1280
  }
}
