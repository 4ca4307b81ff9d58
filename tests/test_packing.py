"""Packed training: runs that differ in seed, learning rate or clipping train as one batched model
and each follows the curve of the same run trained alone, with the same files."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from icl.training.errors import RunError
from icl.training.grouping import check_pack, group_runs, pack_key
from icl.training.pack import train_pack
from icl.training.train import train_run

REPO = Path(__file__).resolve().parents[1]


def metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


# -- equivalence with lone runs -------------------------------------------------------------

@pytest.mark.parametrize("layers", ["A A", "M M", "S F", "SM SM"])
def test_packed_runs_follow_their_lone_curves(tmp_path, layers, member, assert_same_curve, load_weights, train_alone):
    runs = [member("00000000000a", seed=0), member("00000000000b", seed=1),
            member("00000000000c", seed=0, lr=3e-3),
            member("00000000000d", seed=2, clip=0.05)]  # clipped every step: clipping is per run
    for run in runs:
        run.model_config["layers"] = layers
        if "A" not in layers.split():
            # as in the study's SSM models; also, the last token's position embedding has a true
            # gradient of zero (no loss term sees it), but an FFT convolution's rounding leaks
            # a little to it, which Adam turns into lr-sized steps that differ packed and alone
            run.model_config["positions"] = "none"
    statuses = train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False)
    train_alone(runs, tmp_path)
    for run, status in zip(runs, statuses):
        assert status["state"] == "done" and status["step"] == 24
        assert status["pack"] == {"runs": [r.id for r in runs], "mode": "stacked"}
        assert_same_curve(tmp_path / "pack" / run.id, tmp_path / "alone" / run.id)
    # the clipped run really was clipped, and the seeds and learning rates mattered
    clipped = metrics(tmp_path / "pack" / "00000000000d")
    assert all(m["grad_norm"] > 0.05 for m in clipped)
    w = {r.id: load_weights(tmp_path / "pack" / r.id) for r in runs}
    for a, b in [("00000000000a", "00000000000b"), ("00000000000a", "00000000000c")]:
        assert any(not torch.allclose(w[a][k], w[b][k]) for k in w[a])


def other_task(run, kind: str, **options):
    """The run on another task of the same prompt shape (dims, points and curriculum kept)."""
    config = {**run.task_config, "kind": kind, **options}
    config.pop("noise", None)
    return dataclasses.replace(run, task=kind, task_config=config)


def test_runs_of_different_tasks_and_one_prompt_shape_pack_and_follow_their_lone_curves(
        tmp_path, member, assert_same_curve, train_alone):
    """Each run of a pack keeps its own task (sampler, loss): a pack of linear, sparse linear and
    ReLU-net regression of one shape trains each run as it trains alone."""
    runs = [member("00000000000a", seed=0),
            other_task(member("00000000000b", seed=1), "sparse_linear_regression", k=2, noise=0.0),
            other_task(member("00000000000c", seed=2, lr=3e-3), "relu_2nn_regression", hidden=8)]
    check_pack(runs)
    statuses = train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False)
    train_alone(runs, tmp_path)
    for run, status in zip(runs, statuses):
        assert status["state"] == "done" and status["pack"]["mode"] == "stacked"
        assert_same_curve(tmp_path / "pack" / run.id, tmp_path / "alone" / run.id)
    # the tasks really differ: same seed, other task, other losses
    same_seed = other_task(member("00000000000d", seed=0), "relu_2nn_regression", hidden=8)
    train_alone([same_seed], tmp_path)
    assert metrics(tmp_path / "alone" / "00000000000d")[0]["loss"] != metrics(tmp_path / "pack" / "00000000000a")[0]["loss"]


def test_tasks_of_other_prompt_shapes_do_not_pack(member):
    base = member("00000000000a")
    longer = other_task(member("00000000000b"), "relu_2nn_regression", hidden=8, points=21)
    vector = other_task(member("00000000000c"), "vector_mqar", pairs=11)
    vector.task_config.pop("points")
    for other in (longer, vector):
        with pytest.raises(RunError, match="cannot be packed: their prompt_shape differ"):
            check_pack([base, other])


def test_packed_outputs_have_the_lone_layout(tmp_path, member):
    runs = [member("00000000000a"), member("00000000000b", seed=1)]
    packed = train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False)
    alone = train_run(runs[0], tmp_path / "alone", progress=False)
    folder = tmp_path / "pack" / "00000000000a"
    assert set(os.listdir(folder)) == set(os.listdir(tmp_path / "alone"))
    assert set(packed[0]) == set(alone) | {"pack"}
    assert json.loads((folder / "status.json").read_text()) == packed[0]
    assert "pack" not in alone  # an unpacked run's status is as before
    pc = torch.load(folder / "checkpoint.pt", weights_only=True)
    ac = torch.load(tmp_path / "alone" / "checkpoint.pt", weights_only=True)
    assert pc.keys() == ac.keys() and pc["step"] == ac["step"] == 24
    assert pc["optimizer"]["param_groups"][0].keys() == ac["optimizer"]["param_groups"][0].keys()
    # training again is a no-op: every member is done
    assert train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False) == packed


def test_dropout_packs_loop_with_each_runs_own_masks(tmp_path, member, assert_same_curve, train_alone):
    runs = [member("00000000000a", dropout=0.1), member("00000000000b", seed=1, dropout=0.1)]
    statuses = train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False)
    train_alone(runs, tmp_path)
    for run, status in zip(runs, statuses):
        assert status["pack"]["mode"] == "loop"
        assert_same_curve(tmp_path / "pack" / run.id, tmp_path / "alone" / run.id, exact=True)


def test_forced_loop_mode_matches_stacked(tmp_path, monkeypatch, member, assert_same_curve):
    runs = [member("00000000000a"), member("00000000000b", seed=1)]
    train_pack(runs, [tmp_path / "stacked" / r.id for r in runs], progress=False)
    monkeypatch.setenv("ICL_PACK_MODE", "loop")
    statuses = train_pack(runs, [tmp_path / "loop" / r.id for r in runs], progress=False)
    assert [s["pack"]["mode"] for s in statuses] == ["loop", "loop"]
    for run in runs:
        assert_same_curve(tmp_path / "stacked" / run.id, tmp_path / "loop" / run.id)


def test_one_diverging_run_stops_alone(tmp_path, member, assert_same_curve, train_alone):
    runs = [member("00000000000a", steps=40, checkpoint_every=100),
            member("00000000000b", lr=1e30, steps=40, checkpoint_every=100),
            member("00000000000c", seed=1, steps=40, checkpoint_every=100)]
    statuses = train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False)
    assert [s["state"] for s in statuses] == ["done", "diverged", "done"]
    bad = tmp_path / "pack" / "00000000000b"
    assert "diverged" in statuses[1]["message"] and 0 <= statuses[1]["step"] < 40
    assert not (bad / "model.pt").exists() and not (bad / "checkpoint.pt").exists()
    lone_bad = train_run(runs[1], tmp_path / "alone_bad", progress=False)
    assert lone_bad["step"] == statuses[1]["step"] and lone_bad["message"] == statuses[1]["message"]
    train_alone([runs[0], runs[2]], tmp_path)
    for run in (runs[0], runs[2]):
        assert_same_curve(tmp_path / "pack" / run.id, tmp_path / "alone" / run.id)


def test_a_run_stopped_by_its_stop_error_leaves_the_pack_alone(tmp_path, member, assert_same_curve, train_alone):
    """train.stop_error per run: a member whose error reaches its stop_error ends there (its
    status says so), the others go on; each follows the curve of the same run trained alone."""
    runs = [member("00000000000a", steps=16, log_every=4, log_error=16, stop_error=1e9),
            member("00000000000b", seed=1, steps=16, log_every=4, log_error=16)]
    check_pack(runs)
    statuses = train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False)
    assert statuses[0]["stopped_early"]["step"] == statuses[0]["steps_done"] == 4
    assert statuses[1]["steps_done"] == 16 and "stopped_early" not in statuses[1]
    train_alone(runs, tmp_path)
    for run in runs:
        assert_same_curve(tmp_path / "pack" / run.id, tmp_path / "alone" / run.id)


@pytest.mark.parametrize("tasks", ["one", "mixed"])
def test_members_resume_from_different_steps(tmp_path, tasks, member, assert_same_curve, train_alone):
    """A pack whose runs were checkpointed at different steps (or trained alone) takes each
    up from its own checkpoint and ends on its lone curve; "mixed": each waits on prompts of
    its own task (the ReLU-net run has no other run of its task to borrow them from)."""
    runs = [member("00000000000a"), member("00000000000b", seed=1), member("00000000000c", seed=2)]
    if tasks == "mixed":
        runs[0] = other_task(runs[0], "relu_2nn_regression", hidden=8)
    dirs = [tmp_path / "pack" / r.id for r in runs]
    train_run(runs[0], dirs[0], max_steps=16, progress=False)
    train_run(runs[1], dirs[1], max_steps=8, progress=False)
    statuses = train_pack(runs, dirs, progress=False)
    assert [s["resumed_from"] for s in statuses] == [16, 8, 0]
    train_alone(runs, tmp_path)
    for run, folder in zip(runs, dirs):
        assert_same_curve(folder, tmp_path / "alone" / run.id)
        assert [m["step"] for m in metrics(folder)] == [4, 8, 12, 16, 20, 24]


def test_a_pack_out_of_gpu_memory_splits_and_each_half_resumes(tmp_path, member, assert_same_curve,
                                                                  train_alone, monkeypatch, capfd):
    """A pack that runs out of GPU memory mid-training (here: a pack of more than two runs, after
    16 of its 24 steps) is trained again as two halves, which resume from the checkpoints and
    end on the lone curves; a lone run out of memory is a one-line error."""
    import icl.training.train as train_module

    real = train_module.train_members

    def small_gpu(runs, out_dirs, **kw):
        if len(runs) > 2:  # a card that holds packs of 2
            real(runs, out_dirs, **{**kw, "max_steps": 16})
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(runs, out_dirs, **kw)

    monkeypatch.setattr(train_module, "train_members", small_gpu)
    runs = [member("00000000000a"), member("00000000000b", seed=1), member("00000000000c", seed=2)]
    dirs = [tmp_path / "pack" / r.id for r in runs]
    statuses = train_pack(runs, dirs, progress=False)
    assert "a pack of 3 runs ran out of GPU memory; training it as packs of 2 and 1" in capfd.readouterr().err
    assert [s["state"] for s in statuses] == ["done"] * 3
    assert [s["resumed_from"] for s in statuses] == [16, 16, 16]
    train_alone(runs, tmp_path)
    for run, folder in zip(runs, dirs):
        assert_same_curve(folder, tmp_path / "alone" / run.id)
        assert [m["step"] for m in metrics(folder)] == [4, 8, 12, 16, 20, 24]

    def no_memory(runs, out_dirs, **kw):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(train_module, "train_members", no_memory)
    with pytest.raises(RunError, match="does not fit in GPU memory alone"):
        train_pack([member("00000000000e")], [tmp_path / "e"], progress=False)


def test_killed_pack_resumes_exactly(tmp_path, member, load_weights, assert_same_weights):
    runs = [member("00000000000a", steps=400, checkpoint_every=10, log_every=3),
            member("00000000000b", seed=1, lr=2e-3, steps=400, checkpoint_every=10, log_every=3)]
    (tmp_path / "runs.json").write_text(json.dumps([r.to_dict() for r in runs]))
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "icl.cli", "train", str(tmp_path / "runs.json"),
                             "--run", "00000000000a", "--run", "00000000000b",
                             "--runs-dir", str(killed), "--no-progress"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (killed / "00000000000b" / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list(killed.glob("*/status.json")), "the pack finished before it was killed"

    dirs = [killed / r.id for r in runs]
    resumed = train_pack(runs, dirs, progress=False)
    assert all(s["state"] == "done" and s["resumed_from"] >= 10 for s in resumed)
    whole = [tmp_path / "whole" / r.id for r in runs]
    train_pack(runs, whole, progress=False)
    for a, b in zip(whole, dirs):
        assert_same_weights(load_weights(a), load_weights(b))
        assert [m["step"] for m in metrics(b)] == list(range(3, 401, 3))


# -- which runs may share a pack ------------------------------------------------------------

def test_only_seed_lr_clip_and_weight_decay_may_differ(member):
    base = member("00000000000a")
    others = [member("00000000000b", seed=3, lr=1e-2, clip=1.0, weight_decay=0.1)]
    check_pack([base, *others])
    wider = member("00000000000c")
    wider.model_config["width"] = 32
    longer = member("00000000000d", steps=48)
    with pytest.raises(RunError, match="cannot be packed: their model_config differ"):
        check_pack([base, wider])
    with pytest.raises(RunError, match="cannot be packed: their train differ"):
        check_pack([base, longer])
    with pytest.raises(RunError, match="twice"):
        check_pack([base, base])
    assert pack_key(base) == pack_key(others[0]) != pack_key(wider)


def test_group_runs_packs_compatible_runs(member):
    runs = [member(f"00000000000{i}", seed=i) for i in range(5)]
    wider = member("0000000000ff")
    wider.model_config["width"] = 32
    packs = group_runs([wider, *reversed(runs)], size=2)
    assert sorted(len(p) for p in packs) == [1, 1, 2, 2]
    assert {r.id for p in packs for r in p} == {r.id for r in runs} | {"0000000000ff"}
    assert all(len({pack_key(r) for r in p}) == 1 for p in packs)
    assert group_runs(runs, size=2) == group_runs(list(reversed(runs)), size=2)  # stable
    with pytest.raises(RunError, match="pack size"):
        group_runs(runs, size=0)


# -- the pipeline ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def seeds_spec(tiny_spec):
    """The tiny study's linear regression, three seeds."""
    return tiny_spec.split("experiment sparse_parity")[0].replace("log_every = 4 }",
                                                                  "log_every = 4  seeds = [0, 1, 2] }")


