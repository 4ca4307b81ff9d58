"""Atomic file writes: a reader (or a run killed mid-write) sees the old file or the new, never half.

Each write goes to a temporary file in the same folder (same file system, so the
rename is atomic), is flushed and fsync'ed, then `os.replace`d over the target; the
folder is fsync'ed too so the rename itself survives a crash.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

from icl.errors import IclError


# Every temporary is named .<target name>.<random>.icl.tmp: the only names
# remove_stale_temporaries deletes, so a user's own .tmp files are never touched.
TMP_SUFFIX = ".icl.tmp"


def write_bytes(path: Path, data: bytes) -> None:
    """Replace the regular file `path` (or create it) by `data`, atomically. A symlink, device,
    FIFO or folder at `path` is refused: renaming over it would replace the link or node."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        kind = "a symbolic link" if path.is_symlink() else "not a regular file"
        raise IclError(f"{path} is {kind}: not replaced", "name a regular file (or a new one) to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp makes 0600 files; results are shared, so honour the umask like open() does.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_json(path: Path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n").encode())


def torch_save(path: Path, obj) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporaries of write_bytes left by a process killed in the middle of a write
    (only names it makes: .<name>.<random>.icl.tmp)."""
    for tmp in Path(folder).glob(f".*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
