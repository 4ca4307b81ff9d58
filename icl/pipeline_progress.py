"""The pipeline's one progress line: what a `snakemake --cores all` in a terminal shows instead of
Snakemake's job log (config `progress`: auto, the default, draws it on a terminal and keeps the
log when the output goes to a file; line always draws it; log never).

    [icl] 23/69 jobs · runs trained 20/54, evaluated 10/54 · 1m12s, about 2m05s left

The Snakefile puts a ProgressLine in place of Snakemake's console handler (install()). It reads
Snakemake's log events: a job's outputs (its JOB_INFO) say which runs it trains or evaluates,
JOB_FINISHED counts them, PROGRESS gives jobs done / total. Warnings and errors (a failed
job, with its log file) pass through to Snakemake's own handler, on a line of their own; so
does "Nothing to be done". On a terminal the line is redrawn in place; in a log file (no
terminal) it is written as a new line at most every 30 s or 10 % of the jobs.
"""
from __future__ import annotations

import logging
import re
import sys
import threading
import time

# A job's output paths that say a run was trained / evaluated (runs/<id>/status.json,
# runs/<id>/eval-<eval id>.json).
TRAINED = re.compile(r"(^|/)(?P<run>[^/]+)/status\.json$")
EVALUATED = re.compile(r"(^|/)(?P<run>[^/]+)/eval-[^/]+\.json$")
PASSED_THROUGH = ("Nothing to be done", "Complete log")
QUIET_EVERY_S = 30.0


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLine(logging.Handler):
    """A logging handler drawing one line of progress; `inner`: the handler the messages that
    pass through go to (Snakemake's console handler)."""

    def __init__(self, inner: logging.Handler, runs: int, trained: set[str], evaluated: set[str],
                 stream=None, now=time.monotonic):
        super().__init__()
        self.inner = inner
        self.stream = stream if stream is not None else getattr(inner, "stream", sys.stderr)
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        # run ids with a training / an evaluation: those found at the start, then each job's
        self.runs, self.trained, self.evaluated = runs, set(trained), set(evaluated)
        self.now = now
        self.started = now()
        self.done = self.total = 0
        self.outputs: dict[int, list[str]] = {}  # job id -> its outputs, until it finishes
        self.drawn = False          # a line is on the terminal, not ended
        self.last_written = None    # (time, tenth of the jobs) of the last line in a log
        self.lock = threading.RLock()

    # -- what the line says ----------------------------------------------------------------
    def line(self) -> str:
        parts = [f"[icl] {self.done}/{self.total} jobs",
                 f"runs trained {len(self.trained)}/{self.runs}, evaluated {len(self.evaluated)}/{self.runs}"]
        elapsed = self.now() - self.started
        timing = clock(elapsed)
        if 0 < self.done < self.total:  # jobs differ in length: a rough guess
            timing += f", about {clock(elapsed / self.done * (self.total - self.done))} left"
        parts.append(timing)
        return " · ".join(parts)

    # -- logging.Handler ---------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        event = str(getattr(record, "event", "") or "")
        with self.lock:
            if event == "job_info":
                self.outputs[record.jobid] = [str(path) for path in (record.output or [])]
            elif event == "job_finished":
                for path in self.outputs.pop(record.job_id, []):
                    for pattern, runs in ((TRAINED, self.trained), (EVALUATED, self.evaluated)):
                        found = pattern.search(path)
                        if found:
                            runs.add(found.group("run"))
            elif event == "progress":
                self.done, self.total = int(record.done), int(record.total)
                self.draw()
            elif record.levelno >= logging.WARNING or event in ("job_error", "group_error", "error") \
                    or any(text in str(record.msg) for text in PASSED_THROUGH):
                self.end_line()
                self.inner.handle(record)

    def draw(self) -> None:
        text = self.line()
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
            self.drawn = True
        else:
            mark = (self.now(), 10 * self.done // max(self.total, 1))
            if self.last_written is None or mark[1] > self.last_written[1] \
                    or mark[0] - self.last_written[0] >= QUIET_EVERY_S:
                self.stream.write(text + "\n")
                self.last_written = mark
        self.stream.flush()

    def end_line(self) -> None:
        """Move off a drawn line, so what follows starts on a line of its own."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

    def finish(self, message: str | None = None) -> None:
        """The workflow ended: `message` under the last line drawn."""
        with self.lock:
            self.end_line()
            if message:
                self.stream.write(message + "\n")
                self.stream.flush()


def install(logger: logging.Logger, setting: str, runs: int, trained: set[str],
            evaluated: set[str]) -> ProgressLine | None:
    """Put a ProgressLine in place of Snakemake's console handler, for the config's `progress`
    setting (line; auto: when that handler writes to a terminal); None (nothing changed) for
    log, or when there is no such handler (a logger plugin writes to the console instead)."""
    consoles = [h for h in logger.handlers if type(h).__name__ == "ColorizingTextHandler"]
    if setting == "log" or len(consoles) != 1:
        return None
    (console,) = consoles
    if setting == "auto" and not getattr(console, "is_tty", False):
        return None
    progress = ProgressLine(console, runs, trained, evaluated)
    logger.removeHandler(console)
    logger.addHandler(progress)
    return progress
