"""How far the TF32 path's fp16 attention moves the gradients of a real step, with and without the
backward's gradient scaling (blocks/attention.py), on the CPU (which runs fp16 attention too).

    python benchmarks/attention_fp16_gradients.py [OUT_MD]

One batch of the quick token MQAR (specs/quick/mqar.icl's task, 256 prompts) through our model
started from benchmarks/plain_mqar.py's plain GPT weights (seed 0); the qkv weight gradients
of the fp16 attention against the fp32 attention's, relative error per layer and per q, k, v.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import plain_mqar  # noqa: E402

from icl.tasks import make_task  # noqa: E402


def qkv_gradients(model, prompts, mode: str) -> dict:
    """mode: plain_mqar.set_attention's."""
    plain_mqar.set_attention(mode)
    model.zero_grad()
    logits = model(prompts.inputs)
    F.cross_entropy(logits[prompts.mask], prompts.targets[prompts.mask]).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if name.endswith("qkv.weight")}


def main() -> None:
    torch.manual_seed(0)
    task = make_task(plain_mqar.TASK)
    prompts = task.sample(torch.Generator().manual_seed(1), 256)
    plain = plain_mqar.PlainGPT(plain_mqar.TASK["vocab"], plain_mqar.TASK["seq_len"])
    model = plain_mqar.our_model(torch.device("cpu"))
    plain_mqar.copy_plain_weights(plain, model)
    exact = qkv_gradients(model, prompts, "fp32")
    width = model.graph_attrs.get("width", 128)
    lines = ["# fp16 attention's qkv gradients against fp32 attention's (CPU, one quick-MQAR batch)", "",
             "Relative error (norm of the difference / norm of the fp32 gradient) of each attention "
             "layer's qkv weight gradient, per q, k, v slice; written by benchmarks/attention_fp16_gradients.py.", "",
             "| attention | layer | q | k | v |", "|---|---|---|---|---|"]
    for mode, label in (("fp16-unscaled", "fp16 unscaled"), ("fp16-scaled", "fp16 scaled (ours)")):
        grads = qkv_gradients(model, prompts, mode)
        for name, ref in exact.items():
            errs = [((grads[name][..., i * width:(i + 1) * width, :] - ref[..., i * width:(i + 1) * width, :]).norm()
                     / ref[..., i * width:(i + 1) * width, :].norm()).item() for i in range(3)]
            lines.append(f"| {label} | {name.split('.block')[0]} | " + " | ".join(f"{e:.1e}" for e in errs) + " |")
    plain_mqar.set_attention("auto")
    text = "\n".join(lines) + "\n"
    print(text)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)


if __name__ == "__main__":
    main()
