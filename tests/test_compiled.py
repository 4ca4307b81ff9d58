"""train.compile: the training forward under torch.compile follows the plain curve, falls back to
the plain model after a compilation error (one line); tests/test_runs.py: not part of a run id."""
from __future__ import annotations

import pytest
import torch

from icl.training import compiled
from icl.training.pack import train_pack
from icl.training.train import train_run


def test_compiled_training_follows_the_plain_curve_across_curriculum_stages(tmp_path, monkeypatch, member,
                                                                           assert_same_curve):
    """On the CPU (inductor's C++ backend): 24 steps over make_run's four curriculum stages, so
    the graph is compiled for a new prompt length three times (or made dynamic)."""
    real_compile, calls = torch.compile, []

    def counting_compile(model):
        inner = real_compile(model)

        def call(*args, **kwargs):
            calls.append(args[0].shape)
            return inner(*args, **kwargs)
        return call
    monkeypatch.setattr(torch, "compile", counting_compile)
    run_on = member("00000000000a", compile="on", log_every=1)
    run_off = member("00000000000a", compile="off", log_every=1)
    assert train_run(run_on, tmp_path / "on", progress=False)["compile"] == {"on": True}
    assert len(calls) == 24 and len(set(calls)) == 4  # every step, four prompt lengths
    calls.clear()
    assert "compile" not in train_run(run_off, tmp_path / "off", progress=False)
    assert not calls
    assert_same_curve(tmp_path / "on", tmp_path / "off")


def test_compile_is_asked_for_by_every_run_of_a_pack_and_never_with_dropout(member, capsys):
    assert not compiled.wanted([member("00000000000a")])                       # off by default
    assert compiled.wanted([member("00000000000a", compile="on")])
    assert not compiled.wanted([member("00000000000a", compile="on"), member("00000000000b", seed=1)])
    assert not compiled.wanted([member("00000000000a", compile="on", dropout=0.1)])
    assert "torch.compile off for run 00000000000a: dropout > 0" in capsys.readouterr().err


def test_a_failed_compilation_trains_on_with_the_plain_model_after_one_line(tmp_path, monkeypatch, capsys, member,
                                                                           load_weights, assert_same_weights):
    def compile_that_fails(model):
        def call(*args, **kwargs):
            raise torch._dynamo.exc.TorchDynamoException("cannot trace this\nmore detail")
        return call
    monkeypatch.setattr(torch, "compile", compile_that_fails)
    done = train_run(member("00000000000a", compile="on"), tmp_path / "a", progress=False)
    assert done["state"] == "done"
    assert done["compile"] == {"on": False, "failed": "TorchDynamoException: cannot trace this"}
    lines = [line for line in capsys.readouterr().err.splitlines() if "torch.compile" in line]
    assert lines == ["torch.compile failed for run 00000000000a (TorchDynamoException: cannot trace this); "
                     "training on without it"]
    train_run(member("00000000000a", compile="off"), tmp_path / "b", progress=False)
    assert_same_weights(load_weights(tmp_path / "a"), load_weights(tmp_path / "b"))


def test_an_error_of_the_run_itself_is_not_taken_for_a_compilation_error(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)

    def compile_then_run_out_of_memory(module):
        def call(*args, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory")
        return call
    monkeypatch.setattr(torch, "compile", compile_then_run_out_of_memory)
    forward = compiled.CompiledForward(model, True, "00000000000a")
    with pytest.raises(torch.OutOfMemoryError):
        forward(torch.zeros(1, 2))
    assert forward.summary() == {"on": True}


@pytest.mark.gpu
@pytest.mark.parametrize("layers", ["A F", "M M", "S F", "SM SM"], ids=lambda layers: layers.replace(" ", "-"))
def test_compiled_packs_follow_the_plain_curves_on_the_gpu(tmp_path, layers, member, assert_same_curve):
    """On a GPU: a pack of 2 through whole-step graphs with its forward compiled follows the
    same pack without torch.compile, over four curriculum stages; nothing
    falls back (Mamba's Triton kernels inside the compiled graph)."""
    def runs(setting):
        made = [member("00000000000a", device="cuda", log_every=1, compile=setting),
                member("00000000000b", seed=1, device="cuda", log_every=1, compile=setting)]
        for run in made:
            run.model_config["layers"] = layers
            run.train["precision"] = "fp32"  # TF32 products would differ by more than fp32 rounding
        return made
    plain = train_pack(runs("off"), [tmp_path / "plain" / r for r in ("a", "b")], progress=False)
    done = train_pack(runs("on"), [tmp_path / "compiled" / r for r in ("a", "b")], progress=False)
    assert "compile" not in plain[0] and [s["compile"] for s in done] == [{"on": True}] * 2
    assert done[0]["cuda_graphs"]["on"] and done[0]["cuda_graphs"]["captures"] == 4
    for name in ("a", "b"):
        assert_same_curve(tmp_path / "compiled" / name, tmp_path / "plain" / name, drift=True)
