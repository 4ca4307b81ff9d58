# The study's matrix (nine tasks x six architectures) at smoke scale: a check
# that every piece of the pipeline runs, on a laptop CPU in minutes. The numbers
# it produces say nothing about the architectures.
import "models.icl"
import "tasks.icl"

train smoke {
  steps = 60
  batch = 16
  optimizer = adam
  clip = 10
  checkpoint_every = 20
  log_every = 10
  seeds = [0]
}

eval smoke {
  prompts = 64
  bootstrap = 200
  batch = 64
}

experiment linear_regression {
  models = [transformer, mamba, s4, s4_mamba, standard_hybrid, mambaformer]
  tasks = [linear_regression]
  train extends smoke { lr = 1e-3 }
  eval extends smoke {}
}

experiment sparse_linear_regression extends linear_regression {
  tasks = [sparse_linear_regression]
}

experiment relu_2nn_regression extends linear_regression {
  tasks = [relu_2nn_regression]
}

experiment decision_tree extends linear_regression {
  tasks = [decision_tree]
}

experiment orthogonal_outlier_regression extends linear_regression {
  tasks = [orthogonal_outlier_regression]
}

experiment many_outlier_regression extends linear_regression {
  tasks = [many_outlier_regression]
}

experiment sparse_parity extends linear_regression {
  tasks = [sparse_parity]
}

experiment chain_of_thought extends linear_regression {
  tasks = [chain_of_thought]
}

experiment vector_mqar extends linear_regression {
  tasks = [vector_mqar]
  train { clip = 100 }
}
