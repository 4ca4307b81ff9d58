"""The report's test for a number it can show: a finite int or float, never a bool.

Metrics files and evaluations are JSON written by runs that may have failed midway: a value
can be missing, null, NaN, infinite or (by a bug) a bool, and every table and plot skips
those the same way.
"""
from __future__ import annotations

import math


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
