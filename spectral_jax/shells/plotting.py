"""Figures of shell dynamics: energy heat map with the resolution frontier, and net fluxes.

matplotlib is imported lazily inside the functions, and the Agg backend is only requested
when no backend has been chosen yet (`force=False`): importing this module changes nothing.
"""

from __future__ import annotations

import pathlib

import numpy as np

__all__ = ["plot_shell_dynamics"]


def _as_numpy(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def _log_edges(ts: np.ndarray) -> np.ndarray:
    """Cell edges in t for a pcolormesh on a log axis (geometric midpoints)."""
    mid = np.sqrt(ts[1:] * ts[:-1])
    first = ts[0] ** 2 / mid[0]
    last = ts[-1] ** 2 / mid[-1]
    return np.concatenate([[first], mid, [last]])


def plot_shell_dynamics(
    ts,
    budget_or_energy,
    shells,
    frontier=None,
    path: str | pathlib.Path | None = None,
    *,
    flux=None,
    normalize: str = "fraction",
    title: str | None = None,
):
    """Shell energy over (log t, shell) with the frontier, and net flux per boundary vs t.

    **Arguments:**
    - `ts`: (T,) times (t ≤ 0 entries are dropped from the log-time plots).
    - `budget_or_energy`: a `WindowedBudget` (energies at `ts`; the flux panel shows the
      window-averaged flux $\\int\\Pi\\,dt/\\Delta t$ at the windows' geometric midpoints), a
      `ShellBudget` with a time axis (energies and instantaneous flux), or a (T, S+2) energy
      array (flux panel only if `flux` is given).
    - `shells`: the `LogShells`.
    - `frontier`: a `Frontier`; computed with `resolution_frontier` when None.
    - `path`: where to save the figure (PNG/PDF by suffix); None to only return it.
    - `flux`: optional (T, S+1) flux to plot at `ts` (overrides the budget's).
    - `normalize`: `"fraction"` colours $E_s(t)/E_s(t_0)$ (log scale), `"total"` colours
      $E_s(t)/\\sum_s E_s(t_0)$.

    **Returns:** the matplotlib `Figure`.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from ..shells.windowed import WindowedBudget
    from ..shells.frontier import resolution_frontier
    from ..shells.grid import ShellBudget

    ts = _as_numpy(ts)
    flux_t = None
    if isinstance(budget_or_energy, WindowedBudget):
        energy = _as_numpy(budget_or_energy.energy)
        dt = np.diff(_as_numpy(budget_or_energy.ts))
        flux_values = _as_numpy(budget_or_energy.flux) / dt[:, None]
        w_ts = _as_numpy(budget_or_energy.ts)
        with np.errstate(invalid="ignore"):
            flux_t = np.where(w_ts[:-1] > 0, np.sqrt(w_ts[:-1] * w_ts[1:]), 0.5 * w_ts[1:])
    elif isinstance(budget_or_energy, ShellBudget):
        energy = _as_numpy(budget_or_energy.energy)
        flux_values = _as_numpy(budget_or_energy.flux)
        flux_t = ts
    else:
        energy = _as_numpy(budget_or_energy)
        flux_values = None
    if flux is not None:
        flux_values, flux_t = _as_numpy(flux), ts
    if energy.ndim != 2 or energy.shape != (ts.shape[0], shells.num_shells):
        raise ValueError(
            f"plot_shell_dynamics: energy must be (T={ts.shape[0]}, {shells.num_shells}), got "
            f"{energy.shape}"
        )
    if frontier is None:
        import jax.numpy as jnp

        frontier = resolution_frontier(shells, jnp.asarray(energy))
    position = _as_numpy(frontier.shell)

    if normalize == "fraction":
        colour = _as_numpy(frontier.fraction)
        label = r"$E_s(t)/E_s(t_0)$"
    elif normalize == "total":
        colour = energy / energy[0].sum()
        label = r"$E_s(t)/\sum_s E_s(t_0)$"
    else:
        raise ValueError(f"normalize must be 'fraction' or 'total', got {normalize!r}")

    keep = ts > 0
    panels = 2 if flux_values is not None else 1
    fig, axes = plt.subplots(
        panels, 1, figsize=(7.5, 3.6 * panels), squeeze=False, constrained_layout=True
    )
    ax = axes[0, 0]
    tk = ts[keep]
    data = np.ma.masked_invalid(colour[keep].T)
    positive = data.compressed()
    positive = positive[positive > 0]
    vmin = max(float(positive.min()), 1e-12) if positive.size else 1e-12
    vmax = float(positive.max()) if positive.size else 1.0
    shell_edges = np.arange(shells.num_shells + 1) - 0.5
    mesh = ax.pcolormesh(
        _log_edges(tk),
        shell_edges,
        np.ma.masked_less_equal(data, 0),
        norm=LogNorm(vmin=vmin, vmax=max(vmax, vmin * 10)),
        cmap="magma",
        shading="flat",
    )
    fig.colorbar(mesh, ax=ax, label=label)
    ax.plot(tk, position[keep], color="cyan", lw=2, label="frontier $x(t)$ (fraction = 1/2)")
    lazy = shells.position(np.log(2.0) / (2.0 * tk))
    ax.plot(tk, np.asarray(lazy), color="0.55", lw=1.2, ls="--", label=r"lazy $\ln 2/(2t)$")
    ax.set_xscale("log")
    ax.set_ylim(shells.num_shells - 0.5, -0.5)  # shell 0 (largest λ) on top
    ax.set_xlabel("t")
    ax.set_ylabel("shell s (λ decreasing downwards)")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.6)
    if title:
        ax.set_title(title)

    if flux_values is not None:
        ax2 = axes[1, 0]
        fk = flux_t > 0
        colors = plt.cm.viridis(np.linspace(0, 1, flux_values.shape[1]))
        for s in range(flux_values.shape[1]):
            ax2.plot(flux_t[fk], flux_values[fk, s], color=colors[s], lw=1.2, label=f"{s}|{s + 1}")
        ax2.axhline(0.0, color="k", lw=0.5)
        ax2.set_xscale("log")
        scale = np.nanmax(np.abs(flux_values[fk])) if np.any(fk) else 0.0
        if scale > 0:
            ax2.set_yscale("symlog", linthresh=max(scale * 1e-4, 1e-300))
        ax2.set_xlabel("t")
        ax2.set_ylabel(r"net flux $\Pi_{s|s+1}$")
        ax2.legend(title="boundary", fontsize=7, ncol=max(1, flux_values.shape[1] // 6))
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
