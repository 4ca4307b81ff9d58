"""The optional TensorBoard sink (training/sinks.py): train.tensorboard / $ICL_TENSORBOARD, off by
default, one event folder per run (packed runs too), a one-line error without the package."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icl.compiler.runs import runs_of
from icl.errors import IclError
from icl.training.errors import RunError
from icl.training.pack import train_pack
from icl.training.sinks import ENV, TENSORBOARD_DIR, TensorBoardMissing, tensorboard_wanted
from icl.training.train import train_run

SPEC = '''
model m { layers = "A*2" width = 16 heads = 2 }
experiment e {
  models = [m]
  tasks = [linear_regression]
  train { steps = 10 lr = [1e-3, 1e-4] seeds = [0, 1] }
}
'''


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    """The spec decides unless a test sets $ICL_TENSORBOARD itself."""
    monkeypatch.delenv(ENV, raising=False)


def _metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a run's TensorBoard folder: tag -> [(step, value)], as TensorBoard shows them
    (events hidden by a resume's purge_step left out)."""
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="reading event files back needs tensorboard: pip install 'icl-compiler[tensorboard]'")
    events = accumulator.EventAccumulator(str(folder / TENSORBOARD_DIR), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _f32(x: float) -> float:
    """An event file keeps a scalar as a float32."""
    import numpy as np

    return float(np.float32(x))


def _assert_events_are_the_metrics(folder: Path) -> None:
    lines = _metrics(folder)
    scalars = _scalars(folder)
    for name in ("loss", "lr", "grad_norm", "steps_per_s", "wall_s", "dims", "points"):
        assert scalars[f"train/{name}"] == [(x["step"], _f32(x[name])) for x in lines], name


def test_events_hold_the_metrics_lines_scalars(tmp_path, make_run):
    pytest.importorskip("tensorboard", reason="the read-back needs tensorboard: pip install 'icl-compiler[tensorboard]'")
    run = make_run(steps=8, log_every=2, log_error=16, tensorboard=True)
    assert train_run(run, tmp_path / "r", progress=False)["state"] == "done"
    assert list((tmp_path / "r" / TENSORBOARD_DIR).glob("events.out.tfevents.*"))
    _assert_events_are_the_metrics(tmp_path / "r")
    lines, scalars = _metrics(tmp_path / "r"), _scalars(tmp_path / "r")
    assert [s for s, _ in scalars["train/loss"]] == [2, 4, 6, 8]
    assert scalars["train/error"] == [(x["step"], _f32(x["error"])) for x in lines]


def test_the_setting_changes_no_weight(tmp_path, make_run, load_weights, assert_same_weights):
    pytest.importorskip("tensorboard", reason="training with the sink on needs tensorboard")
    train_run(make_run(steps=8), tmp_path / "off", progress=False)
    train_run(make_run(steps=8, tensorboard=True), tmp_path / "on", progress=False)
    assert_same_weights(load_weights(tmp_path / "off"), load_weights(tmp_path / "on"))
    assert [x["loss"] for x in _metrics(tmp_path / "off")] == [x["loss"] for x in _metrics(tmp_path / "on")]


def test_a_resumed_run_shows_each_step_once(tmp_path, make_run):
    """A run killed after logging past its checkpoint logs those steps again on resume: TensorBoard
    hides the first copies (purge_step), as metrics.jsonl drops its lines after the checkpoint."""
    pytest.importorskip("tensorboard", reason="the read-back needs tensorboard")
    run, folder = make_run(steps=8, log_every=2, checkpoint_every=4, tensorboard=True), tmp_path / "r"
    train_run(run, folder, max_steps=4, progress=False)
    at_4 = (folder / "checkpoint.pt").read_bytes()
    # TensorBoard reads a folder's event files in name order, and a name starts with the second it
    # was opened in (then host, pid, a counter): a resumed process starts seconds later.
    time.sleep(1.05)
    train_run(run, folder, progress=False)
    # As if killed after step 8 was logged but before status.json: back to the step-4 checkpoint.
    (folder / "checkpoint.pt").write_bytes(at_4)
    (folder / "status.json").unlink()
    time.sleep(1.05)
    train_run(run, folder, progress=False)
    assert len(list((folder / TENSORBOARD_DIR).glob("events.out.tfevents.*"))) == 3
    _assert_events_are_the_metrics(folder)
    assert [s for s, _ in _scalars(folder)["train/loss"]] == [2, 4, 6, 8]


def test_packed_runs_write_their_own_event_folders(tmp_path, member):
    pytest.importorskip("tensorboard", reason="the read-back needs tensorboard")
    runs = [member("00000000000a", steps=8, log_every=4, tensorboard=True),
            member("00000000000b", seed=1, lr=3e-3, steps=8, log_every=4, tensorboard=True)]
    folders = [tmp_path / r.id for r in runs]
    assert [s["state"] for s in train_pack(runs, folders, progress=False)] == ["done", "done"]
    for folder in folders:
        _assert_events_are_the_metrics(folder)
    losses = [_scalars(f)["train/loss"] for f in folders]
    assert losses[0] != losses[1]


def test_off_by_default_writes_no_tensorboard_folder(tmp_path, make_run):
    assert train_run(make_run(steps=4), tmp_path / "r", progress=False)["state"] == "done"
    assert not (tmp_path / "r" / TENSORBOARD_DIR).exists()


def test_without_the_package_training_stops_before_it_starts_with_one_line(tmp_path, make_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` raises ImportError
    with pytest.raises(TensorBoardMissing) as missing:
        train_run(make_run(steps=4, tensorboard=True), tmp_path / "r", progress=False)
    assert isinstance(missing.value, IclError)
    assert str(missing.value) == ("error: train.tensorboard = true (or $ICL_TENSORBOARD=1) needs the tensorboard "
                                  "package, which is not installed: pip install 'icl-compiler[tensorboard]'")
    folder = tmp_path / "r"
    assert not (folder / "metrics.jsonl").exists() and not (folder / TENSORBOARD_DIR).exists()
    # The environment variable asks for it as the spec does.
    monkeypatch.setenv(ENV, "1")
    with pytest.raises(TensorBoardMissing):
        train_run(make_run(steps=4), folder, progress=False)


def test_the_environment_variable_turns_it_on_and_off(tmp_path, make_run, monkeypatch):
    assert not tensorboard_wanted({"tensorboard": False}) and tensorboard_wanted({"tensorboard": True})
    assert not tensorboard_wanted({})  # a run table written before the setting existed
    monkeypatch.setenv(ENV, "1")
    assert tensorboard_wanted({"tensorboard": False})
    monkeypatch.setenv(ENV, "0")
    assert not tensorboard_wanted({"tensorboard": True})
    train_run(make_run(steps=4, tensorboard=True), tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / TENSORBOARD_DIR).exists()
    monkeypatch.setenv(ENV, "yes")
    with pytest.raises(RunError, match=r"\$ICL_TENSORBOARD must be 1 .* or 0 .*, got 'yes'"):
        tensorboard_wanted({})


def test_tensorboard_is_how_to_run_not_part_of_the_run_id(write_spec):
    plain = runs_of([write_spec("a.icl", SPEC)])
    logged = runs_of([write_spec("b.icl", SPEC.replace("seeds = [0, 1] }", "seeds = [0, 1] tensorboard = true }"))])
    assert [r.id for r in plain] == [r.id for r in logged] and len(plain) == 4
    assert {r.train["tensorboard"] for r in plain} == {False}
    assert {r.train["tensorboard"] for r in logged} == {True}


@pytest.mark.parametrize("value", ["1", "[true, false]", '"yes"'])
def test_tensorboard_takes_one_boolean(write_spec, value):
    spec = write_spec("a.icl", SPEC.replace("seeds = [0, 1] }", f"seeds = [0, 1] tensorboard = {value} }}"))
    with pytest.raises(IclError, match="tensorboard"):
        runs_of([spec])


def test_icl_train_without_the_package_prints_one_line(tmp_path, write_spec):
    """The command line: status 2, one `error:` line naming the install, no traceback."""
    spec = write_spec("one.icl", SPEC.replace("lr = [1e-3, 1e-4] seeds = [0, 1]", "steps = 2 lr = 1e-3 seeds = [0]")
                      .replace("steps = 10 ", ""))
    hide = ("import sys; sys.modules['torch.utils.tensorboard'] = None; "
            "from icl.cli import main; sys.exit(main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", hide, "train", str(spec), "--out", str(tmp_path / "r"),
                          "--no-progress", "--device", "cpu"],
                         capture_output=True, text=True, env={**os.environ, ENV: "1"})
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "error: train.tensorboard = true (or $ICL_TENSORBOARD=1) needs the tensorboard package, which is "
        "not installed: pip install 'icl-compiler[tensorboard]'"], out.stderr
    assert not (tmp_path / "r" / "metrics.jsonl").exists()
