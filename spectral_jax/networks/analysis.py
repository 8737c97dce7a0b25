"""From a recorded training run to its full spectral-shell analysis (docs/theory.md §2.2–2.4, 2.7)."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..modes.kato import KatoSolution, solve_kato
from ..shells.grid import LogShells, ShellBudget, shell_budget
from ..networks.training import TrainingRecord

__all__ = ["NetworkAnalysis", "analyze_training", "default_shells", "lazy_test_predictions"]


class NetworkAnalysis(eqx.Module):
    """Spectral-shell analysis of a recorded run, at the record's times (T,).

    - `kato`: `KatoSolution` of $\\dot c = (W - \\Lambda)c$ on the recorded operator.
    - `residual_error` (T,): $\\|e_\\text{Kato} - e_\\text{network}\\| / \\|e_\\text{network}\\|$.
    - `shells`, `budget`: `LogShells` and the (T, ...) `ShellBudget` (energy, dissipation,
      transfer, flux).
    - `frontier`: `spectral_jax.frontier.resolution_frontier(shells, budget.energy)`, or None
      if that module is not available.
    - `kernel_velocity` (T,): $\\|\\dot M\\|_F/\\|M\\|_F$; `kernel_change`: $\\|M(t_{T-1}) -
      M(t_0)\\|_F/\\|M(t_0)\\|_F$.
    - `flux_to_dissipation`: $\\int \\sum_s |\\Pi_{s|s+1}|\\,dt \\,/\\, \\int \\sum_s D_s\\,dt$
      (trapezoid over the record's times): how much energy moves between shells per unit
      dissipated. Zero for a frozen kernel.
    - `test_error` (T,): measured test loss $\\|f(x^*) - y^*\\|^2/(2m)$ (None without test data).
    - `lazy_test_error` (T,): test loss of the frozen-kernel prediction of docs/theory.md §2.7.
    - `test_error_by_shell` (T, S+2): test loss of the frozen-kernel prediction with only shells
      0..s learned (cumulative in s; the last column equals `lazy_test_error`); shell
      membership from the eigenvalues at $t_0$. `test_error_gain_by_shell` (T, S+2): its
      decrease contributed by each shell (the first column relative to the untrained $f_0$).
    """

    ts: Float[Array, " T"]
    kato: KatoSolution
    residual_error: Float[Array, " T"]
    shells: LogShells
    budget: ShellBudget
    frontier: Any
    kernel_velocity: Float[Array, " T"]
    kernel_change: Float[Array, ""]
    flux_to_dissipation: Float[Array, ""]
    test_error: Float[Array, " T"] | None
    lazy_test_error: Float[Array, " T"] | None
    test_error_by_shell: Float[Array, "T S+2"] | None
    test_error_gain_by_shell: Float[Array, "T S+2"] | None


def default_shells(eigenvalues: Float[Array, "T n"], ratio: float = 2.0, count=None) -> LogShells:
    """Shells from the recorded spectrum: $\\lambda_\\text{ref}$ = the largest eigenvalue seen,
    and enough shells (unless `count` is given) to reach the smallest eigenvalue at the start
    that is above round-off (1e-12 × λ_ref)."""
    lam = np.asarray(eigenvalues)
    lam_ref = float(lam.max())
    if not lam_ref > 0:
        raise ValueError("default_shells: the recorded kernel has no positive eigenvalue")
    if count is None:
        start = lam[0]
        floor = start[start > 1e-12 * lam_ref].min()
        count = max(1, math.ceil(math.log(lam_ref / floor) / math.log(ratio)))
    return LogShells(jnp.asarray(lam_ref, lam.dtype), jnp.asarray(ratio, lam.dtype), int(count))


def lazy_test_predictions(record: TrainingRecord):
    """Frozen-kernel test predictions split by mode (docs/theory.md §2.7), kernel frozen at $t_0$.

    $f_t(x^*) = f_0(x^*) - K(x^*, X)\\,\\Phi\\,\\mathrm{diag}\\big((1 - e^{-\\lambda_k t})/(n
    \\lambda_k)\\big)\\,\\Phi^T e(0)$.

    **Returns:** `(f0 (m,), contributions (T, m, n), eigenvalues (n,))`: column k of
    `contributions[i]` is mode k's term at time `ts[i]`; modes in descending order.
    """
    if record.test_kernels is None:
        raise ValueError("lazy_test_predictions: the record has no test data")
    n = record.n
    lam, phi = jnp.linalg.eigh(record.kernels[0])
    lam, phi = lam[::-1], phi[:, ::-1]
    c0 = phi.T @ record.residuals[0]
    t = record.ts - record.ts[0]
    lt = lam[None, :] * t[:, None]
    tiny = jnp.finfo(lam.dtype).tiny
    safe = jnp.where(jnp.abs(lam) > tiny, lam, 1.0)[None, :]
    # (1 - e^{-λt})/λ, → t as λ → 0 (zero modes of M are never learned by a frozen kernel).
    gain = jnp.where(jnp.abs(lam)[None, :] > tiny, -jnp.expm1(-lt) / safe, t[:, None])
    projected = record.test_kernels[0] @ phi / n  # (m, n)
    contributions = -projected[None, :, :] * (gain * c0[None, :])[:, None, :]
    return record.test_predictions[0], contributions, lam


def _trapezoid(y, t):
    dt = t[1:] - t[:-1]
    return jnp.sum(0.5 * (y[1:] + y[:-1]) * dt)


def analyze_training(
    record: TrainingRecord,
    shells: LogShells | None = None,
    *,
    ratio: float = 2.0,
    count: int | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    use_derivatives: bool = True,
) -> NetworkAnalysis:
    """Full spectral-shell analysis of a recorded run.

    Modes: `solve_kato` on `record.operator()` from the network's initial residual; shells:
    `shells` (default `default_shells(record.eigenvalues, ratio, count)`); budgets via
    `shell_budget`; frontier via `spectral_jax.frontier.resolution_frontier` when available;
    test error by shell as in docs/theory.md §2.7.

    **Arguments:** `record` (a `TrainingRecord`, float64 for meaningful Kato denominators);
    `shells`; `ratio`, `count` for the default shells; `rtol`, `atol` for `solve_kato`;
    `use_derivatives` selects the Hermite (recorded $\\dot M$) or spline interpolant.

    **Returns:** a `NetworkAnalysis`.
    """
    if record.ts.shape[0] < 3:
        raise ValueError("analyze_training: the record needs at least 3 saved times")
    op = record.operator(use_derivatives=use_derivatives)
    kato = solve_kato(op, record.residuals[0], record.ts, rtol=rtol, atol=atol)
    scale = jnp.maximum(
        jnp.linalg.norm(record.residuals, axis=1), jnp.finfo(record.residuals.dtype).tiny
    )
    residual_error = jnp.linalg.norm(kato.residuals - record.residuals, axis=1) / scale
    if shells is None:
        shells = default_shells(record.eigenvalues, ratio, count)
    budget = shell_budget(shells, kato.eigenvalues, kato.coefficients, kato.generator)
    try:
        from ..shells.frontier import resolution_frontier
    except ImportError:
        frontier = None
    else:
        frontier = resolution_frontier(shells, budget.energy)
    ts = record.ts
    flux = _trapezoid(jnp.sum(jnp.abs(budget.flux), axis=-1), ts)
    dissipation = _trapezoid(jnp.sum(budget.dissipation, axis=-1), ts)
    m0 = record.kernels[0]
    kernel_change = jnp.linalg.norm(record.kernels[-1] - m0) / jnp.linalg.norm(m0)

    test_error = lazy = by_shell = gain = None
    if record.test_predictions is not None:
        test_error = record.test_loss
        f0, contributions, lam0 = lazy_test_predictions(record)
        member = shells.membership(lam0)  # (n, S+2)
        per_shell = jnp.einsum("tmk,ks->tms", contributions, member)
        cumulative = f0[None, :, None] + jnp.cumsum(per_shell, axis=-1)
        err = cumulative - record.y_test[None, :, None]
        m = record.y_test.shape[0]
        by_shell = jnp.sum(err**2, axis=1) / (2 * m)
        lazy = by_shell[:, -1]
        untrained = jnp.sum((f0 - record.y_test) ** 2) / (2 * m)
        previous = jnp.concatenate(
            [jnp.broadcast_to(untrained, (ts.shape[0], 1)), by_shell[:, :-1]], axis=1
        )
        gain = previous - by_shell
    return NetworkAnalysis(
        ts=ts,
        kato=kato,
        residual_error=residual_error,
        shells=shells,
        budget=budget,
        frontier=frontier,
        kernel_velocity=record.kernel_velocity,
        kernel_change=kernel_change,
        flux_to_dissipation=flux / dissipation,
        test_error=test_error,
        lazy_test_error=lazy,
        test_error_by_shell=by_shell,
        test_error_gain_by_shell=gain,
    )
