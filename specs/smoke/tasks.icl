# The nine tasks of the study at toy sizes: small dimensions, few points and a
# curriculum that moves every 20 steps instead of every 2000.

task linear_regression {
  dims = 5
  points = 11
  curriculum {
    dims { start = 2  end = 5  inc = 1  interval = 20 }
    points { start = 5  end = 11  inc = 2  interval = 20 }
  }
}

task sparse_linear_regression {
  dims = 5
  points = 11
  k = 2
  curriculum {
    dims { start = 3  end = 5  inc = 1  interval = 20 }
    points { start = 5  end = 11  inc = 2  interval = 20 }
  }
}

task relu_2nn_regression {
  dims = 5
  points = 16
  hidden = 16
  curriculum {
    dims { start = 2  end = 5  inc = 1  interval = 20 }
    points { start = 6  end = 16  inc = 5  interval = 20 }
  }
}

task decision_tree {
  dims = 5
  points = 16
  depth = 2
  curriculum {
    dims { start = 2  end = 5  inc = 1  interval = 20 }
    points { start = 6  end = 16  inc = 5  interval = 20 }
  }
}

task orthogonal_outlier_regression {
  dims = 5
  points = 16
  p_outlier = 0.5
  curriculum {
    dims { start = 2  end = 5  inc = 1  interval = 20 }
    points { start = 6  end = 16  inc = 5  interval = 20 }
  }
}

task many_outlier_regression {
  dims = 5
  points = 24
  p_outlier = 0.9
  curriculum {
    dims { start = 2  end = 5  inc = 1  interval = 20 }
    points { start = 12  end = 24  inc = 2  interval = 10 }
  }
}

task sparse_parity {
  dims = 6
  points = 24
  k = 2
}

task chain_of_thought {
  dims = 5
  hidden = 4
  points = 11
  curriculum {
    dims { start = 2  end = 5  inc = 1  interval = 20 }
    points { start = 6  end = 11  inc = 5  interval = 20 }
  }
}

task vector_mqar {
  dims = 8
  pairs = 8
}
