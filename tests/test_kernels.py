"""Selective scan: the Triton kernel against the pure-PyTorch reference, and the backend
dispatch; the blocks' fused causal conv + SiLU and norm kernels against their PyTorch paths
(blocks/stacked.py). Without a GPU the kernels run in the Triton interpreter (TRITON_INTERPRET=1) on CPU
tensors, so sizes are tiny; with a GPU the same tests run on it."""
import importlib
import os
import sys
import warnings

import pytest
import torch

import icl.kernels as kernels
from icl.kernels import dispatch
from icl.kernels.testing import make_scan_inputs, over_tolerance, poison_buffers, scan_errors

KERNEL_MODULE = "icl.kernels.selective_scan_triton"
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
def triton_scan():
    pytest.importorskip("triton")
    module = importlib.import_module(KERNEL_MODULE)
    if not ON_GPU:
        if type(module._scan_forward_kernel).__name__ != "InterpretedFunction":
            pytest.skip("triton was imported before TRITON_INTERPRET=1 could be set: run this file alone")
        os.environ["TRITON_INTERPRET"] = "1"
    return module


@pytest.fixture
def poisoned_buffers(monkeypatch, triton_scan):
    """Every buffer the kernels must fill starts as NaN, so unwritten memory fails the checks."""
    poison_buffers(monkeypatch, triton_scan)
    return triton_scan


CASES = [
    # (batch, dim, L, N, dtype, config (BLOCK_D, T, warps), options)
    (2, 60, 1, 4, torch.float32, (64, 16, 4), dict()),
    (1, 60, 7, 4, torch.float32, (64, 16, 4), dict(with_z=False, with_d=False, with_bias=False, softplus=False)),
    (1, 60, 63, 4, torch.float32, (64, 16, 4), dict()),
    (1, 60, 80, 4, torch.float32, (64, 16, 4), dict(with_z=False)),
    (2, 8, 20, 16, torch.float32, (8, 16, 4), dict()),
    (1, 60, 63, 4, torch.bfloat16, (64, 16, 4), dict()),
    (1, 12, 7, 8, torch.bfloat16, (4, 16, 2), dict(with_bias=False)),
]


@pytest.mark.parametrize("batch,dim,length,n_state,dtype,config,options", CASES,
                         ids=[f"L{c[2]}-D{c[1]}-N{c[3]}-{str(c[4])[6:]}" for c in CASES])
def test_triton_matches_reference(poisoned_buffers, batch, dim, length, n_state, dtype, config, options):
    triton_scan = poisoned_buffers
    options = dict(options)
    softplus = options.pop("softplus", True)
    inputs = make_scan_inputs(batch, dim, length, n_state, dtype, DEVICE, seed=length, **options)
    errors = scan_errors(triton_scan.selective_scan_triton, kernels.selective_scan_ref, inputs,
                         delta_softplus=softplus, config=config)
    assert not over_tolerance(errors, dtype), errors


# The sequential kernel (selective_scan_seq.py, backend "triton_seq"): each launch shape and
# each way of summing over channels in its backward (SeqConfig.reduce: 0 tl.sum, 2 a
# reduce-scatter), at odd sizes. More cases: tests/test_scan_packed.py.
SEQ_CASES = [
    # (batch, dim, L, N, dtype, config (block_d, warps, block_d_bwd, warps_bwd, chunk, reduce), options)
    (2, 37, 11, 5, torch.float32, (32, 1, 32, 1, 3, 0), dict()),
    (1, 20, 5, 3, torch.float32, (8, 1, 32, 1, 2, 2), dict(with_z=False, with_d=False, with_bias=False, softplus=False)),
    (2, 40, 7, 16, torch.float32, (64, 1, 32, 1, 3, 2), dict()),
    (3, 9, 13, 5, torch.bfloat16, (16, 1, 32, 1, 4, 2), dict()),
    (2, 19, 7, 9, torch.float32, (16, 1, 16, 1, 4, 0), dict(with_z=False)),
    # the default's reduce 3 (PTX shuffles on CUDA; 2 here) with register caps (bwd, fwd)
    (2, 40, 7, 16, torch.float32, (64, 1, 32, 1, 3, 3, 168, 128), dict()),
    # SeqConfig.prefetch: each chunk's inputs loaded one chunk ahead (L 13: 5 chunks of 3, the last part-filled)
    (3, 9, 13, 5, torch.bfloat16, (16, 1, 32, 1, 3, 2, 0, 0, 1), dict()),
    (2, 40, 7, 16, torch.float32, (64, 1, 32, 1, 2, 0, 0, 0, 1), dict(with_z=False, softplus=False)),
]


