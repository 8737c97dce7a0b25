"""Figure of shell dynamics: where the energy sits, where the frontier is, where it flows.

Panels (top to bottom): shell energy $E_s(t)/E(0)$ over (log t, shell) with the resolution
frontier; the net flux $\\Pi_{s|s+1}(t)/E(0)$ across each shell boundary as a signed heat map
(red: towards smaller eigenvalues); for a `WindowedBudget`, the budget residual per window,
the number that proves the budget closes. Shells empty along the whole run are omitted (the
axis label lists them). Everything is normalised by the total energy $E(0)$ at the first time,
never by a shell's own initial energy (which may be ~0).

matplotlib is imported lazily inside the function, and the Agg backend is only requested when
no backend has been chosen yet (`force=False`): importing this module changes nothing.
"""

from __future__ import annotations

import pathlib

import numpy as np

__all__ = ["plot_shell_dynamics"]


def _as_numpy(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def _log_edges(ts: np.ndarray) -> np.ndarray:
    """Cell edges in t for a pcolormesh on a log axis (geometric midpoints)."""
    if ts.shape[0] == 1:
        return np.asarray([ts[0] / 1.5, ts[0] * 1.5])
    mid = np.sqrt(ts[1:] * ts[:-1])
    return np.concatenate([[ts[0] ** 2 / mid[0]], mid, [ts[-1] ** 2 / mid[-1]]])


def _unpack(ts, budget_or_energy, flux):
    """Energies at `ts`, flux values and their times, and the budget residual if any."""
    from .budget import ShellBudget
    from .windowed import WindowedBudget, budget_residual

    flux_values = flux_t = residual = None
    if isinstance(budget_or_energy, WindowedBudget):
        energy = _as_numpy(budget_or_energy.energy)
        w_ts = _as_numpy(budget_or_energy.ts)
        # Window-averaged flux at the windows' geometric midpoints.
        flux_values = _as_numpy(budget_or_energy.flux) / np.diff(w_ts)[:, None]
        with np.errstate(invalid="ignore"):
            flux_t = np.where(w_ts[:-1] > 0, np.sqrt(w_ts[:-1] * w_ts[1:]), 0.5 * w_ts[1:])
        residual = np.max(np.abs(_as_numpy(budget_residual(budget_or_energy))), axis=-1)
    elif isinstance(budget_or_energy, ShellBudget):
        energy = _as_numpy(budget_or_energy.energy)
        flux_values, flux_t = _as_numpy(budget_or_energy.flux), ts
    else:
        energy = _as_numpy(budget_or_energy)
    if flux is not None:
        flux_values, flux_t = _as_numpy(flux), ts
    return energy, flux_values, flux_t, residual


def _compact(position, kept):
    """Fractional shell index → row of the compacted (empty shells omitted) heat map."""
    return np.interp(position, kept, np.arange(len(kept)), left=np.nan, right=np.nan)


def _energy_panel(fig, ax, tk, energy_k, kept, position_k, shells, lazy_reference):
    from matplotlib.colors import LogNorm

    data = np.ma.masked_less_equal(energy_k[:, kept].T, 0.0)
    positive = data.compressed()
    vmax = float(positive.max()) if positive.size else 1.0
    vmin = max(float(positive.min()) if positive.size else 1e-12, vmax * 1e-12)
    mesh = ax.pcolormesh(
        _log_edges(tk), np.arange(len(kept) + 1) - 0.5, data,
        norm=LogNorm(vmin=vmin, vmax=max(vmax, 10 * vmin)), cmap="magma", shading="flat",
    )
    ax.set_facecolor("0.88")  # grey: shell empty at that time
    fig.colorbar(mesh, ax=ax, label=r"$E_s(t)\,/\,E(0)$ (grey: empty)")
    ax.plot(tk, _compact(position_k, kept), color="cyan", lw=2.2, label=r"frontier $\lambda^*(t)$")
    if lazy_reference:
        lazy = np.asarray(shells.position(np.log(2.0) / (2.0 * tk)))
        ax.plot(tk, _compact(lazy, kept), color="0.8", lw=1.4, ls="--",
                label=r"lazy kernel: $\lambda^* = \ln 2\,/\,(2t)$")
    ax.set_yticks(np.arange(len(kept)), [str(s) for s in kept])
    ax.set_ylim(len(kept) - 0.5, -0.5)  # largest eigenvalues on top
    ax.legend(loc="lower left", framealpha=0.75)


def _flux_panel(fig, ax, flux_t, flux_values, kept, total):
    from matplotlib.colors import SymLogNorm

    fk = flux_t > 0
    boundaries = [s for s in kept if s < flux_values.shape[1]]  # boundary s|s+1 below shell s
    data = flux_values[fk][:, boundaries].T / total
    top = float(np.nanmax(np.abs(data))) if data.size else 0.0
    top = top if top > 0 else 1.0
    mesh = ax.pcolormesh(
        _log_edges(flux_t[fk]), np.arange(len(boundaries) + 1) - 0.5, data,
        norm=SymLogNorm(linthresh=top * 1e-3, vmin=-top, vmax=top), cmap="RdBu_r",
        shading="flat",
    )
    bar = fig.colorbar(mesh, ax=ax, label=r"$\Pi_{s|s+1}(t)\,/\,E(0)$ (red: down)")
    ticks = [-top, -top * 1e-2, 0.0, top * 1e-2, top]
    bar.set_ticks(ticks, labels=[f"{x:.0e}" if x else "0" for x in ticks])
    ax.set_yticks(np.arange(len(boundaries)), [f"{s}|{s + 1}" for s in boundaries])
    ax.set_ylim(len(boundaries) - 0.5, -0.5)
    ax.set_ylabel("boundary $s|s+1$")


def plot_shell_dynamics(
    ts,
    budget_or_energy,
    shells,
    frontier=None,
    path: str | pathlib.Path | None = None,
    *,
    flux=None,
    lazy_reference: bool = False,
    title: str | None = None,
):
    """Shell energies with the frontier, net fluxes and (for a windowed budget) its residual.

    **Arguments:**
    - `ts`: (T,) times (t ≤ 0 entries are dropped from the log-time axes).
    - `budget_or_energy`: a `WindowedBudget` (energies at `ts`, window-averaged flux
      $\\int\\Pi\\,dt/\\Delta t$ at the windows' geometric midpoints, and the budget residual), a
      `ShellBudget` with a time axis (energies and instantaneous flux), or a (T, S+2) energy
      array (flux panel only if `flux` is given).
    - `shells`: the `LogShells`.
    - `frontier`: a `Frontier`; computed with `resolution_frontier` when None.
    - `path`: where to save the figure (PNG/PDF by suffix); None to only return it.
    - `flux`: optional (T, S+1) flux to plot at `ts` (overrides the budget's).
    - `lazy_reference`: also draw the frozen-kernel frontier $\\ln 2/(2t)$; only meaningful
      when the kernel is (nearly) frozen.
    - `title`: the claim; the number behind it (max budget residual, or the frontier's final
      eigenvalue) is appended.

    **Returns:** the matplotlib `Figure`.

    **Raises:** `ValueError` when the energies are not (T, S+2) for these shells.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .frontier import resolution_frontier

    ts = _as_numpy(ts)
    energy, flux_values, flux_t, residual = _unpack(ts, budget_or_energy, flux)
    if energy.ndim != 2 or energy.shape != (ts.shape[0], shells.num_shells):
        raise ValueError(
            f"plot_shell_dynamics: energy must be (T={ts.shape[0]}, {shells.num_shells}), got "
            f"{energy.shape}"
        )
    if frontier is None:
        import jax.numpy as jnp

        frontier = resolution_frontier(shells, jnp.asarray(energy))
    position = _as_numpy(frontier.shell)
    total = float(energy[0].sum())
    total = total if total > 0 else 1.0
    kept = [s for s in range(shells.num_shells) if np.any(energy[:, s] > 0)]
    empty = [s for s in range(shells.num_shells) if s not in kept]
    kept = kept or list(range(shells.num_shells))

    keep = ts > 0
    panels = 1 + (flux_values is not None) + (residual is not None)
    heights = [3.0] + [2.2] * (flux_values is not None) + [1.6] * (residual is not None)
    with plt.rc_context({"font.size": 11, "axes.titlesize": 12}):
        fig, axes = plt.subplots(
            panels, 1, figsize=(8.0, 1.2 + sum(heights)), sharex=True, squeeze=False,
            constrained_layout=True, gridspec_kw={"height_ratios": heights},
        )
        axes = axes[:, 0]
        ax = axes[0]
        _energy_panel(fig, ax, ts[keep], energy[keep] / total, kept, position[keep], shells,
                      lazy_reference)
        omitted = f" (empty, omitted: {', '.join(map(str, empty))})" if empty else ""
        ax.set_ylabel(f"shell $s$, $\\lambda$ decreasing{omitted}", fontsize=9 if empty else 11)
        row = 1
        if flux_values is not None:
            _flux_panel(fig, axes[row], flux_t, flux_values, kept, total)
            row += 1
        if residual is not None:
            rax = axes[row]
            mid = flux_t
            rk = mid > 0
            rax.semilogy(mid[rk], np.maximum(residual[rk], 1e-18), "o-", ms=3, color="k")
            rax.set_ylabel("max$_s$ |residual|\n/ $E(0)$")
            rax.grid(True, which="major", alpha=0.3)
        axes[-1].set_xscale("log")
        axes[-1].set_xlabel("$t$")
        if residual is not None:
            number = f"max budget residual {np.max(residual):.1e} of $E(0)$"
        else:
            final = np.asarray(frontier.eigenvalue)[keep]
            final = final[np.isfinite(final)]
            number = f"frontier at $\\lambda^* = {final[-1]:.2g}$" if final.size else ""
        claim = title or "Shell energy, frontier and flux"
        fig.suptitle(f"{claim}\n{number}" if number else claim)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
