"""The linear-attention mixers and Hyena (GLA, DN, GDN, R7, HY; issue 26) on the CPU: each
recurrence against a hand-computed case, the chunked / FFT forms against the step-by-step ones
(values and gradients), K stacked runs against K lone runs, the implementation choice
(mixer_backend) and its errors, a spec that checks, and a short training run.
The fla kernels against these references: tests/gpu/test_mixers_gpu.py."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from icl.blocks import linear_attention
from icl.blocks.catalog import BLOCKS
from icl.blocks.deltanet import delta_chunked, delta_recurrent
from icl.errors import IclError
from icl.blocks.gla import gla_chunked, gla_recurrent
from icl.blocks.hyena import long_conv_fft, long_conv_recurrent
from icl.blocks.model import stack_models
from icl.blocks.rwkv7 import rwkv7_recurrent
from icl.compiler.accounting import account, check_model
from icl.compiler.build import build_model
from icl.tasks.catalog import Layout

NEW = ("GLA", "DN", "GDN", "R7", "HY")
SMALL = Layout(token_dim=5, out_dim=3, tokens=13)


def col(*xs) -> torch.Tensor:
    """Numbers as a (b=1, t, h=1, d=1) sequence."""
    return torch.tensor(xs, dtype=torch.float64).view(1, len(xs), 1, 1)


# ---------------------------------------------------------------- hand-computed cases
def test_gla_scalar_case_by_hand():
    # S_t = g S_{t-1} + k v_t with g = 1/2, k = q = 1: S = 1, 1/2 + 2 = 2.5, 1.25 + 3 = 4.25
    half = math.log(0.5)
    o, state = gla_recurrent(col(1, 1, 1), col(1, 1, 1), col(1, 2, 3), col(half, half, half), scale=1.0)
    assert o.flatten().tolist() == [1.0, 2.5, 4.25]
    assert state.item() == 4.25


def test_gla_matches_its_closed_form():
    """o_t = scale sum_{s<=t} sum_c q_tc k_sc exp(sum_{r=s+1..t} g_rc) v_s, summed directly."""
    torch.manual_seed(0)
    b, t, h, dk, dv = 2, 3, 2, 3, 2
    q, k, g = (torch.randn(b, t, h, dk, dtype=torch.float64) for _ in range(3))
    g = F.logsigmoid(g)
    v = torch.randn(b, t, h, dv, dtype=torch.float64)
    o, _ = gla_recurrent(q, k, v, g, scale=0.5)
    for ti in range(t):
        want = sum((q[:, ti] * k[:, s] * torch.exp(g[:, s + 1:ti + 1].sum(1))).sum(-1, keepdim=True) * v[:, s]
                   for s in range(ti + 1)) * 0.5
        torch.testing.assert_close(o[:, ti], want)


def test_deltanet_scalar_case_by_hand():
    # k = 1: S_t = S + beta (v - S) = (1 - beta) S + beta v; beta = 1/2, v = 2, 4, 8 -> 1, 2.5, 5.25
    o, state = delta_recurrent(col(1, 1, 1), col(1, 1, 1), col(2, 4, 8), col(.5, .5, .5)[..., 0], scale=1.0)
    assert o.flatten().tolist() == [1.0, 2.5, 5.25]
    assert state.item() == 5.25


def test_deltanet_with_beta_one_overwrites_what_a_key_holds():
    """Orthogonal keys e1, e2, e1 and beta = 1: the third write replaces the first value, so
    querying e1 reads v1, then v1, then v3; querying e2 at the end reads v2."""
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    k = torch.stack([e1, e2, e1]).view(1, 3, 1, 2)
    q = torch.stack([e1, e1, e1]).view(1, 3, 1, 2)
    v = torch.tensor([[10.0, 1.0], [20.0, 2.0], [30.0, 3.0]]).view(1, 3, 1, 2)
    o, state = delta_recurrent(q, k, v, torch.ones(1, 3, 1), scale=1.0)
    torch.testing.assert_close(o[0, :, 0], torch.tensor([[10.0, 1.0], [10.0, 1.0], [30.0, 3.0]]))
    torch.testing.assert_close(state[0, 0].T @ e2, torch.tensor([20.0, 2.0]))


def test_gated_deltanet_scalar_case_by_hand():
    # S <- alpha S, then S + beta (v - S): S_t = (1 - beta) alpha S + beta v; alpha = beta = 1/2,
    # v = 2, 4, 8 -> 1, 0.25 + 2 = 2.25, 0.5625 + 4 = 4.5625
    half = math.log(0.5)
    o, _ = delta_recurrent(col(1, 1, 1), col(1, 1, 1), col(2, 4, 8), col(.5, .5, .5)[..., 0], scale=1.0,
                           g=col(half, half, half)[..., 0])
    assert o.flatten().tolist() == [1.0, 2.25, 4.5625]


def test_rwkv7_scalar_case_by_hand():
    # S_t = w S + b a S + k v with w = 1/2, a = -1, b = 1/4 (kk = 1, rate 1/4), k = 1:
    # S = 0.25 S + v; v = 4, 8, 16 -> 4, 9, 18.25; r = 2 doubles the read-out
    half = math.log(0.5)
    o, state = rwkv7_recurrent(col(2, 2, 2), col(half, half, half), col(1, 1, 1), col(4, 8, 16),
                               col(-1, -1, -1), col(.25, .25, .25))
    assert o.flatten().tolist() == [8.0, 18.0, 36.5]
    assert state.item() == 18.25


def test_rwkv7_matches_the_transition_matrix_form():
    """S_t = (diag(exp w_t) + b_t a_t^T) S_{t-1} + k_t v_t^T, written as one matrix product."""
    torch.manual_seed(1)
    b, t, h, d = 1, 3, 1, 3
    r, w, k, a, bb = (torch.randn(b, t, h, d, dtype=torch.float64) for _ in range(5))
    v = torch.randn(b, t, h, d, dtype=torch.float64)
    w = -torch.rand_like(w)
    o, state = rwkv7_recurrent(r, w, k, v, a, bb, scale=0.7)
    S = torch.zeros(d, d, dtype=torch.float64)
    for ti in range(t):
        transition = torch.diag(w[0, ti, 0].exp()) + torch.outer(bb[0, ti, 0], a[0, ti, 0])
        S = transition @ S + torch.outer(k[0, ti, 0], v[0, ti, 0])
        torch.testing.assert_close(o[0, ti, 0], 0.7 * S.T @ r[0, ti, 0])
    torch.testing.assert_close(state[0, 0], S)


def test_hyena_long_conv_by_hand():
    # y_t = sum_s h_s z_{t-s} + bias z_t with h = 1, 1/2, 1/4 and bias 0.1:
    # y = 1 + 0.1, 2 + 0.5 + 0.2, 3 + 1 + 0.25 + 0.3
    z = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).view(1, 3, 1)
    h = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64).view(3, 1)
    bias = torch.tensor([0.1], dtype=torch.float64)
    y, history = long_conv_recurrent(z, h, bias)
    torch.testing.assert_close(y.flatten(), torch.tensor([1.1, 2.7, 4.55], dtype=torch.float64))
    assert history.flatten().tolist() == [3.0, 2.0, 1.0]
    torch.testing.assert_close(long_conv_fft(z, h, bias[None]), y)


# ---------------------------------------------------------------- chunked == recurrent
def _inputs(seed, b=2, t=37, h=3, d=5, dv=4):
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    return rand(b, t, h, d), rand(b, t, h, d), rand(b, t, h, dv), rand(b, t, h, d), rand(b, t, h)


@pytest.mark.parametrize("chunk", [4, 16])
def test_gla_chunked_equals_recurrent_values_and_gradients(chunk):
    q, k, v, g, _ = _inputs(0)
    g = F.logsigmoid(g)
    inputs = (q, k, v, g)
    ref = gla_recurrent(*inputs, scale=0.4)
    fast = gla_chunked(*inputs, scale=0.4, chunk=chunk)
    for a, b in zip(ref, fast):
        torch.testing.assert_close(a, b)
    weights = torch.randn_like(ref[0])
    grads_ref = torch.autograd.grad((ref[0] * weights).sum() + ref[1].sum(), inputs)
    grads_fast = torch.autograd.grad((fast[0] * weights).sum() + fast[1].sum(), inputs)
    for a, b in zip(grads_ref, grads_fast):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("tokens, dtype, fla_sees", [(17, torch.float32, 64), (70, torch.float32, 70),
                                                    (17, torch.bfloat16, 17)])
def test_gla_pads_short_fp32_inputs_for_fla_without_changing_outputs_or_state(monkeypatch, tokens, dtype,
                                                                               fla_sees):
    """fla's chunk_gla faulted on fp32 inputs of 17 tokens on Hopper; gla_fla pads those with
    zeros to 64 tokens, which leaves every output and the final state as they were. Here a
    stand-in for chunk_gla (our reference, which takes any length) records what fla would see."""
    import types

    from icl.blocks.gla import gla_fla
    seen = []

    def chunk_gla(q, k, v, g, scale, output_final_state):
        seen.append(q.shape[1])
        return gla_chunked(q.float(), k.float(), v.float(), g.float(), scale)

    fla_gla = types.ModuleType("fla.ops.gla")
    fla_gla.chunk_gla = chunk_gla
    for name in ("fla", "fla.ops"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "fla.ops.gla", fla_gla)
    q, k, v, g = (t.detach() for t in _inputs(1, t=tokens)[:4])
    g = F.logsigmoid(g)
    o, state = gla_fla(*(t.to(dtype) for t in (q, k, v, g)), 0.4, True)
    ref_o, ref_state = gla_chunked(*(t.to(dtype).float() for t in (q, k, v, g)), 0.4)
    assert seen == [fla_sees] and o.shape == ref_o.shape
    torch.testing.assert_close(o, ref_o)
    torch.testing.assert_close(state, ref_state)


@pytest.mark.parametrize("gated", [False, True], ids=["deltanet", "gated"])
@pytest.mark.parametrize("chunk", [4, 16])
def test_delta_rule_chunked_equals_recurrent_values_and_gradients(gated, chunk):
    q, k, v, _, beta = _inputs(1)
    kn, qn = F.normalize(k, dim=-1), F.normalize(q, dim=-1)
    beta_s = torch.sigmoid(beta)
    g = -F.softplus(_inputs(2)[4]) if gated else None
    leaves = (q, k, v, beta) + ((g,) if gated else ())
    ref = delta_recurrent(qn, kn, v, beta_s, 0.5, g=g)
    fast = delta_chunked(qn, kn, v, beta_s, 0.5, g=g, chunk=chunk)
    for a, b in zip(ref, fast):
        torch.testing.assert_close(a, b)
    weights = torch.randn_like(ref[0])
    grads_ref = torch.autograd.grad((ref[0] * weights).sum() + ref[1].sum(), leaves, retain_graph=True)
    grads_fast = torch.autograd.grad((fast[0] * weights).sum() + fast[1].sum(), leaves)
    for a, b in zip(grads_ref, grads_fast):
        torch.testing.assert_close(a, b)


def test_hyena_fft_equals_recurrent_values_and_gradients():
    torch.manual_seed(3)
    z = torch.randn(2, 29, 6, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 29, 6, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    ref, _ = long_conv_recurrent(z, h, bias)
    fast = long_conv_fft(z, h, bias)
    torch.testing.assert_close(ref, fast)
    weights = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((ref * weights).sum(), (z, h, bias)),
                    torch.autograd.grad((fast * weights).sum(), (z, h, bias))):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- the blocks
def _cfg(token, width=16, **options):
    return {"layers": f"{token} {token}", "width": width, "heads": 4, "positions": "none", **options}


@pytest.mark.parametrize("token", NEW)
def test_three_stacked_runs_compute_what_each_computes_alone(token):
    torch.manual_seed(0)
    lone = [build_model(_cfg(token), SMALL) for _ in range(3)]
    packed = stack_models(lone)
    x = torch.randn(3, 2, SMALL.tokens, SMALL.token_dim)
    together = packed(x)
    for k, model in enumerate(lone):
        torch.testing.assert_close(together[k], model(x[k]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("token", NEW)
def test_gradients_reach_every_weight_and_outputs_are_causal(token):
    torch.manual_seed(0)
    model = build_model(_cfg(token), SMALL)
    x = torch.randn(2, SMALL.tokens, SMALL.token_dim)
    out = model(x)
    out.square().mean().backward()
    # RWKV-7's init: the low-rank pairs' first factor is 0, so at step 0 the second factor of the
    # decay and rate pairs gets no gradient (the first one does; the gate's sigmoid(0) passes it)
    zero_at_init = ("w_up.weight", "a_up.weight") if token == "R7" else ()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0 or name.endswith(zero_at_init), f"{name}: zero gradient"
    # token t sees tokens up to t: changing the last token changes only the last output
    y = x.clone()
    y[:, -1] += 1.0
    with torch.no_grad():
        torch.testing.assert_close(model(y)[:, :-1], model(x)[:, :-1])


@pytest.mark.parametrize("token", ["GLA", "DN", "GDN", "R7"])
def test_block_runs_the_reference_off_cuda_and_records_it(token):
    model = build_model(_cfg(token), SMALL)
    model(torch.randn(1, 5, SMALL.token_dim))
    assert model.scan_backend() == "reference"
    for backend in ("auto", "reference"):
        block = build_model(_cfg(token, mixer_backend=backend), SMALL).layers[0].block
        block(torch.randn(1, 1, 4, 16))
        assert block.backend_ran == "reference"


def test_kernel_choice_never_falls_back(monkeypatch):
    resolve = linear_attention.resolve_kernel
    assert resolve("GLA", "auto", "cpu") == "reference"
    assert resolve("GLA", "reference", "cuda") == "reference"
    monkeypatch.setattr(linear_attention, "fla_installed", lambda: False)
    with pytest.raises(linear_attention.FlaMissing, match=r"pip install 'icl-compiler\[fla\]'") as missing:
        resolve("GLA", "auto", "cuda")  # auto on CUDA means fla: missing is an error, not the reference
    assert str(missing.value).startswith("error: ") and "\n" not in str(missing.value)  # the CLI's one line
    with pytest.raises(linear_attention.FlaMissing, match="mixer_backend = fla needs flash-linear-attention"):
        resolve("DN", "fla", "cuda")
    with pytest.raises(linear_attention.FlaMissing, match=r"icl-compiler\[fla\]"):
        build_model(_cfg("GDN", mixer_backend="fla"), SMALL)  # at build time, before training
    block = build_model(_cfg("DN", mixer_backend="reference"), SMALL).layers[0].block
    assert block.cpu() is block  # moving off CUDA asks nothing of fla
    monkeypatch.setattr(linear_attention, "fla_installed", lambda: True)
    with pytest.raises(ValueError, match="runs on CUDA only"):
        resolve("R7", "fla", "cpu")


def test_fla_on_cuda_says_once_that_its_first_steps_tune_kernels(monkeypatch, capsys):
    monkeypatch.setattr(linear_attention, "fla_installed", lambda: True)
    monkeypatch.setattr(linear_attention, "fla_declines", lambda block: None)
    monkeypatch.setattr(linear_attention, "_told_autotune", set())
    resolve = linear_attention.resolve_kernel
    assert resolve("GLA", "auto", "cpu") == "reference" and capsys.readouterr().err == ""
    assert resolve("GLA", "auto", "cuda") == "fla" and resolve("GLA", "fla", "cuda") == "fla"
    told = capsys.readouterr().err.splitlines()
    assert told == ["GLA: flash-linear-attention tunes its kernels on their first call; on a new machine "
                    "the first steps can take minutes (Triton's cache keeps them for later runs)"]
    assert resolve("R7", "auto", "cuda") == "fla"   # each block once
    assert capsys.readouterr().err.startswith("R7: flash-linear-attention tunes")


@pytest.mark.parametrize("capability,triton_version,tilelang,declines", [
    ((9, 0), "3.6.0", False, True),     # Hopper, Triton in [3.4, 3.7.1): fla's issue #640
    ((9, 0), "3.7.1", False, False),
    ((9, 0), "3.3.1", False, False),
    ((8, 0), "3.6.0", False, False),    # an A100
    ((9, 0), "3.6.0", True, False),     # tilelang installed: fla takes its backward from it
])
def test_gdn_under_auto_runs_the_reference_where_fla_computes_wrongly(monkeypatch, capability,
                                                                      triton_version, tilelang, declines):
    import importlib.util
    import warnings

    import triton

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real("torch") if tilelang else None) if name == "tilelang"
                        else real(name, *a))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(triton, "__version__", triton_version)
    monkeypatch.setattr(linear_attention, "fla_installed", lambda: True)
    linear_attention.fla_declines.cache_clear()
    try:
        resolve = linear_attention.resolve_kernel
        assert resolve("GLA", "auto", "cuda") == "fla"   # only the gated delta rule's backward
        if not declines:
            assert resolve("GDN", "auto", "cuda") == "fla" and resolve("GDN", "fla", "cuda") == "fla"
            return
        with pytest.warns(UserWarning, match="GDN: mixer_backend = auto runs the PyTorch reference: .*#640"):
            assert resolve("GDN", "auto", "cuda") == "reference"
        with pytest.raises(IclError, match=r"GDN: mixer_backend = fla: .*Triton 3\.6\.0") as refused:
            resolve("GDN", "fla", "cuda")
        assert "\n" not in str(refused.value)
    finally:
        linear_attention.fla_declines.cache_clear()


def test_check_reports_a_missing_fla_at_the_option(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fla" else real(name, *a))
    errors = check_model(_cfg("GLA", mixer_backend="fla"), SMALL)
    assert errors == [("mixer_backend", "mixer_backend = fla needs flash-linear-attention, which is not "
                                        "installed: pip install 'icl-compiler[fla]'")]
    assert check_model(_cfg("GLA"), SMALL) == []  # auto: needed only on CUDA, told when it runs


@pytest.mark.parametrize("cfg,blame,words", [
    (_cfg("GLA", width=18), "heads", "does not divide width=18"),
    (_cfg("DN", d_conv=40), "d_conv", "wider than"),
    (_cfg("HY", d_conv=40), "d_conv", "wider than"),
])
def test_checks_of_the_new_tokens(cfg, blame, words):
    assert any(k == blame and words in m for k, m in check_model(cfg, SMALL))


def test_formulas_at_the_study_width():
    """params at D = 256, H = 8 (d = 32), d_conv = 4, written out from the papers' layers."""
    D, H, d = 256, 8, 32
    counts = {"GLA": 5 * D * D + 16 * D + 16 * D + D + d,
              "DN": 4 * D * D + 3 * D * 5 + D * H + d,
              "GDN": 5 * D * D + 3 * D * 5 + 2 * D * H + 2 * H + d,
              "R7": 4 * D * D + 6 * 32 * D + 13 * D,
              "HY": 4 * D * D + 3 * D + D + 3 * D * 5 + (8 * 64 + 64 + 64 + 64 * 64 + 64 + 64) + 64 * D + D}
    o = {"heads": H, "d_conv": 4, "mixer_backend": "auto"}
    for token, count in counts.items():
        assert BLOCKS[token].params(D, o) == count, token
        assert BLOCKS[token].flops(D, o, 100) > 2 * BLOCKS[token].params(D, o) * 0.9
    for token in ("GLA", "DN", "GDN", "R7"):
        assert BLOCKS[token].state_size(D, o, 100) == H * d * d
    assert BLOCKS["HY"].state_size(D, o, 100) == D * 100


