# The study's architectures at reduced scale for one GPU: width 128 (the released
# configs' own width) and a quarter of the paper's depth. Same layer-string shapes
# as specs/paper/models.icl.

model transformer {
  layers = "(A F)*4"
  width = 128
  heads = 8
  positions = learned
}

model mamba {
  layers = "M*8"
  width = 128
}

model s4 {
  layers = "S*8"
  width = 128
}

model s4_mamba {
  layers = "SM*8"
  width = 128
}

model standard_hybrid {
  layers = "(A M)*4"
  width = 128
  heads = 8
  positions = learned
}

model mambaformer {
  layers = "M (A M)*4"
  width = 128
  heads = 8
  positions = none
}
