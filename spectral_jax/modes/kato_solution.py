"""The result type of `solve_kato`."""

from __future__ import annotations

from typing import Any

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int


class KatoSolution(eqx.Module):
    """Result of `solve_kato`, at the saved times, modes sorted by descending eigenvalue.

    - `ts` (T,), `eigenvalues` (T, n), `coefficients` (T, n) ($c = \\Phi^T e$ in the saved
      eigenbasis), `generator` (T, n, n) (Kato $W$; 0 inside clusters), `frames` (T, n, n)
      (the eigenvectors $\\Phi$, signs continuous along the run, parallel-transport gauge inside
      clusters; `frames @ coefficients` is $e$), `residuals` (T, n) ($e = \\Phi c$ from the Kato
      state), `eigenvalue_rates` (T, n) ($\\dot\\lambda$), `order` (T, n) (tracked label of
      each sorted mode: a change marks a crossing), `relative_gaps` (T, n-1) (adjacent gaps
      over $\\lambda_1$), `min_gap` / `min_gap_index` (T,).
    - Self-check: `reference_coefficients` (T, n) (the independent $e(t)$ in the same basis, or
      None when disabled), `self_check_mismatch` (T,) ($\\|\\Phi c - e\\|/\\|e_0\\|$),
      `self_check_mode` (T,) (the mode carrying most of it), `self_check_tolerance`.
    - `reduced` / `reduced_reference`: with `solve_kato(..., reduce=f)`, `f(eigenvalues,
      coefficients, generator)` at each saved time from the Kato coefficients and from the
      reference; `generator` and `frames` are then None.
    - `stats` (steps, right-hand-side evaluations), `result` (diffrax's code), `error` (None or
      the message of the failure), `succeeded`.
    """

    ts: Float[Array, " T"]
    eigenvalues: Float[Array, "T n"]
    coefficients: Float[Array, "T n"]
    generator: Float[Array, "T n n"] | None
    frames: Float[Array, "T n n"] | None
    residuals: Float[Array, "T n"]
    reference_coefficients: Float[Array, "T n"] | None
    reduced: Any
    reduced_reference: Any
    eigenvalue_rates: Float[Array, "T n"]
    order: Int[Array, "T n"]
    relative_gaps: Float[Array, "T _"]
    min_gap: Float[Array, " T"]
    min_gap_index: Int[Array, " T"]
    self_check_mismatch: Float[Array, " T"]
    self_check_mode: Int[Array, " T"]
    stats: dict
    result: diffrax.RESULTS
    error: str | None = eqx.field(static=True)
    self_check_tolerance: float = eqx.field(static=True)
    degeneracy_threshold: float = eqx.field(static=True)

    @property
    def energies(self) -> Float[Array, "T n"]:
        """Mode energies $\\varepsilon_k = c_k^2$."""
        return self.coefficients**2

    @property
    def loss(self) -> Float[Array, " T"]:
        """$L = \\sum_k \\varepsilon_k / (2n)$."""
        return jnp.sum(self.energies, axis=-1) / (2 * self.coefficients.shape[-1])

    @property
    def degenerate_pairs(self) -> list[tuple[float, int, int, float]]:
        """Near-degenerate adjacent pairs at the saved times: (t, k, k+1, relative gap)."""
        gaps, ts = np.asarray(self.relative_gaps), np.asarray(self.ts)
        hits = np.argwhere(gaps < self.degeneracy_threshold)
        return [(float(ts[i]), int(k), int(k) + 1, float(gaps[i, k])) for i, k in hits]

    @property
    def crossings(self) -> list[tuple[float, float, tuple[int, ...]]]:
        """Changes of the sorted order between saved times: (t_i, t_{i+1}, labels that moved)."""
        order, ts = np.asarray(self.order), np.asarray(self.ts)
        out = []
        for i in range(order.shape[0] - 1):
            moved = order[i] != order[i + 1]
            if np.any(moved):
                out.append((float(ts[i]), float(ts[i + 1]), tuple(int(x) for x in order[i][moved])))
        return out

    @property
    def succeeded(self) -> bool:
        return self.error is None and bool(self.result == diffrax.RESULTS.successful)


def as_index(x):
    # Saved as floats because diffrax fills saves past an early stop with inf; those become -1.
    return jnp.where(jnp.isfinite(x), x, -1).astype(jnp.int32)


def relative_gaps(lam):
    """Adjacent gaps of a (T, n) descending spectrum over its largest eigenvalue."""
    scale = jnp.maximum(jnp.abs(lam[:, :1]), jnp.finfo(lam.dtype).tiny)
    if lam.shape[1] > 1:
        return (lam[:, :-1] - lam[:, 1:]) / scale
    return jnp.full((lam.shape[0], 1), jnp.inf, lam.dtype)
