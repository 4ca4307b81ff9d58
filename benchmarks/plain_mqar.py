"""A plain eager PyTorch loop on the quick token MQAR (specs/quick/mqar.icl's task), the baseline
issue #26 asks the pipeline to beat, and a bisection tool when the pipeline does not learn.

    python benchmarks/plain_mqar.py OUT_JSON [--model plain|ours] [--lr 1e-3] [--weight-decay 0] [--steps N]
                                    [--seconds S] [--batch 256] [--device cuda] [--seed 0]
                                    [--embedding-std S] [--block-init ours|default]
                                    [--weights-from-plain] [--exact-numerics]
                                    [--attention auto|fp16-scaled|fp16-unscaled] [--rows]
                                    [--layout zoology|echo]

The prompts come from this project's TokenMQAR sampler (the task is the project's definition);
the rest is a textbook loop: `plain` is a 2-layer pre-norm GPT at width 128 (2 heads, learned
positions N(0, 0.02), GELU MLP x4, fused SDPA attention), `ours` is the model the compiler
builds from specs/quick/mqar.icl; Adam (AdamW with --weight-decay) at a constant lr, no clipping, tf32 matmuls on a GPU,
loss at the query positions only. Every 50 steps it scores 256 fresh prompts (--score) and the JSON
records the wall time (training only, from the first step) at which error first reaches 2%.
Bisection knobs: --embedding-std redraws the token table N(0, S) (the plain model's default is
nn.Embedding's N(0, 1), ours N(0, init_std)); --block-init default redraws our blocks' Linears with
nn.Linear's default init instead of GPT-2's N(0, 0.02); --weights-from-plain starts our model from
the plain model's weights of the same seed (the two differ then only in GELU's tanh approximation
and in numerics); --exact-numerics turns off our GPU shortcuts (fp16 attention under TF32, the
Triton LayerNorm); --attention fp16-scaled|fp16-unscaled forces our attention's TF32 path (fp16
q, k, v, with or without the backward's gradient scaling) on any device, the CPU included;
--rows computes the read-out at the query positions only (the same loss and gradients, 8x less
read-out work: what makes a CPU run of a few thousand steps affordable).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from icl.blocks.attention import tf32_attention as TF32_ATTENTION  # our attention's own choice
from icl.tasks import make_task

TASK = {"kind": "token_mqar", "vocab": 8192, "seq_len": 64, "pairs": 8}


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class PlainGPT(nn.Module):
    def __init__(self, vocab: int, length: int, width: int = 128, heads: int = 2, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.positions = nn.Parameter(torch.randn(length, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, vocab)

    def forward(self, tokens, rows=None):
        """rows (B, n): the read-out at these positions only, as our model's."""
        x = self.embed(tokens) + self.positions[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        if rows is not None:
            x = x.gather(1, rows.unsqueeze(-1).expand(*rows.shape, x.shape[-1]))
        return self.head(self.norm(x))


def our_model(dev):
    from icl.compiler.build import build_model
    from icl.tasks.catalog import TASKS
    from icl.training.runfile import load_runs
    run = load_runs("specs/quick/mqar.icl")[0]
    return build_model(run.model_config, TASKS["token_mqar"].layout(run.task_config), device=dev)


def default_block_init(model) -> None:
    """Our blocks' Linears redrawn as nn.Linear draws them."""
    from icl.blocks.stacked import StackedLinear
    for module in model.layers.modules():
        if isinstance(module, StackedLinear):
            module.default_init()


def copy_plain_weights(plain: PlainGPT, ours) -> None:
    """Our model (layers "A F A F") takes the plain model's weights, tensor for tensor."""
    pairs = [(plain.embed.weight, ours.read_in.map.weight), (plain.positions, ours.positions.table.weight),
             (plain.norm.weight, ours.final_norm.weight), (plain.norm.bias, ours.final_norm.bias),
             (plain.head.weight, ours.read_out.map.weight), (plain.head.bias, ours.read_out.map.bias)]
    for i, block in enumerate(plain.blocks):
        attention, mlp = ours.layers[2 * i], ours.layers[2 * i + 1]
        for src, dst in ((block.norm1, attention.norm), (block.qkv, attention.block.qkv),
                         (block.proj, attention.block.proj), (block.norm2, mlp.norm),
                         (block.mlp[0], mlp.block.fc), (block.mlp[2], mlp.block.proj)):
            pairs += [(src.weight, dst.weight), (src.bias, dst.bias)]
    with torch.no_grad():
        for src, dst in pairs:
            dst.copy_(src.view(dst.shape))


def set_attention(mode: str) -> None:
    """Our attention's numerics everywhere: auto (its own choice: fp16 under TF32 on a GPU), fp32,
    fp16-scaled (its TF32 path on any device, the CPU included) or fp16-unscaled (that path
    without the backward's gradient scaling, as before the fix in blocks/attention.py)."""
    import icl.blocks.attention as attention
    attention.tf32_attention = {"auto": TF32_ATTENTION, "fp32": lambda q: False}.get(mode, lambda q: True)
    if mode == "fp16-unscaled":
        attention._GradientScale.apply = staticmethod(lambda x, scale, pick: x)
    elif "apply" in vars(attention._GradientScale):
        del attention._GradientScale.apply   # back to autograd.Function's own


def exact_numerics() -> None:
    """Our blocks without the GPU shortcuts: attention in the activations' dtype, LayerNorm in PyTorch."""
    import icl.kernels.dispatch as dispatch
    set_attention("fp32")
    dispatch.triton_available = lambda: False


def logits_at_queries(model, p, rows: bool):
    """(logits, targets) at the loss's positions."""
    if not rows:
        return model(p.inputs)[p.mask], p.targets[p.mask]
    index = p.mask.nonzero()[:, 1].view(p.mask.shape[0], -1)   # the same count of queries per prompt
    out = model(p.inputs, rows=index)
    return out.reshape(-1, out.shape[-1]), p.targets.gather(1, index).reshape(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--model", choices=["plain", "ours"], default="plain")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0, help="> 0: AdamW with this decay")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--score", type=int, default=256, help="fresh prompts scored every 50 steps")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0, help="init seed; the data stream's is seed + 1")
    ap.add_argument("--embedding-std", type=float, default=None, help="redraw the token table N(0, S)")
    ap.add_argument("--block-init", choices=["ours", "default"], default="ours",
                    help="ours only: default = nn.Linear's init for the blocks' Linears")
    ap.add_argument("--weights-from-plain", action="store_true", help="ours only: start from the plain model's weights")
    ap.add_argument("--exact-numerics", action="store_true", help="ours only: no fp16 attention, no Triton LayerNorm")
    ap.add_argument("--attention", choices=["auto", "fp16-scaled", "fp16-unscaled"], default="auto",
                    help="ours only: force the TF32 path's fp16 attention, with or without gradient scaling")
    ap.add_argument("--rows", action="store_true", help="read-out at the query positions only")
    ap.add_argument("--layout", choices=["zoology", "echo"], default="zoology",
                    help="token MQAR's layout (docs/tasks.md); runs before 2026-12-07 used echo")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(args.seed)
    task = make_task({**TASK, "layout": args.layout})
    gen = torch.Generator(device=dev).manual_seed(args.seed + 1)
    model = (PlainGPT(TASK["vocab"], TASK["seq_len"]).to(dev) if args.model == "plain"
             else our_model(dev))
    if args.weights_from_plain and args.model == "ours":
        torch.manual_seed(args.seed)
        copy_plain_weights(PlainGPT(TASK["vocab"], TASK["seq_len"]).to(dev), model)
    if args.exact_numerics:
        exact_numerics()
    if args.attention != "auto":
        set_attention(args.attention)
    table = model.embed.weight if args.model == "plain" else model.read_in.map.weight
    if args.embedding_std is not None:
        with torch.no_grad():
            nn.init.normal_(table, std=args.embedding_std)
    if args.block_init == "default" and args.model == "ours":
        default_block_init(model)
    adam = torch.optim.AdamW if args.weight_decay > 0 else torch.optim.Adam
    opt = adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay, fused=dev.type == "cuda")
    log, hit, start = [], None, None
    for step in range(1, args.steps + 1):
        p = task.sample(gen, args.batch)
        logits, targets = logits_at_queries(model, p, args.rows)
        loss = F.cross_entropy(logits, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if start is None:
            start = time.perf_counter()  # from the end of step 1 (compiles and warm-up excluded)
        if step % 50 == 0:
            with torch.no_grad():
                q = task.sample(gen, args.score)
                logits, targets = logits_at_queries(model, q, args.rows)
                err = (logits.argmax(-1) != targets).float().mean().item()
            wall = time.perf_counter() - start
            log.append({"step": step, "loss": loss.item(), "error": err, "wall_s": wall})
            print(f"step {step} loss {loss.item():.3f} error {err:.3f} wall {wall:.1f}s", flush=True)
            if hit is None and err <= 0.02:
                hit = {"step": step, "wall_s": wall}
                break
            if wall > args.seconds or not math.isfinite(loss.item()):
                break
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    Path(args.out).write_text(json.dumps({"model": args.model, "layout": args.layout, "lr": args.lr, "weight_decay": args.weight_decay, "batch": args.batch,
                                          "seed": args.seed, "embedding_std": args.embedding_std,
                                          "block_init": args.block_init, "weights_from_plain": args.weights_from_plain,
                                          "exact_numerics": args.exact_numerics, "attention": args.attention,
                                          "rows": args.rows,
                                          "device": name, "first_98": hit, "log": log}, indent=1))


if __name__ == "__main__":
    main()
