# Headline check (issue #26): a 2-layer Transformer at width 128 learns token MQAR at zoology's
# sizes (vocabulary 8192, 64 tokens, 8 key-value pairs, batch 256) to >= 98% accuracy within
# 60 s of training on one GPU. Its prompts still take our first layout (`layout = echo`: each
# query's value follows it), the one every number below was measured on; zoology's own sampler
# (the default, docs/tasks.md) waits for a GPU to measure it. Each metrics line records the error on 256 fresh prompts
# (log_error), so the report's time-to-accuracy section reads it from metrics.jsonl.
# Measured alone on an H100 (benchmarks/results/quick_mqar_init.md): 98% at steps 1,750-2,650,
# 6.2-9.6 s of training over seeds 0-2; a textbook eager PyTorch loop on the same card: step
# 1,900, 8.0 s. `init = pytorch` is that textbook GPT's init (not the study's): under the
# study's init (`released`) the same model sat on a plateau (a third of the queries right) and
# took 6,650-8,150 steps, 20-24 s (benchmarks/results/mqar_bisect.md traces why). AdamW's
# weight decay 0.1 shortens the plateau (benchmarks/results/quick_mqar.md: plain Adam stayed
# on it for 20,000 steps at lr 3e-4 and 1e-3).

model transformer {
  layers = "(A F)*2"
  width = 128
  heads = 2
  positions = learned
  init = pytorch
}

task mqar {
  kind = token_mqar
  vocab = 8192
  seq_len = 64
  pairs = 8
  layout = echo
}

experiment quick_mqar {
  models = [transformer]
  tasks = [mqar]
  train {
    steps = 6000
    batch = 256
    lr = 1e-3
    optimizer = adamw
    weight_decay = 0.1
    log_every = 50
    log_error = 256
    checkpoint_every = 2000
  }
  eval {
    prompts = 1280
  }
}
