"""Automatic fitting windows for power laws: the plateau of the local log–log slope.

A measured curve follows a power law only over a window: pre-asymptotic corrections bend it at
one end, a floor (noise, finite size) flattens it at the other. Inside the window the local
slope $-\\mathrm{d}\\ln y/\\mathrm{d}\\ln x$ is flat, so `plateau_window` picks the longest run of
points over which it stays within a tolerance of its median.

Sign convention (the package's): decay exponents, as `fit_power_law`; the local slope of
$y \\propto x^{-p}$ is +p.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["PlateauWindow", "local_slopes", "plateau_window"]


@dataclass(frozen=True)
class PlateauWindow:
    """Options of the automatic fitting window (`plateau_window`, `fit_power_law(window=...)`).

    `min_points`: the fewest points a window may hold (an integer ≥ 3, the fit's minimum);
    `tolerance`: how far (absolute, in exponent units) each local slope in the window may lie
    from the window's median local slope (> 0, finite).
    """

    min_points: int = 4
    tolerance: float = 0.1

    def __post_init__(self):
        m = self.min_points
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 3:
            raise ValueError(f"PlateauWindow: min_points must be an integer >= 3, got {m!r}")
        if not 0 < self.tolerance < np.inf:  # also rejects NaN
            raise ValueError(f"PlateauWindow: tolerance must be positive and finite, got "
                             f"{self.tolerance!r}")


def _slopes(x, y, who: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"{who}: x and y must be 1-D of one length, got {x.shape}, {y.shape}")
    if x.size < 3:
        raise ValueError(f"{who}: need at least 3 points, got {x.size}")
    for name, v in (("x", x), ("y", y)):
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{who}: {name} must be positive and finite (logarithms are taken), "
                             f"got {v}")
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"{who}: x must be strictly increasing (sorted, no repeated values), "
                         f"got {x}")
    # np.gradient with coordinates: second-order central differences on the uneven log grid,
    # one-sided at the two ends.
    return -np.gradient(np.log(y), np.log(x))


def local_slopes(x, y) -> np.ndarray:
    """The local decay exponent $p(x) = -\\mathrm{d}\\ln y/\\mathrm{d}\\ln x$ at every point.

    **Arguments:** `x`, `y`: positive, finite 1-D arrays of one length (≥ 3 points), x strictly
    increasing.

    **Returns:** a float array of the same length: central differences of $\\ln y$ against
    $\\ln x$ (`np.gradient`), one-sided at the ends; +p on $y \\propto x^{-p}$.

    **Raises:** `ValueError` naming the problem: shape mismatch, fewer than 3 points,
    non-positive or non-finite values, x not strictly increasing.
    """
    return _slopes(x, y, "local_slopes")


def plateau_window(x, y, options: PlateauWindow = PlateauWindow()) -> tuple[float, float]:
    """The fitting window $[x_\\text{low}, x_\\text{high}]$ where the local slope is flat.

    The window is the longest contiguous run of at least `options.min_points` points whose
    local slopes (`local_slopes`) all lie within `options.tolerance` of the run's median local
    slope. Of equally long runs, the one at larger x is taken (nearer the asymptote).

    **Arguments:** `x`, `y`: as `local_slopes` (x strictly increasing); `options`: a
    `PlateauWindow`.

    **Returns:** `(x_low, x_high)`, the first and last x of the run (both included).

    **Raises:** `ValueError` naming the problem: bad `x`, `y` (as `local_slopes`), fewer points
    than `min_points`, or no run of `min_points` points flat to within `tolerance` (the message
    lists the local slopes seen).
    """
    x = np.asarray(x, dtype=float)
    slopes = _slopes(x, y, "plateau_window")
    n, m, tol = slopes.size, options.min_points, options.tolerance
    if n < m:
        raise ValueError(f"plateau_window: {n} points, fewer than min_points={m}")
    # Longest first, so the first length with a qualifying run is the answer; the median test
    # is not monotone in the run, so each length is checked in full (vectorised over starts).
    for length in range(n, m - 1, -1):
        runs = sliding_window_view(slopes, length)
        spread = np.max(np.abs(runs - np.median(runs, axis=1, keepdims=True)), axis=1)
        starts = np.flatnonzero(spread <= tol)
        if starts.size:
            start = int(starts[-1])  # ties: the run at larger x
            return float(x[start]), float(x[start + length - 1])
    seen = np.array2string(slopes, precision=3, separator=", ", max_line_width=10**6)
    raise ValueError(
        f"plateau_window: no {m} consecutive points have local slopes within {tol} of their "
        f"median, so the curve has no power-law plateau at this tolerance (raise tolerance or "
        f"lower min_points, or pass an explicit window); local slopes seen "
        f"(from {slopes.min():.3g} to {slopes.max():.3g}): {seen}"
    )
