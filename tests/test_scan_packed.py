"""The sequential Triton selective scan (kernels/selective_scan_seq.py, backend "triton_seq")
against the pure-PyTorch reference: outputs, final states and every gradient, at odd sizes,
with NaN-poisoned output buffers. Without a GPU the kernels run in the Triton interpreter
(TRITON_INTERPRET=1) on CPU tensors, so the sizes are small; with a GPU the same tests run on it."""
import importlib
import os
import re
import sys

import pytest
import torch

import icl.kernels as kernels
from icl.kernels import dispatch
from icl.kernels.testing import make_scan_inputs, over_tolerance, poison_buffers, scan_errors

KERNEL_MODULE = "icl.kernels.selective_scan_seq"
ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"

# Triton reads TRITON_INTERPRET when it and the kernels are first imported: set it now, at
# collection, before anything imports triton; the module fixture restores it afterwards.
_INTERPRET_BEFORE = os.environ.get("TRITON_INTERPRET")
if not ON_GPU and "triton" not in sys.modules:
    os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture(scope="module", autouse=True)
def restore_interpret_variable():
    yield
    if _INTERPRET_BEFORE is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = _INTERPRET_BEFORE


@pytest.fixture(scope="module")
def seq_module():
    pytest.importorskip("triton")
    module = importlib.import_module(KERNEL_MODULE)
    if not ON_GPU:
        if type(module._seq_forward_kernel).__name__ != "InterpretedFunction":
            pytest.skip("triton was imported before TRITON_INTERPRET=1 could be set: run this file alone")
        os.environ["TRITON_INTERPRET"] = "1"
    return module


@pytest.fixture
def seq_scan(monkeypatch, seq_module):
    """Every buffer the kernels must fill starts as NaN, so unwritten memory fails the checks."""
    poison_buffers(monkeypatch, seq_module)
    return seq_module


def channels_last(inputs):
    """u, delta, z (batch, L, dim) and B, C (batch, L, N) in memory (same logical shapes): the
    layout whose loads are coalesced in the sequential kernel."""
    out = dict(inputs)
    for name in ("u", "delta", "z", "B", "C"):
        if out.get(name) is not None:
            out[name] = out[name].transpose(1, 2).contiguous().transpose(1, 2)
    return out


CASES = [
    # (batch, dim, L, N, dtype, config (block_d, warps, block_d_bwd, warps_bwd, chunk), options)
    (1, 60, 63, 16, torch.float32, (64, 4, 64, 4, 16), dict(layout="bld")),
    (1, 60, 63, 16, torch.bfloat16, (64, 4, 64, 4, 16), dict(layout="bld")),
    (2, 12, 29, 5, torch.float32, (8, 2, 8, 2, 8), dict()),             # D, L, N not multiples of blocks
    (2, 20, 13, 8, torch.bfloat16, (16, 2, 8, 2, 4), dict(with_bias=False, layout="bld")),
    (2, 10, 1, 4, torch.float32, (16, 2, 16, 2, 4), dict()),              # L = 1
    (1, 7, 16, 16, torch.float32, (8, 1, 8, 1, 16), dict(with_z=False, with_d=False, with_bias=False,
                                                       softplus=False)),  # L = T exactly
    (2, 9, 19, 6, torch.float32, (16, 2, 16, 2, 8), dict(with_z=False, no_state_grad=True)),
]


@pytest.mark.parametrize("batch,dim,length,n_state,dtype,config,options", CASES,
                         ids=[f"B{c[0]}-D{c[1]}-L{c[2]}-N{c[3]}-{str(c[4])[6:]}-T{c[5][4]}" for c in CASES])
def test_seq_matches_reference(seq_scan, batch, dim, length, n_state, dtype, config, options):
    """Output, final state and the gradient of every input against the reference."""
    options = dict(options)
    softplus = options.pop("softplus", True)
    layout = options.pop("layout", "bdl")
    state_grad = not options.pop("no_state_grad", False)
    inputs = make_scan_inputs(batch, dim, length, n_state, dtype, DEVICE, seed=length + n_state, **options)
    if layout == "bld":
        inputs = channels_last(inputs)
    errors = scan_errors(seq_scan.selective_scan_seq, kernels.selective_scan_ref, inputs,
                         delta_softplus=softplus, state_grad=state_grad, config=config)
    assert not over_tolerance(errors, dtype), errors


def test_seq_output_and_gradients_follow_input_layout(seq_scan):
    """out in u's memory order; du, ddelta, dz, dB, dC in their inputs' (packed when a view)."""
    inputs = channels_last(make_scan_inputs(2, 6, 9, 4, device=DEVICE))
    wide = torch.cat([inputs["z"], inputs["z"]], dim=1).transpose(1, 2).contiguous()  # (B, L, 2D)
    leaves = dict(inputs, z=wide[..., 6:].transpose(1, 2), C=inputs["C"].contiguous())
    leaves = {k: (v.requires_grad_() if v is not None and v.is_leaf else v) for k, v in leaves.items()}
    out = seq_scan.selective_scan_seq(**leaves, delta_softplus=True, config=(8, 1, 8, 1, 4))
    assert out.stride() == leaves["u"].stride()
    du, ddelta, dz, dB, dC = torch.autograd.grad(out.sum(), [leaves[k] for k in ("u", "delta", "z", "B", "C")])
    assert du.stride() == leaves["u"].stride() and ddelta.stride() == leaves["delta"].stride()
    assert dB.stride() == leaves["B"].stride() and dC.is_contiguous()
    assert dz.transpose(1, 2).is_contiguous()


