"""The convergence test of issue #25's protocol: a loss still falling at the end is flagged."""
from __future__ import annotations

import math
import random

from icl.evaluation.convergence import convergence, run_convergence

STEPS = list(range(0, 20_001, 100))


def noisy(curve, sigma, seed=0):
    rng = random.Random(seed)
    return [c * (1 + rng.gauss(0, sigma)) for c in curve]


def test_a_curve_still_falling_at_the_end_is_not_converged():
    falling = [2.0 * math.exp(-s / 15_000) for s in STEPS]          # still -12% over the last 2k steps
    result = convergence(STEPS, noisy(falling, 0.02))
    assert result.state == "not converged" and result.drop > 0.05 and result.t < -3


def test_a_flat_noisy_curve_is_converged():
    for seed in range(5):
        flat = noisy([0.5 + 1.5 * math.exp(-s / 1_000) for s in STEPS], 0.2, seed)   # flat after ~5k steps
        assert convergence(STEPS, flat).state == "converged", seed


def test_a_slight_fall_inside_the_slack_is_converged():
    slight = [1.0 - 1e-7 * s for s in STEPS]                         # 0.2% over the tail, noiseless
    result = convergence(STEPS, slight)
    assert result.state == "converged" and 0 < result.drop < 0.02


def test_too_few_losses_or_none_is_unknown():
    assert convergence([0, 10, 20], [1.0, 0.9, 0.8]).state == "unknown"
    assert convergence([], []).state == "unknown"
    assert convergence(STEPS, [float("nan")] * len(STEPS)).state == "unknown"


def test_read_from_metrics_entries():
    entries = [{"step": s, "loss": 2.0 * math.exp(-s / 15_000)} for s in STEPS]
    assert run_convergence(entries).state == "not converged"
    assert "fell" in run_convergence(entries).describe()


def test_entries_without_a_step_and_a_numeric_loss_are_skipped():
    entries = [{"step": s, "loss": 2.0 * math.exp(-s / 15_000)} for s in STEPS]
    # a late line without a loss, one with a boolean, one without a step: none is a point
    junk = [{"step": 40_000, "error": 0.1}, {"step": 40_000, "loss": True}, {"loss": 0.0}]
    assert run_convergence(entries + junk).as_dict() == run_convergence(entries).as_dict()
    assert run_convergence(entries).as_dict()["state"] == "not converged"
