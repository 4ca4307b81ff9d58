# Park et al., "Can Mamba Learn How to Learn?" (ICML 2024) at paper scale:
# nine tasks x six architectures, the released configs' learning rates.
import "models.icl"
import "tasks.icl"

train paper {
  steps = 500k
  batch = 64
  optimizer = adam
  clip = 10
  seeds = [0]
}

eval paper {
  prompts = 1280
  bootstrap = 1000
}

experiment linear_regression {
  models = [transformer, mamba, s4, s4_mamba, standard_hybrid, mambaformer]
  tasks = [linear_regression]
  train extends paper { lr = 1e-4 }
  eval extends paper {}
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
  train { steps = 1M }  # trained on 2 GPUs of 32 prompts in the study: same batch of 64
}

experiment sparse_parity extends linear_regression {
  tasks = [sparse_parity]
  train { lr = 4e-4 }
}

experiment chain_of_thought extends linear_regression {
  tasks = [chain_of_thought]
}

experiment vector_mqar extends linear_regression {
  tasks = [vector_mqar]
  train { lr = 2e-4  clip = 100 }
  eval { prompts = 12800 }
}