def test_every_new_token_reads_init_std_and_is_not_measured_packed():
    for token in NEW:
        assert BLOCKS[token].reads_init_std and not BLOCKS[token].packs_well


# ---------------------------------------------------------------- a spec: check and train
SPEC = '''
model zoo {{ layers = "{layers}" width = 16 heads = 2 d_conv = 3 }}
task linear_regression {{
  dims = 3
  points = 5
  curriculum {{
    dims {{ start = 3  interval = 100 }}
    points {{ start = 5  interval = 100 }}
  }}
}}
experiment zoo {{
  models = [zoo]
  tasks = [linear_regression]
  train {{ steps = 20  batch = 4  lr = 1e-3  checkpoint_every = 20  log_every = 10  device = cpu }}
  eval {{ prompts = 8  bootstrap = 10  batch = 8 }}
}}
'''


def test_a_spec_using_every_new_token_checks(tmp_path):
    spec = tmp_path / "zoo.icl"
    spec.write_text(SPEC.format(layers="GLA DN GDN R7 HY"))
    out = subprocess.run([sys.executable, "-m", "icl.cli", "check", str(spec)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "1 runs in 1 file(s): ok" in out.stdout or out.stdout.strip().endswith("ok"), out.stdout


def test_a_spec_asking_for_fla_without_it_fails_check_in_one_line(tmp_path):
    spec = tmp_path / "zoo.icl"
    spec.write_text(SPEC.format(layers="GLA").replace("d_conv = 3", "mixer_backend = fla"))
    hide_fla = ("import importlib.util as u, sys; find = u.find_spec; "
                "u.find_spec = lambda name, *a: None if name == 'fla' else find(name, *a); "
                "from icl.cli import main; sys.exit(main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", hide_fla, "check", str(spec)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pip install 'icl-compiler[fla]'" in out.stderr and "Traceback" not in out.stderr


def test_twenty_training_steps_on_the_cpu(tmp_path):
    from icl.compiler.runs import runs_of
    from icl.training.train import train_run

    spec = tmp_path / "zoo.icl"
    spec.write_text(SPEC.format(layers="GLA DN GDN R7 HY"))
    (run,) = runs_of([spec], allow_outside=True)
    status = train_run(run, tmp_path / "run", progress=False)
    assert status["state"] == "done" and status["steps_done"] == 20
    assert status["backend"] == "reference"
    assert account(run.model_config, SMALL)["params"] > 0


# ---------------------------------------------------------------- fla's conventions, on the CPU
FLA_UNDER_INTERPRETER = r'''
import torch, torch.nn.functional as F
import triton.runtime.autotuner as autotuner
run = autotuner.Autotuner.run
def first_config(self, *args, **kwargs):  # no GPU to time configs on: take the first
    self.configs = self.configs[:1]
    return run(self, *args, **kwargs)
autotuner.Autotuner.run = first_config
from fla.ops.gla import fused_recurrent_gla
from fla.ops.delta_rule import fused_recurrent_delta_rule
from fla.ops.gated_delta_rule import fused_recurrent_gated_delta_rule
from fla.ops.rwkv7 import fused_recurrent_rwkv7
from icl.blocks.gla import gla_recurrent
from icl.blocks.deltanet import delta_recurrent
from icl.blocks.rwkv7 import rwkv7_recurrent
torch.manual_seed(0)
B, T, H, d = 2, 9, 2, 16
q, k, v, kk = (torch.randn(B, T, H, d) for _ in range(4))
g = F.logsigmoid(torch.randn(B, T, H, d)) / 4
qn, kn, kk = F.normalize(q, dim=-1), F.normalize(k, dim=-1), F.normalize(kk, dim=-1)
beta, decay, a, w = torch.rand(B, T, H), -torch.rand(B, T, H), torch.rand(B, T, H, d), -0.6 * torch.rand(B, T, H, d)
pairs = {
    "GLA": (fused_recurrent_gla(q, k, v, gk=g, scale=d ** -0.5, output_final_state=True),
            gla_recurrent(q, k, v, g, d ** -0.5)),
    "DN": (fused_recurrent_delta_rule(qn, kn, v, beta, scale=d ** -0.5, output_final_state=True),
           delta_recurrent(qn, kn, v, beta, d ** -0.5)),
    "GDN": (fused_recurrent_gated_delta_rule(qn, kn, v, g=decay, beta=beta, scale=d ** -0.5, output_final_state=True),
            delta_recurrent(qn, kn, v, beta, d ** -0.5, g=decay)),
    "R7": (fused_recurrent_rwkv7(q, w, k, v, -kk, kk * a, scale=1.0, output_final_state=True),
           rwkv7_recurrent(q, w, k, v, -kk, kk * a, 1.0)),
}
for name, ((o, s), (o_ref, s_ref)) in pairs.items():
    torch.testing.assert_close(o, o_ref, rtol=1e-4, atol=1e-4, msg=name)
    torch.testing.assert_close(s, s_ref, rtol=1e-4, atol=1e-4, msg=name)
print("ok")
'''


@pytest.mark.slow
@pytest.mark.skipif(not linear_attention.fla_installed(), reason="needs flash-linear-attention")
def test_fla_recurrent_kernels_under_the_triton_interpreter_equal_the_references():
    """fla's fused recurrent kernels (same conventions as the chunked ones the blocks call on
    CUDA: scale, log gates, the DPLR a / b roles, the k x v state) run by Triton's interpreter on
    the CPU equal our step-by-step references."""
    import os

    out = subprocess.run([sys.executable, "-c", FLA_UNDER_INTERPRETER], capture_output=True, text=True,
                         env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_rwkv7_reference_checkpointed_in_stretches_gives_the_same_values_and_gradients(monkeypatch):
    from icl.blocks import rwkv7

    torch.manual_seed(11)
    shapes = [(2, 70, 2, 4)] * 3 + [(2, 70, 2, 3)] + [(2, 70, 2, 4)] * 2   # r w k v a b; 70 = 3 stretches
    inputs = [torch.randn(*s, dtype=torch.float64) for s in shapes]
    inputs[1] = -torch.rand(*shapes[1], dtype=torch.float64)               # a log decay

    def run(steps):
        monkeypatch.setattr(rwkv7, "CHECKPOINT_STEPS", steps)
        leaves = [t.clone().requires_grad_() for t in inputs]
        o, state = rwkv7.rwkv7_recurrent(*leaves, scale=0.7)
        (o.sin().sum() + state.square().sum()).backward()
        return o.detach(), state.detach(), [t.grad for t in leaves]

    o1, s1, g1 = run(10_000)   # one stretch: nothing recomputed
    o2, s2, g2 = run(32)
    assert torch.equal(o1, o2) and torch.equal(s1, s2)
    assert all(torch.equal(x, y) for x, y in zip(g1, g2))
