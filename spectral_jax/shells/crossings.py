"""Crossings of shell edges by the sorted eigenvalues: found, then polished (docs/theory.md §2.4).

`find_crossings` interpolates each sorted eigenvalue on every window by the cubic Hermite
polynomial through its values and Hellmann–Feynman rates (a `SpectralTrack`) and takes the real
roots of (interpolant − edge); `refine_crossings` polishes them by Newton's method on the exact
eigenvalue of $M(t)$. No ODE state is involved: the crossings are a property of the operator.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ..operators.base import AbstractOperator
from .grid import LogShells
from .tracking import SpectralTrack, sorted_spectrum

__all__ = ["Crossings", "find_crossings", "refine_crossings"]


class Crossings(eqx.Module):
    """Edge crossings of tracked eigenvalues (m events, sorted by time).

    - `time` (m,): crossing time $\\tau$.
    - `rank` (m,): which eigenvalue crosses (k-th largest, 0-based, at the crossing).
    - `edge` (m,): edge index j (`shells.edges[j]`, between shell j and shell j+1).
    - `direction` (m,): +1 when the eigenvalue goes down (shell j → j+1), −1 when it goes up.
    - `window` (m,): index i of the window $[t_i, t_{i+1}]$ holding $\\tau$.
    - `energy` (m,): $\\varepsilon(\\tau)$ of the migrating mode (NaN until measured).
    """

    time: Float[Array, " m"]
    rank: Int[Array, " m"]
    edge: Int[Array, " m"]
    direction: Int[Array, " m"]
    window: Int[Array, " m"]
    energy: Float[Array, " m"]

    @property
    def count(self) -> int:
        return int(self.time.shape[0])


def _hermite_coefficients(ts, values, rates):
    """Monomial coefficients (a, b, c, d) in s ∈ [0, 1] of each window's cubic Hermite piece."""
    h = np.diff(ts)[:, None]
    y0, y1 = values[:-1], values[1:]
    d0, d1 = h * rates[:-1], h * rates[1:]
    a = 2 * y0 + d0 - 2 * y1 + d1
    b = -3 * y0 - 2 * d0 + 3 * y1 - d1
    return a, b, d0, y0


def _cubic_range(a, b, c, d):
    """Min and max of a s³ + b s² + c s + d over s ∈ [0, 1] (vectorised)."""
    ends = [d, a + b + c + d]
    lo, hi = np.minimum(*ends), np.maximum(*ends)
    disc = (2 * b) ** 2 - 12 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(np.where(disc >= 0, disc, np.nan))
        for sign in (1.0, -1.0):
            s = np.where(np.abs(a) > 0, (-2 * b + sign * root) / (6 * a), -c / (2 * b))
            ok = np.isfinite(s) & (s > 0) & (s < 1)
            val = np.where(ok, ((a * s + b) * s + c) * s + d, np.nan)
            lo, hi = np.fmin(lo, val), np.fmax(hi, val)
    return lo, hi


