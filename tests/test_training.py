"""Training: curriculum, seeds, determinism, exact resume after kill -9, divergence, atomic writes."""
from __future__ import annotations

import copy
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

from icl import atomic
from icl.runfolder import RunFolderError
from icl.training.curriculum import axis_value, sizes_at
from icl.training.errors import RunError
from icl.training.seeds import STREAMS, stream_of, stream_seed
from icl.training.train import resolve_device, train_run

REPO = Path(__file__).resolve().parents[1]


# -- curriculum ------------------------------------------------------------------------

STUDY_AXES = {  # Garg et al.: +inc every 2000 steps, ends reached at step 30k
    "dims 5->20": ({"start": 5, "end": 20, "inc": 1, "interval": 2000}, (5, 5, 6, 20)),
    "points 11->41": ({"start": 11, "end": 41, "inc": 2, "interval": 2000}, (11, 11, 13, 41)),
    "points 26->101": ({"start": 26, "end": 101, "inc": 5, "interval": 2000}, (26, 26, 31, 101)),
}


@pytest.mark.parametrize("name", sorted(STUDY_AXES))
def test_curriculum_of_the_study(name):
    axis, expected = STUDY_AXES[name]
    assert tuple(axis_value(axis, s) for s in (0, 1999, 2000, 30000)) == expected
    assert axis_value(axis, 27999) < axis["end"]  # the end comes no earlier than step 28k
    assert axis_value(axis, 10 ** 7) == axis["end"]


def test_many_outlier_curriculum_and_sizes_at():
    config = {"kind": "many_outlier_regression", "dims": 20, "points": 512,
              "curriculum": {"dims": {"start": 4, "end": 20, "inc": 1, "interval": 2000},
                             "points": {"start": 12, "end": 512, "inc": 2, "interval": 200}}}
    assert sizes_at(config, 0) == {"dims": 4, "points": 12}
    assert sizes_at(config, 200) == {"dims": 4, "points": 14}
    assert sizes_at(config, 2000) == {"dims": 5, "points": 32}
    assert sizes_at(config, 10 ** 6) == {"dims": 20, "points": 512}
    # no curriculum: the task's own sizes; MQAR counts pairs as points
    assert sizes_at({"kind": "vector_mqar", "dims": 20, "pairs": 64, "curriculum": {}}, 5) == \
        {"dims": 20, "points": 64}


# -- seeds -----------------------------------------------------------------------------

def test_streams_are_disjoint_and_deterministic():
    train = {stream_seed("train", seed, step) for seed in range(4) for step in range(2000)}
    evals = {stream_seed("eval", seed, i) for seed in range(4) for i in range(200)}
    assert not train & evals
    assert len(train) == 8000  # no two (seed, step) pairs share a batch
    assert {stream_of(s) for s in train} == {"train"} and {stream_of(s) for s in evals} == {"eval"}
    # Deterministic across processes and versions: a committed run's batches depend on it.
    assert stream_seed("train", 3, 17) == 2081869122761052694
    assert all(0 <= stream_seed(n, 0, 0) < 2 ** 63 for n in STREAMS)
    with pytest.raises(ValueError):
        stream_seed("nope", 0)


# -- determinism and resume ------------------------------------------------------------

def test_same_seed_gives_bit_identical_weights(tmp_path, make_run, load_weights, assert_same_weights):
    run = make_run()
    first = train_run(run, tmp_path / "a", progress=False)
    second = train_run(copy.deepcopy(run), tmp_path / "b", progress=False)
    assert first["state"] == second["state"] == "done"
    assert_same_weights(load_weights(tmp_path / "a"), load_weights(tmp_path / "b"))
    other = dataclasses.replace(make_run(), seed=1, id="0123456789ac")
    train_run(other, tmp_path / "c", progress=False)
    a, c = load_weights(tmp_path / "a"), load_weights(tmp_path / "c")
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the seed matters


