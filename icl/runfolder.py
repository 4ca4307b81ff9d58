"""A run's folder: its file names, typed records, atomic writes, validating reads, lock and state.

    runs_dir/<run id>/
        status.json          StatusRecord, written last by training (atomic)
        metrics.jsonl        one JSON object per logged step (appended; a last line cut by a kill
                             is ignored, any other bad line is an error)
        checkpoint.pt        training state for an exact resume (atomic)
        model.pt             the final weights (atomic)
        eval-<eval id>.json  EvalRecord, written by evaluation (atomic)
        .lock                held (flock) while a process trains or evaluates the run
        tensorboard/         TensorBoard event files of the metrics, only when asked for
                             (train.tensorboard, $ICL_TENSORBOARD; icl/training/sinks.py)

Every reader here validates what it reads: a missing file is None (or []), a file that is
empty, cut short, not JSON / not a torch file, of the wrong type or missing a field raises
`RunFolderError`, one line naming the file and what is wrong; never a traceback.

`run_state(...)` is the one place that says where a run stands (not started, in progress,
trained, diverged, evaluated); `icl status` and the report both call it.

A leaf: imports nothing of the project but icl.errors and icl.atomic (torch only lazily,
for the .pt files).
"""
from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import pickle
import socket
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from icl import atomic
from icl.errors import IclError

STATUS = "status.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
LOCK = ".lock"
# The pipeline's lock on a whole runs folder (workflow/rules/common.smk).
PIPELINE_LOCK = ".pipeline.lock"

TRAIN_STATES = ("done", "diverged")
# A run's state, in the order `icl status` and the report count them.
STATES = ("evaluated", "trained", "diverged", "in progress", "not started")


class RunFolderError(IclError):
    """A file of a run folder is unreadable or malformed, or the folder is in use."""


class RunFolderLocked(RunFolderError):
    """Another process holds the run's (or runs folder's) lock."""


def eval_name(eval_id: str | None) -> str:
    return f"eval-{eval_id}.json"


# -- typed records ---------------------------------------------------------------------

@dataclass(frozen=True)
class StatusRecord:
    """status.json: how a training ended. `data` is the whole record as written (the report
    shows its device, versions, timings)."""
    state: str                 # "done" | "diverged"
    step: int                  # the last step trained, or the first bad step of a diverged run
    run_id: str | None
    steps_done: int | None
    steps_planned: int | None
    capped: bool
    final_loss: float | None
    message: str
    data: dict = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data, where: str) -> "StatusRecord":
        obj = _object(data, where)
        state = obj.get("state")
        if state not in TRAIN_STATES:
            raise RunFolderError(f"{where}: 'state' is {state!r}; expected one of {', '.join(TRAIN_STATES)}")
        return cls(state=state, step=_int(obj, "step", where, required=True),
                   run_id=_str(obj, "run_id", where), steps_done=_int(obj, "steps_done", where),
                   steps_planned=_int(obj, "steps_planned", where),
                   capped=_bool(obj, "capped", where), final_loss=_number(obj, "final_loss", where),
                   message=_str(obj, "message", where) or "", data=obj)


@dataclass(frozen=True)
class EvalRecord:
    """eval-<eval id>.json: a finished evaluation ("done") or a diverged run's placeholder."""
    state: str                 # "done" | "diverged"
    run_id: str
    eval_id: str | None
    trained_steps: int | None
    # The runs of the `icl eval` call that wrote it, in order (the pipeline's evaluation batch:
    # workflow/rules/common.smk keeps its record); a file without the key: the run alone.
    evaluated_with: tuple[str, ...]
    data: dict = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data, where: str) -> "EvalRecord":
        obj = _object(data, where)
        state = obj.get("state")
        if state not in TRAIN_STATES:
            raise RunFolderError(f"{where}: 'state' is {state!r}; expected one of {', '.join(TRAIN_STATES)}")
        run_id = _str(obj, "run_id", where)
        if run_id is None:
            raise RunFolderError(f"{where}: no 'run_id'")
        if state == "done":
            for key in ("model", "summary", "baselines", "variants"):
                if not isinstance(obj.get(key), dict):
                    raise RunFolderError(f"{where}: '{key}' is {_kind(obj.get(key))}; expected an object")
            if not isinstance(obj.get("positions"), list):
                raise RunFolderError(f"{where}: 'positions' is {_kind(obj.get('positions'))}; expected a list")
            if not isinstance(obj["model"].get("mean"), list):
                raise RunFolderError(f"{where}: 'model.mean' is {_kind(obj['model'].get('mean'))}; "
                                     "expected a list")
        mates = obj.get("evaluated_with", [run_id])
        if not (isinstance(mates, list) and mates and all(isinstance(m, str) for m in mates)):
            raise RunFolderError(f"{where}: 'evaluated_with' is {_kind(mates)}; expected a list of run ids")
        return cls(state=state, run_id=run_id, eval_id=_str(obj, "eval_id", where),
                   trained_steps=_int(obj, "trained_steps", where), evaluated_with=tuple(mates), data=obj)


# -- reads -----------------------------------------------------------------------------

