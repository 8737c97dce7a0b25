"""From a recorded training run to its spectral-shell analysis (docs/theory.md §2.2–2.4, 2.7)."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..modes.kato import KatoSolution, solve_kato
from ..shells import LogShells, ShellBudget, shell_budget
from .lazy import lazy_test_error_by_shell
from .record import TrainingRecord

__all__ = ["NetworkAnalysis", "analyze_training", "default_shells"]

# Eigenvalues below this fraction of the largest are round-off of a PSD kernel, not spectrum.
_ROUNDOFF_FLOOR = 1e-12


class NetworkAnalysis(eqx.Module):
    """Spectral-shell analysis of a recorded run, at the record's times (T,).

    - `kato`: `KatoSolution` of $\\dot c = (W - \\Lambda)c$ on the recorded operator.
    - `residual_error` (T,): $\\|e_\\text{Kato} - e_\\text{network}\\| / \\|e_\\text{network}\\|$.
    - `shells`, `budget`: `LogShells` and the (T, ...) `ShellBudget` (energy, dissipation,
      transfer, flux).
    - `frontier`: `spectral_jax.resolution_frontier(shells, budget.energy)`.
    - `kernel_velocity` (T,): $\\|\\dot M\\|_F/\\|M\\|_F$; `kernel_change`: $\\|M(t_{T-1}) -
      M(t_0)\\|_F/\\|M(t_0)\\|_F$.
    - `flux_to_dissipation`: $\\int \\sum_s |\\Pi_{s|s+1}|\\,dt \\,/\\, \\int \\sum_s D_s\\,dt$
      (trapezoid over the record's times): how much energy moves between shells per unit
      dissipated. Zero for a frozen kernel.
    - `test_error` (T,): measured test loss $\\|f(x^*) - y^*\\|^2/(2m)$ (None without test data).
    - `lazy_test_error` (T,): test loss of the frozen-kernel prediction of docs/theory.md §2.7.
    - `test_error_by_shell`, `test_error_gain_by_shell` (T, S+2): see
      `lazy_test_error_by_shell` (the last column of the first equals `lazy_test_error`).
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
    test_error_by_shell: Float[Array, "T shells"] | None
    test_error_gain_by_shell: Float[Array, "T shells"] | None


def _off_lattice_offset(u: np.ndarray, log_ratio: float) -> float:
    """δ in (0, ln b) that keeps every $\\ln\\lambda_\\text{top} - u_k + \\delta$ farthest from
    the edge lattice $\\ln\\lambda_\\text{ref} - s \\ln b$.

    Mode k sits on an edge when δ ≡ -u_k (mod ln b): take the middle of the widest gap between
    those forbidden offsets on the circle [0, ln b). The top mode (u = 0) forbids δ = 0, so the
    result is strictly above λ_top; at least ln b/(2(N+1)) from every edge for N values.
    """
    forbidden = np.unique(np.mod(-u, log_ratio))
    points = np.concatenate([[0.0], forbidden[forbidden > 0], [log_ratio]])
    widest = int(np.argmax(np.diff(points)))
    return 0.5 * float(points[widest] + points[widest + 1])


def default_shells(
    eigenvalues: Float[ArrayLike, "*T n"], ratio: float = 2.0, count=None
) -> LogShells:
    """Shells for a recorded spectrum: $\\lambda_\\text{ref}$ just above the largest eigenvalue
    and off the lattice of the spectrum; enough shells (unless `count` is given) to reach the
    smallest eigenvalue at the start that is above round-off (1e-12 λ_ref).

    Why not $\\lambda_\\text{ref} = \\lambda_\\max$: the top mode would sit exactly on the edge of
    shells 0 and 1 and round-off would decide its shell, and so would every eigenvalue of a
    pure power law on the lattice $\\lambda_\\max b^{-s}$ (docs/theory.md §2.4). A fixed offset
    such as $b^{1/2}$ is no cure ($\\lambda_k = k^{-1/2}$ with b = 2 puts $k = 2^{2s-1}$ on its
    edges), so the offset is chosen from the data: the log-midpoint of the widest gap left by
    all recorded eigenvalues above round-off, taken modulo ln b. Shell 0 is then empty and the
    largest recorded eigenvalue is in shell 1 at every time.

    **Arguments:** `eigenvalues` (T, n) (or (n,)), e.g. `record.eigenvalues`; `ratio` b > 1;
    `count` S ≥ 1 (default: computed).

    **Raises:** `ValueError` without a positive eigenvalue, or for a ratio that is not > 1.
    """
    lam = np.asarray(eigenvalues)
    lam = lam.reshape(-1, lam.shape[-1]) if lam.ndim else lam.reshape(1, 1)
    if not np.all(np.isfinite(lam)):
        raise ValueError("default_shells: eigenvalues contain NaN or Inf")
    lam_top = float(lam.max())
    if not lam_top > 0:
        raise ValueError(f"default_shells: no positive eigenvalue (largest is {lam_top!r})")
    if not (np.isfinite(ratio) and ratio > 1):
        raise ValueError(f"default_shells: ratio must be finite and > 1, got {ratio!r}")
    log_ratio = math.log(ratio)
    above = lam[lam > _ROUNDOFF_FLOOR * lam_top].astype(np.float64)
    lam_ref = lam_top * math.exp(_off_lattice_offset(np.log(lam_top) - np.log(above), log_ratio))
    if count is None:
        start = lam[0]
        floor = float(start[start > _ROUNDOFF_FLOOR * lam_ref].min())
        count = max(1, math.ceil(math.log(lam_ref / floor) / log_ratio))
    return LogShells(jnp.asarray(lam_ref, lam.dtype), jnp.asarray(ratio, lam.dtype), int(count))


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
    `shell_budget`; frontier via `resolution_frontier`; test error by shell as in
    docs/theory.md §2.7 (`lazy_test_error_by_shell`).

    **Arguments:** `record` (a `TrainingRecord`, float64 for meaningful Kato denominators);
    `shells`; `ratio`, `count` for the default shells; `rtol`, `atol` for `solve_kato`;
    `use_derivatives` selects the Hermite (recorded $\\dot M$) or spline interpolant.

    **Returns:** a `NetworkAnalysis`.

    **Raises:** `ValueError` for a record with fewer than 3 saved times.
    """
    from ..shells.frontier import resolution_frontier

    if record.ts.shape[0] < 3:
        raise ValueError(
            f"analyze_training: the record needs at least 3 saved times, got {record.ts.shape[0]}"
        )
    op = record.operator(use_derivatives=use_derivatives)
    kato = solve_kato(op, record.residuals[0], record.ts, rtol=rtol, atol=atol)
    scale = jnp.maximum(
        jnp.linalg.norm(record.residuals, axis=1), jnp.finfo(record.residuals.dtype).tiny
    )
    residual_error = jnp.linalg.norm(kato.residuals - record.residuals, axis=1) / scale
    if shells is None:
        shells = default_shells(record.eigenvalues, ratio, count)
    budget = shell_budget(shells, kato.eigenvalues, kato.coefficients, kato.generator)
    ts = record.ts
    flux = _trapezoid(jnp.sum(jnp.abs(budget.flux), axis=-1), ts)
    dissipation = _trapezoid(jnp.sum(budget.dissipation, axis=-1), ts)
    m0 = record.kernels[0]
    kernel_change = jnp.linalg.norm(record.kernels[-1] - m0) / jnp.linalg.norm(m0)

    test_error = lazy = by_shell = gain = None
    if record.test_predictions is not None:
        test_error = record.test_loss
        by_shell, gain = lazy_test_error_by_shell(record, shells)
        lazy = by_shell[:, -1]
    return NetworkAnalysis(
        ts=ts,
        kato=kato,
        residual_error=residual_error,
        shells=shells,
        budget=budget,
        frontier=resolution_frontier(shells, budget.energy),
        kernel_velocity=record.kernel_velocity,
        kernel_change=kernel_change,
        flux_to_dissipation=flux / dissipation,
        test_error=test_error,
        lazy_test_error=lazy,
        test_error_by_shell=by_shell,
        test_error_gain_by_shell=gain,
    )
