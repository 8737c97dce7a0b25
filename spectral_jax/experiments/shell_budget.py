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
   resolution frontier against the lazy $\\ln 2/(2t)$.

Figure: the rate residual of run 1 along t, the windowed budget residual of run 2 with and
without migration, and the frontier of run 3 against the lazy line, each with its number.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import spectral_jax as sj

from ._breathing_spectrum import BreathingSpectrum
from ._common import ExperimentConfig, enable_float64, publish
from ._figures import claim_title, new_figure, sci

NAME = "shell_budget"
__all__ = ["NAME", "BreathingSpectrum", "Config", "run"]


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
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
    def full(cls) -> Config:
        return cls(n=96, num_windows=200, num_log_windows=120, num_check=256)


def run(config: Config, out_dir: pathlib.Path) -> dict:
    enable_float64()
    from spectral_jax.shells.frontier import resolution_frontier
    from spectral_jax.shells.projector import projector_budget_along
    from spectral_jax.shells.windowed import budget_residual, windowed_budget

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
    curves = {
        "t_check": np.asarray(ts),
        "rate_error_modewise": np.max(np.abs(np.asarray(modewise.rate - exact_rate)), 1) / total0,
        "rate_error_projector": np.max(np.abs(np.asarray(projector.rate - exact_rate)), 1)
        / total0,
    }
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
    curves["t_windows"] = np.asarray(ts_m)
    curves["window_residual"] = np.max(np.abs(np.asarray(res)), 1)
    curves["window_residual_without_migration"] = np.max(np.abs(np.asarray(without)), 1)
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
    curves["energy_fraction"] = np.asarray(frontier.fraction)
    curves["edges"] = np.asarray(shells.edges)
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
    figure = _figure(config, curves, out)
    fs, ms, fr = out["fixed_spectrum"], out["moving_spectrum"], out["frontier"]
    print(
        f"[{NAME}] fixed: rate residual {fs['max_rate_residual_modewise']:.1e} (modewise), "
        f"{fs['max_rate_residual_projector']:.1e} (projector); moving: {ms['crossings']} "
        f"crossings, residual {ms['max_relative_residual']:.1e} (without migration "
        f"{ms['max_relative_residual_without_migration']:.1e}); frozen frontier |log err| "
        f"{fr['frozen_frontier_max_abs_log_error_vs_lazy']:.2f} "
        f"<= {fr['frontier_bound_half_shell']:.2f}"
    )
    return publish(out_dir, NAME, out, figure)


def _positive(values):
    values = np.asarray(values, dtype=np.float64)
    return np.where(values > 0, values, np.nan)  # exact zeros have no place on a log axis


def _figure(config, curves, out):
    fs, ms, fr = out["fixed_spectrum"], out["moving_spectrum"], out["frontier"]
    fig, axes = new_figure([["rate", "window"], ["frontier", "frontier"]], panel=(5.5, 4.2))
    ax, bx, cx = axes["rate"], axes["window"], axes["frontier"]

    t = curves["t_check"]
    ax.plot(t, _positive(curves["rate_error_modewise"]), label="modewise (Kato)")
    ax.plot(t, _positive(curves["rate_error_projector"]), ls="--",
            label=r"projector $(M, \dot M, e)$")
    ax.set_yscale("log")
    ax.set_xlabel(r"$t$")
    ax.set_ylabel(r"$\max_s|dE_s/dt - \mathrm{exact}|\,/\,E(0)$")
    ax.set_title("1. fixed spectrum: shell ODE vs closed form")
    ax.legend(loc="lower right")

    tw = curves["t_windows"][1:]
    bx.plot(tw, _positive(curves["window_residual"]), marker="o", ms=3, label="with migration")
    bx.plot(tw, _positive(curves["window_residual_without_migration"]), marker="s", ms=3,
            label="without migration")
    bx.set_yscale("log")
    bx.set_xlabel(r"window end $t$")
    bx.set_ylabel(r"$\max_s$ |budget residual| / $E(0)$")
    bx.set_title(f"2. moving spectrum: {ms['crossings']} edge crossings")
    bx.legend(loc="center right")

    from matplotlib.colors import LogNorm

    times = np.asarray(fr["times"])
    keep = times > 0
    tk = times[keep]
    # Heat map of E_s(t)/E_s(0) on shells 1..S, drawn at their λ range; shells empty at t = 0
    # (no fraction to show) are left out rather than drawn as blank rows.
    fraction = curves["energy_fraction"][keep][:, 1:-1]
    edges = curves["edges"]
    mid = np.sqrt(tk[1:] * tk[:-1])
    t_edges = np.concatenate([[tk[0] ** 2 / mid[0]], mid, [tk[-1] ** 2 / mid[-1]]])
    shown = np.ma.masked_invalid(np.where(fraction > 0, fraction, np.nan)).T
    mesh = cx.pcolormesh(t_edges, edges, shown, cmap="viridis", shading="flat",
                         norm=LogNorm(vmin=max(float(shown.min()), 1e-8), vmax=1.0))
    fig.colorbar(mesh, ax=cx, label=r"shell energy $E_s(t)/E_s(0)$")
    lazy = np.log(2.0) / (2.0 * tk)
    half = np.sqrt(config.ratio)  # half a shell on either side, in λ
    cx.plot(tk, lazy, color="k", ls="--", lw=1.2, label=r"lazy $\ln 2/(2t)$")
    cx.plot(tk, lazy / half, color="k", ls=":", lw=1, label="± half a shell")
    cx.plot(tk, lazy * half, color="k", ls=":", lw=1)
    cx.plot(tk, np.asarray(fr["eigenvalue_frozen"])[keep], "o", mfc="white", mec="k", ms=4,
            label=r"frontier $\lambda^*(t)$, frozen kernel")
    cx.plot(tk, np.asarray(fr["eigenvalue_rotating"])[keep], color="tab:red", lw=2,
            label=r"frontier $\lambda^*(t)$, rotating")
    cx.set_xscale("log")
    cx.set_yscale("log")
    cx.set_ylim(edges[-1], edges[0])
    cx.set_xlim(t_edges[0], t_edges[-1])
    cx.set_xlabel(r"$t$")
    cx.set_ylabel(r"eigenvalue $\lambda$ (shells of ratio " f"{config.ratio:g})")
    cx.set_title(rf"3. rotating power law, $n = {config.n}$: shells drain behind the frontier")
    cx.legend(loc="lower left", framealpha=0.8)
    claim_title(
        fig,
        f"The shell budget closes: to {sci(fs['max_rate_residual_modewise'])} of E(0) "
        f"pointwise, to {sci(ms['max_relative_residual'])} per window with migration "
        f"({sci(ms['max_relative_residual_without_migration'])} without)",
        f"frozen-kernel frontier within |log error| "
        f"{fr['frozen_frontier_max_abs_log_error_vs_lazy']:.2f} of the lazy line "
        f"(half a shell: {fr['frontier_bound_half_shell']:.2f})",
    )
    return fig