def test_precision_changes_nothing_on_the_cpu(tmp_path, make_run, load_weights, assert_same_weights):
    """tf32 and bf16 only change how a GPU multiplies: on the CPU every run computes in fp32."""
    train_run(make_run(precision="fp32"), tmp_path / "fp32", progress=False)
    for name in ("tf32", "bf16"):
        train_run(make_run(precision=name), tmp_path / name, progress=False)
        assert_same_weights(load_weights(tmp_path / "fp32"), load_weights(tmp_path / name))


def test_outputs_and_status(tmp_path, make_run):
    status = train_run(make_run(), tmp_path, progress=False)
    assert set(os.listdir(tmp_path)) == {"checkpoint.pt", "model.pt", "metrics.jsonl", "status.json"}
    on_disk = json.loads((tmp_path / "status.json").read_text())
    assert on_disk == status
    assert status["state"] == "done" and status["step"] == 24 and status["steps_done"] == 24
    assert status["steps_planned"] == 24 and status["capped"] is False
    assert status["versions"]["torch"] == torch.__version__
    for key in ("wall_s", "steps_per_s", "device", "backend", "message"):
        assert key in status
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [4, 8, 12, 16, 20, 24]
    assert [m["dims"] for m in metrics] == [2, 3, 4, 5, 5, 5]  # the curriculum of the step logged
    for m in metrics:
        assert {"loss", "lr", "grad_norm", "steps_per_s", "points"} <= m.keys()