@pytest.fixture(scope="session")
def packing_snakemake(run_snakemake):
    """packing_snakemake(workdir, spec, *args, pack=None) -> (exit status, output)."""

    def packing_snakemake(workdir: Path, spec: Path, *args: str, pack=None) -> tuple[int, str]:
        done = run_snakemake(workdir, spec, *args, config=() if pack is None else (f"pack={pack}",))
        return done.returncode, done.stdout + done.stderr

    return packing_snakemake


def train_jobs(output: str, rules: str = "train") -> dict[str, int]:
    """Jobs of a dry run's 'Job stats' whose rule starts with `rules`: rule -> count
    ('pack' for every pack rule)."""
    import re

    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1]
    counts: dict[str, int] = {}
    for name, count in re.findall(rf"^({rules}\w*)\s+(\d+)$", table, re.M):
        key = "pack" if name.startswith("train_pack_") else name
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def test_pipeline_packs_only_when_asked(tmp_path, seeds_spec, packing_snakemake):
    spec = tmp_path / "seeds.icl"
    spec.write_text(seeds_spec)
    code, out = packing_snakemake(tmp_path, spec, "-n")
    assert code == 0, out
    assert train_jobs(out) == {"train": 6}  # smoke scale on CPU: auto packs nothing
    code, out = packing_snakemake(tmp_path, spec, "-n", pack=2)
    assert code == 0, out
    assert train_jobs(out) == {"pack": 2, "train": 2}  # per model: seeds 0+1 packed, seed 2 alone
    code, out = packing_snakemake(tmp_path, spec, "-n", pack=0)
    assert code != 0 and "pack" in out


