"""Shell energy budget over time windows, with eigenvalues migrating across shell edges.

While no eigenvalue crosses a shell edge, $dE_s/dt = -D_s + \\Pi_{s-1|s} - \\Pi_{s|s+1}$
(docs/theory.md §2.4). When the eigenvalue of a mode crosses an edge at time $\\tau$, the
mode's energy $\\varepsilon(\\tau)$ moves with it from one shell to the next ("migration").
Over a window $[t_i, t_{i+1}]$ the budget is therefore

$$E_s(t_{i+1}) - E_s(t_i)
  = \\int_{t_i}^{t_{i+1}} \\bigl(-D_s + \\textstyle\\sum_{s'} T_{ss'}\\bigr)\\,dt
  + \\sum_{\\text{crossings in the window}} \\pm\\varepsilon(\\tau),$$

and `windowed_budget` evaluates each of the three parts *independently*, so that the
residual of this equation is a check that can fail (of the Kato integration, of the shell rate
formulas with their intra-shell cancellation, and of the crossing detection), not an identity:

1. **Energies** $E_s(t_i)$: shell sums of the squared coefficients of the *independent*
   reference integration of $\\dot e = -Me$ that `solve_kato` carries along its run
   (`KatoSolution.reference_coefficients`), shells assigned by the eigenvalues at $t_i$. A
   Kato run that goes wrong (e.g. at an avoided crossing) then leaves a residual of the size
   of its error.
2. **Rates**: $D_s$ and $T_{ss'}$ of the Kato run at Gauss–Legendre nodes (modewise
   `shell_budget`, or the gauge-free `projector_budget` with `form=BudgetForm.PROJECTOR`),
   integrated by the Gauss–Legendre rule on pieces between window ends and crossing times,
   graded where the rates vary fast (`shells.quadrature`).
3. **Migration**: crossing times from the operator's spectrum alone (`shells.crossings`); the
   migrating energy is $c_k(\\tau)^2$ of the mode sitting on the edge at $\\tau$ (the k-th
   largest), from the Kato run saved at $\\tau$.

All times (window ends, crossing times, nodes) go into one `solve_kato` call; diffrax saves
them from its dense interpolant without changing its steps. The save grid is padded to a
power-of-two length with spare points, so runs of similar size reuse one compilation.

Accuracy: the residual is set by the solver tolerances (`rtol`, `atol`) and the quadrature;
with the defaults it is ~1e-9 of the total energy when the windows resolve the dynamics. A
crossing that the window grid does not resolve (an eigenvalue that crosses an edge and back
inside one window between Hermite-invisible wiggles) shows up as a residual of the size of that
mode's energy, and `windowed_budget` warns when shell occupations change without a detected
crossing. An eigenvalue that sits exactly on an edge at a window end belongs to the lower shell
there: put `lam_ref` off the spectrum (e.g. `LogShells.from_spectrum`, margin 1.1).
"""

from __future__ import annotations

import enum
import functools
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import check_times
from ..modes.kato import solve_kato
from ..operators.base import AbstractOperator
from .budget import ShellBudget, flux_from_transfer, net_inflow, shell_budget
from .crossings import Crossings, find_crossings, refine_crossings
from .grid import LogShells
from .migration import group_crossings, membership_mismatch, migration
from .projector import projector_budget_along
from .quadrature import graded_quadrature, merge_times, pad_grid, piece_density
from .tracking import track_at, track_spectrum

__all__ = ["BudgetForm", "WindowedBudget", "windowed_budget", "budget_residual"]


class BudgetForm(enum.Enum):
    """Which shell rates `windowed_budget` integrates."""

    MODEWISE = "modewise"  # Kato W of the run (`shell_budget`)
    PROJECTOR = "projector"  # gauge-free, from (M, dM/dt, e) (`projector_budget`)