def find_crossings(shells: LogShells, ts, eigenvalues, rates) -> Crossings:
    """Edge crossings from saved eigenvalues and their rates (cubic Hermite root-finding).

    Each eigenvalue (column) is interpolated on every window by the cubic Hermite polynomial
    through its values and Hellmann–Feynman rates at both ends (fourth-order accurate), and the
    real roots of (interpolant − edge) in the open window are the crossing times; a window in
    which the interpolant only touches or re-crosses an edge yields every root it has.

    **Arguments:**
    - `shells`: the `LogShells`.
    - `ts` (T,), `eigenvalues` (T, n), `rates` (T, n): continuous columns, e.g. a
      `SpectralTrack`'s fields or a `KatoSolution`'s `ts`, `eigenvalues`, `eigenvalue_rates`
      (both sorted descending).

    **Returns:** `Crossings` (energies NaN), sorted by time.
    """
    ts = np.asarray(ts, np.float64)
    lam = np.asarray(eigenvalues, np.float64)
    rates = np.asarray(rates, np.float64)
    edges = np.asarray(shells.edges, np.float64)
    a, b, c, d = _hermite_coefficients(ts, lam, rates)
    lo, hi = _cubic_range(a, b, c, d)
    events = []
    # Candidate (window, mode, edge) triples: the edge lies inside the interpolant's range.
    cand = (lo[..., None] < edges) & (edges < hi[..., None])
    for i, k, j in zip(*np.nonzero(cand)):
        roots = np.roots([a[i, k], b[i, k], c[i, k], d[i, k] - edges[j]])
        scale = 1e-7
        for r in roots[np.abs(roots.imag) <= scale]:
            s = float(r.real)
            if not (0.0 < s < 1.0):
                continue
            slope = (3 * a[i, k] * s + 2 * b[i, k]) * s + c[i, k]
            if slope == 0:
                continue  # a tangency moves no mode
            h = ts[i + 1] - ts[i]
            events.append((ts[i] + s * h, k, j, 1 if slope < 0 else -1, i))
    events.sort()
    if events:
        t, k, j, dr, w = (np.asarray(x) for x in zip(*events))
    else:
        t = np.zeros(0)
        k = j = dr = w = np.zeros(0, np.int64)
    return Crossings(
        time=jnp.asarray(t, lam.dtype),
        rank=jnp.asarray(k, jnp.int32),
        edge=jnp.asarray(j, jnp.int32),
        direction=jnp.asarray(dr, jnp.int32),
        window=jnp.asarray(w, jnp.int32),
        energy=jnp.full(t.shape, jnp.nan, lam.dtype),
    )


@eqx.filter_jit
def _newton(op, edges, track_ts, time, rank, edge, window, iterations):
    def one(t0, k, j, i):
        lo, hi = track_ts[i], track_ts[i + 1]
        target = edges[j]

        def f(t):
            lam, rates, _ = sorted_spectrum(op, t)
            return lam[k] - target, rates[k]

        def body(_, t):
            val, slope = f(t)
            step = val / jnp.where(slope == 0, 1.0, slope)
            return jnp.clip(t - jnp.where(slope == 0, 0.0, step), lo, hi)

        t = jax.lax.fori_loop(0, iterations, body, t0)
        interior = (t > lo) & (t < hi)
        return t, jnp.where(interior, jnp.abs(f(t)[0]), jnp.inf), jnp.abs(f(t0)[0])

    return jax.vmap(one)(time, rank, edge, window)


def refine_crossings(
    shells: LogShells,
    op: AbstractOperator,
    track: SpectralTrack,
    crossings: Crossings,
    *,
    iterations: int = 6,
) -> Crossings:
    """Polish crossing times by Newton's method on the exact eigenvalue of $M(t)$.

    $\\tau \\leftarrow \\tau - (\\lambda_k(\\tau) - \\text{edge})/\\dot\\lambda_k(\\tau)$ with
    $\\lambda_k$ the k-th largest eigenvalue of `op(τ)` and $\\dot\\lambda_k = G_{kk}$; the
    iterate is kept inside the window, and the Hermite estimate is kept where Newton does not
    improve on it.
    """
    m = crossings.count
    if m == 0:
        return crossings
    # Pad to a power of two so that the compiled Newton solver is reused across runs.
    size = 1 << max(3, (m - 1).bit_length())
    pad = size - m

    def padded(x):
        return jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad,))])

    edges = shells.edges.astype(op.dtype)
    t, res_new, res_old = _newton(
        op,
        edges,
        track.ts,
        padded(crossings.time),
        padded(crossings.rank),
        padded(crossings.edge),
        padded(crossings.window),
        iterations,
    )
    better = res_new[:m] <= res_old[:m]
    time = jnp.where(better, t[:m], crossings.time)
    order = jnp.argsort(time, stable=True)
    polished = eqx.tree_at(lambda c: c.time, crossings, time)
    return jax.tree_util.tree_map(lambda x: x[order], polished)