def test_resume_in_process_and_max_steps(tmp_path, make_run, load_weights, assert_same_weights):
    whole = tmp_path / "whole"
    train_run(make_run(), whole, progress=False)
    part = tmp_path / "part"
    capped = train_run(make_run(), part, max_steps=12, progress=False)
    assert capped["capped"] is True and capped["steps_done"] == 12 and capped["steps_planned"] == 24
    # asking for what is done already is a no-op
    assert train_run(make_run(), part, max_steps=12, progress=False) == capped
    finished = train_run(make_run(), part, progress=False)
    assert finished["steps_done"] == 24 and finished["resumed_from"] == 12
    assert_same_weights(load_weights(whole), load_weights(part))
    lines = (part / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [4, 8, 12, 16, 20, 24]


def test_resume_after_kill_9_gives_identical_weights(tmp_path, make_run, load_weights, assert_same_weights):
    # Long enough that the kill lands mid-run; checkpoints often; dropout on.
    run = make_run(steps=400, checkpoint_every=10, log_every=3)
    (tmp_path / "run.json").write_text(json.dumps(run.to_dict()))
    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen([sys.executable, "-m", "icl.cli", "train", str(tmp_path / "run.json"),
                             "--out", str(killed), "--no-progress"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "status.json").exists(), "the run finished before it was killed"
    step_at_kill = torch.load(killed / "checkpoint.pt", weights_only=True)["step"]
    assert 10 <= step_at_kill < 400

    resumed = train_run(run, killed, progress=False)
    assert resumed["resumed_from"] == step_at_kill and resumed["state"] == "done"
    whole = tmp_path / "whole"
    train_run(run, whole, progress=False)
    assert_same_weights(load_weights(whole), load_weights(killed))
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(3, 401, 3))  # no duplicates, no gaps
    assert not list(killed.glob(".*.tmp"))


# -- divergence ------------------------------------------------------------------------

def test_huge_learning_rate_is_recorded_as_diverged(tmp_path, make_run):
    status = train_run(make_run(lr=1e30, steps=40, checkpoint_every=100), tmp_path, progress=False)
    assert status["state"] == "diverged"
    assert "diverged" in status["message"] and 0 <= status["step"] < 40
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "diverged"
    assert not (tmp_path / "model.pt").exists()


def test_nan_at_a_known_step_stops_there(tmp_path, make_run):
    """A model whose 7th forward pass returns NaN: diverged at step 6, no checkpoint after it."""
    from icl.compiler.build import build_model

    def factory(model_config, layout):
        model = build_model(model_config, layout)
        calls = {"n": 0}

        def poison(module, args, output):
            calls["n"] += 1
            return output * float("nan") if calls["n"] == 7 else output
        model.register_forward_hook(poison)
        return model

    status = train_run(make_run(checkpoint_every=4, log_every=2), tmp_path, progress=False,
                       model_factory=factory)
    assert status["state"] == "diverged" and status["step"] == 6
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 4
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 6 - 6 % 2
    # the CLI entry point exits 0 on a diverged run, so the rest of a study goes on
    (tmp_path / "run.json").write_text(json.dumps(make_run(lr=1e30, steps=20).to_dict()))
    done = subprocess.run([sys.executable, "-m", "icl.cli", "train", str(tmp_path / "run.json"),
                           "--out", str(tmp_path / "cli"), "--no-progress"], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "diverged" in done.stderr


# -- atomic writes and user errors -----------------------------------------------------

def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    atomic.write_json(target, {"state": "old"})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed between writing and renaming
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_json(target, {"state": "new"})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"state": "old"}
    assert os.listdir(tmp_path) == ["status.json"]  # no temporary left behind


def test_stale_temporaries_are_removed_on_start(tmp_path, make_run):
    (tmp_path / ".checkpoint.pt.abc.icl.tmp").write_bytes(b"half a checkp")
    (tmp_path / ".notes.tmp").write_text("the user's own")  # not a name the project makes (#29)
    train_run(make_run(steps=4), tmp_path, progress=False)
    assert [p.name for p in tmp_path.glob(".*.tmp")] == [".notes.tmp"]


def test_atomic_writes_refuse_to_replace_a_link_or_a_special_file(tmp_path):
    """#29: `icl eval --out LINK` replaced the link (as root, /dev/stdout would be replaced)."""
    from icl.errors import IclError

    target = tmp_path / "target.json"
    target.write_text("{}")
    (tmp_path / "link.json").symlink_to(target)
    os.mkfifo(tmp_path / "fifo.json")
    for name, kind in (("link.json", "a symbolic link"), ("fifo.json", "not a regular file")):
        with pytest.raises(IclError, match=f"{name} is {kind}: not replaced"):
            atomic.write_json(tmp_path / name, {"new": 1})
    assert (tmp_path / "link.json").is_symlink() and target.read_text() == "{}"


def test_user_errors_are_one_line(tmp_path, make_run):
    with pytest.raises(RunError, match="unknown optimizer"):
        train_run(make_run(optimizer="sgdx"), tmp_path / "a", progress=False)
    with pytest.raises(RunError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(RunError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "cuda")
    # a checkpoint of another run is refused, not silently resumed
    train_run(make_run(steps=8), tmp_path / "b", max_steps=4, progress=False)
    other = dataclasses.replace(make_run(steps=8), id="ffffffffffff")
    with pytest.raises(RunFolderError, match="belongs to run 0123456789ab"):
        train_run(other, tmp_path / "b", progress=False)
    bad = subprocess.run([sys.executable, "-m", "icl.cli", "train", str(tmp_path / "missing.json"),
                          "--out", str(tmp_path / "c")], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: cannot read run file") and "\n" not in bad.stderr.strip()


# -- CUDA (device machine only) --------------------------------------------------------

@pytest.mark.gpu
def test_cuda_run_resumes_exactly(tmp_path, make_run, load_weights, assert_same_weights):
    """On CUDA an attention run capped and resumed ends with the uninterrupted run's weights
    (every step's prompts and dropout come from seeds of the step, on the device)."""
    run = make_run(steps=60, checkpoint_every=20, log_every=10, device="cuda")
    whole = train_run(run, tmp_path / "whole", progress=False)
    assert whole["state"] == "done" and whole["device"] == torch.cuda.get_device_name()
    train_run(run, tmp_path / "part", max_steps=30, progress=False)
    train_run(run, tmp_path / "part", progress=False)
    assert_same_weights(load_weights(tmp_path / "whole"), load_weights(tmp_path / "part"))


@pytest.mark.gpu
def test_cuda_mamba_run_records_the_triton_backend(tmp_path, make_run):
    run = make_run(steps=6, checkpoint_every=3, log_every=3, device="cuda")
    run.model_config.update(layers="M M", positions="none")
    status = train_run(run, tmp_path, progress=False)
    assert status["state"] == "done" and status["backend"] == "triton"


def test_training_claims_its_steps_to_go_and_updates_them(monkeypatch, tmp_path, make_run):
    """resolve_device gets the steps a training has left (all of them; those after the last
    logged step of a checkpointed run; a pack's furthest-behind run's) and the GPU slot hears
    the steps still to go at every log step."""
    from icl.training import gpu_slots
    from icl.training import train as train_module
    from icl.training.train import train_members
    claimed, updates = [], []

    def fake_resolve(requested, work=0.0):
        claimed.append(work)
        return torch.device("cpu")
    monkeypatch.setattr(train_module, "resolve_device", fake_resolve)
    monkeypatch.setattr(gpu_slots, "update_work", updates.append)
    run = make_run(steps=24)  # log every 4, checkpoint every 8
    train_run(run, tmp_path / "a", max_steps=8, progress=False)
    assert claimed == [8] and updates == [4, 0]
    train_run(run, tmp_path / "a", progress=False)  # resumes after step 8
    assert claimed == [8, 16] and updates[2:] == [12, 8, 4, 0]
    second = dataclasses.replace(run, id="0123456789ac", seed=1)
    train_members([run, second], [tmp_path / "b", tmp_path / "c"], max_steps=12, progress=False)
    (tmp_path / "b" / "metrics.jsonl").write_text('{"step": 20}\n')  # b as if logged further
    train_members([run, second], [tmp_path / "b", tmp_path / "c"], progress=False)
    assert claimed[2:] == [12, 12]  # c, 12 steps behind, sets the pack's work
    (tmp_path / "d").mkdir()  # metrics without a checkpoint: the run starts over
    (tmp_path / "d" / "metrics.jsonl").write_text('{"step": 20}\n')
    train_run(run, tmp_path / "d", progress=False)
    assert claimed[4:] == [24]


def test_log_error_records_the_error_and_changes_no_weight(tmp_path, make_run, load_weights, assert_same_weights):
    """train.log_error N: each metrics line also holds the task's error on N fresh prompts; the
    scoring draws nothing from training's streams, so the weights are those of a run without it."""
    run = make_run(steps=8, log_every=4, log_error=32)
    run.model_config["dropout"] = 0.1  # dropout on: the scoring runs in eval mode, drawing no mask
    base = make_run(steps=8, log_every=4)
    base.model_config["dropout"] = 0.1
    train_run(base, tmp_path / "base", progress=False)
    assert train_run(run, tmp_path / "monitored", progress=False)["state"] == "done"
    assert_same_weights(load_weights(tmp_path / "base"), load_weights(tmp_path / "monitored"))
    lines = [json.loads(x) for x in (tmp_path / "monitored" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [4, 8] and all(0 < x["error"] < 10 for x in lines)
    assert "error" not in json.loads((tmp_path / "base" / "metrics.jsonl").read_text().splitlines()[0])


def test_stop_error_ends_a_run_at_its_first_metrics_line_at_or_below_it(tmp_path, make_run, load_weights,
                                                                         assert_same_weights):
    """train.stop_error E: the run ends, "done", at the first metrics line whose error <= E, with
    its weights, checkpoint and status there; a run whose error never gets that low trains all
    its steps. Its weights are those of the same run trained to that step without the stop."""
    lines = lambda folder: [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    full = train_run(make_run(steps=24, log_every=4, log_error=32), tmp_path / "full", progress=False)
    errors = [x["error"] for x in lines(tmp_path / "full")]
    threshold = errors[2]  # first reached at step 12 or before
    first = next(4 * (i + 1) for i, e in enumerate(errors) if e <= threshold)
    status = train_run(make_run(steps=24, log_every=4, log_error=32, stop_error=threshold), tmp_path / "stop",
                       progress=False)
    assert status["state"] == "done" and status["steps_done"] == status["step"] == first < 24
    assert status["stopped_early"] == {"step": first, "error": errors[first // 4 - 1], "stop_error": threshold}
    assert not status["capped"] and "stopped at step" in status["message"]
    assert [x["step"] for x in lines(tmp_path / "stop")] == list(range(4, first + 1, 4))
    assert (tmp_path / "stop" / "checkpoint.pt").exists()
    train_run(make_run(steps=24, log_every=4, log_error=32), tmp_path / "short", max_steps=first, progress=False)
    assert_same_weights(load_weights(tmp_path / "short"), load_weights(tmp_path / "stop"))
    never = train_run(make_run(steps=24, log_every=4, log_error=32, stop_error=0.0), tmp_path / "never",
                      progress=False)
    assert never["steps_done"] == 24 and "stopped_early" not in never and full["steps_done"] == 24
    # Run again, a finished run is left as it is.
    assert train_run(make_run(steps=24, log_every=4, log_error=32, stop_error=threshold), tmp_path / "stop",
                     progress=False)["steps_done"] == first
    # Killed after the stop step's checkpoint, before its weights and status: it finishes there.
    (tmp_path / "stop" / "status.json").unlink()
    (tmp_path / "stop" / "model.pt").unlink()
    again = train_run(make_run(steps=24, log_every=4, log_error=32, stop_error=threshold), tmp_path / "stop",
                      progress=False)
    assert again["stopped_early"] == status["stopped_early"] and again["resumed_from"] == first
    assert_same_weights(load_weights(tmp_path / "short"), load_weights(tmp_path / "stop"))
    assert [x["step"] for x in lines(tmp_path / "stop")] == list(range(4, first + 1, 4))


def test_stop_error_without_log_error_stops_before_training(tmp_path, make_run):
    with pytest.raises(RunError, match="stop_error 0.1 needs train.log_error > 0"):
        train_run(make_run(steps=8, stop_error=0.1), tmp_path / "a", progress=False)
    assert not (tmp_path / "a" / "metrics.jsonl").exists()


@pytest.mark.parametrize("mode", ["single", "stacked", "loop"])
def test_token_mqar_reads_out_only_its_queries_and_trains_as_with_every_row(tmp_path, write_spec, monkeypatch, mode):
    """Token MQAR's loss reads only the query positions (Task.loss_rows): training computes the
    read-out there alone, and the losses and weights are those of the full read-out (float
    rounding apart), lone and packed (stacked, and one run after another)."""
    from icl.compiler.runs import runs_of
    from icl.tasks.base import Task
    from icl.training.pack import train_pack

    seeds = "[0]" if mode == "single" else "[0, 1]"
    spec = write_spec("mqar.icl", f'''
model t {{ layers = "A F" width = 16 heads = 2 positions = learned }}
task mqar {{ kind = token_mqar vocab = 64 seq_len = 24 pairs = 3 }}
experiment e {{ models = [t] tasks = [mqar] train {{ steps = 12 batch = 8 log_every = 1 seeds = {seeds} }} }}
''')
    runs = runs_of([spec])
    if mode == "loop":
        monkeypatch.setenv("ICL_PACK_MODE", "loop")
    calls = []

    def trained(folder):
        train_pack(runs, [folder / r.id for r in runs], progress=False)
        return {r.id: ([json.loads(x)["loss"] for x in (folder / r.id / "metrics.jsonl").read_text().splitlines()],
                       torch.load(folder / r.id / "model.pt", weights_only=True)["model"]) for r in runs}

    from icl.blocks.model import ICLModel
    original = ICLModel.forward

    def spy(self, inputs, rows=None):
        calls.append(rows is not None)
        return original(self, inputs, rows=rows)

    monkeypatch.setattr(ICLModel, "forward", spy)
    by_rows = trained(tmp_path / "rows")
    assert calls and all(calls)   # every training forward read out at the query rows only
    monkeypatch.setattr(Task, "loss_rows", lambda self, prompts: None)
    calls.clear()
    full = trained(tmp_path / "full")
    assert calls and not any(calls)
    for run in runs:
        (loss_a, w_a), (loss_b, w_b) = by_rows[run.id], full[run.id]
        assert loss_a == pytest.approx(loss_b, rel=1e-5) and len(loss_a) == 12
        assert all(torch.allclose(w_a[k], w_b[k], atol=1e-5) for k in w_a)
    assert loss_a[-1] < loss_a[0]   # it trains
