"""GPU slots (icl.training.gpu_slots) on CPU: fake GPU keys, real flocks, real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from icl.training import gpu_slots
from icl.training.gpu_slots import claim_gpu
from icl.training.train import resolve_device

KEYS = ["GPU-aaaa", "GPU-bbbb"]

# A job that claims a slot when told to ("go" on stdin), says which, and holds it until its
# stdin closes (or it is killed).
# The survey is slowed down (as on a busy host) so that choices made without the choose lock
# would overlap and pile onto GPU 0.
HOLDER = """
import sys, time
from pathlib import Path
from icl.training import gpu_slots
from icl.training.gpu_slots import claim_gpu
survey = gpu_slots._survey
gpu_slots._survey = lambda *a: (survey(*a), time.sleep(0.05))[0]
print("ready", flush=True)
sys.stdin.readline()
claim = claim_gpu(sys.argv[2].split(","), Path(sys.argv[1]), float(sys.argv[3]))
print(claim.index, flush=True)
sys.stdin.read()
"""


def start_holders(lock_dir: Path, n: int, keys=KEYS, work: float = 0.0) -> list[subprocess.Popen]:
    """n holders, started, then told to claim all at once (as Snakemake starts its jobs)."""
    children = [subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_dir), ",".join(keys), str(work)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    for child in children:
        assert child.stdout.readline() == "ready\n"
    for child in children:
        child.stdin.write("go\n")
    for child in children:
        child.stdin.flush()
    return children


def read_index(child: subprocess.Popen) -> int:
    line = child.stdout.readline()
    assert line.strip(), f"holder exited with {child.wait()} before claiming"
    return int(line)


def stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            stream.close()


def test_claims_spread_evenly(tmp_path):
    claims = [claim_gpu(KEYS, tmp_path) for _ in range(4)]
    assert [c.index for c in claims] == [0, 1, 0, 1]
    assert [c.holders for c in claims] == [1, 1, 2, 2]
    assert sorted(p.name for p in tmp_path.glob("GPU-*.lock")) == [
        "GPU-aaaa.0.lock", "GPU-aaaa.1.lock", "GPU-bbbb.0.lock", "GPU-bbbb.1.lock"]
    for claim in claims:
        claim.release()


def test_ties_go_to_the_lowest_index_and_three_gpus_fill_in_turn(tmp_path):
    keys = ["x", "y", "z"]
    claims = [claim_gpu(keys, tmp_path) for _ in range(5)]
    assert [c.index for c in claims] == [0, 1, 2, 0, 1]


def test_a_released_claim_frees_its_slot(tmp_path):
    first, second, third = (claim_gpu(KEYS, tmp_path) for _ in range(3))
    assert (first.index, second.index, third.index) == (0, 1, 0)
    second.release()
    again = claim_gpu(KEYS, tmp_path)
    assert again.index == 1 and again.holders == 1
    with claim_gpu(KEYS, tmp_path) as extra:  # GPU 0 has 2 holders, GPU 1 one
        assert extra.index == 1 and extra.holders == 2
    assert Path(first.file.name).name == "GPU-aaaa.0.lock" and Path(third.file.name).name == "GPU-aaaa.1.lock"
    first.release()
    # GPU 0 lost `first`; its lowest free slot (0) is taken again, not a new file.
    reused = claim_gpu(KEYS, tmp_path)
    assert reused.index == 0 and reused.holders == 2
    assert sorted(p.name for p in tmp_path.glob("GPU-aaaa.*.lock")) == ["GPU-aaaa.0.lock", "GPU-aaaa.1.lock"]
    third.release(), reused.release()
    lowest = claim_gpu(["GPU-aaaa"], tmp_path)  # slots 0 and 1 both free: 0
    assert Path(lowest.file.name).name == "GPU-aaaa.0.lock" and lowest.holders == 1


def test_another_process_counts_until_it_is_killed(tmp_path):
    child, = start_holders(tmp_path, 1)
    try:
        assert read_index(child) == 0
        mine = claim_gpu(KEYS, tmp_path)
        assert mine.index == 1  # GPU 0 is the child's
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        # The OS dropped the dead child's flock: GPU 0 is free again, and its slot 0 too.
        after = claim_gpu(KEYS, tmp_path)
        assert after.index == 0 and after.holders == 1
        assert sorted(p.name for p in tmp_path.glob("GPU-aaaa.*.lock")) == ["GPU-aaaa.0.lock"]
    finally:
        stop([child])


def test_simultaneous_starts_are_balanced(tmp_path):
    children = start_holders(tmp_path, 6)
    try:
        indices = sorted(read_index(c) for c in children)  # all six hold their claims now
        assert indices == [0, 0, 0, 1, 1, 1]
    finally:
        stop(children)


def test_claims_go_to_the_gpu_with_the_least_work(tmp_path):
    long = claim_gpu(KEYS, tmp_path, work=50_000)
    assert (long.index, long.load) == (0, 50_000)
    short = [claim_gpu(KEYS, tmp_path, work=w) for w in (10_000, 20_000, 15_000)]
    # GPU 1 takes jobs while its work stays under GPU 0's 50,000: 10k, 30k, then 45k.
    assert [(c.index, c.holders, c.load) for c in short] == [(1, 1, 10_000), (1, 2, 30_000), (1, 3, 45_000)]
    assert (tmp_path / "GPU-bbbb.2.lock").read_text() == f"{os.getpid()} 15000\n"
    after = claim_gpu(KEYS, tmp_path, work=10_000)  # 45k < 50k: GPU 1 again, now 55k
    assert (after.index, after.load) == (1, 55_000)
    long.release()  # its work goes with it
    assert claim_gpu(KEYS, tmp_path, work=1).index == 0


def test_the_eighth_sessions_jobs_are_balanced_by_steps(tmp_path):
    """The eighth session's six trainings, in the order they claimed (their first log lines),
    with their steps to go. Counting jobs, GPU 1 got the S4 pair, Mamba and MambaFormer
    (150,000 steps, 34.5 lone H100 minutes) and GPU 0 the rest (81,800 steps, 15.2 minutes);
    weighed by steps, no GPU gets all three long ones."""
    jobs = {"probe": 20_000, "s4 pair": 50_000, "hybrid": 50_000, "mamba": 50_000,
            "mqar s4-mamba rest": 11_800, "mambaformer": 50_000}
    by_count = [claim_gpu(KEYS, tmp_path / "count") for _ in jobs]  # held: kept referenced
    assert [c.index for c in by_count] == [0, 1, 0, 1, 0, 1]  # what happened
    placed = {name: claim_gpu(KEYS, tmp_path / "steps", work=w) for name, w in jobs.items()}
    assert {n for n, c in placed.items() if c.index == 1} == {"s4 pair", "mamba"}
    assert [sum(jobs[n] for n, c in placed.items() if c.index == g) for g in (0, 1)] == [131_800, 100_000]


def test_equal_work_falls_back_to_fewest_jobs(tmp_path):
    trainings = [claim_gpu(KEYS, tmp_path, work=w) for w in (100, 100)]
    evaluations = [claim_gpu(KEYS, tmp_path) for _ in range(3)]  # work 0: loads stay equal
    assert [c.index for c in trainings + evaluations] == [0, 1, 0, 1, 0]


def test_a_slot_without_work_counts_as_a_job_of_no_work(tmp_path):
    """A slot file of an older icl holds only the pid: one more job, no work."""
    old = claim_gpu(KEYS, tmp_path)
    old.file.truncate(0), old.file.write("12345\n"), old.file.flush()
    assert gpu_slots._claimed_work("12345\n") == 0 and gpu_slots._claimed_work("1 nan?") == 0
    nxt = claim_gpu(KEYS, tmp_path, work=5)
    assert (nxt.index, nxt.load) == (1, 5)
    third = claim_gpu(KEYS, tmp_path, work=5)  # GPU 0: 0 work, GPU 1: 5
    assert (third.index, third.holders, third.load) == (0, 2, 5)


def test_another_processes_work_counts(tmp_path):
    child, = start_holders(tmp_path, 1, work=40_000)
    try:
        assert read_index(child) == 0
        mine = [claim_gpu(KEYS, tmp_path, work=w) for w in (30_000, 15_000, 1)]
        assert [(c.index, c.load) for c in mine] == [(1, 30_000), (1, 45_000), (0, 40_001)]
    finally:
        stop([child])


def test_a_job_updates_its_work_as_it_trains(tmp_path):
    first = claim_gpu(KEYS, tmp_path, work=50_000)
    second = claim_gpu(KEYS, tmp_path, work=40_000)
    assert (first.index, second.index) == (0, 1)
    assert claim_gpu(KEYS, tmp_path).index == 1  # 40k left on GPU 1, 50k on GPU 0
    first.update(10_000)  # GPU 0's job is nearly done now
    assert (tmp_path / "GPU-aaaa.0.lock").read_text() == f"{os.getpid()} 10000\n"
    assert (first.work, first.load) == (10_000, 10_000)
    later = claim_gpu(KEYS, tmp_path, work=30_000)
    assert (later.index, later.load) == (0, 40_000)


def test_update_work_without_a_claim_does_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_slots, "_claim", None)
    gpu_slots.update_work(5)  # a CPU run or a single visible GPU: nothing claimed
    monkeypatch.setattr(gpu_slots, "_claim", claim_gpu(KEYS, tmp_path, work=9))
    gpu_slots.update_work(-3)  # clamped: work is never negative
    assert (tmp_path / "GPU-aaaa.0.lock").read_text() == f"{os.getpid()} 0\n"
    gpu_slots._claim.release()


def test_an_unusable_lock_folder_gives_gpu_0_and_a_warning(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    claim = claim_gpu(KEYS, blocker / "locks")  # cannot be created, even as root
    assert (claim.index, claim.file) == (0, None)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot use GPU lock folder" in err and "GPU 0" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_lock_folder_gives_gpu_0(tmp_path, capsys):
    tmp_path.chmod(0o500)
    try:
        assert claim_gpu(KEYS, tmp_path).index == 0
    finally:
        tmp_path.chmod(0o700)
    assert "cannot use GPU lock folder" in capsys.readouterr().err


def test_lock_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(gpu_slots.ENV, str(tmp_path / "mine"))
    assert gpu_slots.default_lock_dir() == tmp_path / "mine"
    monkeypatch.delenv(gpu_slots.ENV)
    assert gpu_slots.default_lock_dir().name == f"icl-gpu-locks-{os.getuid()}"


# -- the hook in resolve_device -----------------------------------------------------------

@pytest.fixture
def fake_gpus(monkeypatch, tmp_path):
    """torch.cuda pretending to have `n` GPUs; returns (set n, set_device calls, lock dir)."""
    state = SimpleNamespace(count=2, set_device=[])
    monkeypatch.setattr(gpu_slots, "_claim", None)
    monkeypatch.setenv(gpu_slots.ENV, str(tmp_path / "locks"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: state.count)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: SimpleNamespace(uuid=f"uuid-{i}", name="Fake GPU"))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "set_device", state.set_device.append)
    yield state
    if gpu_slots._claim is not None:
        gpu_slots._claim.release()


def test_resolve_device_claims_the_least_busy_gpu(fake_gpus, tmp_path, capsys):
    busy = claim_gpu(["uuid-0", "uuid-1"], tmp_path / "locks")  # another job on GPU 0
    device = resolve_device("cuda")
    assert device == torch.device("cuda", 1) and fake_gpus.set_device == [1]
    assert capsys.readouterr().err == "icl: GPU 1 of 2 (Fake GPU), 1 job on it\n"
    # Once per process: a second run (or eval) in the same process stays on its GPU.
    assert resolve_device("auto") == torch.device("cuda", 1) and fake_gpus.set_device == [1, 1]
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in (tmp_path / "locks").glob("uuid-*.lock")) == ["uuid-0.0.lock", "uuid-1.0.lock"]
    busy.release()


def test_resolve_device_claims_the_gpu_with_the_least_training_left(fake_gpus, tmp_path, capsys):
    busy = claim_gpu(["uuid-0", "uuid-1"], tmp_path / "locks", work=50_000)
    other = claim_gpu(["uuid-0", "uuid-1"], tmp_path / "locks", work=60_000)
    assert (busy.index, other.index) == (0, 1)
    assert resolve_device("cuda", work=20_000) == torch.device("cuda", 0)
    assert capsys.readouterr().err == "icl: GPU 0 of 2 (Fake GPU), 2 jobs on it, 70,000 training steps to go on it\n"
    busy.release(), other.release()


def test_resolve_device_auto_claims_too(fake_gpus, capsys):
    assert resolve_device(None) == torch.device("cuda", 0) and fake_gpus.set_device == [0]
    assert "GPU 0 of 2" in capsys.readouterr().err


def test_one_gpu_or_an_explicit_index_claims_nothing(fake_gpus, tmp_path, capsys):
    fake_gpus.count = 1
    assert resolve_device("cuda") == torch.device("cuda")
    fake_gpus.count = 2
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    assert fake_gpus.set_device == [] and gpu_slots._claim is None
    assert not (tmp_path / "locks").exists() and capsys.readouterr().err == ""


def test_an_unusable_lock_folder_in_the_hook_falls_back_to_gpu_0(fake_gpus, monkeypatch, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(gpu_slots.ENV, str(tmp_path / "file" / "locks"))
    assert resolve_device("cuda") == torch.device("cuda", 0) and fake_gpus.set_device == [0]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "taking GPU 0" in err
