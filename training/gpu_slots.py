"""Spread the jobs of one host over its GPUs: each process takes the least busy visible GPU.

Snakemake's local executor starts several jobs at once (`--resources gpu=N`) but hands out no
GPU ids, so a plain `cuda` would put them all on GPU 0. Each job instead claims a slot file
`<lock dir>/<GPU key>.<j>.lock` with an exclusive flock, held for the life of the process:
the OS drops flocks when a process ends, even under kill -9, so no lock is ever stale.
A job that sees one GPU (CUDA_VISIBLE_DEVICES, e.g. a SLURM job of one GPU) claims nothing;
one that sees several takes one of them the same way. "Least busy" is the least work claimed
by icl jobs (of this user, through the lock folder), not GPU load: each job writes its work
into its slot file, a training its steps still to go (rewritten at each log step), an
evaluation none (0). Counting jobs instead put the three longest trainings of a study on one
GPU and left the other idle (results/reduced/README.md, eighth session). Steps rather than
estimated times: under MPS the jobs of a GPU advance at about the same steps per second
whatever their size (docs/cluster.md). Equal work falls back to the fewest jobs.

The core (`claim_gpu`) needs no torch and no GPU; `cuda_device()` is the hook that
icl.training.device.resolve_device calls for a `cuda`/`auto` device without an index.
"""
from __future__ import annotations

import fcntl
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ENV = "ICL_GPU_LOCK_DIR"


@dataclass
class GpuClaim:
    """GPU `index` (into the keys given to claim_gpu), held while `file` is open.

    holders: the jobs on that GPU, this one included (0 when nothing could be locked);
    load: their claimed work when claimed, this job's `work` included."""
    index: int
    key: str
    holders: int
    load: float = 0.0
    work: float = 0.0
    file: IO | None = field(default=None, repr=False)

    def update(self, work: float) -> None:
        """Record the job's work now (a training's steps still to go) for later claims."""
        if self.file is None:
            return
        try:
            with open(Path(self.file.name).parent / "choose.lock", "a+") as choose:
                fcntl.flock(choose, fcntl.LOCK_EX)  # no survey reads the slot half-written
                _write_slot(self.file, work)
        except OSError:
            pass  # the lock folder went away: the claim stays as it was, training goes on
        self.load += work - self.work
        self.work = work

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing the last descriptor drops the flock
            self.file = None

    def __enter__(self) -> GpuClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def default_lock_dir() -> Path:
    """$ICL_GPU_LOCK_DIR, else a per-user folder in the system temp dir (shared by all jobs of the host)."""
    configured = os.environ.get(ENV, "").strip()
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"icl-gpu-locks-{os.getuid()}"


def claim_gpu(keys: list[str], lock_dir: Path, work: float = 0.0) -> GpuClaim:
    """Claim a slot on the key with the least claimed work (ties: fewest holders, then the lowest
    index), recording `work` (>= 0; a training's steps to go) in the slot for later claims.

    keys identify the visible GPUs the same way in every process (their UUIDs), whatever each
    process's CUDA_VISIBLE_DEVICES. An unusable lock_dir gives GPU 0 and a warning, never an error."""
    if not keys:
        raise ValueError("claim_gpu needs at least one GPU key")
    lock_dir = Path(lock_dir)
    names = [_file_name(k) for k in keys]
    try:
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Serialise the choice: processes started together would otherwise all count zero
        # holders everywhere and pick GPU 0.
        with open(lock_dir / "choose.lock", "a+") as choose:
            fcntl.flock(choose, fcntl.LOCK_EX)
            counts, loads, free = zip(*(_survey(lock_dir, name) for name in names))
            index = min(range(len(keys)), key=lambda i: (loads[i], counts[i], i))
            held = _take(lock_dir, names[index], free[index], work)
            # the choose lock is released when `choose` closes
        return GpuClaim(index, keys[index], counts[index] + 1, loads[index] + work, work, held)
    except OSError as error:
        print(f"icl: cannot use GPU lock folder {lock_dir} ({error.strerror or error}); "
              f"taking GPU 0 (set {ENV} to a writable folder)", file=sys.stderr)
        return GpuClaim(0, keys[0], 0, 0.0, work, None)


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(key)) or "_"