@pytest.fixture
def seq_poisoned(monkeypatch, triton_scan):
    module = importlib.import_module("icl.kernels.selective_scan_seq")
    poison_buffers(monkeypatch, module)
    return module


@pytest.mark.parametrize("batch,dim,length,n_state,dtype,config,options", SEQ_CASES,
                         ids=[f"L{c[2]}-D{c[1]}-N{c[3]}-{str(c[4])[6:]}-r{c[5][5]}" for c in SEQ_CASES])
def test_seq_matches_reference(seq_poisoned, batch, dim, length, n_state, dtype, config, options):
    options = dict(options)
    softplus = options.pop("softplus", True)
    inputs = make_scan_inputs(batch, dim, length, n_state, dtype, DEVICE, seed=length, **options)
    errors = scan_errors(seq_poisoned.selective_scan_seq, kernels.selective_scan_ref, inputs,
                         delta_softplus=softplus, config=config)
    assert not over_tolerance(errors, dtype), errors


def test_dispatch_forced_triton_runs_the_kernel(poisoned_buffers, monkeypatch):
    triton_scan, calls = poisoned_buffers, []
    kernel = triton_scan.selective_scan_triton
    monkeypatch.setattr(triton_scan, "selective_scan_triton", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    inputs = make_scan_inputs(1, 4, 5, 16, device=DEVICE)
    out = kernels.selective_scan(**inputs, delta_softplus=True, backend="triton")
    assert calls == [1]
    ref = kernels.selective_scan_ref(**inputs, delta_softplus=True)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_auto_on_cpu_uses_reference(monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    inputs = make_scan_inputs(1, 3, 4, 2)
    out = kernels.selective_scan(**inputs)
    assert dispatch.resolve_backend("cpu") == "reference"
    torch.testing.assert_close(out, kernels.selective_scan_ref(**inputs))


def test_environment_variable_forces_backend(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    assert dispatch.resolve_backend("cuda") == "reference"
    monkeypatch.setenv(dispatch.ENV_VAR, "triton")
    assert dispatch.resolve_backend("cpu") == "triton"  # allowed on CPU under the interpreter
    assert dispatch.resolve_backend("cpu", "reference") == "reference"  # the argument wins


def test_unavailable_backend_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setattr(dispatch, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dispatch.resolve_backend("cpu", "triton") == "reference"
        assert dispatch.resolve_backend("cpu", "triton") == "reference"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "using the reference backend" in messages[0], messages


def test_missing_triton_falls_back(monkeypatch):
    monkeypatch.setattr(dispatch, "triton_available", lambda: False)
    monkeypatch.setattr(dispatch, "_warned", set())
    with pytest.warns(RuntimeWarning, match="not installed"):
        assert dispatch.resolve_backend("cuda", "auto") == "reference"


def test_bad_backend_name_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="must be one of auto, triton, triton_seq, reference"):
        kernels.selective_scan(**make_scan_inputs(1, 2, 3, 2), backend="cuda")
    monkeypatch.setenv(dispatch.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="ICL_SCAN_BACKEND"):
        dispatch.resolve_backend("cpu")


@pytest.mark.parametrize("field,shape,message", [
    ("u", (2, 3), "u must be"),
    ("A", (4, 2), "A must be"),
    ("B", (1, 2, 9), "B must be"),
    ("D", (5,), "D must be"),
])
def test_bad_shapes_are_clear_errors(field, shape, message):
    inputs = make_scan_inputs(1, 3, 4, 2)
    inputs[field] = torch.zeros(shape)
    with pytest.raises(ValueError, match=message):
        kernels.selective_scan_ref(**inputs)


def test_triton_rejects_chunk_shorter_than_state(poisoned_buffers):
    triton_scan = poisoned_buffers
    with pytest.raises(ValueError, match="at least N"):
        triton_scan.selective_scan_triton(**make_scan_inputs(1, 3, 4, 32, device=DEVICE), config=(4, 16, 4))


def test_reference_matches_closed_form_for_one_state():
    # One channel, one state, A = 0: x_t = sum_{s<=t} delta_s B_s u_s, y_t = C_t x_t.
    u = torch.tensor([[[1.0, 2.0, 3.0]]])
    delta = torch.tensor([[[0.5, 1.0, 2.0]]])
    B = torch.tensor([[[1.0, 1.0, 2.0]]])
    C = torch.tensor([[[2.0, 1.0, 1.0]]])
    out, last = kernels.selective_scan_ref(u, delta, torch.zeros(1, 1), B, C, return_last_state=True)
    torch.testing.assert_close(out, torch.tensor([[[1.0, 2.5, 14.5]]]))
    torch.testing.assert_close(last, torch.tensor([[[14.5]]]))


def test_reference_checkpointed_stretches_change_nothing_but_the_sum_order(monkeypatch):
    """The reference recomputes stretches of CHECKPOINT_STEPS steps in the backward: outputs,
    final state and every gradient but A's are the ones of a single stretch bit for bit; A's
    (a sum over batch and steps) only adds the stretches' partial sums in another order."""
    from icl.kernels.testing import run_scan
    ref = importlib.import_module("icl.kernels.selective_scan_ref")   # the package exports the function
    inputs = make_scan_inputs(2, 6, 70, 4)   # 70 steps = 3 stretches of 32; fp32, as it computes
    dout, dlast = torch.randn(2, 6, 70), torch.randn(2, 6, 4)

    calls = []
    stretch = ref._stretch
    monkeypatch.setattr(ref, "_stretch", lambda *args: calls.append(1) or stretch(*args))

    def run(steps):
        monkeypatch.setattr(ref, "CHECKPOINT_STEPS", steps)
        calls.clear()
        return run_scan(ref.selective_scan_ref, inputs, dout, dlast), len(calls)

    (out1, last1, grads1), _ = run(10_000)   # one stretch
    (out2, last2, grads2), stretches = run(32)
    assert stretches == 6   # 3 stretches forward, each recomputed once in the backward
    assert torch.equal(out1, out2) and torch.equal(last1, last2)
    for name in grads1:
        if name == "A":
            torch.testing.assert_close(grads2[name], grads1[name], rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(grads1[name], grads2[name]), name



class _GradientTransposed(torch.autograd.Function):
    """The identity, whose backward hands on the gradient (batch, L, dim) in memory, as out_proj's."""
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(1, 2).contiguous().transpose(1, 2)


def as_block_views(fn, outputs):
    """fn called on the views that the Mamba block passes, made from contiguous inputs by
    differentiable ops: u and delta (batch, L, dim) in memory, z the second half of a
    (batch, L, 2 dim) tensor, B and C slices of a (batch, L, 3 + 2N) tensor, as x_proj's output;
    the output's gradient comes back (batch, L, dim) in memory. The columns next to the slices
    are NaN: a read outside a view shows. The outputs of every call are appended to `outputs`."""
    def transposed(t):
        return t.transpose(1, 2).contiguous().transpose(1, 2)

    def beside_nan(*parts, before):
        # parts (batch, n_i, L) -> views into one (batch, L, before + sum n_i) tensor
        pad = torch.full((parts[0].shape[0], parts[0].shape[2], before), float("nan"), dtype=parts[0].dtype,
                         device=parts[0].device)
        wide = torch.cat([pad] + [p.transpose(1, 2) for p in parts], dim=-1)
        return [v.transpose(1, 2) for v in wide.split([before] + [p.shape[1] for p in parts], dim=-1)[1:]]

    def wrapped(u, delta, A, B, C, D=None, z=None, delta_bias=None, **kwargs):
        (z_view,) = beside_nan(z, before=z.shape[1])
        B_view, C_view = beside_nan(B, C, before=3)
        out, last = fn(transposed(u), transposed(delta), A, B_view, C_view, D, z_view, delta_bias, **kwargs)
        outputs.append(out)
        return _GradientTransposed.apply(out), last
    return wrapped


STRIDED_CASES = [
    # (batch, dim, L, N, dtype, config (BLOCK_D, T, warps))
    (2, 12, 37, 8, torch.float32, (8, 16, 2)),
    (2, 12, 37, 8, torch.bfloat16, (8, 16, 2)),
    (1, 40, 20, 16, torch.float32, (32, 16, 4)),
]


@pytest.mark.parametrize("batch,dim,length,n_state,dtype,config", STRIDED_CASES,
                         ids=[f"L{c[2]}-D{c[1]}-N{c[3]}-{str(c[4])[6:]}" for c in STRIDED_CASES])
def test_triton_reads_and_writes_strided_views(poisoned_buffers, batch, dim, length, n_state, dtype, config):
    """The scan on the block's views (no copies) matches the reference on contiguous inputs: the
    output, the final state and every gradient, which flow back through the views."""
    triton_scan = poisoned_buffers
    inputs = make_scan_inputs(batch, dim, length, n_state, dtype, DEVICE, seed=length)
    outputs = []
    errors = scan_errors(as_block_views(triton_scan.selective_scan_triton, outputs),
                         kernels.selective_scan_ref, inputs, config=config)
    assert not over_tolerance(errors, dtype), errors
    (out,) = outputs
    # The output in u's memory order: as_block_views passes u (batch, L, dim) in memory.
    assert out.shape == (batch, dim, length) and out.stride() == (length * dim, 1, dim)


def test_triton_output_of_a_contiguous_u_is_contiguous(poisoned_buffers):
    inputs = make_scan_inputs(2, 6, 9, 4, device=DEVICE)
    out = poisoned_buffers.selective_scan_triton(**inputs, delta_softplus=True, config=(8, 16, 2))
    assert out.is_contiguous()


def test_triton_gradient_buffers_follow_input_layout(poisoned_buffers):
    """du, ddelta, dz, dB and dC come back laid out as their inputs: dense permutations as they
    are, a chunk of a wider tensor packed in the same order."""
    triton_scan = poisoned_buffers
    inputs = make_scan_inputs(2, 6, 9, 4, device=DEVICE)
    wide = torch.cat([inputs["z"], inputs["z"]], dim=1).transpose(1, 2).contiguous()  # (B, L, 2D)
    leaves = dict(inputs, u=inputs["u"].transpose(1, 2).contiguous().transpose(1, 2),
                  z=wide[..., 6:].transpose(1, 2), B=inputs["B"].transpose(1, 2).contiguous().transpose(1, 2))
    leaves = {k: (v.requires_grad_() if v is not None and v.is_leaf else v) for k, v in leaves.items()}
    out = triton_scan.selective_scan_triton(**leaves, delta_softplus=True, config=(8, 16, 2))
    grads = torch.autograd.grad(out.sum(), [leaves[k] for k in ("u", "delta", "z", "B", "C")])
    du, ddelta, dz, dB, dC = grads
    assert du.stride() == leaves["u"].stride() and ddelta.is_contiguous() and dC.is_contiguous()
    assert dB.stride() == leaves["B"].stride()
    assert dz.transpose(1, 2).is_contiguous()


@pytest.mark.parametrize("kernel", ["triton", "triton_seq"])
def test_mamba_block_with_triton_matches_reference(poisoned_buffers, kernel):
    """The Mamba block with a Triton scan (fed the block's views: B and C copied to time-major
    for "triton", as they are for "triton_seq") against the reference scan: output, final state
    and every parameter gradient."""
    from icl.blocks.mamba import MambaMixer

    torch.manual_seed(0)
    block = MambaMixer(8, d_state=4, d_conv=3, expand=2, dt_rank=2, dt_min=0.001, dt_max=0.1).to(DEVICE)
    u = torch.randn(1, 2, 19, 8, device=DEVICE)  # one run (the block's leading run axis)
    results = {}
    for backend in ("reference", kernel):
        block.backend = backend
        block.zero_grad()
        out, state = block(u, return_state=True)
        ((out * torch.linspace(-1, 1, out.numel(), device=DEVICE).view_as(out)).sum() + state.sum()).backward()
        assert block.backend_ran == backend
        results[backend] = [out, state] + [p.grad.clone() for p in block.parameters()]
    for name, ours, ref in zip(["out", "state"] + [n for n, _ in block.named_parameters()],
                               results[kernel], results["reference"]):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_triton_rejects_function_transforms_of_its_backward(poisoned_buffers):
    """torch.func.grad would hand the raw kernels wrapped tensors: a clear error instead."""
    inputs = make_scan_inputs(1, 4, 5, 4, device=DEVICE)

    def loss(u):
        return poisoned_buffers.selective_scan_triton(**dict(inputs, u=u), config=(4, 16, 2)).sum()

    with pytest.raises(NotImplementedError, match="torch.func.grad"):
        torch.func.grad(loss)(inputs["u"])


def test_mamba_pack_with_triton_follows_lone_runs(poisoned_buffers, tmp_path, member, assert_same_curve, train_alone):
    """Mamba models with the Triton scan pack as one stacked model, and each packed run follows
    its lone curve."""
    from icl.training.pack import train_pack

    runs = [member("00000000000a", seed=0, backend="triton", steps=4, batch=4, device=DEVICE, precision="fp32"),
            member("00000000000b", seed=1, backend="triton", steps=4, batch=4, lr=3e-3, device=DEVICE, precision="fp32")]
    for run in runs:
        run.model_config.update(layers="M M", positions="none")
    statuses = train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False)
    train_alone(runs, tmp_path)
    for run, status in zip(runs, statuses):
        assert status["pack"]["mode"] == "stacked" and status["backend"] == "triton"
        assert_same_curve(tmp_path / "pack" / run.id, tmp_path / "alone" / run.id)


# The fused causal convolution + SiLU of the Mamba blocks (kernels/causal_conv.py) against
# StackedCausalConv's PyTorch loop: (K, B, L, C, width, dtype, silu, strided input)
CONV_CASES = [
    (2, 3, 45, 70, 4, torch.float32, True, False),   # C and L not multiples of the blocks
    (1, 2, 2, 8, 4, torch.float32, True, False),     # a sequence shorter than the taps
    (3, 1, 40, 5, 3, torch.float32, False, True),    # odd width, no SiLU, a channel slice
    (2, 2, 33, 16, 4, torch.bfloat16, True, False),
    (1, 2, 9, 33, 2, torch.float32, True, False),    # two taps
    (1, 1, 6, 4, 1, torch.float32, True, False),     # one tap: no window to carry
]


@pytest.fixture
def conv_kernel(monkeypatch, triton_scan):
    module = importlib.import_module("icl.kernels.causal_conv")
    poison_buffers(monkeypatch, module)
    return module


@pytest.mark.parametrize("runs,batch,length,channels,width,dtype,silu,strided", CONV_CASES)
def test_causal_conv_matches_reference(conv_kernel, runs, batch, length, channels, width, dtype, silu, strided):
    from icl.blocks.stacked import StackedCausalConv

    torch.manual_seed(length + channels)
    conv = StackedCausalConv(channels, width)
    with torch.no_grad():  # every run its own taps and bias, far from the init's
        conv.weight.data = torch.randn(runs, channels, width)
        conv.bias.data = torch.randn(runs, channels)
    conv = conv.to(DEVICE)
    wide = torch.randn(runs, batch, length, channels + 3 * strided, device=DEVICE)
    x = (wide[..., 1:channels + 1] if strided else wide).to(dtype).requires_grad_()
    dout = torch.randn(runs, batch, length, channels, device=DEVICE)
    results = {}
    for fused in (True, False):
        x.grad = None
        conv.zero_grad()
        y = conv(x, silu=silu, fused=fused) if fused else conv(x.float(), silu=silu, fused=False)
        (y.float() * dout).sum().backward()
        results[fused] = [y.float(), x.grad.float(), conv.weight.grad.clone(), conv.bias.grad.clone()]
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=5e-2)
    for name, ours, ref in zip(["y", "dx", "dweight", "dbias"], results[True], results[False]):
        assert torch.isfinite(ours).all(), name
        torch.testing.assert_close(ours, ref, **tol, msg=lambda m, name=name: f"{name}: {m}")


def test_causal_conv_default_is_the_kernel_on_cuda_only(monkeypatch):
    from icl.blocks.stacked import StackedCausalConv
    from icl.kernels import causal_conv as module

    calls = []
    monkeypatch.setattr(module, "causal_conv", lambda *a, **k: calls.append(1) or torch.zeros(1))
    conv = StackedCausalConv(4, 3).to(DEVICE)
    conv(torch.randn(1, 2, 5, 4, device=DEVICE), silu=True)
    assert calls == ([1] if ON_GPU else [])


# The fused LayerNorm / RMSNorm with each run's affine (kernels/layer_norm.py) against
# StackedNorm's PyTorch path: (kind, K, leading shape, D, dtype)
NORM_CASES = [
    ("layernorm", 2, (3, 21), 48, torch.float32),   # rows not a multiple of the block, D not a power of 2
    ("rmsnorm", 3, (5,), 16, torch.float32),
    ("layernorm", 1, (2, 7), 128, torch.bfloat16),
]


@pytest.mark.parametrize("kind,runs,lead,width,dtype", NORM_CASES)
def test_stacked_norm_matches_reference(monkeypatch, triton_scan, kind, runs, lead, width, dtype):
    from icl.blocks.stacked import StackedNorm

    poison_buffers(monkeypatch, importlib.import_module("icl.kernels.layer_norm"))
    torch.manual_seed(width)
    norm = StackedNorm(kind, width)
    with torch.no_grad():  # every run its own affine, far from the init's
        norm.weight.data = torch.randn(runs, width)
        if norm.bias is not None:
            norm.bias.data = torch.randn(runs, width)
    norm = norm.to(DEVICE)
    x = (3 * torch.randn(runs, *lead, width, device=DEVICE) + 1).to(dtype).requires_grad_()
    dout = torch.randn(runs, *lead, width, device=DEVICE)
    results = {}
    for fused in (True, False):
        x.grad = None
        norm.zero_grad()
        y = norm(x, fused=True) if fused else norm(x.float(), fused=False)
        (y.float() * dout).sum().backward()
        results[fused] = [y.float(), x.grad.float()] + [p.grad.clone() for p in norm.parameters()]
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=5e-2)
    for name, ours, ref in zip(["y", "dx", "dweight", "dbias"], results[True], results[False]):
        assert torch.isfinite(ours).all(), name
        torch.testing.assert_close(ours, ref, **tol, msg=lambda m, name=name: f"{name}: {m}")


def test_seq_refuses_an_unknown_reduce(seq_poisoned):
    inputs = make_scan_inputs(1, 8, 4, 4, torch.float32, DEVICE, seed=1)
    with pytest.raises(ValueError, match="reduce=1 must be 0, 2 or 3"):
        seq_poisoned.selective_scan_seq(**inputs, config=(32, 1, 32, 1, 3, 1))
