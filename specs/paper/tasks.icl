# The nine ICL tasks of Park et al. with the study's sizes and curricula
# (Garg et al.: +1 active dimension and +inc points every 2000 steps).

task linear_regression {
  dims = 20
  points = 41
  curriculum {
    dims { start = 5  end = 20  inc = 1  interval = 2000 }
    points { start = 11  end = 41  inc = 2  interval = 2000 }
  }
}

task sparse_linear_regression {
  dims = 20
  points = 41
  k = 3
  curriculum {
    dims { start = 5  end = 20  inc = 1  interval = 2000 }
    points { start = 11  end = 41  inc = 2  interval = 2000 }
  }
}

task relu_2nn_regression {
  dims = 20
  points = 101
  hidden = 100
  curriculum {
    dims { start = 5  end = 20  inc = 1  interval = 2000 }
    points { start = 26  end = 101  inc = 5  interval = 2000 }
  }
}

task decision_tree {
  dims = 20
  points = 101
  depth = 4
  curriculum {
    dims { start = 5  end = 20  inc = 1  interval = 2000 }
    points { start = 26  end = 101  inc = 5  interval = 2000 }
  }
}

task orthogonal_outlier_regression {
  dims = 20
  points = 101
  p_outlier = 0.5
  curriculum {
    dims { start = 5  end = 20  inc = 1  interval = 2000 }
    points { start = 26  end = 101  inc = 5  interval = 2000 }
  }
}

task many_outlier_regression {
  dims = 20
  points = 512
  p_outlier = 0.9
  curriculum {
    dims { start = 4  end = 20  inc = 1  interval = 2000 }
    points { start = 12  end = 512  inc = 2  interval = 200 }
  }
}

task sparse_parity {
  dims = 10
  points = 140
  k = 2
}

task chain_of_thought {
  # Li et al. 2023's cot_2nn setting: d = 10, hidden width 4; x, s, y tokens.
  dims = 10
  hidden = 4
  points = 101
  curriculum {
    dims { start = 5  end = 10  inc = 1  interval = 2000 }
    points { start = 26  end = 101  inc = 5  interval = 2000 }
  }
}

task vector_mqar {
  dims = 20
  pairs = 64
}