def _survey(lock_dir: Path, name: str) -> tuple[int, float, int]:
    """(slot files of `name` locked by others, the work they claim, lowest free slot number)."""
    slots = sorted(int(m.group(1)) for p in lock_dir.glob(f"{name}.*.lock")
                   if (m := re.fullmatch(re.escape(name) + r"\.(\d+)\.lock", p.name)))
    held, load, free = 0, 0.0, None
    for j in slots:
        with open(lock_dir / f"{name}.{j}.lock", "a+") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held += 1
                probe.seek(0)
                load += _claimed_work(probe.read())
                continue
            fcntl.flock(probe, fcntl.LOCK_UN)  # it was free: leave it so
        if free is None:
            free = j
    if free is None:  # all slots taken: the next number
        free = slots[-1] + 1 if slots else 0
    return held, load, free


def _claimed_work(text: str) -> float:
    """The work in a slot file ("<pid> <work>"); 0 where it says none (a job of an older icl)."""
    fields = text.split()
    try:
        return max(0.0, float(fields[1]))
    except (IndexError, ValueError):
        return 0.0


def _take(lock_dir: Path, name: str, slot: int, work: float) -> IO:
    """Lock slot `slot` (or the next free one) and keep the file open: the flock lives as long."""
    while True:
        handle = open(lock_dir / f"{name}.{slot}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # only a process that skipped choose.lock could get here
            handle.close()
            slot += 1
            continue
        _write_slot(handle, work)
        return handle


def _write_slot(handle: IO, work: float) -> None:
    """Who holds the slot and its work (read by later claims; also for a curious `cat`)."""
    handle.seek(0)
    handle.truncate(0)
    handle.write(f"{os.getpid()} {work:.0f}\n")
    handle.flush()


# -- the hook: torch from here on ----------------------------------------------------------

# The process's claim: kept referenced for the life of the process (its flock with it), and
# made at most once, so a process training several runs or a pack stays on one GPU.
_claim: GpuClaim | None = None


def cuda_device(work: float = 0.0):
    """torch.device of this process's GPU: cuda:<least busy> when several GPUs are visible
    (and made the current device), plain `cuda` with one. `work` is claimed with the GPU
    (see claim_gpu); only the first call of a process claims."""
    import torch

    global _claim
    if _claim is None:
        count = torch.cuda.device_count()
        if count < 2:
            return torch.device("cuda")
        keys = [_gpu_key(torch, i) for i in range(count)]
        _claim = claim_gpu(keys, default_lock_dir(), work)
        if _claim.file is not None:
            name = torch.cuda.get_device_name(_claim.index)
            jobs = "1 job" if _claim.holders == 1 else f"{_claim.holders} jobs"
            load = f", {_claim.load:,.0f} training steps to go on it" if _claim.load else ""
            print(f"icl: GPU {_claim.index} of {count} ({name}), {jobs} on it{load}", file=sys.stderr)
    # The current device too: CUDA graphs, streams, Triton launches, synchronize() and memory
    # stats without a device argument all use it, and it must be set before any CUDA work.
    torch.cuda.set_device(_claim.index)
    return torch.device("cuda", _claim.index)


def update_work(work: float) -> None:
    """This process's work now (a training's steps still to go): later jobs of the host weigh
    its GPU by what is left, not by what was left when it started. Nothing without a claim."""
    if _claim is not None:
        _claim.update(max(0.0, work))


def _gpu_key(torch, index: int) -> str:
    """The GPU's UUID (the same in every process, whatever its CUDA_VISIBLE_DEVICES)."""
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return str(uuid) if uuid else f"index-{index}"
