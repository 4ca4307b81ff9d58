"""Every block against an independent, straightforward formula or recurrence written here:
outputs, final states and gradients (of the input and of every parameter), at odd sizes.

Blocks hold K runs' weights on a leading axis; each check packs two runs with different weights
and compares run k's outputs with the reference computed from run k's weights alone."""
from __future__ import annotations

import math

import copy

import pytest
import torch
import torch.nn.functional as F

from icl.blocks.attention import CausalSelfAttention
from icl.blocks.mamba import MambaMixer
from icl.blocks.mamba2 import Mamba2Mixer, ssd_chunked, ssd_ref
from icl.blocks.mlp import MLP
from icl.blocks.s4_mamba import S4MambaMixer
from icl.blocks.s4d import S4Block, S4DKernel

torch.set_default_dtype(torch.float32)
LENGTHS = [1, 7, 63]


def assert_close(ours, expected, tol=2e-5, what=""):
    """Relative error: max |ours - expected| / max |expected| (flash-linear-attention style)."""
    err = ((ours - expected).abs().max() / expected.abs().max().clamp_min(1e-8)).item()
    assert err <= tol, f"{what}: relative error {err:.2e} > {tol:.0e}"


def pack_runs(module, runs=2):
    """The module holding `runs` runs: its own weights, then perturbed copies of them."""
    with torch.no_grad():
        for p in module.parameters():
            extra = [p + 0.1 * (i + 1) * torch.randn_like(p) * p.detach().abs().mean().clamp_min(0.1)
                     for i in range(runs - 1)]
            p.data = torch.cat([p.detach()] + extra, dim=0)
    return module


def run_view(module, k):
    """A copy of `module` whose weights are run k's slices of the packed ones, without the run axis
    (differentiable: gradients reach the packed parameters). The references read it."""
    view = copy.copy(module)
    view.__dict__ = dict(module.__dict__)
    view._parameters, view._modules = {}, {}
    for name, p in module._parameters.items():
        if p is not None:
            object.__setattr__(view, name, p[k])
        else:
            object.__setattr__(view, name, None)
    for name, child in module._modules.items():
        object.__setattr__(view, name, run_view(child, k))
    return view


def check_against(module, reference, u, tol=2e-5, state=False, runs=2):
    """Compare the packed module(u) with reference(run k's view, u[k]) for each run k: outputs,
    [states], and gradients of a random projection of the output w.r.t. u and every parameter.
    u: one run's input (B, L, D); each run gets its own draw."""
    module = pack_runs(module, runs)
    params = [p for p in module.parameters()]
    names = [n for n, _ in module.named_parameters()]
    u = torch.stack([u] + [torch.randn_like(u) for _ in range(runs - 1)])
    u1, u2 = u.clone().requires_grad_(), u.clone().requires_grad_()
    refs = [reference(run_view(module, k), u2[k]) for k in range(runs)]
    if state:
        out, st = module(u1, return_state=True)
        out_ref = torch.stack([r[0] for r in refs])
        st_ref = torch.stack([r[1] for r in refs])
        assert st.shape == st_ref.shape
        assert_close(st, st_ref, tol, "final state")
    else:
        out, out_ref = module(u1), torch.stack(refs)
    assert out.shape == out_ref.shape
    assert_close(out, out_ref, tol, "output")
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [u1] + params, allow_unused=True)
    grads_ref = torch.autograd.grad((out_ref * g).sum(), [u2] + params, allow_unused=True)
    for name, a, b in zip(["input"] + names, grads, grads_ref):
        assert a is not None and b is not None, f"no gradient for {name}"
        assert_close(a, b, 10 * tol, f"grad {name}")


# ---------------------------------------------------------------- attention, MLP
def attention_reference(m: CausalSelfAttention, x):
    """Per query position: softmax over the keys up to it, every head at once."""
    B, T, D = x.shape
    H, hd = m.heads, D // m.heads
    q, k, v = ((x @ m.qkv.weight.t() + m.qkv.bias).split(D, dim=-1))
    q, k, v = (t.reshape(B, T, H, hd) for t in (q, k, v))
    rows = []
    for t in range(T):
        scores = torch.einsum("bhd,bshd->bhs", q[:, t], k[:, : t + 1]) / math.sqrt(hd)
        rows.append(torch.einsum("bhs,bshd->bhd", torch.softmax(scores, dim=-1), v[:, : t + 1]))
    out = torch.stack(rows, 1).reshape(B, T, D)
    return out @ m.proj.weight.t() + m.proj.bias


@pytest.mark.parametrize("length", LENGTHS)
def test_attention_matches_per_position_softmax(length):
    torch.manual_seed(length)
    m = CausalSelfAttention(12, heads=3, bias=True)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)  # nonzero biases too
    check_against(m, attention_reference, torch.randn(2, length, 12), tol=1e-5)