def test_auto_packs_on_a_gpu_only_models_that_pack_well(tmp_path, seeds_spec, run_snakemake):
    # Attention, MLP, Mamba and S4 blocks pack well (catalog: packs_well); Mamba-2's is not
    # measured packed, so its runs train alone.
    spec = tmp_path / "seeds.icl"
    spec.write_text('model s4 { layers = "S S" width = 16 d_state = 4 }\n'
                    'model m2 { layers = "M2 M2" width = 16 d_state = 4 headdim = 8 }\n'
                    + seeds_spec.replace("models = [mamba, transformer]", "models = [mamba, transformer, s4, m2]"))
    for device, expected in (("cuda", {"pack": 3, "train": 3}), ("cpu", {"train": 12})):
        done = run_snakemake(tmp_path, spec, "-n", config=(f"device={device}",))
        assert done.returncode == 0, done.stderr
        assert train_jobs(done.stdout + done.stderr) == expected, device  # on cuda: 3 seeds a pack


@pytest.mark.slow
def test_packed_pipeline_trains_and_reruns_only_new_runs(tmp_path, seeds_spec, packing_snakemake):
    spec = tmp_path / "seeds.icl"
    spec.write_text(seeds_spec)
    code, out = packing_snakemake(tmp_path, spec, "--cores", "2", pack=3)
    assert code == 0, out[-3000:]
    statuses = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/status.json")]
    assert len(statuses) == 6 and all(s["state"] == "done" for s in statuses)
    assert sorted(len(s["pack"]["runs"]) for s in statuses) == [3] * 6
    assert (tmp_path / "results" / "report.html").stat().st_size > 0
    # Already trained runs keep the rule that trained them, whatever the pack setting now.
    for pack in (3, "off", 2):
        code, out = packing_snakemake(tmp_path, spec, "-n", pack=pack)
        assert "Nothing to be done" in out, out[-2000:]
    # Two more seeds: only they train (packed together per model), and only they are evaluated.
    spec.write_text(seeds_spec.replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2, 3, 4]"))
    code, out = packing_snakemake(tmp_path, spec, "-n", pack=3)
    assert train_jobs(out) == {"pack": 2}
    assert train_jobs(out, "evaluate") == {"evaluate": 4}


