# The six architectures of the study, shrunk for a laptop CPU (width 32, 2-4 layers).
# Same layer-string structure as specs/paper/models.icl.

model transformer {
  layers = "(A F)*2"
  width = 32
  heads = 4
  positions = learned
}

model mamba {
  layers = "M*4"
  width = 32
  d_state = 8
}

model s4 {
  layers = "S*4"
  width = 32
  d_state = 8
}

model s4_mamba {
  layers = "SM*4"
  width = 32
  d_state = 8
}

model standard_hybrid {
  layers = "(A M)*2"
  width = 32
  heads = 4
  d_state = 8
  positions = learned
}

model mambaformer {
  layers = "M (A M)*2"
  width = 32
  heads = 4
  d_state = 8
  positions = none
}
