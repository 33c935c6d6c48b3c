"""Downsampling long series for plotting: M4 (first, last, min and max point of each x bucket).

A line drawn through the M4 points of ``width`` equal-width x buckets is pixel-identical to the line
through every point at that width (Jugel et al., "M4: a visualization-oriented time series data
aggregation", VLDB 2014), so a plot of 10M points costs what a plot of 4×``width`` points does.
Only the plot is thinned: the data files keep every point.
"""

from __future__ import annotations

from typing import Any

DEFAULT_BUCKETS = 400


def m4(x: Any, y: Any, buckets: int = DEFAULT_BUCKETS) -> tuple[Any, Any]:
    """The M4 subset of the points (x, y), sorted by x; series of ≤ 4×``buckets`` points come back whole.

    Non-finite y values are dropped (a plot cannot draw them); x must be finite.
    """
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d arrays of one length, got shapes {x.shape} and {y.shape}")
    if not isinstance(buckets, int) or buckets < 1:
        raise ValueError(f"buckets must be a positive int, got {buckets!r}")
    keep = np.isfinite(y) & np.isfinite(x)
    if not keep.all():
        x, y = x[keep], y[keep]
    if len(x) > 1 and (np.diff(x) < 0).any():
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    n = len(x)
    if n <= 4 * buckets:
        return x, y
    lo, hi = x[0], x[-1]
    if hi == lo:
        b = np.zeros(n, dtype=np.int64)
    else:
        b = np.minimum(((x - lo) * (buckets / (hi - lo))).astype(np.int64), buckets - 1)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])  # x sorted, so each bucket is one slice
    ends = np.r_[starts[1:], n] - 1
    lengths = ends - starts + 1
    # argmin/argmax per slice: reduceat gives the values, a sort-free match gives the first index of each
    mins = np.minimum.reduceat(y, starts)
    maxs = np.maximum.reduceat(y, starts)
    seg = np.repeat(np.arange(len(starts)), lengths)
    imin = _first_index(y == mins[seg], seg, len(starts))
    imax = _first_index(y == maxs[seg], seg, len(starts))
    idx = np.unique(np.concatenate([starts, ends, imin, imax]))
    return x[idx], y[idx]


def _first_index(hit: Any, seg: Any, n_segments: int) -> Any:
    """For each segment, the first index where ``hit`` is true (every segment has one)."""
    import numpy as np

    where = np.flatnonzero(hit)
    owner = seg[where]  # sorted, as both seg and where are
    firsts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    first = np.full(n_segments, -1, dtype=np.int64)
    first[owner[firsts]] = where[firsts]
    return first
