"""Shell energy budget: intra-shell cancellation, closed budgets with migration, the frontier.

Three runs, all float64:

1. `RotatingPowerLaw` (fixed eigenvalues $\\lambda_k = k^{-\\alpha}$, banded rotation): the shell
   ODE $dE_s/dt = -D_s + \\Pi_{s-1|s} - \\Pi_{s|s+1}$ evaluated along `solve_kato` (modewise)
   and from $(M, \\dot M, e)$ (projector form) against the analytic derivative of the closed
   form $c(t) = e^{-(\\Lambda+A)t}c_0$; plus the intra-shell cancellation numbers.
2. `BreathingSpectrum` (moving eigenvalues $\\lambda_k(t) = \\lambda_k(0)^{p(t)}$ that cross
   shell edges in both directions, rotating eigenvectors): windowed budget with migration,
   residual with and without the migration term.
3. A long log-time run of the rotating power law (and of the frozen spectrum) for the
   resolution frontier against the lazy $\\ln 2/(2t)$, and the heat-map figure.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import spectral_jax as sj

from ._common import enable_float64, write_result

NAME = "shell_budget"


class BreathingSpectrum(sj.AbstractOperator):
    """$M(t) = R(t)\\,\\mathrm{diag}(\\lambda(0)^{p(t)})\\,R(t)^T$, a moving-eigenvalue check case.

    $p(t) = 1 + a\\sin(\\omega t)$ moves every eigenvalue below 1 down and up again across
    logarithmic shell edges (the map $x \\mapsto x^p$ keeps the order, so modes never cross
    each other). $R(t) = Q B(t) Q^T$ with $B$ block-diagonal plane rotations at rates
    `frequencies`, i.e. $R = e^{tA}$ with $A = QJQ^T$; in the frame $\\Phi = R$ the Kato
    generator is $W = -A$. $\\dot M = R(AD - DA + \\dot D)R^T$ in closed form.
    """

    base: jax.Array  # λ(0), (n,)
    basis: jax.Array  # Q, (n, n) orthogonal
    frequencies: jax.Array  # (n // 2,)
    amplitude: jax.Array
    omega: jax.Array

    def __init__(self, base, basis, frequencies, amplitude, omega):
        self.base = jnp.asarray(base)
        self.basis = jnp.asarray(basis, self.base.dtype)
        self.frequencies = jnp.asarray(frequencies, self.base.dtype)
        self.amplitude = jnp.asarray(amplitude, self.base.dtype)
        self.omega = jnp.asarray(omega, self.base.dtype)

    @classmethod
    def random(cls, n, exponent, coupling, amplitude, omega, seed, dtype=jnp.float64):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        base = np.arange(1, n + 1, dtype=np.float64) ** -exponent
        freqs = coupling * rng.uniform(0.5, 1.5, size=n // 2)
        return cls(jnp.asarray(base, dtype), q, freqs, amplitude, omega)

    def _plane_rotation(self, t):
        n = self.base.shape[0]
        m = self.frequencies.shape[0]
        theta = self.frequencies * t
        even, odd = 2 * jnp.arange(m), 2 * jnp.arange(m) + 1
        diag = jnp.ones(n, self.dtype).at[even].set(jnp.cos(theta)).at[odd].set(jnp.cos(theta))
        b = jnp.diag(diag)
        return b.at[even, odd].set(-jnp.sin(theta)).at[odd, even].set(jnp.sin(theta))

    def generator(self):
        n, m = self.base.shape[0], self.frequencies.shape[0]
        even, odd = 2 * jnp.arange(m), 2 * jnp.arange(m) + 1
        j = jnp.zeros((n, n), self.dtype).at[even, odd].set(-self.frequencies)
        j = j.at[odd, even].set(self.frequencies)
        return self.basis @ j @ self.basis.T

    def eigenvalues(self, t):
        t = jnp.asarray(t, self.dtype)
        return self.base ** (1.0 + self.amplitude * jnp.sin(self.omega * t))

    def _parts(self, t):
        t = jnp.asarray(t, self.dtype)
        r = self.basis @ self._plane_rotation(t) @ self.basis.T
        lam = self.eigenvalues(t)
        dp = self.amplitude * self.omega * jnp.cos(self.omega * t)
        return r, lam, lam * jnp.log(self.base) * dp

    def __call__(self, t):
        r, lam, _ = self._parts(t)
        return (r * lam[None, :]) @ r.T

    def value_and_derivative(self, t):
        r, lam, dlam = self._parts(t)
        a = self.generator()
        inner = a * (lam[None, :] - lam[:, None]) + jnp.diag(dlam)
        return (r * lam[None, :]) @ r.T, r @ inner @ r.T

    @property
    def dtype(self):
        return self.base.dtype


@dataclasses.dataclass(frozen=True)
class Config:
    preset: str = "quick"
    n: int = 24
    exponent: float = 1.5  # λ_k = k^-α
    target_exponent: float = 2.0  # ε_k(0) ∝ k^-β
    ratio: float = 2.0
    coupling: float = 0.05
    bandwidth: int = 3
    # closed-form check
    t_check: float = 20.0
    num_check: int = 64
    # moving spectrum
    amplitude: float = 0.35
    omega: float = 0.6
    t_moving: float = 20.0
    num_windows: int = 80
    # frontier run (log times)
    t_min: float = 0.05
    t_max_factor: float = 4.0  # t_max = factor / λ_min
    num_log_windows: int = 60
    rtol: float = 1e-10
    atol: float = 1e-12
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def full(cls) -> Config:
        return cls(preset="full", n=96, num_windows=200, num_log_windows=120, num_check=256)


def run(config: Config, out_dir: pathlib.Path) -> dict:
    enable_float64()
    from spectral_jax.shells.windowed import budget_residual, windowed_budget
    from spectral_jax.shells.frontier import resolution_frontier
    from spectral_jax.shells.plotting import plot_shell_dynamics
    from spectral_jax.shells.projector import projector_budget_along

    n = config.n
    k = np.arange(1, n + 1, dtype=np.float64)
    lam = jnp.asarray(k**-config.exponent)
    c0 = jnp.asarray(k ** (-config.target_exponent / 2))
    a = jnp.asarray(sj.banded_generator(n, config.bandwidth, config.coupling, config.seed))
    # λ_ref a little above λ_1 so that no eigenvalue sits exactly on an edge.
    shells = sj.LogShells.covering(float(lam[0]), float(lam[-1]), config.ratio, margin=1.1)
    out: dict = {"config": config, "shells": {"lam_ref": float(shells.lam_ref),
                                              "ratio": float(shells.ratio),
                                              "count": shells.count}}

    # 1. Fixed eigenvalues: pointwise shell ODE against the closed form.
    op = sj.RotatingPowerLaw(lam, a)
    ts = jnp.linspace(0.0, config.t_check, config.num_check)
    start = time.perf_counter()
    sol = sj.solve_kato(op, c0, ts, rtol=config.rtol, atol=config.atol)
    modewise = sj.shell_budget(shells, sol.eigenvalues, sol.coefficients, sol.generator)
    projector = projector_budget_along(shells, op, sol.ts, sol.residuals)
    exact_c = jax.vmap(lambda t: op.exact_coefficients(t, c0))(ts)
    exact_dc = -(exact_c * lam[None, :] + exact_c @ a.T)
    member = shells.membership(lam)
    exact_rate = (2.0 * exact_c * exact_dc) @ member
    exact_energy = exact_c**2 @ member
    total0 = float(jnp.sum(c0**2))
    tr = modewise.transfer
    out["fixed_spectrum"] = {
        "max_rate_residual_modewise": float(jnp.max(jnp.abs(modewise.rate - exact_rate))) / total0,
        "max_rate_residual_projector": float(jnp.max(jnp.abs(projector.rate - exact_rate)))
        / total0,
        "max_energy_error": float(jnp.max(jnp.abs(modewise.energy - exact_energy))) / total0,
        "max_projector_vs_modewise_transfer": float(jnp.max(jnp.abs(projector.transfer - tr)))
        / float(jnp.max(jnp.abs(tr))),
        "max_transfer_diagonal_relative": float(
            jnp.max(jnp.abs(jnp.diagonal(tr, axis1=1, axis2=2))) / jnp.max(jnp.abs(tr))
        ),
        "max_transfer_asymmetry": float(jnp.max(jnp.abs(tr + jnp.swapaxes(tr, 1, 2)))),
        "seconds": time.perf_counter() - start,
    }

    # 2. Moving eigenvalues: windowed budget with migration.
    moving = BreathingSpectrum.random(n, config.exponent, 4 * config.coupling,
                                      config.amplitude, config.omega, config.seed)
    ts_m = jnp.linspace(0.0, config.t_moving, config.num_windows + 1)
    start = time.perf_counter()
    wb = windowed_budget(shells, moving, c0, ts_m, rtol=config.rtol, atol=config.atol)
    res = budget_residual(wb)
    without = res + wb.migration / wb.total_energy[0]
    wb_p = windowed_budget(shells, moving, c0, ts_m, form="projector", rtol=config.rtol,
                           atol=config.atol, crossings=wb.crossings)
    out["moving_spectrum"] = {
        "crossings": wb.crossings.count,
        "max_relative_residual": float(jnp.max(jnp.abs(res))),
        "whole_run_relative_residual": float(jnp.max(jnp.abs(jnp.sum(res, axis=0)))),
        "max_relative_residual_projector_form": wb_p.max_relative_residual,
        "max_relative_residual_without_migration": float(jnp.max(jnp.abs(without))),
        "total_migrated_energy_relative": float(jnp.sum(jnp.abs(wb.migration)) / 2)
        / float(wb.total_energy[0]),
        "seconds": time.perf_counter() - start,
    }

    # 3. Frontier on log-spaced windows: rotating power law and the frozen spectrum.
    t_max = config.t_max_factor / float(lam[-1])
    ts_log = jnp.concatenate(
        [jnp.zeros(1), jnp.geomspace(config.t_min, t_max, config.num_log_windows)]
    )
    start = time.perf_counter()
    wb_log = windowed_budget(shells, op, c0, ts_log, rtol=config.rtol, atol=config.atol)
    frontier = resolution_frontier(shells, wb_log.energy)
    frozen = sj.FrozenOperator(jnp.diag(lam))
    wb_frozen = windowed_budget(shells, frozen, c0, ts_log, rtol=config.rtol, atol=config.atol)
    frontier_frozen = resolution_frontier(shells, wb_frozen.energy)
    lazy = np.log(2.0) / (2.0 * np.asarray(ts_log[1:]))
    ok = np.isfinite(np.asarray(frontier_frozen.eigenvalue[1:]))
    log_err = np.log(np.asarray(frontier_frozen.eigenvalue[1:])[ok] / lazy[ok])
    out["frontier"] = {
        "max_relative_residual_rotating": wb_log.max_relative_residual,
        "max_relative_residual_frozen": wb_frozen.max_relative_residual,
        "frozen_max_abs_flux": float(jnp.max(jnp.abs(wb_frozen.flux))),
        "frozen_frontier_max_abs_log_error_vs_lazy": float(np.max(np.abs(log_err))),
        "frontier_bound_half_shell": float(np.log(config.ratio) / 2),
        "times": np.asarray(ts_log),
        "eigenvalue_rotating": np.asarray(frontier.eigenvalue),
        "eigenvalue_frozen": np.asarray(frontier_frozen.eigenvalue),
        "seconds": time.perf_counter() - start,
    }
    fig = plot_shell_dynamics(
        np.asarray(ts_log), wb_log, shells, frontier=frontier, path=out_dir / f"{NAME}.png",
        title=f"rotating power law, n={n}: shell energy fraction and frontier",
    )
    import matplotlib.pyplot as plt

    plt.close(fig)
    write_result(out_dir, NAME, out)
    fs, ms, fr = out["fixed_spectrum"], out["moving_spectrum"], out["frontier"]
    print(
        f"[{NAME}] fixed: rate residual {fs['max_rate_residual_modewise']:.1e} (modewise), "
        f"{fs['max_rate_residual_projector']:.1e} (projector); moving: {ms['crossings']} "
        f"crossings, residual {ms['max_relative_residual']:.1e} (without migration "
        f"{ms['max_relative_residual_without_migration']:.1e}); frozen frontier |log err| "
        f"{fr['frozen_frontier_max_abs_log_error_vs_lazy']:.2f} "
        f"<= {fr['frontier_bound_half_shell']:.2f}"
    )
    return out

