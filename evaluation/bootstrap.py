"""Per-position means with percentile bootstrap bands, resampling over prompts (vectorised).

A resample of N prompts is represented by how often each prompt is drawn (a row of
multinomial counts), so the means of R resamples at every position are one matrix
product: counts (R, N) @ errors (N, P). Entries that do not count (NaN: a masked
position) are excluded from both the sum and the count of their position.
"""
from __future__ import annotations

import torch

# Resamples handled per matrix product, so memory stays small for 12,800 prompts.
_RESAMPLES_PER_BLOCK = 128


def bootstrap_bands(errors: torch.Tensor, resamples: int, generator: torch.Generator,
                    low: float = 0.05, high: float = 0.95) -> dict[str, torch.Tensor]:
    """errors (N, P), NaN where not counted -> {"mean", "lo", "hi"}, each (P,), float64.

    mean is the plain mean over counted prompts; lo/hi are the `low`/`high` quantiles of
    the resampled means. A position with no counted entry gets NaN everywhere.
    """
    errors = errors.detach().to("cpu", torch.float64)
    if errors.dim() != 2:
        raise ValueError(f"errors must be (prompts, positions), got shape {tuple(errors.shape)}")
    n = errors.shape[0]
    counted = ~torch.isnan(errors)
    values = torch.where(counted, errors, torch.zeros_like(errors))
    counted = counted.to(torch.float64)
    mean = values.sum(0) / counted.sum(0)  # NaN where nothing counted (0 / 0)
    if resamples <= 0 or n == 0:
        return {"mean": mean, "lo": mean.clone(), "hi": mean.clone()}
    means = []
    for first in range(0, resamples, _RESAMPLES_PER_BLOCK):
        r = min(_RESAMPLES_PER_BLOCK, resamples - first)
        picks = torch.randint(0, n, (r, n), generator=generator)
        draws = torch.zeros(r, n, dtype=torch.float64).scatter_add_(
            1, picks, torch.ones(r, n, dtype=torch.float64))
        means.append((draws @ values) / (draws @ counted))
    means = torch.cat(means)  # (R, P)
    q = torch.tensor([low, high], dtype=torch.float64)
    lo, hi = torch.nanquantile(means, q, dim=0)
    return {"mean": mean, "lo": lo, "hi": hi}