def test_seq_without_gradients_skips_checkpoints(seq_scan):
    """Under torch.no_grad the forward writes the final state only: same numbers."""
    inputs = make_scan_inputs(2, 12, 21, 4, device=DEVICE, seed=5)
    with torch.no_grad():
        out, last = seq_scan.selective_scan_seq(**inputs, delta_softplus=True, return_last_state=True,
                                                config=(16, 2, 16, 2, 4))
    ref_out, ref_last = kernels.selective_scan_ref(**inputs, delta_softplus=True, return_last_state=True)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last, ref_last, rtol=1e-5, atol=1e-5)


GROUP_CASES = {
    # name: (groups, rows per group, dim, L, N, make_scan_inputs options)
    "three-models": (3, 2, 12, 13, 4, {}),
    "odd-sizes": (2, 3, 7, 9, 8, {}),
    "no-optional-inputs": (3, 1, 5, 6, 4, dict(with_z=False, with_d=False, with_bias=False)),
}


@pytest.mark.parametrize("backend", ["reference", "triton", "triton_seq"])
@pytest.mark.parametrize("case", list(GROUP_CASES))
def test_grouped_parameters_match_one_call_per_model(seq_scan, backend, case):
    """K models packed as one batch of K R rows with their parameters as K groups (A (K, dim, N),
    D and delta_bias (K, dim): how blocks/mamba.py scans a pack) give every model the output,
    final state and gradients of its own call of the reference."""
    groups, rows, dim, length, n_state, options = GROUP_CASES[case]
    per_model = [make_scan_inputs(rows, dim, length, n_state, device=DEVICE, seed=k, **options)
                 for k in range(groups)]
    names = [n for n in per_model[0] if per_model[0][n] is not None]
    batched = ("u", "delta", "B", "C", "z")  # rows of one batch; the rest stack as groups
    leaves = {n: (torch.cat if n in batched else torch.stack)([m[n] for m in per_model]).requires_grad_()
              for n in names}
    weights = [torch.randn(groups * rows, dim, length, device=DEVICE),
               torch.randn(groups * rows, dim, n_state, device=DEVICE)]
    out, last = kernels.selective_scan(**leaves, delta_softplus=True, return_last_state=True,
                                       backend=backend)
    loss = (out * weights[0]).sum() + (last * weights[1]).sum()
    grads = dict(zip(names, torch.autograd.grad(loss, list(leaves.values()))))
    for k in range(groups):
        mine = slice(k * rows, (k + 1) * rows)
        one = {n: per_model[k][n].clone().requires_grad_() for n in names}
        out_k, last_k = kernels.selective_scan_ref(**one, delta_softplus=True, return_last_state=True)
        torch.testing.assert_close(out[mine], out_k, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(last[mine], last_k, rtol=1e-5, atol=1e-5)
        grads_k = torch.autograd.grad((out_k * weights[0][mine]).sum() + (last_k * weights[1][mine]).sum(),
                                      list(one.values()))
        for name, grad_k in zip(names, grads_k):
            grad = grads[name][mine] if name in batched else grads[name][k]
            torch.testing.assert_close(grad, grad_k, rtol=1e-4, atol=1e-5, msg=f"{backend} model {k}: d{name}")


@pytest.mark.parametrize("bad,message", [
    (dict(A=torch.zeros(4, 12, 4)), "do not split into the 4 parameter groups"),
    (dict(D=torch.zeros(12)), "D must be (3, 12)"),
    (dict(delta_bias=torch.zeros(2, 12)), "delta_bias must be (3, 12)"),
])
def test_grouped_parameters_are_checked(bad, message):
    inputs = make_scan_inputs(6, 12, 5, 4)
    inputs.update(A=torch.stack([inputs["A"]] * 3), D=torch.stack([inputs["D"]] * 3),
                  delta_bias=torch.stack([inputs["delta_bias"]] * 3))
    inputs.update(bad)
    with pytest.raises(ValueError, match=re.escape(message)):
        kernels.selective_scan_ref(**inputs)


def test_dispatch_runs_triton_seq(seq_scan, monkeypatch):
    calls = []
    kernel = seq_scan.selective_scan_seq
    monkeypatch.setattr(seq_scan, "selective_scan_seq", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    inputs = make_scan_inputs(1, 4, 5, 16, device=DEVICE)
    out = kernels.selective_scan(**inputs, delta_softplus=True, backend="triton_seq")
    assert calls == [1]
    torch.testing.assert_close(out, kernels.selective_scan_ref(**inputs, delta_softplus=True), rtol=1e-5, atol=1e-5)


def test_triton_seq_is_a_known_backend(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv(dispatch.ENV_VAR, "triton_seq")
    assert dispatch.resolve_backend("cpu") == "triton_seq"
    assert dispatch.AUTO_CUDA_BACKEND in ("triton", "triton_seq")
    monkeypatch.delenv(dispatch.ENV_VAR)
    assert dispatch.resolve_backend("cpu") == "reference"  # auto off CUDA


def test_seq_rejects_bad_chunk(seq_scan):
    inputs = make_scan_inputs(1, 4, 5, 4, device=DEVICE)
    with pytest.raises(ValueError, match="chunk"):
        seq_scan.selective_scan_seq(**inputs, config=(8, 1, 8, 1, 0))
