"""The attention block under TF32 runs its attention on fp16 copies of q, k, v
(blocks/attention.py): that path is taken, and its output and gradients stay within TF32's
error of the fp32 attention's. Run on a GPU machine (skipped without CUDA)."""
import pytest
import torch
import torch.nn.functional as F

from icl.blocks import attention
from icl.blocks.attention import CausalSelfAttention
from icl.training.precision import autocast, matmul_precision

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DEV = torch.device("cuda")


def _run(block, x, dout, precision, monkeypatch):
    dtypes = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(attention.F, "scaled_dot_product_attention",
                        lambda q, *a, **k: dtypes.append(q.dtype) or sdpa(q, *a, **k))
    x = x.detach().requires_grad_()
    block.zero_grad()
    with matmul_precision(precision, DEV), autocast(precision, DEV):
        y = block(x)
    (y.float() * dout).sum().backward()
    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", sdpa)
    return dtypes, [y.float(), x.grad] + [p.grad.clone() for p in block.parameters()]


def test_tf32_attention_runs_fp16_close_to_fp32(monkeypatch):
    torch.manual_seed(0)
    block = CausalSelfAttention(128, heads=8, bias=True).to(DEV)
    x = torch.randn(1, 16, 280, 128, device=DEV)  # (K, B, T, D)
    dout = torch.randn_like(x)
    dtypes, exact = _run(block, x, dout, "fp32", monkeypatch)
    assert dtypes == [torch.float32]
    dtypes, fast = _run(block, x, dout, "tf32", monkeypatch)
    assert dtypes == [torch.float16]
    for name, ours, ref in zip(["y", "dx", "qkv.w", "qkv.b", "proj.w", "proj.b"], fast, exact):
        rel = ((ours - ref).norm() / ref.norm()).item()
        assert rel < 3e-3, (name, rel)  # TF32 products alone: ~1e-3
    dtypes, _ = _run(block, x, dout, "bf16", monkeypatch)
    assert dtypes == [torch.bfloat16]  # autocast's choice, untouched


def test_tf32_attention_keeps_a_plateaus_tiny_gradients(monkeypatch):
    """An upstream gradient of ~1e-9 (a loss plateau): fp16 alone flushes what reaches q, k and v
    to zero; the scaled backward keeps them within TF32's error of the fp32 attention's."""
    torch.manual_seed(1)
    block = CausalSelfAttention(128, heads=2, bias=True).to(DEV)
    x = torch.randn(1, 16, 64, 128, device=DEV)
    dout = torch.randn_like(x) * 1e-9
    _, exact = _run(block, x, dout, "fp32", monkeypatch)
    dtypes, fast = _run(block, x, dout, "tf32", monkeypatch)
    assert dtypes == [torch.float16]
    for name, ours, ref in zip(["y", "dx", "qkv.w", "qkv.b", "proj.w", "proj.b"], fast, exact):
        rel = ((ours - ref).norm() / ref.norm()).item()
        assert rel < 3e-3, (name, rel)
