# The study's architectures at reduced scale for one GPU: width 128 (the released
# configs' own width) and a quarter of the paper's depth. Same layer-string shapes
# as specs/paper/models.icl.
#
# init = gpt2: results/reduced was trained with GPT-2's N(0, 0.02) init of the read-in, read-out
# and attention blocks, before `init = released` (the released code's, now the default) existed.
# The re-run of issue #25 deletes these lines (and so trains every run again).

model transformer {
  layers = "(A F)*4"
  init = gpt2
  width = 128
  heads = 8
  positions = learned
}

model mamba {
  layers = "M*8"
  init = gpt2
  width = 128
}

model s4 {
  layers = "S*8"
  init = gpt2
  width = 128
}

model s4_mamba {
  layers = "SM*8"
  init = gpt2
  width = 128
}

model standard_hybrid {
  layers = "(A M)*4"
  init = gpt2
  width = 128
  heads = 8
  positions = learned
}

model mambaformer {
  layers = "M (A M)*4"
  init = gpt2
  width = 128
  heads = 8
  positions = none
}