def read_status(folder: Path, run_id: str | None = None) -> StatusRecord | None:
    """The folder's status.json, or None if there is none. `run_id`: the run the folder is
    for; a status of another run is an error (never read as this run's)."""
    path = Path(folder) / STATUS
    data = _read_json(path)
    if data is None:
        return None
    record = StatusRecord.from_dict(data, str(path))
    if run_id is not None and record.run_id is not None and record.run_id != run_id:
        raise RunFolderError(f"{path}: belongs to run {record.run_id}, not {run_id}")
    return record


def read_eval(path: Path, run_id: str | None = None, eval_id: str | None = None) -> EvalRecord | None:
    """An evaluation file, or None if there is none; one of another run or eval id is an error."""
    path = Path(path)
    data = _read_json(path)
    if data is None:
        return None
    record = EvalRecord.from_dict(data, str(path))
    if run_id is not None and record.run_id != run_id:
        raise RunFolderError(f"{path}: belongs to run {record.run_id}, not {run_id}")
    if eval_id is not None and record.eval_id is not None and record.eval_id != eval_id:
        raise RunFolderError(f"{path}: holds evaluation {record.eval_id}, not {eval_id}")
    return record


def read_metrics(folder: Path) -> list[dict]:
    """metrics.jsonl's entries, each an object with an integer 'step' ([] if there is none).

    Training appends a line at a time, so a kill can cut the last line: a last line without
    its newline that does not parse is left out. Any other bad line is an error."""
    path = Path(folder) / METRICS
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as error:
        raise RunFolderError(f"{path}: not UTF-8 text (byte {error.start}); delete the file") from None
    lines = text.split("\n")
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cut = number == len(lines)  # no newline after it: possibly cut by a kill
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            if cut:
                continue
            raise RunFolderError(f"{path}:{number}: not valid JSON ({error.msg}); delete the line "
                                 "or the file") from None
        if not isinstance(entry, dict) or not _is_int(entry.get("step")):
            raise RunFolderError(f"{path}:{number}: expected an object with an integer 'step', "
                                 f"found {_kind(entry)}")
        entries.append(entry)
    return entries


def metrics_mtime(folder: Path) -> float | None:
    try:
        return (Path(folder) / METRICS).stat().st_mtime
    except FileNotFoundError:
        return None


def load_torch(path: Path, run_id: str | None, keys: tuple[str, ...], map_location="cpu") -> dict | None:
    """A checkpoint.pt or model.pt as a dict holding `keys` (None if the file is not there).
    A file that torch cannot read, or of another run, is a one-line error naming it."""
    import torch

    path = Path(path)
    if not path.exists():
        return None
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    # What torch.load raises for an empty (EOFError), cut (RuntimeError: no zip directory),
    # garbage (KeyError, UnpicklingError) or unreadable (OSError) file.
    except (RuntimeError, EOFError, KeyError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
            OSError) as error:
        detail = "empty" if path.stat().st_size == 0 else f"{type(error).__name__}"
        raise RunFolderError(f"{path}: not a readable torch file ({detail}); delete it "
                             "(training redoes it)") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: holds {_kind(data)}; expected a dict; delete it")
    missing = [k for k in keys if k not in data]
    if missing:
        raise RunFolderError(f"{path}: has no {', '.join(missing)}; delete it")
    if run_id is not None and data.get("run_id") != run_id:
        raise RunFolderError(f"{path}: belongs to run {data.get('run_id')}, not {run_id}; "
                             "use another folder")
    return data


CHECKPOINT_KEYS = ("run_id", "step", "window", "wall_s", "model", "optimizer", "rng")
MODEL_KEYS = ("run_id", "step", "model")


def load_checkpoint(folder: Path, run_id: str | None) -> dict | None:
    return load_torch(Path(folder) / CHECKPOINT, run_id, CHECKPOINT_KEYS)


def load_model(folder: Path, run_id: str | None) -> dict | None:
    return load_torch(Path(folder) / MODEL, run_id, MODEL_KEYS)


# -- writes (atomic) -------------------------------------------------------------------

def write_status(folder: Path, status: dict) -> StatusRecord:
    record = StatusRecord.from_dict(status, str(Path(folder) / STATUS))  # never write what we cannot read
    atomic.write_json(Path(folder) / STATUS, status)
    return record


def write_eval(path: Path, evaluation: dict) -> EvalRecord:
    record = EvalRecord.from_dict(evaluation, str(path))
    atomic.write_json(Path(path), evaluation)
    return record


def write_metrics(folder: Path, entries: list[dict]) -> None:
    atomic.write_bytes(Path(folder) / METRICS, "".join(json.dumps(e) + "\n" for e in entries).encode())


def save_torch(path: Path, obj: dict) -> None:
    atomic.torch_save(Path(path), obj)


# -- the state of a run ----------------------------------------------------------------

@dataclass(frozen=True)
class RunState:
    """Where a run stands. step: the last step trained (or logged, for a run in progress)."""
    state: str
    step: int
    status: StatusRecord | None = None
    evaluation: EvalRecord | None = None
    recent: tuple = ()              # the last logged metrics entries (a run in progress)
    logged_at: float | None = None  # when metrics.jsonl last changed (a run in progress)