class WindowedBudget(eqx.Module):
    """Shell budget over the windows $[t_i, t_{i+1}]$ of a run (W windows, W+1 times).

    - `ts` (W+1,), `energy` (W+1, S+2): $E_s(t_i)$.
    - `dissipation` (W, S+2): $\\int D_s\\,dt$ over each window (positive: energy lost).
    - `transfer` (W, S+2, S+2): $\\int T_{ss'}\\,dt$; `flux` (W, S+1): $\\int\\Pi_{s|s+1}dt$.
    - `migration` (W, S+2): energy carried into shell s by modes crossing its edges.
    - `crossings`: the `Crossings` (with their energies).
    - `instantaneous`: the Kato run's `ShellBudget` at the window ends (T = W+1), e.g. to
      plot flux(t); its `energy` is the Kato run's, `energy` above the independent one.
    - `quadrature_nodes`: Gauss–Legendre nodes per piece.
    - `independent`: True when `energy` comes from the solver's independent reference
      integration (the budget is then a check that can fail), False when it had to fall back
      to the Kato coefficients themselves.
    """

    ts: Float[Array, " ends"]
    energy: Float[Array, "ends shells"]
    dissipation: Float[Array, "ends-1 shells"]
    transfer: Float[Array, "ends-1 shells shells"]
    flux: Float[Array, "ends-1 shells-1"]
    migration: Float[Array, "ends-1 shells"]
    crossings: Crossings
    instantaneous: ShellBudget
    quadrature_nodes: int = eqx.field(static=True)
    independent: bool = eqx.field(static=True, default=False)

    @property
    def change(self) -> Float[Array, "windows shells"]:
        """$E_s(t_{i+1}) - E_s(t_i)$."""
        return self.energy[1:] - self.energy[:-1]

    @property
    def net_transfer(self) -> Float[Array, "windows shells"]:
        """$\\int(\\Pi_{s-1|s} - \\Pi_{s|s+1})dt = \\int\\sum_{s'}T_{ss'}dt$ (in − out)."""
        return net_inflow(self.flux)

    @property
    def predicted_change(self) -> Float[Array, "windows shells"]:
        """$\\int(-D_s + \\text{inflow} - \\text{outflow})dt + \\text{migration}$."""
        return -self.dissipation + self.net_transfer + self.migration

    @property
    def residual(self) -> Float[Array, "windows shells"]:
        """Change of $E_s$ minus its predicted value, per window and shell."""
        return self.change - self.predicted_change

    @property
    def total_energy(self) -> Float[Array, " ends"]:
        return jnp.sum(self.energy, axis=-1)

    @property
    def max_relative_residual(self) -> float:
        """max |residual| over windows and shells, over the total energy at $t_0$."""
        return float(jnp.max(jnp.abs(budget_residual(self))))


def budget_residual(
    budget: WindowedBudget, *, relative: bool = True
) -> Float[Array, "windows shells"]:
    """Residual of the windowed budget over a whole run, per window and shell.

    $E_s(t_{i+1}) - E_s(t_i) - [\\int(-D_s + \\text{in} - \\text{out})dt + \\text{migration}]$,
    divided by the total energy at $t_0$ when `relative` (the scale of the acceptance
    numbers). Its sum over windows is the residual of the budget over the whole run.
    """
    res = budget.residual
    if relative:
        res = res / budget.total_energy[0]
    return res


def _nothing(eigenvalues, coefficients, generator):
    return None


def _form(form) -> BudgetForm:
    try:
        return BudgetForm(form)
    except ValueError:
        names = [f.value for f in BudgetForm]
        raise ValueError(
            f"windowed_budget: form must be a BudgetForm (or one of {names}), got {form!r}"
        ) from None


def _crossings_for(shells, op, ts, track, crossings, refine):
    if crossings is None:
        crossings = find_crossings(shells, ts, track.eigenvalues, track.rates)
        if refine:
            crossings = refine_crossings(shells, op, track, crossings)
    cross_t = np.asarray(crossings.time, np.float64)
    ts_np = np.asarray(ts, np.float64)
    if not np.all((cross_t > ts_np[0]) & (cross_t < ts_np[-1])):
        raise ValueError("windowed_budget: crossing times must lie strictly inside ts")
    return crossings


