"""Selective scan on a CUDA device: the Triton kernel against the reference (outputs, final
state, every gradient, NaN-poisoned buffers) and against mamba-ssm's CUDA kernel.
Run on a GPU machine: pytest tests/gpu/test_kernels_gpu.py (skipped without CUDA)."""
import pytest
import torch

import icl.kernels as kernels
from icl.kernels.testing import make_scan_inputs, over_tolerance, poison_buffers, rel_err, scan_errors

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DEVICE = "cuda"


def _count_kernel_calls(monkeypatch) -> list[str]:
    """Wraps both Triton kernels so that each call appends its backend name to the list returned."""
    from icl.kernels import selective_scan_seq, selective_scan_triton
    calls: list[str] = []
    for module, name, backend in ((selective_scan_triton, "selective_scan_triton", "triton"),
                                  (selective_scan_seq, "selective_scan_seq", "triton_seq")):
        kernel = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _k=kernel, _b=backend, **k: calls.append(_b) or _k(*a, **k))
    return calls


@pytest.fixture(autouse=True)
def poisoned_buffers(monkeypatch):
    from icl.kernels import selective_scan_triton
    poison_buffers(monkeypatch, selective_scan_triton)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("length", [1, 7, 63, 80, 300, 1030])
@pytest.mark.parametrize("dim", [60, 128])
def test_triton_matches_reference(dtype, length, dim):
    from icl.kernels.selective_scan_triton import selective_scan_triton
    inputs = make_scan_inputs(3, dim, length, 16, dtype, DEVICE, seed=length + dim)
    errors = scan_errors(selective_scan_triton, kernels.selective_scan_ref, inputs)
    assert not over_tolerance(errors, dtype), errors


@pytest.mark.parametrize("config", [(8, 16, 1), (16, 16, 2), (16, 32, 4), (64, 16, 4)])
def test_launch_shapes_agree(config):
    from icl.kernels.selective_scan_triton import selective_scan_triton
    inputs = make_scan_inputs(2, 100, 203, 16, torch.float32, DEVICE, seed=7, with_z=False)
    errors = scan_errors(selective_scan_triton, kernels.selective_scan_ref, inputs, config=config)
    assert not over_tolerance(errors, torch.float32), errors


def test_auto_dispatch_on_cuda_uses_triton(monkeypatch):
    from icl.kernels import dispatch
    if dispatch.AUTO_CUDA_BACKEND != "triton":
        pytest.skip("auto runs triton_seq on CUDA (see test_auto_dispatch_on_cuda_uses_the_chosen_kernel)")
    monkeypatch.delenv("ICL_SCAN_BACKEND", raising=False)
    inputs = make_scan_inputs(2, 16, 33, 16, torch.float32, DEVICE)
    calls = _count_kernel_calls(monkeypatch)
    kernels.selective_scan(**inputs, delta_softplus=True)
    assert calls == ["triton"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_agrees_with_mamba_ssm(dtype):
    interface = pytest.importorskip("mamba_ssm.ops.selective_scan_interface")
    inputs = make_scan_inputs(4, 96, 257, 16, dtype, DEVICE, seed=3)
    ours = scan_errors(kernels.selective_scan, interface.selective_scan_fn, inputs, state_grad=False,
                       check_dtypes=False)
    limit = 1e-4 if dtype == torch.float32 else 3e-2
    assert all(v <= limit for v in ours.values()), ours
    out = kernels.selective_scan(**inputs, delta_softplus=True)
    ref = interface.selective_scan_fn(**inputs, delta_softplus=True)
    assert rel_err(out, ref) <= limit


# The sequential kernel (selective_scan_seq.py, backend "triton_seq").

@pytest.fixture
def seq_poisoned(monkeypatch):
    from icl.kernels import selective_scan_seq
    poison_buffers(monkeypatch, selective_scan_seq)
    return selective_scan_seq


def _channels_last(inputs):
    """u, delta, z (batch, L, dim) and B, C (batch, L, N) in memory: the layout the sequential
    kernel reads with coalesced loads (same logical shapes)."""
    out = dict(inputs)
    for name in ("u", "delta", "z", "B", "C"):
        if out.get(name) is not None:
            out[name] = out[name].transpose(1, 2).contiguous().transpose(1, 2)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("length", [1, 7, 63, 80, 300])
@pytest.mark.parametrize("dim", [60, 256])
@pytest.mark.parametrize("layout", ["bld", "bdl"])
def test_seq_matches_reference(seq_poisoned, dtype, length, dim, layout):
    inputs = make_scan_inputs(3, dim, length, 16, dtype, DEVICE, seed=length + dim)
    if layout == "bld":
        inputs = _channels_last(inputs)
    errors = scan_errors(seq_poisoned.selective_scan_seq, kernels.selective_scan_ref, inputs)
    assert not over_tolerance(errors, dtype), errors


@pytest.mark.parametrize("config", [(32, 1, 32, 1, 3, 0), (64, 1, 32, 1, 2, 2),
                                    (32, 4, 32, 1, 5, 2), (16, 2, 16, 2, 4, 0),
                                    # reduce 2 (the shuffles as tl.sum) and register caps (bwd, fwd)
                                    (64, 1, 32, 1, 3, 2), (64, 1, 32, 1, 3, 3, 168, 96),
                                    (64, 1, 32, 1, 3, 3, 0, 128, 1)])  # prefetch
def test_seq_launch_shapes_agree(seq_poisoned, config):
    inputs = _channels_last(make_scan_inputs(2, 100, 203, 16, torch.float32, DEVICE, seed=7))
    errors = scan_errors(seq_poisoned.selective_scan_seq, kernels.selective_scan_ref, inputs, config=config)
    assert not over_tolerance(errors, torch.float32), errors


@pytest.mark.parametrize("n_state", [5, 8])
def test_seq_odd_state_sizes(seq_poisoned, n_state):
    inputs = make_scan_inputs(3, 60, 63, n_state, torch.float32, DEVICE, seed=n_state, with_z=False)
    errors = scan_errors(seq_poisoned.selective_scan_seq, kernels.selective_scan_ref, inputs)
    assert not over_tolerance(errors, torch.float32), errors


def test_auto_dispatch_on_cuda_uses_the_chosen_kernel(monkeypatch):
    from icl.kernels import dispatch
    monkeypatch.delenv("ICL_SCAN_BACKEND", raising=False)
    inputs = make_scan_inputs(2, 16, 33, 16, torch.float32, DEVICE)
    calls = _count_kernel_calls(monkeypatch)
    kernels.selective_scan(**inputs, delta_softplus=True)
    kernels.selective_scan(**inputs, delta_softplus=True, backend="triton_seq")
    assert calls == [dispatch.AUTO_CUDA_BACKEND, "triton_seq"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_seq_agrees_with_mamba_ssm(seq_poisoned, dtype):
    interface = pytest.importorskip("mamba_ssm.ops.selective_scan_interface")
    inputs = make_scan_inputs(4, 96, 257, 16, dtype, DEVICE, seed=3)
    ours = scan_errors(seq_poisoned.selective_scan_seq, interface.selective_scan_fn, inputs, state_grad=False,
                       check_dtypes=False)
    limit = 1e-4 if dtype == torch.float32 else 3e-2
    assert all(v <= limit for v in ours.values()), ours
