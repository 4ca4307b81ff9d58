"""Forward + backward of the blocks' fused paths against their PyTorch references, at the
reduced study's sparse_parity shape (K runs of batch 64, 280 tokens, width 128), on one GPU:

- attention: SDPA on fp32 q, k, v (what fp32 runs) against the fp16 copies tf32 runs use
  (blocks/attention.py), with each one's relative error against fp64;
- the Mamba blocks' causal conv + SiLU (C 256): kernels/causal_conv.py against
  StackedCausalConv's loop over the taps;
- LayerNorm with each run's affine (D 128): kernels/layer_norm.py against StackedNorm's
  F.layer_norm + affine.

Median of 5 blocks of CUDA-event timings, ms per call. Each fused output and gradient is
also compared with its reference (max relative error of the output and the gradients).

    python3 benchmarks/block_kernels.py [--packs 1,16]
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch
import torch.nn.functional as F

from icl.blocks.stacked import StackedCausalConv, StackedNorm


def bench(fn, n: int = 10) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / n)
    return statistics.median(times)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def compare(name: str, make, leaves: list[torch.Tensor], dout: torch.Tensor) -> None:
    """make(fused) -> output; times both and prints the fused path's error against the reference."""
    results = {}
    for fused in (True, False):
        def step(fused=fused):
            for t in leaves:
                t.grad = None
            (make(fused) * dout).sum().backward()
        step()
        results[fused] = [make(fused).detach()] + [t.grad.clone() for t in leaves]
        print(f"{name:32s} {'fused' if fused else 'reference':9s} {bench(step):8.3f} ms", flush=True)
    print(f"{name:32s} max rel err fused vs reference {max(rel(a, b) for a, b in zip(*results.values())):.1e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", default="1,16")
    args = parser.parse_args(argv)
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    batch, tokens, width, heads = 64, 280, 128, 8
    for runs in (int(k) for k in args.packs.split(",")):
        g = torch.Generator(device=dev).manual_seed(runs)
        qkv = torch.randn(runs, batch, tokens, 3 * width, device=dev, generator=g, requires_grad=True)

        def attention(fused):
            q, k, v = (t.reshape(runs * batch, tokens, heads, width // heads).transpose(1, 2)
                       for t in qkv.split(width, dim=-1))
            if fused:
                return F.scaled_dot_product_attention(q.half(), k.half(), v.half(), is_causal=True).float()
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        compare(f"K={runs} attention (fp16 vs fp32)", attention, [qkv],
                torch.randn(runs * batch, heads, tokens, width // heads, device=dev, generator=g))
        q, k, v = (t.detach().reshape(runs * batch, tokens, heads, -1).transpose(1, 2).double()
                   for t in qkv.split(width, dim=-1))
        exact = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        print(f"K={runs} attention rel err vs fp64: fp16 {rel(attention(True).detach(), exact):.1e}, "
              f"fp32 {rel(attention(False).detach(), exact):.1e}")
        del qkv, q, k, v, exact

        conv = StackedCausalConv(2 * width, 4).to(dev)
        with torch.no_grad():
            conv.weight.data = 0.5 * torch.randn(runs, 2 * width, 4, device=dev, generator=g)
            conv.bias.data = torch.randn(runs, 2 * width, device=dev, generator=g)
        x = torch.randn(runs, batch, tokens, 2 * width, device=dev, generator=g, requires_grad=True)
        compare(f"K={runs} causal conv + SiLU", lambda fused: conv(x, silu=True, fused=fused),
                [x, conv.weight, conv.bias], torch.randn_like(x))
        del x

        norm = StackedNorm("layernorm", width).to(dev)
        with torch.no_grad():
            norm.weight.data = torch.randn(runs, width, device=dev, generator=g)
            norm.bias.data = torch.randn(runs, width, device=dev, generator=g)
        x = torch.randn(runs, batch, tokens, width, device=dev, generator=g, requires_grad=True)
        compare(f"K={runs} layer norm", lambda fused: norm(x, fused=fused), [x, norm.weight, norm.bias],
                torch.randn_like(x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
