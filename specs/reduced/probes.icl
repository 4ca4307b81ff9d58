# Probes of the reduced study's open disagreements with the study: not part of Table 1,
# each a small experiment that tests one explanation. Run them with the study's runs:
#   snakemake --cores all --config scale=reduced 'specs=[specs/reduced/probes.icl]' \
#     runs_dir=results/reduced/runs results_dir=results/reduced/probes
import "study.icl"

# Sparse parity, Standard Hybrid: ours learns it (seed 0: error 0 by step 5k), the study's
# fails. The released code keeps PyTorch's N(0, 1) init for its position table, 50 times
# the 0.02 of every other weight (ours), which may drown the tokens in the positions at
# the first layer. Same runs as the study's seeds 0 and 1 but for that init; their first 20k
# steps are the controls (constant learning rate, same seed, same prompts).
model standard_hybrid_released_positions extends standard_hybrid {
  positions_init_std = 1.0
}

experiment parity_hybrid_positions extends sparse_parity {
  models = [standard_hybrid_released_positions]
  train { steps = 20k  seeds = [0, 1] }
}
