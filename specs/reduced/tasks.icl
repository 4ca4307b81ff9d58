# The nine tasks at reduced scale: input dimension 10 instead of 20 (parity and
# chain of thought keep the study's 10), the study's point counts scaled with d,
# and curricula that move every 500 steps instead of every 2000.

task linear_regression {
  dims = 10
  points = 21
  curriculum {
    dims { start = 3  end = 10  inc = 1  interval = 500 }
    points { start = 6  end = 21  inc = 2  interval = 500 }
  }
}

task sparse_linear_regression {
  dims = 10
  points = 21
  k = 3
  curriculum {
    dims { start = 3  end = 10  inc = 1  interval = 500 }
    points { start = 6  end = 21  inc = 2  interval = 500 }
  }
}

task relu_2nn_regression {
  dims = 10
  points = 51
  hidden = 100
  curriculum {
    dims { start = 3  end = 10  inc = 1  interval = 500 }
    points { start = 11  end = 51  inc = 5  interval = 500 }
  }
}

task decision_tree {
  dims = 10
  points = 51
  depth = 4
  curriculum {
    dims { start = 3  end = 10  inc = 1  interval = 500 }
    points { start = 11  end = 51  inc = 5  interval = 500 }
  }
}

task orthogonal_outlier_regression {
  dims = 10
  points = 51
  p_outlier = 0.5
  curriculum {
    dims { start = 3  end = 10  inc = 1  interval = 500 }
    points { start = 11  end = 51  inc = 5  interval = 500 }
  }
}

task many_outlier_regression {
  dims = 10
  points = 128
  p_outlier = 0.9
  curriculum {
    dims { start = 3  end = 10  inc = 1  interval = 500 }
    points { start = 12  end = 128  inc = 4  interval = 200 }
  }
}

task sparse_parity {
  dims = 10
  points = 140
  k = 2
}

task chain_of_thought {
  dims = 10
  hidden = 4
  points = 51
  curriculum {
    dims { start = 5  end = 10  inc = 1  interval = 500 }
    points { start = 11  end = 51  inc = 5  interval = 500 }
  }
}

task vector_mqar {
  dims = 20
  pairs = 32
}