def test_attention_is_causal():
    torch.manual_seed(0)
    m = CausalSelfAttention(8, heads=2, bias=False)
    x = torch.randn(1, 1, 9, 8)
    y = m(x)[0]
    x2 = x.clone()
    x2[:, :, 5:] += torch.randn(1, 4, 8)
    assert torch.allclose(m(x2)[0, :, :5], y[:, :5], atol=1e-6)
    assert not torch.allclose(m(x2)[0, :, 5:], y[:, 5:], atol=1e-3)


def test_fp16_attention_keeps_gradients_far_below_fp16s_range(monkeypatch):
    """Under TF32 on a GPU the attention runs on fp16 copies (blocks/attention.py); a run whose
    upstream gradient is ~1e-9 (a loss plateau) must keep its gradients (unscaled, fp16 flushed
    them to zero), and each run of a pack is scaled by its own power of two."""
    from icl.blocks import attention
    from icl.blocks.model import stack_models
    torch.manual_seed(0)
    block = stack_models([CausalSelfAttention(32, heads=2, bias=True), CausalSelfAttention(32, heads=2, bias=True)])
    x = torch.randn(2, 3, 16, 32)
    dout = torch.randn_like(x) * torch.tensor([1e-9, 1.0]).view(2, 1, 1, 1)

    def gradients(half: bool):
        monkeypatch.setattr(attention, "tf32_attention", lambda q: half)  # the CPU runs fp16 SDPA too
        xx = x.clone().requires_grad_()
        block.zero_grad()
        (block(xx) * dout).sum().backward()
        return {"dx": xx.grad, "qkv.w": block.qkv.weight.grad.clone(), "qkv.b": block.qkv.bias.grad.clone()}

    exact, fast = gradients(False), gradients(True)
    for name in exact:
        for k in range(2):
            err = ((fast[name][k] - exact[name][k]).norm() / exact[name][k].norm()).item()
            assert err < 2e-3, (name, k, err)  # fp16's 11-bit mantissa: ~4e-4


def test_attention_without_bias_has_no_bias():
    m = CausalSelfAttention(8, heads=2, bias=False)
    assert m.qkv.bias is None and m.proj.bias is None


@pytest.mark.parametrize("length", LENGTHS)
def test_mlp_matches_formula(length):
    torch.manual_seed(1)
    m = MLP(10, mlp_ratio=3, bias=True)
    with torch.no_grad():
        m.fc.bias.normal_(); m.proj.bias.normal_()

    def reference(m, x):
        h = x @ m.fc.weight.t() + m.fc.bias
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
        return h @ m.proj.weight.t() + m.proj.bias

    assert m.fc.out_features == 30
    check_against(m, reference, torch.randn(3, length, 10))


# ---------------------------------------------------------------- Mamba
def causal_conv_reference(x, weight, bias):
    """x (B, C, L); weight (C, K): y_t = b + sum_k w_k x_{t - (K-1) + k} (zeros before 0)."""
    B, C, L = x.shape
    K = weight.shape[-1]
    y = bias[None, :, None].expand(B, C, L).clone()
    for t in range(L):
        for k in range(K):
            s = t - (K - 1) + k
            if s >= 0:
                y[:, :, t] = y[:, :, t] + weight[:, k] * x[:, :, s]
    return y


def mamba_reference(m: MambaMixer, u):
    """The Mamba mixer step by step, one time step at a time."""
    B, L, _ = u.shape
    E, N, R = m.inner, m.d_state, m.dt_rank
    xz = u @ m.in_proj.weight.t()
    x, z = xz[..., :E], xz[..., E:]
    x = F.silu(causal_conv_reference(x.transpose(1, 2), m.conv1d.weight, m.conv1d.bias)).transpose(1, 2)
    A = -torch.exp(m.A_log)
    h = torch.zeros(B, E, N)
    ys = []
    for t in range(L):
        proj = x[:, t] @ m.x_proj.weight.t()
        dt_low, Bt, Ct = proj[:, :R], proj[:, R:R + N], proj[:, R + N:]
        dt = F.softplus(dt_low @ m.dt_proj.weight.t() + m.dt_proj.bias)      # (B, E)
        h = torch.exp(dt[:, :, None] * A) * h + (dt * x[:, t])[:, :, None] * Bt[:, None, :]
        y = (h * Ct[:, None, :]).sum(-1) + m.D * x[:, t]
        ys.append(y * F.silu(z[:, t]))
    y = torch.stack(ys, 1)
    return y @ m.out_proj.weight.t(), h


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("backend", ["reference", None])
def test_mamba_matches_recurrence(length, backend):
    torch.manual_seed(2)
    m = MambaMixer(12, d_state=5, d_conv=3, expand=2, dt_rank=3, dt_min=0.001, dt_max=0.1)
    m.backend = backend
    check_against(m, mamba_reference, torch.randn(2, length, 12), tol=2e-5, state=True)


