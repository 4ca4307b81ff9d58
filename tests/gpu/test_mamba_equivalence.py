"""The project's Mamba mixer equals the official one (mamba_ssm.modules.mamba_simple.Mamba).

Same weights loaded into both (the parameter names match; ours carry a leading run axis of 1,
so each official tensor is reshaped to ours); outputs and the gradients of the
input and of every parameter compared at fp32 tolerance. Needs CUDA and mamba_ssm (the wheel in
/work/shared/wheels); skipped otherwise. With ICL_GPU_RESULTS set to a file path, a summary
(device, sizes, max errors) is appended there as JSON lines.
"""
from __future__ import annotations

import json
import os

import pytest
import torch

from icl.blocks.mamba import MambaMixer

pytestmark = pytest.mark.gpu

mamba_simple = pytest.importorskip("mamba_ssm.modules.mamba_simple") if torch.cuda.is_available() else None

# (batch, length, width, d_state, d_conv, expand): odd lengths, the study's width and a small one
SIZES = [(2, 1, 64, 16, 4, 2), (2, 7, 64, 16, 4, 2), (3, 63, 96, 8, 3, 2),
         (2, 256, 256, 16, 4, 2), (4, 202, 256, 16, 4, 2)]
BACKENDS = ["reference", "triton"]
# fp32 with TF32 off: max |ours - official| <= ATOL + RTOL * max |official|. The absolute floor
# matters where the exact value is 0 (the gradient of A_log at L = 1: the state starts at zero).
RTOL, ATOL = 1e-3, 1e-6


def compare(ours: torch.Tensor, official: torch.Tensor) -> dict:
    abs_err = (ours - official).abs().max().item()
    scale = official.abs().max().item()
    return {"max_abs_error": abs_err, "max_abs_official": scale,
            "relative_error": abs_err / max(scale, 1e-30), "ok": abs_err <= ATOL + RTOL * scale}


def record(entry: dict) -> None:
    path = os.environ.get("ICL_GPU_RESULTS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch,length,width,d_state,d_conv,expand", SIZES)
def test_mamba_mixer_equals_mamba_ssm(backend, batch, length, width, d_state, d_conv, expand):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    torch.manual_seed(0)
    official = mamba_simple.Mamba(width, d_state=d_state, d_conv=d_conv, expand=expand).to(device)
    ours = MambaMixer(width, d_state=d_state, d_conv=d_conv, expand=expand, dt_rank=None,
                      dt_min=0.001, dt_max=0.1).to(device)
    ours.backend = backend
    # Random weights everywhere (not only the init) so every path is exercised.
    with torch.no_grad():
        for p in official.parameters():
            p.add_(0.1 * torch.randn_like(p))
    shapes = {name: p.shape for name, p in ours.named_parameters()}
    ours.load_state_dict({name: t.reshape(shapes[name]) for name, t in official.state_dict().items()})

    u = torch.randn(batch, length, width, device=device)
    u_official, u_ours = u.clone().requires_grad_(), u.clone().requires_grad_()
    out_official, out_ours = official(u_official), ours(u_ours.unsqueeze(0)).squeeze(0)  # one run
    grad_out = torch.randn_like(out_official)
    out_official.backward(grad_out)
    out_ours.backward(grad_out)

    errors = {"out": compare(out_ours, out_official), "grad_u": compare(u_ours.grad, u_official.grad)}
    official_params = dict(official.named_parameters())
    for name, p in ours.named_parameters():
        errors[f"grad_{name}"] = compare(p.grad.reshape(official_params[name].shape), official_params[name].grad)
    record({"test": "mamba_mixer_equals_mamba_ssm", "device": torch.cuda.get_device_name(),
            "torch": torch.__version__, "backend": backend,
            "fast_path": bool(official.use_fast_path and mamba_simple.causal_conv1d_fn is not None),
            "batch": batch, "length": length, "width": width, "d_state": d_state, "d_conv": d_conv,
            "expand": expand, "max_abs_error": max(e["max_abs_error"] for e in errors.values()),
            "max_relative_error": max(e["relative_error"] for e in errors.values() if e["max_abs_official"] > 1e-6),
            "errors": errors})
    bad = {k: v for k, v in errors.items() if not v["ok"]}
    assert not bad, f"errors above {ATOL} + {RTOL} * max|official|: {bad}"