def derive_state(status: StatusRecord | None, evaluation: EvalRecord | None, logged_step: int = 0) -> tuple[str, int]:
    """(state, step) from a run's records: the one rule `icl status` and the report share.

    diverged beats evaluated (a diverged run's evaluation is a placeholder without numbers);
    an evaluation says the training finished even where status.json is gone."""
    if (status is not None and status.state == "diverged") or (evaluation is not None and evaluation.state == "diverged"):
        step = status.step if status is not None and status.state == "diverged" else None
        if step is None:
            step = evaluation.data.get("step") if _is_int(evaluation.data.get("step")) else 0
        return "diverged", step
    if evaluation is not None:
        step = status.step if status is not None else evaluation.trained_steps
        return "evaluated", step or 0
    if status is not None:
        return "trained", status.step
    return ("in progress", logged_step) if logged_step else ("not started", 0)


def run_state(runs_dir: Path, run_id: str, eval_id: str | None, recent: int = 1) -> RunState:
    """The state of run `run_id` from its folder under `runs_dir` (validating every file read)."""
    folder = Path(runs_dir) / run_id
    status = read_status(folder, run_id)
    evaluation = read_eval(folder / eval_name(eval_id), run_id, eval_id)
    entries: list[dict] = []
    if status is None and evaluation is None:
        entries = read_metrics(folder)[-recent:]
    logged = int(entries[-1]["step"]) if entries else 0
    state, step = derive_state(status, evaluation, logged)
    return RunState(state, step, status, evaluation, tuple(entries),
                    metrics_mtime(folder) if entries else None)


def require_runs_dir(runs_dir: Path) -> Path:
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RunFolderError(f"runs folder {runs_dir} does not exist (give --runs-dir, the folder "
                             "holding one folder per run id)")
    return runs_dir


# -- locks -----------------------------------------------------------------------------

class Lock:
    """An exclusive lock on a lock file, across processes and hosts that share the file system.

    flock(LOCK_EX | LOCK_NB) on `path` (Linux maps flock on NFS to POSIX byte-range locks, seen
    by every client). The OS drops the lock when its process ends, even under kill -9, so a
    lock file left by a dead process is simply taken over. The file records the holder (what it
    does, host, pid, since) for the message of a process that finds it held; it is deleted on
    release. `subject`: what is locked ("run X"); `doing`: what the holder does ("training").
    """

    def __init__(self, path: Path, subject: str, doing: str):
        self.path, self.subject, self.doing, self._fd = Path(path), subject, doing, None

    def acquire(self) -> "Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.EAGAIN, errno.EACCES):
                    raise RunFolderLocked(f"{self.path}: {self.subject} is in use by {self._holder()}; "
                                          "wait for it to finish") from None
                raise RunFolderError(f"{self.path}: cannot lock ({os.strerror(error.errno)}); the "
                                     "file system must support flock") from None
            # The holder we waited for may have deleted the file on release: lock the file that
            # is at the path now, not an unlinked one.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "doing": self.doing}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still held: no one locks a file being deleted
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "Lock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
            return f"{info.get('doing', 'a process')} on {info['host']} pid {info['pid']} since {since}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"


def run_lock(folder: Path, run_id: str, doing: str) -> Lock:
    """The lock a process holds while it writes into a run's folder (training or evaluating)."""
    return Lock(Path(folder) / LOCK, f"run {run_id}", doing)


def pipeline_lock(runs_dir: Path) -> Lock:
    """The lock a pipeline holds on its whole runs folder while its jobs run."""
    return Lock(Path(runs_dir) / PIPELINE_LOCK, f"runs folder {runs_dir}", "a pipeline")


# -- helpers ---------------------------------------------------------------------------

def _read_json(path: Path):
    """The parsed JSON of `path`, None if absent; an error naming the file if it is not JSON."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise RunFolderError(f"{path}: is a folder, not a file") from None
    if not raw.strip():
        raise RunFolderError(f"{path}: empty file; delete it and re-run the step that writes it")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise RunFolderError(f"{path}: not UTF-8 text (byte {error.start}); delete it and re-run "
                             "the step that writes it") from None
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path}:{error.lineno}:{error.colno}: not valid JSON ({error.msg}); "
                             "delete it and re-run the step that writes it") from None


def _object(data, where: str) -> dict:
    if not isinstance(data, dict):
        raise RunFolderError(f"{where}: holds {_kind(data)}; expected a JSON object")
    return data


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(obj: dict, key: str, where: str, required: bool = False) -> int | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not _is_int(value) or value < 0:
        raise RunFolderError(f"{where}: '{key}' is {_kind(value) if not _is_int(value) else value}; "
                             "expected a whole number >= 0")
    return value


def _str(obj: dict, key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise RunFolderError(f"{where}: '{key}' is {_kind(value)}; expected a string")
    return value


def _bool(obj: dict, key: str, where: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise RunFolderError(f"{where}: '{key}' is {_kind(value)}; expected true or false")
    return value


def _number(obj: dict, key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RunFolderError(f"{where}: '{key}' is {_kind(value)}; expected a finite number or null")
    return float(value)