# -- whole-step CUDA graphs -----------------------------------------------------------------

class ReplayOnCpu:
    """Stands in for a captured CUDA graph on the CPU with a graph's semantics: capturing runs
    nothing; each replay runs the captured step on the static prompts the fresh ones were copied into."""

    def __init__(self, step_fn, prompts):
        from icl.training.graphs import _map_tensors

        self.static = [_map_tensors(p, lambda t: t.clone()) for p in prompts]
        self.step_fn = step_fn

    def replay(self, prompts):
        from icl.training.graphs import _copy_tensors

        for static, fresh in zip(self.static, prompts):
            _copy_tensors(static, fresh)
        return tuple(t.clone() for t in self.step_fn(self.static, False))


@pytest.fixture
def graphs_on_cpu(monkeypatch):
    from icl.training import graphs

    monkeypatch.setattr(graphs, "wanted", lambda dev, runs: True)
    monkeypatch.setattr(graphs, "warm_up", lambda step_fn, prompts, dev: step_fn(prompts, False))
    monkeypatch.setattr(graphs, "CapturedStep", ReplayOnCpu)
    return graphs


def test_graph_steps_recapture_per_curriculum_stage(tmp_path, graphs_on_cpu, member, assert_same_curve, load_weights, assert_same_weights, train_alone):
    runs = [member("00000000000a"), member("00000000000b", seed=1)]
    graphed = train_pack(runs, [tmp_path / "graph" / r.id for r in runs], progress=False)
    # stages of make_run's curriculum: steps 0-3, 4-7, 8-11, 12-23; 3 eager warm-up steps each
    assert graphed[0]["cuda_graphs"] == {"on": True, "captures": 4, "replays": 1 + 1 + 1 + 9}
    train_alone(runs, tmp_path)
    for run in runs:
        assert_same_curve(tmp_path / "graph" / run.id, tmp_path / "alone" / run.id)
    lone = train_run(runs[0], tmp_path / "lone_graph", progress=False)
    assert lone["cuda_graphs"]["captures"] == 4 and "pack" not in lone
    assert_same_weights(load_weights(tmp_path / "lone_graph"), load_weights(tmp_path / "alone" / runs[0].id))


