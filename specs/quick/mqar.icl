# Headline check (issue #26): a 2-layer Transformer at width 128 learns zoology's token MQAR
# (vocabulary 8192, 64 tokens, 8 key-value pairs, batch 256) to >= 98% accuracy within 60 s
# of training on one GPU. Each metrics line records the error on 256 fresh prompts
# (log_error), so the report's time-to-accuracy section reads it from metrics.jsonl.
# Measured alone on an H100 (benchmarks/results/quick_mqar.md): 98% at step 7,600, 23.0 s
# (seeds 1 and 2: 28.3 s, 29.3 s). The learning sits on a plateau (a third of the queries
# right: a stored value not yet queried) and then drops abruptly; AdamW's weight decay 0.1
# ends the plateau sooner: plain Adam at lr 6e-4 took 43.1 s (step 14,400), at lr 3e-4 or
# 1e-3 it stayed on the plateau for all 20,000 steps. All these times predate the fix of the
# attention's fp16 backward (blocks/attention.py, benchmarks/results/mqar_bisect.md), which
# kept small gradients from the attention while the model sat on that plateau.

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
    steps = 20000
    batch = 256
    lr = 1e-3
    optimizer = adamw
    weight_decay = 0.1
    log_every = 50
    log_error = 256
    checkpoint_every = 5000
  }
  eval {
    prompts = 1280
  }
}
