"""The renormalized shell ODE: S + 2 shell energies closed by a transport closure.

docs/theory.md §2.5. With boundary fluxes $\\Pi_{s|s+1}$ from a closure (see `closures`),

$$\\dot E_s = -r_sE_s + \\Pi_{s-1|s} - \\Pi_{s|s+1}.$$

Dissipation uses one rate per shell, $r_s = 2\\lambda_s$ at the shell centre by default. On the
lazy power-law initial condition this reproduces $L(t) \\propto t^{-\\sigma}$ up to a
log-periodic ripple of relative size
$\\approx 2|\\Gamma(\\sigma + 2\\pi i/\\Delta u)|/\\Gamma(\\sigma)$ (about $10^{-6}$ at ratio 2)
and a prefactor error $2\\sinh(\\sigma\\Delta u/2)/(\\sigma\\Delta u) - 1
\\approx (\\sigma\\Delta u)^2/24$; see `tests/test_renormalized.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import check_times
from .._integrate import default_controller, integrate
from ..shells.grid import LogShells
from .closures import PowerLawTransport, closure
from .faces import net_inflow, shell_centers
from .options import ClosureKind

__all__ = ["ShellSolution", "shell_loss", "solve_shells"]


def shell_loss(energy: Float[ArrayLike, "*T S"], num_samples) -> Float[Array, "*T"]:
    """$L = \\sum_s E_s/(2n)$ (any energies summed over the last axis: shells or modes)."""
    return jnp.sum(energy, axis=-1) / (2 * num_samples)


class ShellSolution(eqx.Module):
    """Solution of `solve_shells` at the saved times.

    - `ts` (T,), `energy` (T, S+2), `flux` (T, S+1) ($\\Pi_{s|s+1}$ from the closure),
      `dissipation` (T, S+2) ($r_sE_s$), `centers` (S+2,), `stats`, `result`.
    """

    ts: Float[Array, " T"]
    energy: Float[Array, "T shells"]
    flux: Float[Array, "T shells-1"]
    dissipation: Float[Array, "T shells"]
    centers: Float[Array, " shells"]
    stats: dict
    result: diffrax.RESULTS

    @property
    def total(self) -> Float[Array, " T"]:
        """$\\sum_s E_s$ (the loss is this over 2n)."""
        return jnp.sum(self.energy, axis=-1)

    def loss(self, num_samples) -> Float[Array, " T"]:
        """$L = \\sum_s E_s / (2n)$."""
        return shell_loss(self.energy, num_samples)

    @property
    def succeeded(self):
        return self.result == diffrax.RESULTS.successful

    @property
    def rate(self) -> Float[Array, "T shells"]:
        """$dE_s/dt$ at the saved times."""
        return -self.dissipation + net_inflow(self.flux)


def _vector_field(t, energy, args):
    closure_fn, centers, rates = args
    return -rates * energy + net_inflow(closure_fn(energy, centers, t))


def _save(t, energy, args):
    closure_fn, centers, _ = args
    return energy, closure_fn(energy, centers, t)


@eqx.filter_jit
def _solve(closure_fn, centers, rates, e0, ts, solver, controller, dt0, max_steps, throw):
    return integrate(_vector_field, e0, ts, (closure_fn, centers, rates), solver=solver,
                     stepsize_controller=controller, dt0=dt0, max_steps=max_steps, throw=throw,
                     save_fn=_save)


def solve_shells(
    closure_fn: PowerLawTransport | Callable | None,
    shells: LogShells | Float[ArrayLike, " shells"],
    initial_energy: Float[ArrayLike, " shells"],
    ts: Float[ArrayLike, " T"],
    *,
    rates: Float[ArrayLike, " shells"] | None = None,
    rtol: float = 1e-8,
    atol: float | Float[Array, ""] = 1e-14,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    dt0: float | None = None,
    max_steps: int = 100_000,
    throw: bool = True,
) -> ShellSolution:
    """Integrate the renormalized shell ODE $\\dot E = -rE + \\Pi_{s-1|s} - \\Pi_{s|s+1}$.

    **Arguments:**
    - `closure_fn`: a `PowerLawTransport` (see `closure`), any callable
      `(energy (S+2,), centers (S+2,), t) -> flux (S+1,)`, or None (lazy: no flux).
    - `shells`: a `LogShells` or the (S+2,) shell centres.
    - `initial_energy`: (S+2,) shell energies at `ts[0]`.
    - `ts`: (T,) increasing save times; the run goes from `ts[0]` to `ts[-1]`. With a
      negative time exponent the closure is singular at t = 0: start at `ts[0] > 0`.
    - `rates`: (S+2,) dissipation rates $r_s$; default $2\\lambda_s$ at the shell centres.
    - `solver`: default `diffrax.Kvaerno5()` (implicit: shells far above the frontier make the
      system stiff, $2\\lambda_0 t \\gg 1$); `rtol`, `atol` for the default PID controller
      (atol is absolute: scale it to your energies; it may be a traced scalar, e.g. a
      fraction of a vmapped initial energy).
    - `throw`: False records a failed solve in `.result` (sweeps).

    **Returns:** a `ShellSolution`.

    Vmappable over the closure's parameters and `initial_energy` (`jax.vmap` over a function
    that calls this; the shapes are static).
    """
    centers = shell_centers(shells)
    e0 = jnp.asarray(initial_energy)
    if e0.shape != centers.shape:
        raise ValueError(
            f"initial_energy must have shape {centers.shape} (one energy per shell), got "
            f"{e0.shape}"
        )
    if not jnp.issubdtype(e0.dtype, jnp.floating):
        raise TypeError(f"initial_energy must be floating point, got {e0.dtype}")
    dtype = e0.dtype
    centers = centers.astype(dtype)
    concrete_ts = check_times(ts)
    ts = jnp.asarray(ts, dtype)
    if concrete_ts is not None and concrete_ts.shape[0] < 2:
        raise ValueError("ts must hold at least two times")
    rates = 2.0 * centers if rates is None else jnp.asarray(rates, dtype)
    if rates.shape != centers.shape:
        raise ValueError(f"rates must have shape {centers.shape}, got {rates.shape}")
    if closure_fn is None:
        closure_fn = closure(ClosureKind.NONE, dtype=dtype)
    elif not callable(closure_fn):
        raise TypeError(f"closure_fn must be callable or None, got {type(closure_fn)}")
    solver = diffrax.Kvaerno5() if solver is None else solver
    if stepsize_controller is None:
        stepsize_controller = default_controller(rtol, atol, dtype=dtype)
    sol = _solve(
        closure_fn, centers, rates, e0, ts, solver, stepsize_controller, dt0, max_steps, throw
    )
    energy, flux = sol.ys
    return ShellSolution(
        ts=sol.ts,
        energy=energy,
        flux=flux,
        dissipation=rates[None, :] * energy,
        centers=centers,
        stats=dict(sol.stats),
        result=sol.result,
    )
