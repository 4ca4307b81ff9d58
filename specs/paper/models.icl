# The six architectures of Park et al. (ICML 2024) at paper scale (width D = 256).
# The layer string is the whole truth of block order: each A (attention) or
# M (Mamba) block counts as one layer, so 24 Mamba blocks ~ a 12-layer GPT-2.

model transformer {
  layers = "(A F)*12"  # GPT-2: attention then MLP, 12 layers
  width = 256
  heads = 8
  positions = learned
}

model mamba {
  layers = "M*24"
  width = 256
  d_state = 16
  d_conv = 4
  expand = 2
}

model s4 {
  layers = "S*24"  # S4D -> GELU -> 1x1 conv to 2D -> GLU
  width = 256
  d_state = 16
}

model s4_mamba {
  layers = "SM*24"  # Mamba block with the selective scan replaced by S4D
  width = 256
  d_state = 16
  d_conv = 4
  expand = 2
}

model standard_hybrid {
  layers = "(A M)*12"  # attention first, with positions
  width = 256
  heads = 8
  positions = learned
}

model mambaformer {
  # One Mamba block first, then [attention, Mamba] x 12, no positions.
  # (The released code builds this extra block implicitly; here it is written.)
  layers = "M (A M)*12"
  width = 256
  heads = 8
  positions = none
}