def windowed_budget(
    shells: LogShells,
    op: AbstractOperator,
    e0: Float[ArrayLike, " n"],
    ts: Float[ArrayLike, " ends"],
    *,
    form: BudgetForm | str = BudgetForm.MODEWISE,
    nodes: int = 10,
    resolution: float = 6.0,
    subdivisions: int = 1,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    crossings: Crossings | None = None,
    refine: bool = True,
    **kato_kwargs,
) -> WindowedBudget:
    """Windowed shell budget of a Kato run with migration (see the module docstring).

    **Arguments:**
    - `shells`: a `LogShells`.
    - `op`, `e0`: the operator and the initial residual (as for `solve_kato`).
    - `ts`: (W+1,) strictly increasing window ends; they should resolve the eigenvalue motion
      (crossings are located by Hermite interpolation on this grid).
    - `form`: `BudgetForm.MODEWISE` (Kato $W$ of the run) or `BudgetForm.PROJECTOR`
      (gauge-free, $(M, \\dot M, e)$) for the shell rates.
    - `nodes`: Gauss–Legendre nodes per piece. Each sub-interval (between window ends and
      crossing times) is cut into at least `subdivisions` equal pieces, and refined until every
      piece has length × max|λ| ≤ `resolution` and length × (inter-shell coupling) ≤ 1/2
      (`shells.quadrature`): with 10 nodes and resolution 6 the Gauss–Legendre error on
      $e^{-\\lambda t}$ or $e^{i\\omega t}$ is below 1e-15.
    - `rtol`, `atol`: `solve_kato` tolerances; `kato_kwargs` go to `solve_kato` too.
    - `crossings`: precomputed crossings (skips `find_crossings`/`refine_crossings`).
    - `refine`: polish crossing times with `refine_crossings`.

    **Returns:** a `WindowedBudget`; `budget_residual(result)` is the closure check.

    Cost: one `solve_kato` run (its steps do not depend on the save grid) saved at
    ~`nodes` × (number of pieces) points; the shell budget is reduced inside the solve, so
    memory is O(points × n), not O(points × n²).

    **Raises:** `ValueError` on a bad `form`, `nodes`, `subdivisions`, `resolution` or `ts`.
    """
    form = _form(form)
    if not (isinstance(nodes, int) and nodes >= 1 and isinstance(subdivisions, int)
            and subdivisions >= 1 and resolution > 0):
        raise ValueError(
            "windowed_budget: nodes and subdivisions must be integers >= 1 and resolution > 0; "
            f"got nodes={nodes!r}, subdivisions={subdivisions!r}, resolution={resolution!r}"
        )
    dtype = op.dtype
    ts = jnp.asarray(ts, dtype)
    check_times(ts)
    if ts.shape[0] < 2:
        raise ValueError(f"windowed_budget: ts needs at least 2 times, got {ts.shape[0]}")
    ts_np = np.asarray(ts, np.float64)

    # 3. Crossing times from the spectrum alone (no ODE state involved).
    track = track_spectrum(op, ts, shells=shells)
    crossings = _crossings_for(shells, op, ts, track, crossings, refine)
    cross_t = np.asarray(crossings.time, np.float64)
    groups = group_crossings(cross_t, np.asarray(crossings.edge), rel=1e-12)
    group_t = merge_times(ts_np, np.asarray([cross_t[g[0]] for g in groups], np.float64))

    # 2. Pieces between window ends and crossing times, graded; Gauss–Legendre nodes on each.
    breaks = np.unique(np.concatenate([ts_np, group_t]))
    def density(t):
        track = track_at(op, t, shells)
        lam_scale = np.max(np.abs(np.asarray(track.eigenvalues)), axis=-1)
        return piece_density(lam_scale, np.asarray(track.coupling_scale), resolution)

    quad = graded_quadrature(breaks, ts_np, density, nodes=nodes, subdivisions=subdivisions)
    grid = np.unique(np.concatenate([breaks, quad.times]))
    if len(grid) != len(breaks) + len(quad.times):
        raise ValueError(
            "windowed_budget: quadrature nodes coincide with window ends or crossing times "
            "(windows or crossings closer than a few thousand ulps)"
        )
    grid = pad_grid(grid)

    def index(times):
        idx = np.searchsorted(grid, times)
        assert np.all(grid[idx] == times)
        return idx

    # Tolerances as arrays: traced, not static, so a new value needs no recompilation. The
    # shell budget is reduced inside the solve: no (T, n, n) arrays on the quadrature grid.
    reduce = functools.partial(shell_budget, shells) if form is BudgetForm.MODEWISE else _nothing
    sol = solve_kato(
        op,
        jnp.asarray(e0, dtype),
        jnp.asarray(grid, dtype),
        rtol=jnp.asarray(rtol, dtype),
        atol=jnp.asarray(atol, dtype),
        reduce=reduce,
        **kato_kwargs,
    )
    if form is BudgetForm.MODEWISE:
        inst = sol.reduced
    else:
        inst = projector_budget_along(shells, op, sol.ts, sol.residuals)

    # 1. Energies at the window ends from the independent reference (when the solver has one).
    end_idx = index(ts_np)
    reference = getattr(sol, "reference_coefficients", None)
    independent = reference is not None
    coefficients = (reference if independent else sol.coefficients)[end_idx]
    lam_ends = sol.eigenvalues[end_idx]
    energy = jnp.einsum("tks,tk->ts", shells.membership(lam_ends), coefficients**2)

    # 2 (cont.). Rates integrated per window.
    nidx = jnp.asarray(index(quad.times))
    weights = jnp.asarray(quad.weights, dtype)
    seg = jnp.asarray(quad.window)

    def integrate(values):
        weighted = values[nidx] * weights.reshape((-1,) + (1,) * (values.ndim - 1))
        return jax.ops.segment_sum(weighted, seg, num_segments=ts_np.shape[0] - 1)

    dissipation = integrate(inst.dissipation)
    transfer = integrate(inst.transfer)

    # 3 (cont.). Migration: energy of the mode on the edge at each crossing time.
    group_index = index(group_t) if len(groups) else np.zeros(0, np.int64)
    moved, crossing_energy, cross_w = migration(
        crossings, groups, group_index, sol.coefficients, ts_np, shells.num_shells
    )
    missed = membership_mismatch(shells, np.asarray(lam_ends), crossings, cross_w)
    if missed:
        warnings.warn(
            f"windowed_budget: shell occupation changed in {missed} (window, shell) pairs "
            "without a detected crossing; refine ts (its budget will not close there)",
            stacklevel=2,
        )
    crossings = eqx.tree_at(lambda c: c.energy, crossings, jnp.asarray(crossing_energy, dtype))
    return WindowedBudget(
        ts=ts,
        energy=energy,
        dissipation=dissipation,
        transfer=transfer,
        flux=flux_from_transfer(transfer),
        migration=jnp.asarray(moved, dtype),
        crossings=crossings,
        instantaneous=jax.tree_util.tree_map(lambda a: a[jnp.asarray(end_idx)], inst),
        quadrature_nodes=nodes,
        independent=independent,
    )