def test_mamba_init():
    m = MambaMixer(32, d_state=16, d_conv=4, expand=2, dt_rank=None, dt_min=0.001, dt_max=0.1, n_layers=9)
    assert m.dt_rank == 2
    dt = F.softplus(m.dt_proj.bias)
    assert dt.min() >= 0.001 * 0.999 and dt.max() <= 0.1 * 1.001
    assert torch.allclose(-torch.exp(m.A_log), -torch.arange(1, 17.0).expand(1, 64, 16))
    assert torch.all(m.D == 1)
    # PyTorch's default bound 1/sqrt(fan_in), divided by sqrt(n_layers)
    assert m.out_proj.weight.abs().max() <= 1 / math.sqrt(64) / 3 + 1e-7
    assert m.dt_proj.weight.abs().max() <= 2 ** -0.5 + 1e-7


# ---------------------------------------------------------------- S4D, S4, S4-Mamba
def s4d_reference(k: S4DKernel, u):
    """Zero-order-hold diagonal SSM, step by step with a complex state:
    x_l = exp(dt A) x_{l-1} + (exp(dt A) - 1) / A u_l,  y_l = 2 Re(C . x_l) + D u_l."""
    B, H, L = u.shape
    dt = torch.exp(k.log_dt)
    A = -torch.exp(k.log_A_real) + 1j * k.A_imag
    C = k.C[..., 0] + 1j * k.C[..., 1]
    dA = torch.exp(dt[:, None] * A)
    dB = (dA - 1) / A
    x = torch.zeros(B, H, A.shape[1], dtype=torch.cfloat)
    ys = []
    for t in range(L):
        x = dA * x + dB * u[:, :, t, None]
        ys.append(2 * (C * x).sum(-1).real + k.D * u[:, :, t])
    state = torch.stack([x.real, x.imag], dim=-1).flatten(-2)
    return torch.stack(ys, -1), state


@pytest.mark.parametrize("conv", ["toeplitz", "fft"])
@pytest.mark.parametrize("length", LENGTHS)
def test_s4d_matches_recurrence(length, conv, monkeypatch):
    import icl.blocks.s4d as s4d

    # the Toeplitz product up to TOEPLITZ_MAX_TOKENS, the FFT beyond: both against the recurrence
    monkeypatch.setattr(s4d, "TOEPLITZ_MAX_TOKENS", 10_000 if conv == "toeplitz" else 0)
    torch.manual_seed(3)
    k = S4DKernel(6, d_state=8)
    with torch.no_grad():  # larger dt so the kernel does not vanish within a few steps
        k.log_dt.uniform_(math.log(0.05), math.log(0.5))
    def reference(k, u):  # the kernel's activations are (B, L, H); the recurrence's (B, H, L)
        y, state = s4d_reference(k, u.transpose(1, 2))
        return y.transpose(1, 2), state

    check_against(k, reference, torch.randn(2, length, 6), tol=2e-5, state=True)


def test_s4d_init_and_even_state():
    k = S4DKernel(4, d_state=16)
    assert torch.allclose(torch.exp(k.log_A_real), torch.full((1, 4, 8), 0.5))
    assert torch.allclose(k.A_imag[0, 0], math.pi * torch.arange(8.0))
    dt = torch.exp(k.log_dt)
    assert dt.min() >= 0.001 * 0.999 and dt.max() <= 0.1 * 1.001
    with pytest.raises(ValueError, match="even"):
        S4DKernel(4, d_state=5)


def test_s4d_parameters_may_sit_at_an_odd_offset_of_a_flat_buffer():
    # the packed engine's flat-buffer Adam makes every parameter a view into one buffer; the
    # zoo's S4 on sparse parity put C at an odd offset, which view_as_complex refused
    torch.manual_seed(5)
    k = S4DKernel(6, d_state=8)
    u = torch.randn(1, 2, 9, 6)   # (K, B, L, H)
    expected = k(u)
    flat = torch.zeros(1 + k.C.numel())
    flat[1:] = k.C.detach().flatten()
    k.C = torch.nn.Parameter(flat[1:].view_as(k.C))
    assert k.C.storage_offset() == 1
    y = k(u)
    assert torch.equal(y, expected)
    y.square().sum().backward()
    assert k.C.grad is not None and torch.isfinite(k.C.grad).all()


