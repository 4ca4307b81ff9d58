# Probes of the zoo (specs/zoo.icl): not part of its tables, each a small experiment that
# tests one choice of the zoo's. Run them with the zoo's runs:
#   snakemake --cores all --config 'specs=[specs/zoo_probes.icl]' device=cuda \
#     runs_dir=results/zoo/runs results_dir=results/zoo/probes
import "zoo.icl"

# The init: the zoo trains every model under `init = pytorch`. Under the study's init
# (`released`: token table N(0, 0.02), GPT-2's init for A and F) the Transformer, trained on
# an H100 on 2026-12-06 as the zoo's first chunk, did not learn token MQAR in 20k steps at any
# of the three lrs and seeds (14-20% of queries right on the training log's fresh prompts at the
# end, loss 3.6-5.7 nats and still falling slowly: its plateau), and on the word problems it
# was right only at the first positions and at chance after them (S5: the first element only,
# then error 0.99, chance 1 - 1/120; A5: the first 1-5, then 0.98, chance 1 - 1/60).
model transformer_released_init extends transformer {
  init = released
}

# These runs were trained on token MQAR's first layout (`echo`: each query's value follows it),
# before the zoo took zoology's (the default since 2026-12-07, docs/tasks.md).
task mqar_echo extends mqar {
  layout = echo
}

# The zoo's MQAR experiment stops a run at 1% error (train.stop_error); these ran every step,
# as the zoo's state_tracking experiment trains, hence extends that one.
experiment mqar_released_init extends state_tracking {
  models = [transformer_released_init]
  tasks = [mqar_echo]
}

experiment state_tracking_released_init extends state_tracking {
  models = [transformer_released_init]
}