def test_failed_capture_falls_back_with_one_line(tmp_path, graphs_on_cpu, monkeypatch, capsys, member, load_weights, assert_same_weights):
    def refuse(step_fn, prompts):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
    monkeypatch.setattr(graphs_on_cpu, "CapturedStep", refuse)
    status = train_run(member("00000000000a"), tmp_path / "a", progress=False)
    assert status["cuda_graphs"] == {"on": False, "captures": 0, "replays": 0}
    lines = [line for line in capsys.readouterr().err.splitlines() if "cuda graphs" in line]
    assert len(lines) == 1 and "capture failed (RuntimeError: operation not permitted" in lines[0]
    train_run(member("00000000000a"), tmp_path / "b", progress=False)  # graphs off
    assert_same_weights(load_weights(tmp_path / "a"), load_weights(tmp_path / "b"))


@pytest.mark.gpu
@pytest.mark.parametrize("layers", ["A A", "M M"])
def test_cuda_graph_training_matches_eager(tmp_path, monkeypatch, layers, member, assert_same_curve):
    """On a GPU: packs trained through whole-step graphs follow the eager curves (Mamba's Triton
    scan runs the pack as one grouped call inside the graph)."""
    runs = [member("00000000000a", device="cuda", log_every=1), member("00000000000b", seed=1, device="cuda", log_every=1)]
    for run in runs:
        run.model_config["layers"] = layers
        run.train["precision"] = "fp32"  # TF32 products would differ between the two by more than fp32 rounding
    monkeypatch.setenv("ICL_CUDA_GRAPHS", "0")
    for run in runs:
        train_run(run, tmp_path / "eager" / run.id, progress=False)
    monkeypatch.setenv("ICL_CUDA_GRAPHS", "1")
    statuses = train_pack(runs, [tmp_path / "graph" / r.id for r in runs], progress=False)
    assert statuses[0]["cuda_graphs"] == {"on": True, "captures": 4, "replays": 12}
    for run in runs:
        assert_same_curve(tmp_path / "graph" / run.id, tmp_path / "eager" / run.id, drift=True)


