"""The pipeline's progress line (icl/pipeline_progress.py), fed Snakemake's log events."""
from __future__ import annotations

import io
import logging

from icl.pipeline_progress import ProgressLine, clock, install


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Inner(logging.Handler):
    """Stands in for Snakemake's console handler: keeps what passes through."""

    def __init__(self, stream):
        super().__init__()
        self.stream, self.seen = stream, []

    def emit(self, record):
        self.seen.append(record.getMessage())
        self.stream.write(record.getMessage() + "\n")


def record(msg="", level=logging.INFO, **extra):
    rec = logging.LogRecord("snakemake", level, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def feed_jobs(line, clock_, jobs, total, done_before=0):
    """Each job: (job id, outputs, seconds it takes); finished one after another."""
    for done, (job_id, outputs, seconds) in enumerate(jobs, done_before + 1):
        line.handle(record(f"Rule: x, Jobid: {job_id}", event="job_info", jobid=job_id, output=outputs))
        clock_.t += seconds
        line.handle(record(event="job_finished", job_id=job_id))
        line.handle(record(f"{done} of {total} steps done", event="progress", done=done, total=total))


JOBS = [(1, ["runs/a/status.json", "runs/b/status.json"], 10),
        (2, ["runs/a/eval-e1.json", "runs/b/eval-e1.json"], 10),
        (3, ["results/plots/linear_regression.png"], 5),
        (4, ["results/report.html", "results/report.md"], 5)]


def test_the_line_counts_runs_from_the_outputs_of_finished_jobs_and_guesses_the_time_left():
    stream, tick = Terminal(), Clock()
    line = ProgressLine(Inner(stream), runs=3, trained={"c"}, evaluated=set(), stream=stream, now=tick)
    feed_jobs(line, tick, JOBS[:2], total=4)
    assert line.trained == {"a", "b", "c"} and line.evaluated == {"a", "b"}
    assert line.line() == "[icl] 2/4 jobs · runs trained 3/3, evaluated 2/3 · 20s, about 20s left"
    # on a terminal: redrawn in place, one line
    assert stream.getvalue().count("\r") == 2 and "\n" not in stream.getvalue()
    feed_jobs(line, tick, JOBS[:1], total=4, done_before=2)  # run a and b again: counted once
    feed_jobs(line, tick, JOBS[3:], total=4, done_before=3)
    line.finish("[icl] done")
    text = stream.getvalue()
    assert text.endswith("[icl] 4/4 jobs · runs trained 3/3, evaluated 2/3 · 35s\x1b[K\n[icl] done\n")


def test_errors_and_warnings_pass_through_on_a_line_of_their_own_and_job_chatter_does_not():
    stream, tick = Terminal(), Clock()
    inner = Inner(stream)
    line = ProgressLine(inner, runs=2, trained=set(), evaluated=set(), stream=stream, now=tick)
    feed_jobs(line, tick, JOBS[:1], total=4)
    line.handle(record("Select jobs to execute..."))
    line.handle(record("Error in rule evaluate, jobid: 2", level=logging.ERROR, event="job_error"))
    line.handle(record("a warning", level=logging.WARNING))
    line.handle(record("Nothing to be done (all requested files are present and up to date)."))
    assert inner.seen == ["Error in rule evaluate, jobid: 2", "a warning",
                          "Nothing to be done (all requested files are present and up to date)."]
    # the error starts on a new line after the drawn progress line
    assert "\x1b[K\nError in rule evaluate" in stream.getvalue()


def test_in_a_log_file_the_line_is_written_first_and_at_each_tenth_of_the_jobs_not_at_every_job():
    stream, tick = io.StringIO(), Clock()
    line = ProgressLine(Inner(stream), runs=40, trained=set(), evaluated=set(), stream=stream, now=tick)
    jobs = [(i, [f"runs/r{i}/status.json"], 1) for i in range(40)]
    feed_jobs(line, tick, jobs, total=40)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and all(text.startswith("[icl] ") for text in lines)
    assert lines[-1].startswith("[icl] 40/40 jobs · runs trained 40/40")


def test_install_takes_the_place_of_snakemakes_console_handler_only_where_asked():
    class ColorizingTextHandler(Inner):  # the name is what install() recognises
        is_tty = False

    for setting, tty, replaced in (("line", False, True), ("auto", False, False), ("auto", True, True),
                                   ("log", True, False)):
        logger = logging.Logger(f"test-{setting}-{tty}")
        console = ColorizingTextHandler(Terminal() if tty else io.StringIO())
        console.is_tty = tty
        logger.addHandler(console)
        progress = install(logger, setting, runs=1, trained=set(), evaluated=set())
        assert (progress is not None) == replaced, (setting, tty)
        assert logger.handlers == ([progress] if replaced else [console])


def test_clock():
    assert [clock(s) for s in (4.4, 65, 3600 + 120)] == ["4s", "1m05s", "1h02m"]
