"""Confidence intervals over seeds: the mean of a few seeds' numbers with a bootstrap interval.

    seed_interval(values) -> (mean, lo, hi)           # one number per seed
    seed_bands(curves) -> (mean, lo, hi)              # one curve per seed, (seeds, positions)
    difference_interval(a, b, paired) -> (d, lo, hi)  # mean(b) - mean(a)

The seeds are resampled with replacement (evaluation/bootstrap.py's bootstrap_bands, the one
the evaluation uses over prompts), RESAMPLES times from a generator seeded with SEED, so the
same numbers give the same interval: the report's bytes do not change between builds. The
interval runs from the LOW to the HIGH quantile of the resampled means (5% to 95%, as the
evaluation's bands over prompts). With one seed the interval is that seed's value; with two,
the resampled means can only be a, (a + b) / 2 or b, so the interval is close to the two
seeds' range: a handful of seeds makes a rough interval, and the report says how many.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from icl.evaluation.bootstrap import bootstrap_bands

RESAMPLES = 1000       # as the reduced study's own bootstrap over prompts; 2,000 was 25x slower in torch.nanquantile
SEED = 0
LOW, HIGH = 0.05, 0.95
LEVEL = "90%"          # HIGH - LOW, as the report words it


def _bands(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    generator = torch.Generator().manual_seed(SEED)
    out = bootstrap_bands(torch.as_tensor(matrix, dtype=torch.float64), RESAMPLES, generator, LOW, HIGH)
    return out["mean"].numpy(), out["lo"].numpy(), out["hi"].numpy()


def seed_bands(curves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """curves (seeds, positions), NaN where a seed has no value -> (mean, lo, hi), each (positions,)."""
    matrix = np.asarray(curves, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"seed_bands needs (seeds, positions), got shape {matrix.shape}")
    if matrix.shape[0] == 1:
        row = matrix[0]
        return row.copy(), row.copy(), row.copy()
    return _bands(matrix)


def seed_interval(values) -> tuple[float | None, float | None, float | None]:
    """(mean, lo, hi) of one number per seed; Nones when there is none."""
    values = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None, None
    mean, lo, hi = seed_bands(np.asarray(values)[:, None])
    return float(mean[0]), float(lo[0]), float(hi[0])


def difference_interval(a: list[float], b: list[float], paired: bool) -> tuple[float | None, float | None, float | None]:
    """mean(b) - mean(a) with its bootstrap interval. paired: a[i] and b[i] are the same seed, and
    the seeds' differences are resampled; else each side's seeds are resampled on their own."""
    if not a or not b:
        return None, None, None
    if paired:
        if len(a) != len(b):
            raise ValueError("a paired difference needs as many values on each side")
        return seed_interval([y - x for x, y in zip(a, b)])
    rng = np.random.default_rng(SEED)
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    means_a = xa[rng.integers(0, len(xa), (RESAMPLES, len(xa)))].mean(1)
    means_b = xb[rng.integers(0, len(xb), (RESAMPLES, len(xb)))].mean(1)
    lo, hi = np.quantile(means_b - means_a, [LOW, HIGH])
    return float(xb.mean() - xa.mean()), float(lo), float(hi)
