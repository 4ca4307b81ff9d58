"""Whether a run's training had converged: is its loss still falling over the last 10% of steps?

A run whose loss still falls at the end would likely score better trained longer, so the
report marks its cell "not converged" instead of reading its error as the architecture's
(issue #25's protocol). The test fits a least-squares line to the logged training losses of
the last TAIL_FRACTION of the steps and calls the run not converged when the line falls by
more than MIN_DROP of the tail's mean loss over the tail AND the fall is clearly not noise
(its slope at least MIN_T standard errors below zero). Per-batch losses are noisy: the slope's
standard error, from the residuals, keeps a flat noisy curve "converged".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TAIL_FRACTION = 0.10   # the last 10% of the steps trained (up to the last logged one)
MIN_DROP = 0.02        # a fall of at least 2% of the tail's mean loss over the tail ...
MIN_T = 3.0            # ... whose slope is at least 3 standard errors below zero
MIN_POINTS = 5         # fewer logged losses in the tail: not judged


@dataclass(frozen=True)
class Convergence:
    state: str             # "converged" | "not converged" | "unknown"
    drop: float | None     # the fitted fall over the tail, as a fraction of the tail's mean loss
    t: float | None        # the slope in standard errors (negative: falling)
    points: int            # logged losses in the tail

    def as_dict(self) -> dict:
        """The record an evaluation keeps: {"state", "drop", "t", "points"}."""
        return {"state": self.state, "drop": self.drop, "t": self.t, "points": self.points}

    def describe(self) -> str:
        if self.state == "unknown":
            return f"unknown ({self.points} logged losses in the last {TAIL_FRACTION:.0%} of steps)"
        return f"{self.state}: loss {'fell' if self.drop > 0 else 'rose'} {abs(self.drop):.1%} over the last " \
               f"{TAIL_FRACTION:.0%} of steps (slope {self.t:+.1f} standard errors)"


def convergence(steps: list[int], losses: list[float]) -> Convergence:
    """The convergence of a training curve: the logged (step, loss) pairs of one run."""
    pairs = [(s, l) for s, l in zip(steps, losses) if l is not None and math.isfinite(l)]
    if not pairs:
        return Convergence("unknown", None, None, 0)
    last = max(s for s, _ in pairs)
    start = last - TAIL_FRACTION * last
    tail = [(s, l) for s, l in pairs if s >= start]
    n = len(tail)
    if n < MIN_POINTS:
        return Convergence("unknown", None, None, n)
    xs, ys = [float(s) for s, _ in tail], [l for _, l in tail]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0 or my == 0:
        return Convergence("unknown", None, None, n)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys))
    stderr = math.sqrt(residual / (n - 2) / sxx) if n > 2 else 0.0
    t = slope / stderr if stderr > 0 else (-math.inf if slope < 0 else math.inf if slope > 0 else 0.0)
    drop = -slope * (xs[-1] - xs[0]) / abs(my)
    state = "not converged" if drop > MIN_DROP and t <= -MIN_T else "converged"
    return Convergence(state, drop, t, n)


def run_convergence(entries: list[dict]) -> Convergence:
    """The convergence of a run from its metrics.jsonl entries (runfolder.read_metrics); an
    entry without an integer step and a numeric loss (an evaluation line, a hand edit) is skipped."""
    pairs = [(e["step"], float(e["loss"])) for e in entries
             if isinstance(e.get("step"), int) and not isinstance(e.get("step"), bool)
             and isinstance(e.get("loss"), (int, float)) and not isinstance(e.get("loss"), bool)]
    return convergence([s for s, _ in pairs], [l for _, l in pairs])
