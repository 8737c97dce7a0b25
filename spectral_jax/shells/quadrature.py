"""Gauss–Legendre nodes for the windowed budget, graded where the shell rates vary fast.

The windows are first cut at the crossing times (the shell rates jump when a mode changes
shell, so the integrand is smooth only between them). Each piece is then refined until its
length is at most the local admissible length (`piece_density` at its ends, inverted):
uniformly where that length is even, by bisection where it varies by more than 2× across a
piece, which grades the mesh geometrically towards a point where the rates blow up.

Two kinds of variation set the admissible length (`SpectralTrack`):
- $\\max|\\lambda|$: $e(t)$ decays or turns at that rate, an entire function of t, so
  length × scale ≤ `resolution` (6 with 10 nodes: error below 1e-15);
- the inter-shell coupling $\\max_k\\sum_j|G_{kj}/(\\lambda_k-\\lambda_j)|$: it comes from a pole
  of the rates at a distance ≳ 1/(2·coupling) from the real axis (at an avoided crossing of
  gap 2g straddling an edge, exactly $\\sqrt{(t-t_*)^2+g^2}$), so length × coupling ≤ 1/2: no
  piece is longer than its distance to the pole, and Gauss–Legendre converges like
  $5.8^{-2p}$.

Pieces are never cut below a few thousand ulps, so nodes stay distinct.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = ["Quadrature", "graded_quadrature", "merge_times", "pad_grid", "piece_density"]

# Shortest piece, in units of eps·|t|: 10 Gauss–Legendre nodes stay ≥ ~10 ulps apart.
_MIN_PIECE_ULPS = 4096.0
_MAX_ROUNDS = 80


def min_piece(t: float | np.ndarray) -> np.floating | np.ndarray:
    """Shortest piece (or distinct break) length near time `t`."""
    return _MIN_PIECE_ULPS * np.finfo(np.float64).eps * np.maximum(np.abs(t), 1e-300)


def merge_times(fixed: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Map each of `extra` to a `fixed` time (or an earlier `extra` one) within `min_piece`.

    A crossing a few ulps from a window end needs no sub-interval of its own: its energy is
    read at the window end, and a piece that short would have colliding nodes.
    """
    out = np.asarray(extra, np.float64).copy()
    kept = np.asarray(fixed, np.float64)
    for i, t in enumerate(out):
        near = np.abs(kept - t) <= min_piece(np.asarray(t))
        if np.any(near):
            out[i] = kept[np.argmax(near)]
        else:
            kept = np.append(kept, t)
    return out


def piece_density(eigenvalue_scale, coupling_scale, resolution: float) -> np.ndarray:
    """Inverse admissible piece length from the two rate scales (see the module docstring)."""
    return np.asarray(eigenvalue_scale) / resolution + np.asarray(coupling_scale) / 0.5


class Quadrature(NamedTuple):
    times: np.ndarray  # (N,) nodes
    weights: np.ndarray  # (N,) Gauss–Legendre weights
    window: np.ndarray  # (N,) index of the window holding each node
    pieces: int


def _split_counts(length, d_lo, d_hi, shortest):
    top = np.maximum(d_lo, d_hi)
    need = length * top
    even = top <= 2.0 * np.minimum(d_lo, d_hi)
    k = np.where(even, np.ceil(need), 2.0)  # bisection where the density varies: grading
    k = np.minimum(k, np.floor(length / shortest))
    return np.where((need > 1.0) & (k >= 2), k, 1).astype(np.int64)


def graded_quadrature(
    breaks: np.ndarray,
    ts: np.ndarray,
    density_at: Callable[[np.ndarray], np.ndarray],
    *,
    nodes: int,
    subdivisions: int,
) -> Quadrature:
    """Nodes and weights on the pieces between `breaks` (window ends and crossing times).

    `density_at(t)` is the inverse of the longest admissible piece near t (see
    `piece_density`); a piece is split while its length times the larger density at its ends
    exceeds 1.
    """
    cuts = [np.linspace(a, b, subdivisions + 1) for a, b in zip(breaks[:-1], breaks[1:])]
    lo = np.concatenate([c[:-1] for c in cuts])
    hi = np.concatenate([c[1:] for c in cuts])
    known_t, known_s = np.zeros(0), np.zeros(0)
    for _ in range(_MAX_ROUNDS):
        points = np.unique(np.concatenate([lo, hi]))
        new = points[~np.isin(points, known_t)]
        if new.size:
            known_t = np.concatenate([known_t, new])
            known_s = np.concatenate([known_s, np.asarray(density_at(new), np.float64)])
            order = np.argsort(known_t)
            known_t, known_s = known_t[order], known_s[order]
        s_lo = known_s[np.searchsorted(known_t, lo)]
        s_hi = known_s[np.searchsorted(known_t, hi)]
        length = hi - lo
        shortest = min_piece(np.maximum(np.abs(lo), np.abs(hi)))
        k = _split_counts(length, s_lo, s_hi, shortest)
        if np.all(k == 1):
            break
        parts = [np.linspace(a, b, m + 1) for a, b, m in zip(lo, hi, k)]
        lo = np.concatenate([p[:-1] for p in parts])
        hi = np.concatenate([p[1:] for p in parts])
    x, w = np.polynomial.legendre.leggauss(nodes)
    half = 0.5 * (hi - lo)
    times = (0.5 * (lo + hi))[:, None] + half[:, None] * x
    weights = half[:, None] * w
    window = np.searchsorted(ts, lo, side="right") - 1
    window = np.repeat(window, nodes)
    return Quadrature(times.ravel(), weights.ravel(), window, int(lo.shape[0]))


def pad_grid(grid: np.ndarray, minimum: int = 64) -> np.ndarray:
    """Pad a strictly increasing grid with spare points to a power-of-two length.

    Runs of similar size then share one compilation of the solver.
    """
    size = max(minimum, 1 << (len(grid) - 1).bit_length())
    extra = size - len(grid)
    if extra == 0:
        return grid
    gaps = np.diff(grid)
    i = int(np.argmax(gaps))
    fill = grid[i] + gaps[i] * np.arange(1, extra + 1) / (extra + 1)
    out = np.unique(np.concatenate([grid, fill]))
    if len(out) != size:  # the widest gap was too narrow for distinct floats
        raise ValueError("windowed_budget: could not build a distinct save grid (times too close)")
    return out
