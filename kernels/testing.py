"""Shared helpers for the selective-scan tests (CPU under the Triton interpreter, and GPU):
random inputs, one forward+backward, and the per-dtype tolerance table."""
from __future__ import annotations

import torch

# Relative norm error ||x - ref|| / ||ref|| allowed against the reference, per input dtype.
# bf16 inputs: both sides see the same bf16 inputs; the error is the bf16 rounding of the outputs.
TOLERANCES = {
    torch.float32: {"out": 1e-5, "state": 1e-5, "grad": 1e-4},
    torch.bfloat16: {"out": 1e-2, "state": 1e-4, "grad": 2e-2},
}
GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def make_scan_inputs(batch, dim, length, n_state, dtype=torch.float32, device="cpu", seed=0,
                     with_z=True, with_d=True, with_bias=True):
    """Random selective-scan inputs (activations in `dtype`, parameters in fp32)."""
    g = torch.Generator(device="cpu").manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dtype)

    return dict(
        u=randn(batch, dim, length), delta=randn(batch, dim, length, scale=0.5),
        A=-(torch.rand(dim, n_state, generator=g) * 2 + 0.05).to(device),
        B=randn(batch, n_state, length), C=randn(batch, n_state, length),
        D=torch.randn(dim, generator=g).to(device) if with_d else None,
        z=randn(batch, dim, length) if with_z else None,
        delta_bias=(torch.randn(dim, generator=g) * 0.3).to(device) if with_bias else None)


def run_scan(fn, inputs, dout, dlast, delta_softplus=True, **kwargs):
    """out, last_state and the gradient of <out, dout> + <last_state, dlast> for every input
    that is given (None for the absent ones)."""
    leaves = {k: (v.detach().clone().requires_grad_() if v is not None else None) for k, v in inputs.items()}
    out, last = fn(**leaves, delta_softplus=delta_softplus, return_last_state=True, **kwargs)
    present = [k for k in GRAD_NAMES if leaves[k] is not None]
    loss = (out.float() * dout.float()).sum() + (last.float() * dlast.float()).sum()
    grads = dict(zip(present, torch.autograd.grad(loss, [leaves[k] for k in present])))
    return out, last, grads


def rel_err(x, ref) -> float:
    x, ref = x.detach().double().cpu(), ref.detach().double().cpu()
    if not torch.isfinite(x).all():
        return float("inf")
    denominator = ref.norm()
    return float((x - ref).norm() / denominator) if denominator > 0 else float((x - ref).norm())


def scan_errors(fn, ref_fn, inputs, seed=1, delta_softplus=True, state_grad=True, check_dtypes=True,
                **kwargs):
    """Relative errors of fn against ref_fn: {"out": e, "state": e, "du": e, ...}.
    state_grad=False leaves the final state out of the loss (mamba_ssm ignores its gradient)."""
    batch, dim, length = inputs["u"].shape
    n_state = inputs["A"].shape[1]
    g = torch.Generator(device="cpu").manual_seed(seed)
    dout = torch.randn(batch, dim, length, generator=g).to(inputs["u"])
    dlast = torch.randn(batch, dim, n_state, generator=g).to(inputs["u"].device) * float(state_grad)
    out, last, grads = run_scan(fn, inputs, dout, dlast, delta_softplus, **kwargs)
    ref_out, ref_last, ref_grads = run_scan(ref_fn, inputs, dout, dlast, delta_softplus)
    assert out.shape == ref_out.shape and (out.dtype == ref_out.dtype or not check_dtypes)
    errors = {"out": rel_err(out, ref_out), "state": rel_err(last, ref_last)}
    for name, grad in grads.items():
        assert grad.dtype == ref_grads[name].dtype or not check_dtypes, name
        errors["d" + name] = rel_err(grad, ref_grads[name])
    return errors


def over_tolerance(errors, dtype):
    """The entries of `errors` above the dtype's tolerance (an empty dict when all pass)."""
    table = TOLERANCES[dtype]
    limits = {k: table["out"] if k == "out" else table["state"] if k == "state" else table["grad"] for k in errors}
    return {k: (v, limits[k]) for k, v in errors.items() if not v <= limits[k]}


def poison_buffers(monkeypatch, kernel_module):
    """Make every buffer the kernels must fill (kernel_module.new_buffer) start as NaN, so
    memory a kernel leaves unwritten fails the comparisons."""
    allocate = kernel_module.new_buffer

    def nan_buffer(*args, **kwargs):
        return allocate(*args, **kwargs).fill_(float("nan"))
    monkeypatch.setattr(kernel_module, "new_buffer", nan_buffer)
