"""An operator interpolated through saved kernels $M(t_i)$ (and optionally $\\dot M(t_i)$).

Every input is checked at construction (when concrete; skipped under `jit`/`vmap`), with
messages that name the argument and the index: `ts` finite and strictly increasing, every
`matrices[i]` finite, symmetric and PSD to round-off, every `derivatives[i]` finite and
symmetric to round-off.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import as_concrete, check_matrix_values
from .base import AbstractOperator

__all__ = ["InterpolatedOperator"]


def _natural_spline_second_derivatives(ts, ys):
    """Second derivatives at the knots of the natural cubic spline through (ts, ys)."""
    h = jnp.diff(ts)
    k = ts.shape[0]
    slopes = (ys[1:] - ys[:-1]) / h[:, None, None]
    rhs = 6.0 * (slopes[1:] - slopes[:-1])
    main = 2.0 * (h[:-1] + h[1:])
    system = jnp.diag(main) + jnp.diag(h[1:-1], 1) + jnp.diag(h[1:-1], -1)
    flat = rhs.reshape(k - 2, -1)
    inner = jnp.linalg.solve(system, flat).reshape(rhs.shape)
    zero = jnp.zeros_like(ys[:1])
    return jnp.concatenate([zero, inner, zero], axis=0)


def _check_knots(ts: np.ndarray) -> None:
    finite = np.isfinite(ts)
    if not np.all(finite):
        i = int(np.argmin(finite))
        raise ValueError(f"InterpolatedOperator: ts[{i}] = {ts[i]!r} is not finite")
    step = np.diff(ts)
    if np.any(step <= 0):
        i = int(np.argmax(step <= 0))
        raise ValueError(
            f"InterpolatedOperator: ts must be strictly increasing; ts[{i}] = {ts[i]!r} >= "
            f"ts[{i + 1}] = {ts[i + 1]!r}"
        )


def _shapes(ts, matrices, derivatives, minimum: int) -> None:
    if ts.ndim != 1 or matrices.ndim != 3 or matrices.shape[0] != ts.shape[0]:
        raise ValueError(
            f"InterpolatedOperator: needs ts (T,) and matrices (T, n, n); got ts {ts.shape} "
            f"and matrices {matrices.shape}"
        )
    if matrices.shape[1] != matrices.shape[2]:
        raise ValueError(
            f"InterpolatedOperator: matrices must be (T, n, n) square, got {matrices.shape}"
        )
    if derivatives is not None and derivatives.shape != matrices.shape:
        raise ValueError(
            f"InterpolatedOperator: derivatives shape {derivatives.shape} != matrices shape "
            f"{matrices.shape}"
        )
    if ts.shape[0] < minimum:
        kind = "Hermite (with derivatives)" if derivatives is not None else "spline"
        raise ValueError(
            f"InterpolatedOperator: the {kind} interpolant needs at least {minimum} times, "
            f"got {ts.shape[0]}"
        )


class InterpolatedOperator(AbstractOperator):
    """A smooth interpolant through saved kernels $M(t_i)$.

    With `derivatives` (saved $\\dot M(t_i)$, e.g. from AD along a training run) it is the
    piecewise cubic Hermite interpolant (C¹, fourth-order accurate); without, the natural
    cubic spline (C²). Outside $[t_0, t_{T-1}]$ the end pieces are extrapolated.

    **Arguments:**
    - `ts`: (T,) finite, strictly increasing times, T ≥ 2 (≥ 3 for the spline).
    - `matrices`: (T, n, n) symmetric PSD kernels.
    - `derivatives`: optional (T, n, n) symmetric $\\dot M$ at the same times.

    **Raises:** `ValueError` naming the argument and index of the first bad entry (see the
    module docstring); `TypeError` for non-floating matrices.
    """

    ts: Float[Array, " T"]
    matrices: Float[Array, "T n n"]
    slopes: Float[Array, "T n n"] | None
    second: Float[Array, "T n n"] | None

    def __init__(self, ts, matrices, derivatives=None):
        ts = jnp.asarray(ts)
        matrices = jnp.asarray(matrices)
        if not jnp.issubdtype(matrices.dtype, jnp.floating):
            raise TypeError(
                f"InterpolatedOperator: matrices must be floating, got {matrices.dtype}"
            )
        if derivatives is not None:
            derivatives = jnp.asarray(derivatives, matrices.dtype)
        _shapes(ts, matrices, derivatives, 2 if derivatives is not None else 3)
        ts = ts.astype(matrices.dtype)
        concrete_ts = as_concrete(ts)
        if concrete_ts is not None:
            _check_knots(concrete_ts)
        concrete = as_concrete(matrices)
        if concrete is not None:
            for i in range(concrete.shape[0]):
                check_matrix_values(concrete[i], f"InterpolatedOperator: matrices[{i}]")
        concrete = None if derivatives is None else as_concrete(derivatives)
        if concrete is not None:
            for i in range(concrete.shape[0]):
                check_matrix_values(
                    concrete[i], f"InterpolatedOperator: derivatives[{i}]", check_psd=False
                )
        self.ts = ts
        self.matrices = matrices
        if derivatives is not None:
            self.slopes, self.second = derivatives, None
        else:
            self.slopes, self.second = None, _natural_spline_second_derivatives(ts, matrices)

    def __call__(self, t):
        # The index is clipped, not t: clipping t would halve the AD derivative at the ends.
        t = jnp.asarray(t, self.dtype)
        i = jnp.clip(jnp.searchsorted(self.ts, t, side="right") - 1, 0, self.ts.shape[0] - 2)
        t0, t1 = self.ts[i], self.ts[i + 1]
        h = t1 - t0
        s = (t - t0) / h
        m0, m1 = self.matrices[i], self.matrices[i + 1]
        if self.slopes is not None:
            h00 = (1 + 2 * s) * (1 - s) ** 2
            h10 = s * (1 - s) ** 2
            h01 = s**2 * (3 - 2 * s)
            h11 = s**2 * (s - 1)
            return h00 * m0 + h10 * h * self.slopes[i] + h01 * m1 + h11 * h * self.slopes[i + 1]
        z0, z1 = self.second[i], self.second[i + 1]
        a, b = 1 - s, s
        return a * m0 + b * m1 + ((a**3 - a) * z0 + (b**3 - b) * z1) * h**2 / 6

    @property
    def dtype(self):
        return self.matrices.dtype
