"""Which shapes make fla's chunk_gla fault on this GPU (issue #26: the GLA test at K4 B3 T17
D64 H1 stopped with CUDA "misaligned address" inside the autotuning of chunk_gla_fwd_kernel_o
on an H100, Triton 3.6.0, fla 0.6.0). One shape per process, since a fault poisons the CUDA
context: prints `ok` with the largest difference to our reference (blocks/gla.gla_chunked), or
the error's last line.

    CUDA_LAUNCH_BLOCKING=1 python3 benchmarks/gla_shape_check.py SEQS TOKENS HEADS HEAD_DIM DTYPE [backward]
"""
import sys

import torch


def main() -> None:
    seqs, tokens, heads, head_dim = (int(a) for a in sys.argv[1:5])
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[5]]
    backward = sys.argv[6:] == ["backward"]
    from fla.ops.gla import chunk_gla
    from icl.blocks.gla import gla_chunked

    torch.manual_seed(0)
    shape = (seqs, tokens, heads, head_dim)
    q, k, v = (torch.randn(shape, device="cuda") * 0.5 for _ in range(3))
    g = torch.nn.functional.logsigmoid(torch.randn(shape, device="cuda")) / 16
    inputs = [t.to(dtype).requires_grad_(backward) for t in (q, k, v, g)]
    tag = f"seqs {seqs} tokens {tokens} heads {heads} head_dim {head_dim} {sys.argv[5]}{' +backward' if backward else ''}"
    try:
        o, state = chunk_gla(*inputs, scale=head_dim ** -0.5, output_final_state=True)
        if backward:
            o.float().sum().backward()
        torch.cuda.synchronize()
    except Exception as error:  # noqa: BLE001 - the point is to report it
        print(f"{tag}: FAILED {type(error).__name__}: {str(error).splitlines()[0]}")
        return
    ref, ref_state = gla_chunked(q, k, v, g, head_dim ** -0.5)
    print(f"{tag}: ok, max |o - reference| {(o.float() - ref).abs().max().item():.2e}, "
          f"state {(state.float() - ref_state).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
