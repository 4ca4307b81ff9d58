"""flash-linear-attention's kernels (mixer_backend = fla) against the PyTorch references
(mixer_backend = reference) of the GLA, DN, GDN and R7 blocks: outputs, final states and every
gradient (inputs and weights), at a few shapes including odd ones, K runs stacked; and the
choice recorded. Needs a CUDA device and fla (`pip install 'icl-compiler[fla]'`, or on the GPU
machine: pip install --no-index --no-deps .whl/fla_core-*.whl .whl/einops-*.whl); skipped
cleanly without either."""
from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from icl.blocks.deltanet import DeltaNet
from icl.blocks.gated_deltanet import GatedDeltaNet
from icl.blocks.gla import GatedLinearAttention
from icl.blocks.linear_attention import fla_declines
from icl.blocks.model import stack_models
from icl.blocks.rwkv7 import RWKV7TimeMix

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
              pytest.mark.skipif(importlib.util.find_spec("fla") is None,
                                 reason="needs flash-linear-attention: pip install 'icl-compiler[fla]'")]

DEV = torch.device("cuda")
BLOCKS = {"GLA": lambda D, H: GatedLinearAttention(D, heads=H),
          "DN": lambda D, H: DeltaNet(D, heads=H, d_conv=4),
          "GDN": lambda D, H: GatedDeltaNet(D, heads=H, d_conv=4),
          "R7": lambda D, H: RWKV7TimeMix(D, heads=H)}
# (K runs, batch, tokens, width, heads): fla's chunk size 64 and not, head dims 16..64
SHAPES = [(1, 2, 64, 64, 4), (3, 2, 63, 96, 2), (2, 1, 200, 128, 2), (4, 3, 17, 64, 1)]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()


def stacked(token: str, runs: int, width: int, heads: int):
    torch.manual_seed(0)
    lone = [BLOCKS[token](width, heads) for _ in range(runs)]
    block = copy.deepcopy(lone[0])
    with torch.no_grad():  # the stack_models rule for one block: parameters concatenated on K
        for name, p in block.named_parameters():
            p.data = torch.cat([m.get_parameter(name).detach() for m in lone])
        for name, b in block.named_buffers():
            b.data = torch.cat([m.get_buffer(name) for m in lone])
    return block.to(DEV)


def skip_where_fla_declines(token: str) -> None:
    reason = fla_declines(token)
    if reason:  # a known fla defect on this GPU: auto runs the reference (tested below)
        pytest.skip(reason)


def run(block, x, dout, backend, autocast=False):
    if backend == "fla":
        skip_where_fla_declines(block.block_name)
    block.mixer_backend = backend
    block.zero_grad()
    x = x.detach().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        y, state = block(x, return_state=True)
    (y.float() * dout).sum().backward()
    assert block.backend_ran == backend
    grads = {name: p.grad.clone() for name, p in block.named_parameters() if p.grad is not None}
    return y.float(), state.float(), x.grad, grads


@pytest.fixture(autouse=True)
def exact_products():
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "K{}B{}T{}D{}H{}".format(*s))
@pytest.mark.parametrize("token", sorted(BLOCKS))
def test_fla_kernel_matches_the_reference_fp32(token, shape):
    runs, batch, length, width, heads = shape
    block = stacked(token, runs, width, heads)
    torch.manual_seed(1)
    x = torch.randn(runs, batch, length, width, device=DEV)
    dout = torch.randn(runs, batch, length, width, device=DEV)
    y_ref, s_ref, dx_ref, g_ref = run(block, x, dout, "reference")
    y, s, dx, g = run(block, x, dout, "fla")
    # fla's kernels take their fp32 dot products on TF32 tensor cores inside Triton: ~1e-3
    assert rel(y, y_ref) < 5e-3, ("y", rel(y, y_ref))
    assert rel(s, s_ref) < 5e-3, ("state", rel(s, s_ref))
    assert rel(dx, dx_ref) < 1e-2, ("dx", rel(dx, dx_ref))
    assert g.keys() == g_ref.keys()
    for name in g_ref:
        if g_ref[name].norm() > 0:
            assert rel(g[name], g_ref[name]) < 1e-2, (name, rel(g[name], g_ref[name]))


@pytest.mark.parametrize("token", sorted(BLOCKS))
def test_fla_kernel_under_bf16_autocast_stays_near_the_fp32_reference(token):
    block = stacked(token, 2, 64, 2)
    torch.manual_seed(2)
    x = torch.randn(2, 2, 96, 64, device=DEV)
    dout = torch.randn_like(x)
    y_ref, _, dx_ref, _ = run(block, x, dout, "reference")
    y, _, dx, _ = run(block, x, dout, "fla", autocast=True)
    assert rel(y, y_ref) < 5e-2 and rel(dx, dx_ref) < 8e-2, (rel(y, y_ref), rel(dx, dx_ref))


@pytest.mark.parametrize("token", sorted(BLOCKS))
def test_auto_runs_fla_on_cuda_and_the_model_records_it(token):
    from icl.compiler.build import build_model
    from icl.tasks.catalog import Layout

    layout = Layout(token_dim=5, out_dim=1, tokens=32)
    models = [build_model({"layers": f"{token} M", "width": 32, "heads": 2, "d_state": 4}, layout)
              for _ in range(2)]
    model = stack_models(models).to(DEV)
    out = model(torch.randn(2, 4, 32, 5, device=DEV))
    out.square().mean().backward()
    assert ("reference" if fla_declines(token) else "fla") in model.scan_backend().split(", ")
