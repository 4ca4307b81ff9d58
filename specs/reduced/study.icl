# The study at reduced scale for one GPU: all nine tasks for Transformer, Mamba
# and MambaFormer, plus S4, S4-Mamba and the Standard Hybrid on sparse parity and
# vector-valued MQAR; 2 seeds per cell, the study's learning rate per task.
# 20k steps (50k for the plateau-prone parity and MQAR): enough for the curricula
# to finish (~8k steps) and the models to settle, not the study's 500k.
import "models.icl"
import "tasks.icl"

train reduced {
  steps = 20k
  batch = 64
  optimizer = adam
  clip = 10
  checkpoint_every = 2000
  log_every = 200
  seeds = [0, 1]
}

eval reduced {
  prompts = 1280
  bootstrap = 1000
}

experiment linear_regression {
  models = [transformer, mamba, mambaformer]
  tasks = [linear_regression]
  train extends reduced { lr = 1e-4 }
  eval extends reduced {}
}

experiment sparse_linear_regression extends linear_regression {
  tasks = [sparse_linear_regression]
}

experiment relu_2nn_regression extends linear_regression {
  tasks = [relu_2nn_regression]
}

experiment decision_tree extends linear_regression {
  tasks = [decision_tree]
  train { lr = 4e-4 }
}

experiment orthogonal_outlier_regression extends linear_regression {
  tasks = [orthogonal_outlier_regression]
}

experiment many_outlier_regression extends linear_regression {
  tasks = [many_outlier_regression]
  train { steps = 40k }
}

experiment chain_of_thought extends linear_regression {
  tasks = [chain_of_thought]
}

experiment sparse_parity extends linear_regression {
  models = [transformer, mamba, s4, s4_mamba, standard_hybrid, mambaformer]
  tasks = [sparse_parity]
  train { lr = 4e-4  steps = 50k }
}

experiment vector_mqar extends linear_regression {
  models = [transformer, mamba, s4, s4_mamba, standard_hybrid, mambaformer]
  tasks = [vector_mqar]
  train { lr = 2e-4  clip = 100  steps = 50k }
  eval { prompts = 12800 }
}