@pytest.mark.parametrize("length", LENGTHS)
def test_s4_block_matches_formula(length):
    torch.manual_seed(4)
    m = S4Block(6, d_state=4)

    def reference(m, x):
        y, state = s4d_reference(m.s4d, x.transpose(1, 2))
        h = F.gelu(y.transpose(1, 2)) @ m.output_linear.weight.t() + m.output_linear.bias
        return h[..., :6] * torch.sigmoid(h[..., 6:]), state

    check_against(m, reference, torch.randn(2, length, 6), state=True)


@pytest.mark.parametrize("length", LENGTHS)
def test_s4_mamba_matches_recurrence(length):
    torch.manual_seed(5)
    m = S4MambaMixer(6, d_state=4, d_conv=4, expand=2)
    assert not hasattr(m, "x_proj") and not hasattr(m, "dt_proj")

    def reference(m, u):
        E = 12
        xz = u @ m.in_proj.weight.t()
        x, z = xz[..., :E], xz[..., E:]
        x = F.silu(causal_conv_reference(x.transpose(1, 2), m.conv1d.weight, m.conv1d.bias))
        y, state = s4d_reference(m.s4d, x)
        return (y.transpose(1, 2) * z) @ m.out_proj.weight.t(), state   # gated by z, not SiLU(z)

    check_against(m, reference, torch.randn(2, length, 6), state=True)


# ---------------------------------------------------------------- Mamba-2
def ssd_recurrence(x, dt, A, B, C):
    """Per batch, head and step: h = exp(dt a) h + dt x B^T; y = h C."""
    b, L, H, P = x.shape
    h = torch.zeros(b, H, P, B.shape[-1])
    ys = []
    for t in range(L):
        h = torch.stack([torch.exp(dt[:, t, j] * A[j])[:, None, None] * h[:, j]
                         + (dt[:, t, j, None, None] * x[:, t, j, :, None]) * B[:, t, None, :]
                         for j in range(H)], dim=1)
        ys.append(torch.einsum("bhpn,bn->bhp", h, C[:, t]))
    return torch.stack(ys, 1), h


@pytest.mark.parametrize("length", [1, 7, 63, 130])
def test_ssd_chunked_matches_recurrence(length):
    torch.manual_seed(6)
    b, H, P, N = 2, 3, 4, 5
    x, B, C = torch.randn(b, length, H, P), torch.randn(b, length, N), torch.randn(b, length, N)
    dt = F.softplus(torch.randn(b, length, H))
    A = -torch.rand(H) - 0.1
    leaves = [x, dt, B, C]
    for t in leaves:
        t.requires_grad_()
    y, h = ssd_chunked(x, dt, A, B, C, chunk=16)
    y_ref, h_ref = ssd_recurrence(x, dt, A, B, C)
    assert_close(y, y_ref, 2e-5, "y")
    assert_close(h, h_ref, 2e-5, "state")
    g = torch.randn_like(y)
    grads = torch.autograd.grad((y * g).sum() + h.sum(), leaves)
    grads_ref = torch.autograd.grad((y_ref * g).sum() + h_ref.sum(), leaves)
    for name, a, r in zip("x dt B C".split(), grads, grads_ref):
        assert_close(a, r, 1e-4, f"grad {name}")
    y2, h2 = ssd_ref(x, dt, A, B, C)  # the module's own sequential reference agrees too
    assert_close(y2, y_ref, 2e-5, "ssd_ref")


@pytest.mark.parametrize("length", LENGTHS)
def test_mamba2_matches_recurrence(length):
    torch.manual_seed(7)
    m = Mamba2Mixer(8, d_state=4, d_conv=4, expand=2, headdim=4)
    assert m.heads == 4

    def reference(m, u):
        Bsz, L, _ = u.shape
        E, N, H = 16, 4, 4
        proj = u @ m.in_proj.weight.t()
        z, xBC, dt = proj[..., :E], proj[..., E:2 * E + 2 * N], proj[..., 2 * E + 2 * N:]
        xBC = F.silu(causal_conv_reference(xBC.transpose(1, 2), m.conv1d.weight, m.conv1d.bias)).transpose(1, 2)
        x, Bm, Cm = xBC[..., :E], xBC[..., E:E + N], xBC[..., E + N:]
        dt = F.softplus(dt + m.dt_bias)
        xh = x.reshape(Bsz, L, H, E // H)
        y, h = ssd_recurrence(xh, dt, -torch.exp(m.A_log), Bm, Cm)
        y = (y + xh * m.D[:, None]).reshape(Bsz, L, E) * F.silu(z)
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-5) * m.norm.weight
        return y @ m.out_proj.weight.t(), h

    check_against(m, reference, torch.randn(2, length, 8), tol=3e-5, state=True)