@pytest.mark.gpu
@pytest.mark.parametrize("layers", ["A F", "M M", "M A M", "S F", "SM SM", "A M"])
def test_pack_of_three_matches_lone_runs_on_the_gpu(tmp_path, layers, member, assert_same_curve, train_alone):
    """On a GPU, 50 steps: a pack of 3 (whole-step graphs, one grouped scan per Mamba layer) in
    which one member diverges follows the two others' lone curves (the first step to fp32
    tolerance, the rest within 1%: conftest's assert_same_curve, drift=True), and the diverged
    member stops where it stops alone."""
    runs = [member("00000000000a", device="cuda", steps=50, checkpoint_every=100, log_every=1),
            member("00000000000b", seed=1, lr=1e30, device="cuda", steps=50, checkpoint_every=100, log_every=1),
            member("00000000000c", seed=2, lr=3e-3, device="cuda", steps=50, checkpoint_every=100, log_every=1)]
    for run in runs:
        run.model_config["layers"] = layers
        run.train["precision"] = "fp32"  # TF32 products round differently packed and alone
        if "A" not in layers.split():
            run.model_config["positions"] = "none"  # see test_packed_runs_follow_their_lone_curves
    statuses = train_pack(runs, [tmp_path / "pack" / r.id for r in runs], progress=False)
    assert [s["state"] for s in statuses] == ["done", "diverged", "done"]
    lone_bad = train_run(runs[1], tmp_path / "alone_bad", progress=False)
    assert (lone_bad["state"], lone_bad["step"]) == ("diverged", statuses[1]["step"])
    train_alone([runs[0], runs[2]], tmp_path)
    for run in (runs[0], runs[2]):
        assert_same_curve(tmp_path / "pack" / run.id, tmp_path / "alone" / run.id, drift=True)


def test_the_pack_setting_groups_runs_for_training(member):
    from icl.training.grouping import AUTO_PACK, group_for_training, pack_plan

    runs = [member(f"00000000000{i}", seed=i) for i in range(5)]
    assert [len(p) for p in group_for_training(runs, "2", on_gpu=False)] == [2, 2, 1]
    assert [len(p) for p in group_for_training(runs, "off", on_gpu=True)] == [1] * 5
    assert [len(p) for p in group_for_training(runs, "auto", on_gpu=False)] == [1] * 5  # CPU: no packs
    # auto on a GPU packs only models whose every block packs well (the tiny model: A A)
    assert [len(p) for p in group_for_training(runs, "auto", on_gpu=True)] == [5]
    assert pack_plan("auto", on_gpu=True)[0] == AUTO_PACK
    for bad in ("0", "lots"):
        with pytest.raises(RunError, match="pack must be"):
            pack_plan(bad, on_gpu=False)
